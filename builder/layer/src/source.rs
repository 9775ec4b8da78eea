//! Where a regular file's bytes come from, and reading them without trusting the host.
//!
//! A host file is described by the metadata captured when it was added; reading it later
//! checks that description again (RELIABILITY.md W02). A file that grew or shrank in
//! between (a build step still writing, a log being appended to) fails with
//! [`LayerError::SizeChanged`]: the tar header carrying the old size has to be exact, and
//! padding or truncating would silently ship a corrupt file. A file that is no longer the
//! one that was added (another inode, a directory, a FIFO) fails too.
//!
//! Files are opened relative to a descriptor of their tree's root taken when the tree was
//! added, without following any symlink on the way (`openat2` with `RESOLVE_NO_SYMLINKS |
//! RESOLVE_BENEATH`, or component by component with `O_NOFOLLOW` where `openat2` is not
//! available): a file or a parent directory swapped for a symlink after the walk can never
//! make kiln read what the link points to, e.g. a secret outside the tree.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use crate::FileStamp;
use crate::LayerError;

/// A host directory added with `add_tree`, shared by all its files so that each file
/// costs no host path allocation (layers can hold hundreds of thousands of files).
#[derive(Debug)]
pub(crate) struct HostRoot {
    /// The host directory.
    pub(crate) dir: PathBuf,
    /// The directory, opened when it was added: files are opened beneath it.
    pub(crate) fd: OwnedFd,
    /// How many leading bytes of a layer path are the tree's prefix (and its `/`).
    pub(crate) skip: usize,
}

/// A regular file on the host, as it was when added.
#[derive(Debug, Clone)]
pub(crate) struct HostFile {
    /// The tree it came from; its host path is rebuilt from its layer path.
    pub(crate) root: Arc<HostRoot>,
    /// Its `stat` when added: the size (the tar header promises exactly this many bytes),
    /// device and inode (to recognise hardlinks inside one layer and a file replaced by
    /// another one), and times (to find its hash in a [`crate::HashCache`]).
    pub(crate) stamp: FileStamp,
    /// The link count; only files with more than one link can be hardlinks.
    pub(crate) nlink: u64,
    /// The path below the tree's root, once the entry no longer sits at the layer path
    /// the tree gave it (placed through a base image's symlinks).
    pub(crate) moved: Option<Box<[u8]>>,
}

/// The bytes of a regular file entry.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Bytes given by the caller (small generated files).
    Inline(Vec<u8>),
    /// A host file, streamed when the layer is written.
    Host(HostFile),
}

impl HostRoot {
    /// Opens the directory `dir` (following symlinks: the caller named it).
    pub(crate) fn open(dir: PathBuf, skip: usize) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&dir, flags, Mode::empty())?;
        Ok(Self { dir, fd, skip })
    }
}

impl HostFile {
    /// Returns the path below the tree's root of the file stored at `layer_path`.
    fn relative<'a>(&'a self, layer_path: &'a [u8]) -> &'a [u8] {
        match &self.moved {
            Some(rel) => rel,
            None => &layer_path[self.root.skip..],
        }
    }

    /// Records that the file added at `layer_path` is about to be stored elsewhere.
    pub(crate) fn moved_from(&mut self, layer_path: &[u8]) {
        if self.moved.is_none() {
            self.moved = Some(layer_path[self.root.skip..].into());
        }
    }

    /// Returns the host path of the file stored at `layer_path`, for messages.
    pub(crate) fn host_path(&self, layer_path: &[u8]) -> PathBuf {
        self.root
            .dir
            .join(OsStr::from_bytes(self.relative(layer_path)))
    }
}

impl Source {
    /// Returns the number of bytes the entry holds.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Self::Inline(data) => data.len() as u64,
            Self::Host(host) => host.stamp.size(),
        }
    }

    /// Feeds the bytes of the entry at `layer_path` to `sink` in chunks of at most
    /// `buf.len()`, and fails if a host file is no longer the file, or no longer has the
    /// size, it was added with.
    pub(crate) fn stream(
        &self,
        layer_path: &[u8],
        buf: &mut [u8],
        sink: impl FnMut(&[u8]) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
        match self {
            Self::Inline(data) => {
                let mut sink = sink;
                sink(data)
            }
            Self::Host(host) => stream_host(host, layer_path, buf, sink),
        }
    }
}

fn stream_host(
    host: &HostFile,
    layer_path: &[u8],
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let path = || host.host_path(layer_path);
    let read_err = |source: io::Error| LayerError::Read {
        path: path(),
        source,
    };
    let changed = |actual: u64| LayerError::SizeChanged {
        path: path(),
        expected: host.stamp.size(),
        actual,
    };
    let fd = open_beneath(&host.root.fd, host.relative(layer_path)).map_err(|e| {
        if replaced(&e) {
            LayerError::Replaced { path: path() }
        } else {
            read_err(e.into())
        }
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| read_err(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(LayerError::NotAFile { path: path() });
    }
    if (stat.st_dev, stat.st_ino) != (host.stamp.dev(), host.stamp.ino()) {
        return Err(LayerError::Replaced { path: path() });
    }
    let now = u64::try_from(stat.st_size).unwrap_or(0);
    if now != host.stamp.size() {
        return Err(changed(now));
    }
    let mut file = File::from(fd);
    let mut remaining = host.stamp.size();
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read_some(&mut file, &mut buf[..want]).map_err(read_err)?;
        if n == 0 {
            return Err(changed(host.stamp.size() - remaining));
        }
        sink(&buf[..n])?;
        remaining -= n as u64;
    }
    // One more read proves the file did not grow while we were reading it.
    let mut probe = [0u8; 1];
    if read_some(&mut file, &mut probe).map_err(read_err)? != 0 {
        let now = file.metadata().map_err(read_err)?.len();
        return Err(changed(now.max(host.stamp.size() + 1)));
    }
    Ok(())
}

/// Returns whether an open error means a symlink or a non-directory was met where the walk
/// saw a directory or a file: the tree changed under us.
fn replaced(e: &rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::LOOP, Errno::XDEV, Errno::NOTDIR].contains(e)
}

