//! [`HashCache`]: content hashes of host files, remembered by their inode and times, so a
//! layer whose files did not change is fingerprinted from `stat` alone.
//!
//! A file is known by its device, inode, size, mtime and ctime. Any write to the file moves
//! its mtime and ctime, and userspace cannot set a ctime, so a file with the stamp it had
//! when it was hashed still holds those bytes. The one way around it is a change within the
//! same tick of a coarse file-system clock right after hashing (git's "racily clean"
//! entries): a racy file ([`FileStamp::is_racy`]) is hashed but not remembered.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::FileStamp;

const MAGIC: &[u8] = b"kiln file hashes v1\n";
const RECORD: usize = 8 * 7 + 32;

/// Hashes by device and inode, each with the stamp it was taken at.
type Known = HashMap<(u64, u64), (FileStamp, [u8; 32])>;

/// A persistent map of file stamps to content sha256s (see the module docs). Any number of
/// builds may read one file; each build should own the one it saves (kiln keeps one per
/// build scratch directory). Only the entries met since opening are saved, so the file
/// holds what the last build used and never grows past it.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    known: Known,
    used: Known,
    now: i64,
    hits: u64,
    misses: u64,
}

impl HashCache {
    /// Opens the cache saved at `path`; a missing or unreadable file is an empty cache.
    pub fn open(path: &Path) -> Self {
        let known = std::fs::read(path)
            .ok()
            .and_then(|bytes| parse(&bytes))
            .unwrap_or_default();
        Self {
            path: path.to_path_buf(),
            known,
            used: HashMap::new(),
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            hits: 0,
            misses: 0,
        }
    }

    /// Returns how many files were answered from the cache, and how many had to be read.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Returns the remembered hash of the file with `stamp`.
    pub(crate) fn get(&mut self, stamp: &FileStamp) -> Option<[u8; 32]> {
        let key = (stamp.dev(), stamp.ino());
        match self.known.get(&key) {
            Some((known, hash)) if known == stamp => {
                self.hits += 1;
                self.used.insert(key, (*stamp, *hash));
                Some(*hash)
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    /// Remembers `hash` for the file with `stamp`, unless it changed too recently to trust.
    pub(crate) fn put(&mut self, stamp: &FileStamp, hash: [u8; 32]) {
        if stamp.is_racy_at(self.now) {
            return;
        }
        self.used.insert((stamp.dev(), stamp.ino()), (*stamp, hash));
    }

    /// Writes the entries met since opening (through a temp file and a rename). Failing
    /// to save only costs reading the files again next time.
    pub fn save(&self) -> io::Result<()> {
        let unchanged = self.used.len() == self.known.len()
            && self.used.iter().all(|(k, v)| self.known.get(k) == Some(v));
        if unchanged {
            return Ok(());
        }
        let mut out = Vec::with_capacity(MAGIC.len() + self.used.len() * RECORD);
        out.extend_from_slice(MAGIC);
        for (stamp, hash) in self.used.values() {
            for n in stamp.0 {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(hash);
        }
        crate::write_atomic(&self.path, &out)
    }
}

fn parse(bytes: &[u8]) -> Option<Known> {
    let body = bytes.strip_prefix(MAGIC)?;
    if body.len() % RECORD != 0 {
        return None;
    }
    Some(
        body.chunks_exact(RECORD)
            .map(|r| {
                let mut stamp = FileStamp([0; 7]);
                for (i, n) in stamp.0.iter_mut().enumerate() {
                    *n = i64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap_or_default());
                }
                let hash: [u8; 32] = r[56..].try_into().unwrap_or_default();
                ((stamp.dev(), stamp.ino()), (stamp, hash))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compression, LayerContents, Ownership, TarPolicy};

    const POLICY: TarPolicy = TarPolicy {
        mtime: 1,
        owner: Ownership { uid: 0, gid: 0 },
    };

    fn contents(dir: &Path) -> LayerContents {
        let mut c = LayerContents::new();
        c.add_tree(dir, "workspace").unwrap();
        c
    }

    /// Opens the cache at `path` as if every file were old enough to trust.
    fn trusting(path: &Path) -> HashCache {
        let mut cache = HashCache::open(path);
        cache.now = i64::MAX / 2;
        cache
    }

    /// Unchanged files are known by their stat (same fingerprint, none read); a file
    /// rewritten with other bytes of the same size is read again and changes it.
    #[test]
    fn unchanged_files_are_not_read_and_changed_ones_are() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("a.js"), "aaaa").unwrap();
        std::fs::write(dir.join("lib/b.js"), "bbbb").unwrap();
        let path = tmp.path().join("hashes");
        let plain = contents(&dir)
            .fingerprint(&POLICY, Compression::Gzip)
            .unwrap();

        let mut cache = trusting(&path);
        let first = contents(&dir)
            .fingerprint_with(&POLICY, Compression::Gzip, Some(&mut cache))
            .unwrap();
        assert_eq!(first, plain);
        assert_eq!(cache.counts(), (0, 2));
        cache.save().unwrap();

        let mut cache = trusting(&path);
        let second = contents(&dir)
            .fingerprint_with(&POLICY, Compression::Gzip, Some(&mut cache))
            .unwrap();
        assert_eq!((second, cache.counts()), (plain.clone(), (2, 0)));

        std::fs::write(dir.join("lib/b.js"), "BBBB").unwrap();
        let mut cache = trusting(&path);
        let third = contents(&dir)
            .fingerprint_with(&POLICY, Compression::Gzip, Some(&mut cache))
            .unwrap();
        assert_eq!(cache.counts(), (1, 1));
        assert_ne!(third, plain);
        assert_eq!(
            third,
            contents(&dir)
                .fingerprint(&POLICY, Compression::Gzip)
                .unwrap()
        );
    }

    /// Files changed within the racy window are hashed but not remembered.
    #[test]
    fn recently_changed_files_are_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.js"), "a").unwrap();
        let path = tmp.path().join("hashes");
        let mut cache = HashCache::open(&path);
        contents(&dir)
            .fingerprint_with(&POLICY, Compression::Gzip, Some(&mut cache))
            .unwrap();
        cache.save().unwrap();
        let mut cache = trusting(&path);
        contents(&dir)
            .fingerprint_with(&POLICY, Compression::Gzip, Some(&mut cache))
            .unwrap();
        assert_eq!(cache.counts(), (0, 1));
    }
}
