//! [`BlobStore`]: a content-addressed blob directory.
//!
//! The layout is the blob part of an OCI image layout (`<root>/blobs/sha256/<hex>`,
//! <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>), so a store
//! directory can double as an OCI layout.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kiln_oci::{Digest, Sha256Writer};
use tempfile::TempPath;

use crate::{LayerError, TEMP_PREFIX};

/// A directory of blobs named by their sha256 digest.
///
/// Blobs are written to a temporary file (`.tmp-*`) in the blob directory, synced, and
/// renamed to their digest only when complete, so a blob under its final name is always
/// whole, even after a crash or a `SIGKILL` mid-write (RELIABILITY.md W10). Two processes
/// writing the same blob at once both succeed: each renames its own complete copy, and
/// the second atomically replaces the first with the same bytes. Temporary files that a
/// killed process left behind are removed by [`open`](Self::open) once they are a day old
/// (a live writer's file is younger: every write touches it). What is already there may
/// have rotted since (a bit flip, a truncation, an edit): [`check`] hashes a blob before
/// it is handed out, once per store and process, and removes one that does not match its
/// name (RELIABILITY.md W09).
///
/// [`check`]: BlobStore::check
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    dir: PathBuf,
    /// Digests (hex) whose blob this process wrote or hashed, shared by clones.
    pub(crate) verified: Arc<Mutex<HashSet<String>>>,
    /// The `stat`s blobs had when last hashed ([`BlobStore::check_stamped`]), read once.
    pub(crate) stamps:
        Arc<std::sync::OnceLock<std::collections::HashMap<String, crate::FileStamp>>>,
}

/// What [`BlobStore::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCheck {
    /// The store has no such blob.
    Missing,
    /// The blob's bytes hash to its digest.
    Verified,
    /// The blob's bytes did not hash to its digest; it was removed from the store.
    Discarded,
}

/// How old a temporary file must be before [`BlobStore::open`] takes it for the leftover
/// of a killed writer.
const STALE_TEMP: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a reused blob's modification time is moved to now ([`BlobStore::mark_used`]).
const MARK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl BlobStore {
    /// Opens the store at `root`, creating `root/blobs/sha256` if needed, and removes
    /// temporary files left there by writers that died more than a day ago.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LayerError> {
        let root = root.into();
        let dir = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).map_err(|source| LayerError::Store {
            path: root.clone(),
            source,
        })?;
        remove_stale_temps(&dir, STALE_TEMP);
        Ok(Self {
            root,
            dir,
            verified: Arc::default(),
            stamps: Arc::default(),
        })
    }

    /// Returns whether the blob `d` is in the store with the bytes its digest names,
    /// hashing it the first time this store (or a clone) is asked. A blob that does not
    /// match is removed, so it is never written out or pushed; the caller rebuilds or
    /// re-fetches it.
    pub fn check(&self, d: &Digest) -> Result<BlobCheck, LayerError> {
        let hex = d.hex().to_owned();
        let path = self.dir.join(&hex);
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&hex);
        if known && path.is_file() {
            return Ok(BlobCheck::Verified);
        }
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BlobCheck::Missing),
            Err(source) => return Err(LayerError::Store { path, source }),
        };
        let mut hasher = Sha256Writer::new(io::sink());
        // Large reads: a layer of hundreds of megabytes in 8 KiB reads spends more time in
        // system calls than in hashing.
        let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
        io::copy(&mut reader, &mut hasher).map_err(|source| LayerError::Store {
            path: path.clone(),
            source,
        })?;
        if hasher.finish().0 == *d {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(hex);
            return Ok(BlobCheck::Verified);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(BlobCheck::Discarded),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BlobCheck::Discarded),
            Err(source) => Err(LayerError::Store { path, source }),
        }
    }

    /// Returns the store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the directory blobs live in, `<root>/blobs/sha256`.
    pub fn blob_dir(&self) -> &Path {
        &self.dir
    }

    /// Returns where the blob `d` lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// Marks the blob `d` as used now (its modification time), so that `kiln cache prune`'s
    /// age policy sees a reused blob as recent. Best effort: a blob that cannot be marked
    /// only looks older. A blob marked within the last hour is left alone: every mark moves
    /// the file's ctime, which makes a caller that knows blobs by their `stat` hash it again.
    pub fn mark_used(&self, d: &Digest) {
        let now = std::time::SystemTime::now();
        let Ok(file) = File::open(self.path(d)) else {
            return;
        };
        let recent = file
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age < MARK_EVERY));
        if !recent {
            let _ = file.set_modified(now);
        }
    }

    /// Returns whether the blob `d` is in the store.
    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, LayerError> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|e| self.write_err(e))?;
        Ok(w.commit()?.0)
    }

    /// Returns a writer for a blob whose digest is not known yet.
    pub fn writer(&self) -> Result<BlobWriter, LayerError> {
        let temp = tempfile::Builder::new()
            .prefix(&crate::temp_prefix())
            .tempfile_in(&self.dir)
            .map_err(|e| self.write_err(e))?;
        let (file, path) = temp.into_parts();
        Ok(BlobWriter {
            file: Sha256Writer::new(BufWriter::with_capacity(128 * 1024, file)),
            temp: path,
            dir: self.dir.clone(),
            verified: self.verified.clone(),
        })
    }

    fn write_err(&self, source: io::Error) -> LayerError {
        LayerError::Write {
            path: self.dir.clone(),
            source,
        }
    }
}