/// Whether `openat2` is known to be missing (old kernels, or filtered by seccomp).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The flags of the final open: no symlink, no controlling terminal, and no blocking on
/// a FIFO swapped in for the file (it is refused after `fstat`).
fn leaf_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// Opens `rel` (a relative path) beneath the directory `root` for reading, following no
/// symlink in any component.
pub(crate) fn open_beneath(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, rustix::io::Errno> {
    use rustix::io::Errno;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root, rel, leaf_flags(), Mode::empty(), how) {
            Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // Deeper than `PATH_MAX`: one component at a time has no such limit.
            Err(Errno::NAMETOOLONG) => {}
            // `openat2` retries internally on a concurrent rename; give up like a replace.
            Err(Errno::AGAIN) => return Err(Errno::XDEV),
            other => return other,
        }
    }
    open_by_components(root, rel)
}

/// [`open_beneath`] without `openat2`: every directory opened with `O_NOFOLLOW`, relative
/// to the one before it (which is closed then: only two are ever open).
pub(crate) fn open_by_components(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, rustix::io::Errno> {
    use rustix::io::Errno;
    let mut parts: Vec<&[u8]> = rel
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    let leaf = parts.pop().ok_or(Errno::ISDIR)?;
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: Option<OwnedFd> = None;
    for part in parts {
        if part == b".." {
            return Err(Errno::XDEV);
        }
        let at = dir.as_ref().unwrap_or(root);
        dir = Some(rustix::fs::openat(at, part, dir_flags, Mode::empty())?);
    }
    if leaf == b".." {
        return Err(Errno::XDEV);
    }
    rustix::fs::openat(
        dir.as_ref().unwrap_or(root),
        leaf,
        leaf_flags(),
        Mode::empty(),
    )
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
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn host(path: &Path, size: u64) -> (Source, Vec<u8>) {
        let meta = std::fs::metadata(path).unwrap();
        let root = HostRoot::open(path.parent().unwrap().to_path_buf(), 0).unwrap();
        let source = Source::Host(HostFile {
            root: Arc::new(root),
            stamp: FileStamp([
                meta.dev() as i64,
                meta.ino() as i64,
                size as i64,
                0,
                0,
                0,
                0,
            ]),
            nlink: 1,
            moved: None,
        });
        let name = path.file_name().unwrap().as_bytes().to_vec();
        (source, name)
    }

    fn collect((src, name): &(Source, Vec<u8>)) -> Result<Vec<u8>, LayerError> {
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
        assert_eq!(collect(&host(&p, 11)).unwrap(), b"hello world");
        let inline = (Source::Inline(b"x".to_vec()), b"x".to_vec());
        assert_eq!(collect(&inline).unwrap(), b"x");
    }

    #[test]
    fn size_changes_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.txt");
        std::fs::write(&p, b"0123456789").unwrap();
        let grown = collect(&host(&p, 4)).unwrap_err();
        assert!(matches!(
            grown,
            LayerError::SizeChanged {
                expected: 4,
                actual: 10,
                ..
            }
        ));
        assert!(grown.to_string().contains("log.txt`"), "{grown}");
        let shrunk = collect(&host(&p, 20)).unwrap_err();
        assert!(matches!(shrunk, LayerError::SizeChanged { actual: 10, .. }));
        let added = host(&p, 10);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        assert!(collect(&added).is_err());
    }

    #[test]
    fn w02_refuses_a_file_replaced_by_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"abc").unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"xyz").unwrap();
        let added = host(&p, 3);
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&secret, &p).unwrap();
        let err = collect(&added).unwrap_err();
        assert!(matches!(err, LayerError::Replaced { .. }), "{err:?}");
    }

    /// W02: the fallback for kernels without `openat2` follows no symlink either, in the
    /// leaf or in any parent.
    #[test]
    fn w02_opening_component_by_component_follows_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("d")).unwrap();
        std::fs::write(root_dir.join("d/f"), b"ok").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink("../secret", root_dir.join("leaf")).unwrap();
        std::os::unix::fs::symlink("..", root_dir.join("up")).unwrap();
        let root = HostRoot::open(root_dir, 0).unwrap();
        let read = |rel: &[u8]| {
            open_by_components(&root.fd, rel).map(|fd| {
                let mut s = String::new();
                File::from(fd).read_to_string(&mut s).unwrap();
                s
            })
        };
        assert_eq!(read(b"d/f").unwrap(), "ok");
        for rel in [&b"leaf"[..], b"up/secret", b"d/../../secret"] {
            let err = read(rel).unwrap_err();
            assert!(replaced(&err), "{}: {err}", String::from_utf8_lossy(rel));
        }
    }
}
