//! [`LayerContents::add_tree`]: adding a host directory.

use std::path::Path;
use std::sync::Arc;

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::contents::{Entry, EntryKind, is_whiteout, normalize};
use crate::source::{HostFile, HostRoot, Source};
use crate::walk::{self, Found, WalkError, walk};
use crate::{FileStamp, LayerContents, LayerError, SkippedKind, Warning};

impl LayerContents {
    /// Adds every file under `host_dir` at `prefix` (`""` for the layer root, or e.g.
    /// `workspace`), walking in sorted order.
    ///
    /// Regular files get mode `0755` if the host file has any execute bit and `0644`
    /// otherwise; directories get `0755`; host owners, times and setuid/setgid/sticky bits
    /// are dropped, and so are extended attributes. Names need not be UTF-8. Symlinks are
    /// stored verbatim and never followed (a link to `/etc` or to itself is one entry).
    /// Files linked more than once inside the layer are written once and then as tar
    /// hardlinks to the first path in layer order; a file whose other links are outside
    /// the layer is a plain file. Sockets, FIFOs and device nodes are skipped with a
    /// [`Warning`]. A name starting with `.wh.` (an OCI whiteout marker) is an error.
    /// Directories already present are kept as they are; other entries replace earlier
    /// ones at the same path. On error, the entries met so far stay added.
    pub fn add_tree(&mut self, host_dir: &Path, prefix: &str) -> Result<(), LayerError> {
        self.add_tree_except(host_dir, prefix, &[])
    }

    /// Like [`add_tree`](Self::add_tree), leaving out the paths in `except` (relative to
    /// `host_dir`, components joined by `/`) and everything below them, without walking them.
    pub fn add_tree_except(
        &mut self,
        host_dir: &Path,
        prefix: &str,
        except: &[&str],
    ) -> Result<(), LayerError> {
        let except: Vec<&[u8]> = except
            .iter()
            .map(|p| p.trim_matches('/').as_bytes())
            .collect();
        let prefix = normalize(prefix.as_bytes()).map_err(|bad| bad.error(prefix))?;
        let root = std::fs::metadata(host_dir).map_err(|source| LayerError::Read {
            path: host_dir.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(LayerError::NotADirectory {
                path: host_dir.to_path_buf(),
            });
        }
        if !prefix.is_empty() {
            self.ensure_parents(&prefix);
            self.put_dir_if_absent(&prefix);
        }
        let skip = if prefix.is_empty() {
            0
        } else {
            prefix.len() + 1
        };
        let host_root =
            HostRoot::open(host_dir.to_path_buf(), skip).map_err(|source| LayerError::Read {
                path: host_dir.to_path_buf(),
                source,
            })?;
        let host_root = Arc::new(host_root);
        let mut layer_path = prefix.clone();
        let walked = walk(&host_root.fd, &except, |relative, found| {
            let host_path = || walk::host_path(host_dir, relative);
            let name = relative.rsplit(|&b| b == b'/').next().unwrap_or(relative);
            if is_whiteout(name) {
                return Err(LayerError::Whiteout { path: host_path() });
            }
            layer_path.truncate(prefix.len());
            if !prefix.is_empty() {
                layer_path.push(b'/');
            }
            layer_path.extend_from_slice(relative);
            // The walk is pre-order, so every parent directory has just been added.
            match found {
                Found::Dir => self.put_dir_if_absent(&layer_path),
                // The target is stored as it is, never resolved: it means something inside
                // the container, and following it on the host could read anything.
                Found::Symlink(target) => self.put(
                    layer_path.clone(),
                    Entry {
                        kind: EntryKind::Symlink(target),
                        mode: 0o777,
                        owner: None,
                    },
                ),
                Found::File(st) => {
                    // `st_nlink` is narrower than 64 bits on some targets.
                    #[allow(clippy::useless_conversion)]
                    let nlink = u64::from(st.st_nlink);
                    let host = HostFile {
                        root: Arc::clone(&host_root),
                        stamp: FileStamp::of_stat(st),
                        nlink,
                        moved: None,
                    };
                    let entry = Entry {
                        kind: EntryKind::File(Source::Host(host)),
                        mode: if st.st_mode & 0o111 != 0 {
                            0o755
                        } else {
                            0o644
                        },
                        owner: None,
                    };
                    self.put(layer_path.clone(), entry);
                }
                Found::Other(file_type) => {
                    let kind = match file_type {
                        FileType::Socket => SkippedKind::Socket,
                        FileType::Fifo => SkippedKind::Fifo,
                        FileType::BlockDevice => SkippedKind::BlockDevice,
                        FileType::CharacterDevice => SkippedKind::CharDevice,
                        _ => SkippedKind::Other,
                    };
                    self.warnings.push(Warning {
                        path: host_path(),
                        kind,
                    });
                }
            }
            Ok(())
        });
        match walked {
            Ok(visited) => visited?,
            Err(WalkError { at, errno }) => {
                let path = walk::host_path(host_dir, &at);
                return Err(match errno {
                    Errno::STALE | Errno::LOOP | Errno::NOTDIR => LayerError::Replaced { path },
                    errno => LayerError::Walk {
                        path,
                        source: errno.into(),
                    },
                });
            }
        }
        Ok(())
    }
}