/// Removes the temporary files in `dir` last modified more than `age` ago. Best effort: a
/// store that cannot be tidied still works.
fn remove_stale_temps(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A blob being written: a temporary file, hashed as it is written.
///
/// Dropping it without [`commit`](Self::commit) deletes the temporary file.
pub struct BlobWriter {
    file: Sha256Writer<BufWriter<File>>,
    temp: TempPath,
    dir: PathBuf,
    pub(crate) verified: Arc<Mutex<HashSet<String>>>,
}

impl BlobWriter {
    /// Syncs the blob, renames it to its digest path and returns its digest and size. An
    /// existing blob with that digest (written meanwhile by another process, or rotten)
    /// is replaced atomically by these bytes, which are known to match the digest.
    pub fn commit(self) -> Result<(Digest, u64), LayerError> {
        let err = |source: io::Error| LayerError::Write {
            path: self.dir.clone(),
            source,
        };
        let (digest, size, buf) = self.file.finish();
        let file = buf.into_inner().map_err(|e| err(e.into_error()))?;
        // Durable before visible: after a crash a blob under its digest name is whole.
        file.sync_all().map_err(err)?;
        drop(file);
        let dest = self.dir.join(digest.hex());
        self.temp.persist(&dest).map_err(|e| err(e.error))?;
        // Hashed as it was written: what is under its name is known good.
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.hex().to_owned());
        Ok((digest, size))
    }

    /// Returns the temporary file's path (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp", &self.temp)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn put_bytes_is_content_addressed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let d = store.put_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(store.contains(&d));
        assert_eq!(std::fs::read(store.path(&d)).unwrap(), b"hello");
        assert_eq!(
            store.path(&d),
            tmp.path().join("store/blobs/sha256").join(d.hex())
        );
        assert_eq!(store.put_bytes(b"hello").unwrap(), d, "idempotent");
        assert_eq!(names(&tmp.path().join("store/blobs/sha256")), [d.hex()]);
    }

    /// W09: a blob whose bytes changed since it was written is found out and removed the
    /// first time a store asks, a truncated one too; a good one is hashed once.
    #[test]
    fn w09_check_verifies_and_discards_rotten_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let good = store.put_bytes(b"good bytes").unwrap();
        let flipped = store.put_bytes(b"flip one byte").unwrap();
        let cut = store.put_bytes(b"truncate me").unwrap();
        assert_eq!(store.check(&good).unwrap(), BlobCheck::Verified);
        assert_eq!(
            store.check(&Digest::of(b"never stored")).unwrap(),
            BlobCheck::Missing
        );
        std::fs::write(store.path(&flipped), b"flip one bytf").unwrap();
        std::fs::write(store.path(&cut), b"trunc").unwrap();
        // Another process (a later build) knows nothing of what this one wrote.
        let later = BlobStore::open(tmp.path()).unwrap();
        assert_eq!(later.check(&good).unwrap(), BlobCheck::Verified);
        for rotten in [&flipped, &cut] {
            assert_eq!(later.check(rotten).unwrap(), BlobCheck::Discarded);
            assert!(
                !later.contains(rotten),
                "a rotten blob stays out of the store"
            );
            assert_eq!(later.check(rotten).unwrap(), BlobCheck::Missing);
        }
        // Once verified, a blob is not hashed again by this store (nor its clones).
        std::fs::write(later.path(&good), b"good bytez").unwrap();
        assert_eq!(later.clone().check(&good).unwrap(), BlobCheck::Verified);
    }

    /// W10: a killed writer's temporary file is removed by a later `open` once stale,
    /// never while young (it may be a live writer's), and never a blob.
    #[test]
    fn w10_open_removes_stale_temporary_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let d = store.put_bytes(b"kept").unwrap();
        let dir = store.blob_dir().to_path_buf();
        for name in [".tmp-old", ".tmp-young", "not-a-temp"] {
            std::fs::write(dir.join(name), b"partial").unwrap();
        }
        let old = SystemTime::now() - STALE_TEMP - Duration::from_secs(60);
        for name in [".tmp-old", "not-a-temp"] {
            let f = File::options().write(true).open(dir.join(name)).unwrap();
            f.set_modified(old).unwrap();
        }
        let mut old_blob = File::options().write(true).open(store.path(&d)).unwrap();
        old_blob.set_modified(old).unwrap();
        old_blob.flush().unwrap();
        BlobStore::open(tmp.path()).unwrap();
        assert_eq!(names(&dir), [".tmp-young", d.hex(), "not-a-temp"]);
    }

    #[test]
    fn an_uncommitted_writer_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let dir = tmp.path().join("blobs/sha256");
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        let temp = w.temp_path().to_path_buf();
        assert!(temp.starts_with(&dir), "temp file lives next to the blobs");
        assert!(!store.contains(&Digest::of(b"partial")));
        drop(w);
        assert!(!temp.exists());
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
        let mut w = store.writer().unwrap();
        w.write_all(b"whole").unwrap();
        let (d, size) = w.commit().unwrap();
        assert_eq!((d.clone(), size), (Digest::of(b"whole"), 5));
        assert_eq!(names(&dir), [d.hex()]);
    }
}
