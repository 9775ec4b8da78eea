//! Where a regular file's bytes come from, and reading them without trusting the host.
//!
//! A host file is described by the metadata captured when it was added; reading it later
//! checks that description again. A file that grew or shrank in between (a build step still
//! writing, a log being appended to) fails with [`LayerError::SizeChanged`]: the tar header
//! carrying the old size has to be exact, and padding or truncating would silently ship
//! a corrupt file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::LayerError;

/// A host directory added with `add_tree`, shared by all its files so that each file
/// costs no host path allocation (layers can hold hundreds of thousands of files).
#[derive(Debug)]
pub(crate) struct HostRoot {
    /// The host directory.
    pub(crate) dir: PathBuf,
    /// How many leading bytes of a layer path are the tree's prefix (and its `/`).
    pub(crate) skip: usize,
}

/// A regular file on the host, as it was when added.
#[derive(Debug, Clone)]
pub(crate) struct HostFile {
    /// The tree it came from; its host path is rebuilt from its layer path.
    pub(crate) root: Arc<HostRoot>,
    /// Its size when added; the tar header promises exactly this many bytes.
    pub(crate) size: u64,
    /// Device and inode, to recognise hardlinks inside one layer.
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// The link count; only files with more than one link can be hardlinks.
    pub(crate) nlink: u64,
}

/// The bytes of a regular file entry.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Bytes given by the caller (small generated files).
    Inline(Vec<u8>),
    /// A host file, streamed when the layer is written.
    Host(HostFile),
}

impl HostFile {
    /// Returns the host path of the file stored at `layer_path`.
    pub(crate) fn host_path(&self, layer_path: &str) -> PathBuf {
        self.root.dir.join(&layer_path[self.root.skip..])
    }
}

impl Source {
    /// Returns the number of bytes the entry holds.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Self::Inline(data) => data.len() as u64,
            Self::Host(host) => host.size,
        }
    }

    /// Feeds the bytes of the entry at `layer_path` to `sink` in chunks of at most
    /// `buf.len()`, and fails if a host file no longer has the size it was added with.
    pub(crate) fn stream(
        &self,
        layer_path: &str,
        buf: &mut [u8],
        mut sink: impl FnMut(&[u8]) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
        match self {
            Self::Inline(data) => sink(data),
            Self::Host(host) => stream_host(&host.host_path(layer_path), host.size, buf, sink),
        }
    }
}

fn stream_host(
    path: &Path,
    size: u64,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let read_err = |source: io::Error| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let changed = |actual: u64| LayerError::SizeChanged {
        path: path.to_path_buf(),
        expected: size,
        actual,
    };
    // O_NOFOLLOW: a file swapped for a symlink after it was added must not make us read
    // whatever the link points to (e.g. a host secret outside the tree).
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(LayerError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() != size {
        return Err(changed(meta.len()));
    }
    let mut remaining = size;
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read_some(&mut file, &mut buf[..want]).map_err(read_err)?;
        if n == 0 {
            return Err(changed(size - remaining));
        }
        sink(&buf[..n])?;
        remaining -= n as u64;
    }
    // One more read proves the file did not grow while we were reading it.
    let mut probe = [0u8; 1];
    if read_some(&mut file, &mut probe).map_err(read_err)? != 0 {
        let now = file.metadata().map_err(read_err)?.len();
        return Err(changed(now.max(size + 1)));
    }
    Ok(())
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn host(path: PathBuf, size: u64) -> Source {
        let root = HostRoot {
            dir: path.parent().unwrap().to_path_buf(),
            skip: 0,
        };
        Source::Host(HostFile {
            root: Arc::new(root),
            size,
            dev: 0,
            ino: 0,
            nlink: 1,
        })
    }

    fn collect(src: &Source, name: &str) -> Result<Vec<u8>, LayerError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        src.stream(name, &mut buf, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn streams_exact_bytes_in_small_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello world").unwrap();
        assert_eq!(collect(&host(p, 11), "f").unwrap(), b"hello world");
        assert_eq!(collect(&Source::Inline(b"x".to_vec()), "x").unwrap(), b"x");
    }

    #[test]
    fn size_changes_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.txt");
        std::fs::write(&p, b"0123456789").unwrap();
        let grown = collect(&host(p.clone(), 4), "log.txt").unwrap_err();
        assert!(matches!(
            grown,
            LayerError::SizeChanged {
                expected: 4,
                actual: 10,
                ..
            }
        ));
        assert!(grown.to_string().contains("log.txt`"), "{grown}");
        let shrunk = collect(&host(p.clone(), 20), "log.txt").unwrap_err();
        assert!(matches!(shrunk, LayerError::SizeChanged { actual: 10, .. }));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        assert!(collect(&host(p, 10), "log.txt").is_err());
    }

    #[test]
    fn refuses_a_file_replaced_by_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"abc").unwrap();
        let p = dir.path().join("f");
        std::os::unix::fs::symlink(&secret, &p).unwrap();
        assert!(matches!(
            collect(&host(p, 3), "f"),
            Err(LayerError::Read { .. })
        ));
    }
}
