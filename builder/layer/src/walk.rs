//! Walking a host tree relative to directory descriptors, for `add_tree`.
//!
//! Each directory is opened from its parent with `O_NOFOLLOW`, so a directory swapped for
//! a symlink while the walk runs is never entered (RELIABILITY.md W02), and only one
//! directory is open at a time, going back up through `..` (checked against the inode the
//! walk came from): the depth of a tree is bounded neither by the number of open files nor
//! by `PATH_MAX` (RELIABILITY.md W11, 4096-deep trees). Entries come in the order of a
//! pre-order walk with siblings sorted by name bytes.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// What the walk met at a path.
pub(crate) enum Found<'a> {
    /// A directory; what is inside it comes next.
    Dir,
    /// A regular file and its metadata.
    File(&'a Stat),
    /// A symlink and its target, verbatim.
    Symlink(Vec<u8>),
    /// Anything else (socket, FIFO, device).
    Other(FileType),
}

/// A failed walk: where, and why.
pub(crate) struct WalkError {
    /// The path below the root where it failed.
    pub(crate) at: Vec<u8>,
    pub(crate) errno: Errno,
}

struct Level {
    names: Vec<Vec<u8>>,
    next: usize,
    /// The directory's device and inode, to check the way back up.
    id: (u64, u64),
    /// The length of the walk's path when this directory was entered.
    path_len: usize,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Walks everything below `root` (not `root` itself) but the paths in `skip` (and what is
/// below them), calling `visit` with the path below `root` (components joined by `/`) and
/// what is there. Stops at the first error of `visit`, which is returned as `Ok(Err(_))`.
pub(crate) fn walk<E>(
    root: &OwnedFd,
    skip: &[&[u8]],
    mut visit: impl FnMut(&[u8], Found<'_>) -> Result<(), E>,
) -> Result<Result<(), E>, WalkError> {
    let fail = |at: &[u8], errno| WalkError {
        at: at.to_vec(),
        errno,
    };
    let mut cur =
        rustix::fs::openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| fail(b"", e))?;
    let root_stat = rustix::fs::fstat(&cur).map_err(|e| fail(b"", e))?;
    let mut path: Vec<u8> = Vec::new();
    let mut stack = vec![Level {
        names: list(&cur).map_err(|e| fail(b"", e))?,
        next: 0,
        id: (root_stat.st_dev, root_stat.st_ino),
        path_len: 0,
    }];
    loop {
        let Some(level) = stack.last_mut() else {
            return Ok(Ok(()));
        };
        if level.next == level.names.len() {
            stack.pop();
            let Some(parent) = stack.last() else {
                return Ok(Ok(()));
            };
            // Back up one level, making sure `..` is the directory the walk came from.
            let up = rustix::fs::openat(&cur, "..", DIR_FLAGS, Mode::empty())
                .map_err(|e| fail(&path, e))?;
            let st = rustix::fs::fstat(&up).map_err(|e| fail(&path, e))?;
            if (st.st_dev, st.st_ino) != parent.id {
                return Err(fail(&path, Errno::STALE));
            }
            cur = up;
            continue;
        }
        let name = std::mem::take(&mut level.names[level.next]);
        level.next += 1;
        path.truncate(level.path_len);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        if skip.contains(&path.as_slice()) {
            continue;
        }
        let st = rustix::fs::statat(&cur, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fail(&path, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                if let Err(e) = visit(&path, Found::Dir) {
                    return Ok(Err(e));
                }
                let child = rustix::fs::openat(&cur, name.as_slice(), DIR_FLAGS, Mode::empty())
                    .map_err(|e| fail(&path, e))?;
                let opened = rustix::fs::fstat(&child).map_err(|e| fail(&path, e))?;
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(fail(&path, Errno::STALE));
                }
                let names = list(&child).map_err(|e| fail(&path, e))?;
                stack.push(Level {
                    names,
                    next: 0,
                    id: (st.st_dev, st.st_ino),
                    path_len: path.len(),
                });
                cur = child;
            }
            FileType::RegularFile => {
                if let Err(e) = visit(&path, Found::File(&st)) {
                    return Ok(Err(e));
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&cur, name.as_slice(), Vec::new())
                    .map_err(|e| fail(&path, e))?;
                if let Err(e) = visit(&path, Found::Symlink(target.into_bytes())) {
                    return Ok(Err(e));
                }
            }
            other => {
                if let Err(e) = visit(&path, Found::Other(other)) {
                    return Ok(Err(e));
                }
            }
        }
    }
}

/// Returns the names in the directory `dir`, sorted by their bytes.
fn list(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Returns `root` joined with the walk path `rel`, for messages.
pub(crate) fn host_path(root: &Path, rel: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    root.join(std::ffi::OsStr::from_bytes(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walked(root: &Path, skip: &[&[u8]]) -> Vec<String> {
        let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut out = Vec::new();
        walk::<()>(&fd, skip, |p, found| {
            let kind = match found {
                Found::Dir => "d",
                Found::File(_) => "f",
                Found::Symlink(_) => "l",
                Found::Other(_) => "o",
            };
            out.push(format!("{kind} {}", String::from_utf8_lossy(p)));
            Ok(())
        })
        .ok()
        .unwrap()
        .unwrap();
        out
    }

    #[test]
    fn walks_pre_order_with_sorted_siblings() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("a/z")).unwrap();
        std::fs::write(r.join("a/z/f"), b"").unwrap();
        std::fs::write(r.join("a-b"), b"").unwrap();
        std::fs::write(r.join("a/b"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("c")).unwrap();
        std::fs::create_dir(r.join("empty")).unwrap();
        // Siblings by name (`a` before `a-b`), each directory followed by its contents.
        let expected = [
            "d a", "f a/b", "d a/z", "f a/z/f", "f a-b", "l c", "d empty",
        ];
        assert_eq!(walked(r, &[]), expected);
        let skipped = ["d a", "f a/b", "f a-b", "l c"];
        assert_eq!(walked(r, &[b"a/z", b"empty"]), skipped);
    }
}
