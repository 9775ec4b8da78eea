//! [`LayerContents::add_tree`]: adding a host directory.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use walkdir::WalkDir;

use crate::contents::{Entry, EntryKind, normalize};
use crate::source::{HostFile, HostRoot, Source};
use crate::{LayerContents, LayerError, SkippedKind, Warning};

impl LayerContents {
    /// Adds every file under `host_dir` at `prefix` (`""` for the layer root, or e.g.
    /// `workspace`), walking in sorted order.
    ///
    /// Regular files get mode `0755` if the host file has any execute bit and `0644`
    /// otherwise; directories get `0755`; host owners, times and setuid/setgid/sticky bits
    /// are dropped. Symlinks are stored verbatim and never followed. Files linked more
    /// than once inside the layer are written once and then as tar hardlinks to the first
    /// path in layer order. Sockets, FIFOs and device nodes are skipped with a
    /// [`Warning`]. A name starting with `.wh.` (an OCI whiteout marker) is an error.
    /// Directories already present are kept as they are; other entries replace earlier
    /// ones at the same path. On error, the entries met so far stay added.
    pub fn add_tree(&mut self, host_dir: &Path, prefix: &str) -> Result<(), LayerError> {
        let prefix = normalize(prefix).map_err(|reason| LayerError::InvalidPath {
            path: prefix.to_string(),
            reason,
        })?;
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
        let host_root = Arc::new(HostRoot {
            dir: host_dir.to_path_buf(),
            skip: if prefix.is_empty() {
                0
            } else {
                prefix.len() + 1
            },
        });
        let walk = WalkDir::new(host_dir)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name();
        for item in walk {
            let item = item.map_err(|source| LayerError::Walk {
                path: source.path().unwrap_or(host_dir).to_path_buf(),
                source,
            })?;
            let host_path = item.path();
            if item.file_name().as_bytes().starts_with(b".wh.") {
                return Err(LayerError::Whiteout {
                    path: host_path.to_path_buf(),
                });
            }
            let relative = host_path
                .strip_prefix(host_dir)
                .ok()
                .and_then(Path::to_str)
                .ok_or_else(|| LayerError::NonUtf8 {
                    path: host_path.to_path_buf(),
                })?;
            let layer_path = if prefix.is_empty() {
                relative.to_string()
            } else {
                format!("{prefix}/{relative}")
            };
            let file_type = item.file_type();
            // The walk is pre-order, so every parent directory has just been added.
            if file_type.is_dir() {
                self.put_dir_if_absent(&layer_path);
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(host_path).map_err(|source| LayerError::Read {
                    path: host_path.to_path_buf(),
                    source,
                })?;
                let target = target.to_str().ok_or_else(|| LayerError::NonUtf8 {
                    path: host_path.to_path_buf(),
                })?;
                let entry = Entry {
                    kind: EntryKind::Symlink(target.to_string()),
                    mode: 0o777,
                    owner: None,
                };
                self.put(layer_path, entry);
            } else if file_type.is_file() {
                let meta = item.metadata().map_err(|source| LayerError::Walk {
                    path: host_path.to_path_buf(),
                    source,
                })?;
                let host = HostFile {
                    root: Arc::clone(&host_root),
                    size: meta.len(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    nlink: meta.nlink(),
                };
                let entry = Entry {
                    kind: EntryKind::File(Source::Host(host)),
                    mode: if meta.mode() & 0o111 != 0 {
                        0o755
                    } else {
                        0o644
                    },
                    owner: None,
                };
                self.put(layer_path, entry);
            } else {
                let kind = if file_type.is_socket() {
                    SkippedKind::Socket
                } else if file_type.is_fifo() {
                    SkippedKind::Fifo
                } else if file_type.is_block_device() {
                    SkippedKind::BlockDevice
                } else if file_type.is_char_device() {
                    SkippedKind::CharDevice
                } else {
                    SkippedKind::Other
                };
                self.warnings.push(Warning {
                    path: host_path.to_path_buf(),
                    kind,
                });
            }
        }
        Ok(())
    }
}
