//! [`BlobStore::check_stamped`]: a blob known good by its file's `stat`.
//!
//! Hashing every stored layer a build reuses (a base of a hundred megabytes, a static-assets
//! layer of hundreds) would cost what reuse saves. After a blob hashes to its digest, its
//! file's `stat` (device, inode, size, mtime, ctime) is appended to `kiln-blob-stamps` at the
//! store's root; while the file still has that `stat`, nothing wrote to it or replaced it
//! (userspace cannot set a ctime), and it is not hashed again. A file changed within the
//! racy window (see [`crate::HashCache`]) is not recorded. Lines are appended whole
//! (`O_APPEND`, one short write each), so builds sharing the store never tear each other's;
//! the last line for a digest wins.
//!
//! What this skips is the check before reuse; wherever bytes leave kiln (a push, a layout,
//! an archive) the caller still uses [`BlobStore::check`], which hashes once per process.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use kiln_oci::Digest;

use crate::{BlobCheck, BlobStore, FileStamp, LayerError};

/// The file of stamps, at the store's root.
const STAMPS: &str = "kiln-blob-stamps";

impl BlobStore {
    /// Returns whether the blob `d` is in the store with the bytes its digest names, like
    /// [`check`](Self::check), without hashing it when its file's `stat` is the one recorded
    /// the last time it was hashed (see the module docs).
    pub fn check_stamped(&self, d: &Digest) -> Result<BlobCheck, LayerError> {
        let path = self.path(d);
        let Some(now) = FileStamp::read(&path) else {
            return self.check(d);
        };
        if self.stamps().get(d.hex()) == Some(&now) {
            return Ok(BlobCheck::Verified);
        }
        let found = self.check(d)?;
        if found == BlobCheck::Verified && !now.is_racy() {
            self.record(d, &now);
        }
        Ok(found)
    }

    /// Returns the recorded stamps, read once per store (and its clones).
    fn stamps(&self) -> &HashMap<String, FileStamp> {
        self.stamps.get_or_init(|| {
            let path = self.root().join(STAMPS);
            let (stamps, lines) = read_stamps(&path);
            // Re-hashed blobs append again: keep the file near one line per blob. A line
            // another build appends meanwhile may be lost, which costs one hash.
            if lines > 4 * stamps.len() + 64 {
                let mut text = String::new();
                for (hex, stamp) in &stamps {
                    text.push_str(&line(hex, stamp));
                }
                let _ = crate::write_atomic(&path, text.as_bytes());
            }
            stamps
        })
    }

    /// Appends `stamp` for `d`. Best effort: failing only costs hashing it next time.
    fn record(&self, d: &Digest, stamp: &FileStamp) {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join(STAMPS))
            .and_then(|mut f| f.write_all(line(d.hex(), stamp).as_bytes()));
    }
}

/// Returns the line recording `stamp` for the blob `hex`.
fn line(hex: &str, stamp: &FileStamp) -> String {
    let mut line = hex.to_owned();
    for n in stamp.0 {
        line.push(' ');
        line.push_str(&n.to_string());
    }
    line.push('\n');
    line
}

/// Returns the stamps recorded in `path` (the last line for a digest wins) and how many
/// lines it has.
fn read_stamps(path: &Path) -> (HashMap<String, FileStamp>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let stamps = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let hex = words.next()?;
            let mut stamp = FileStamp([0; 7]);
            for n in &mut stamp.0 {
                *n = words.next()?.parse().ok()?;
            }
            (hex.len() == 64 && words.next().is_none()).then(|| (hex.to_owned(), stamp))
        })
        .collect();
    (stamps, text.lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W09: a blob recorded with its file's stat is trusted without hashing, and only for
    /// reuse (a sink's `check` still hashes it); a replaced file is hashed and discarded.
    #[test]
    fn w09_a_stamped_blob_is_trusted_until_its_file_is_touched() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let d = store.put_bytes(b"layer bytes").unwrap();
        let path = store.path(&d);
        store.record(&d, &FileStamp::read(&path).unwrap());

        let later = BlobStore::open(tmp.path()).unwrap();
        assert_eq!(later.check_stamped(&d).unwrap(), BlobCheck::Verified);
        assert!(
            !later.verified.lock().unwrap().contains(d.hex()),
            "trusted by stamp, not hashed: a sink must still hash it"
        );

        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"layer bytez").unwrap();
        let after_flip = BlobStore::open(tmp.path()).unwrap();
        assert_eq!(after_flip.check_stamped(&d).unwrap(), BlobCheck::Discarded);
        assert!(!path.exists());
    }

    #[test]
    fn the_last_line_for_a_digest_wins_and_bad_lines_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(STAMPS);
        let hex = "a".repeat(64);
        std::fs::write(
            &path,
            format!("{hex} 1 2 3 4 5 6 7\nbroken line\n{hex} 1 2 3 4 5 6 8\nshort 1 2\n"),
        )
        .unwrap();
        let (stamps, lines) = read_stamps(&path);
        assert_eq!((stamps.len(), lines), (1, 4));
        assert_eq!(stamps[&hex], FileStamp([1, 2, 3, 4, 5, 6, 8]));
    }
}
