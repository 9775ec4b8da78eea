//! A build's scratch directory (the source copy, the layers, the steps' private home and temp
//! dir), one per running build, so any number of builds may share one cache dir
//! (RELIABILITY.md W10).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// How many builds of one source may run at once before claiming fails.
const MAX_SLOTS: usize = 256;

/// A scratch directory held by this build: no other build uses it until this is dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    _lock: File,
}

impl Scratch {
    /// Claims a scratch directory for a build keyed `key` (the source's path, hashed) under
    /// `root`: `<key>-0` when no other build holds it, so serial builds of one source keep one
    /// path (and the toolchain caches keyed by path stay warm), else the first free
    /// `<key>-N`. Each is held by an exclusive lock on `<key>-N.lock` for as long as the
    /// returned value lives (the kernel drops it if the build dies). Idle extra slots of the
    /// key are removed; lock files are kept, so a slot is never claimed while being removed.
    pub fn claim(root: &Path, key: &str) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let mut claimed = None;
        for slot in 0..MAX_SLOTS {
            let lock_path = root.join(format!("{key}-{slot}.lock"));
            if claimed.is_some() && !lock_path.exists() {
                break;
            }
            let Some(lock) = try_lock(&lock_path)? else {
                continue;
            };
            let dir = root.join(format!("{key}-{slot}"));
            match claimed {
                None => claimed = Some(Self { dir, _lock: lock }),
                // An idle extra slot: held now, so nobody else is inside.
                Some(_) if slot > 0 => remove_dir(&dir)?,
                Some(_) => {}
            }
        }
        claimed.ok_or_else(|| {
            io::Error::other(format!(
                "{MAX_SLOTS} builds of this source are running in this cache dir already"
            ))
        })
    }

    /// Returns the directory (it may hold the last build's files; the build resets what it uses).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Opens (creating) and locks `path` exclusively without waiting; `None` if another holds it.
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_builds_get_their_own_slot_and_idle_extras_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Scratch::claim(tmp.path(), "k").unwrap();
        let b = Scratch::claim(tmp.path(), "k").unwrap();
        let c = Scratch::claim(tmp.path(), "k").unwrap();
        assert_eq!(a.dir(), tmp.path().join("k-0"));
        assert_eq!(b.dir(), tmp.path().join("k-1"));
        assert_eq!(c.dir(), tmp.path().join("k-2"));
        let other = Scratch::claim(tmp.path(), "other").unwrap();
        assert_eq!(other.dir(), tmp.path().join("other-0"));
        for s in [&a, &b, &c] {
            std::fs::create_dir_all(s.dir().join("app")).unwrap();
        }
        drop(a);
        drop(c);
        // Slot 0 is free again; slot 2 is idle and goes; slot 1 is still in use and stays.
        let again = Scratch::claim(tmp.path(), "k").unwrap();
        assert_eq!(again.dir(), tmp.path().join("k-0"));
        assert!(again.dir().join("app").is_dir(), "slot 0 keeps its files");
        assert!(tmp.path().join("k-1/app").is_dir());
        assert!(!tmp.path().join("k-2").exists());
    }
}
