//! Temporary directories, directory copies and free ports.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A temporary directory (prefix `kiln-e2e-`) removed when dropped.
#[derive(Debug)]
pub struct Workspace {
    dir: TempDir,
}

impl Workspace {
    /// Creates a fresh, empty temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kiln-e2e-")
            .tempdir()
            .expect("creating a temporary directory");
        Self { dir }
    }

    /// Returns the directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Returns `rel` joined onto the directory (nothing is created).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates `rel` (and its parents) inside the directory and returns its path.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating `{}`: {e}", path.display()));
        path
    }

    /// Writes `contents` to `rel` (creating parent directories) and returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating `{}`: {e}", parent.display()));
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing `{}`: {e}", path.display()));
        path
    }

    /// Copies the directory tree `src` to `rel` inside the workspace and returns its path.
    pub fn copy_in(&self, src: impl AsRef<Path>, rel: impl AsRef<Path>) -> PathBuf {
        let dst = self.join(rel);
        copy_dir(src.as_ref(), &dst).unwrap_or_else(|e| {
            panic!(
                "copying `{}` to `{}`: {e}",
                src.as_ref().display(),
                dst.display()
            )
        });
        dst
    }

    /// Keeps the directory on disk (for debugging a failing test) and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// Copies the tree `src` into `dst` (created if missing): regular files with their
/// permission bits, directories, and symlinks recreated as symlinks (not followed).
pub fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            fs::copy(&from, &to)?;
        }
    }
    let perms = fs::metadata(src)?.permissions();
    fs::set_permissions(dst, perms)
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
///
/// Another process may take it before it is used; [`crate::Registry`] retries on that.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener
        .local_addr()
        .expect("reading the bound address")
        .port()
}
