//! File operations that stay correct when several kiln processes share one cache dir
//! (RELIABILITY.md W10): whole-file writes that readers never see half done, and advisory
//! locks for read-modify-write updates.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The prefix of every temporary file kiln writes (`.tmp-<pid>-…`): a file that is still
/// there later is a killed writer's leftover, and which process left it is in its name.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Returns the prefix of this process's temporary files: `.tmp-<pid>-`.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// Removes the temporary files this process has in `dir` (for an interrupted run, whose
/// writers will not finish); returns how many went. Best effort.
pub fn remove_own_temp_files(dir: &Path) -> usize {
    let prefix = temp_prefix();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Writes `bytes` to `path` through a temporary file of its own in the same directory and a
/// rename, so a reader sees the old file or the new one, never a partial one, and two
/// writers never write into one temporary file. (No `fsync`: what this guards against is a
/// process killed mid-write, after which the page cache still holds the data.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// An advisory lock on a lock file, released when dropped (or when the process dies).
///
/// Lock files may be removed ([`FileLock::remove`]) by whoever holds them exclusively: a
/// lock taken on a file that was removed (or replaced) meanwhile is dropped and taken again
/// on the file now at the path, so two holders never lock different files of one name.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes an exclusive lock on `path` (created if missing), waiting for other holders.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        Self::take(path, |f| f.lock().map(|()| true))
            .map(|l| l.expect("a blocking lock is always taken"))
    }

    /// Takes a shared lock on `path`: any number of shared holders, no exclusive one.
    pub fn shared(path: &Path) -> io::Result<Self> {
        Self::take(path, |f| f.lock_shared().map(|()| true))
            .map(|l| l.expect("a blocking lock is always taken"))
    }

    /// Takes an exclusive lock on `path` if nobody holds it; `None` if somebody does.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<Self>> {
        Self::take(path, |f| match f.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        })
    }

    fn take(path: &Path, lock: impl Fn(&File) -> io::Result<bool>) -> io::Result<Option<Self>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            if !lock(&file)? {
                return Ok(None);
            }
            let held = file.metadata()?;
            match std::fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(Self {
                        file,
                        path: path.to_path_buf(),
                    }));
                }
                // Removed (or replaced) while we waited: lock what is there now.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Turns an exclusive lock into a shared one (not atomically: another process may take
    /// the exclusive lock in between, as if this one had released it).
    pub fn downgrade(&self) -> io::Result<()> {
        self.file.lock_shared()
    }

    /// Removes the lock file, then releases it. Only for an exclusive holder.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }

    /// Keeps the lock until this process exits (for what a build uses until its very end,
    /// past the code that took it).
    pub fn keep_until_exit(self) {
        static KEPT: Mutex<Vec<FileLock>> = Mutex::new(Vec::new());
        KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(self);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn concurrent_atomic_writes_leave_one_whole_file_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..50 {
                        write_atomic(&path, &vec![i; 64 << 10]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 64 << 10);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "a mix of two writes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn exclusive_locks_serialize_read_modify_write() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, counter) = (dir.path().join("c.lock"), dir.path().join("c"));
        std::fs::write(&counter, "0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (lock, counter) = (lock.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let _held = FileLock::exclusive(&lock).unwrap();
                        let n: u32 = std::fs::read_to_string(&counter).unwrap().parse().unwrap();
                        write_atomic(&counter, (n + 1).to_string().as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "200");
        let shared = FileLock::shared(&lock).unwrap();
        let also = FileLock::shared(&lock).unwrap();
        assert!(FileLock::try_exclusive(&lock).unwrap().is_none());
        drop((shared, also));
        let exclusive = FileLock::try_exclusive(&lock).unwrap().unwrap();
        exclusive.downgrade().unwrap();
        let reader = FileLock::shared(&lock).unwrap();
        assert!(FileLock::try_exclusive(&lock).unwrap().is_none());
        drop((exclusive, reader));
    }

    #[test]
    fn an_interrupted_run_removes_its_own_temp_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!("{}abc", temp_prefix()));
        let theirs = dir.path().join(format!("{TEMP_PREFIX}1-abc"));
        let blob = dir.path().join("0123abcd");
        for f in [&mine, &theirs, &blob] {
            std::fs::write(f, "x").unwrap();
        }
        assert_eq!(remove_own_temp_files(dir.path()), 1);
        assert!(!mine.exists() && theirs.exists() && blob.exists());
    }

    #[test]
    fn a_lock_on_a_removed_lock_file_is_taken_again_on_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("entry.lock");
        let held = FileLock::exclusive(&lock).unwrap();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let got = FileLock::exclusive(&lock).unwrap();
                // The lock it holds is the one on the file at the path.
                let (a, b) = (
                    got.file.metadata().unwrap(),
                    std::fs::metadata(&lock).unwrap(),
                );
                assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        held.remove().unwrap();
        waiter.join().unwrap();
    }
}
