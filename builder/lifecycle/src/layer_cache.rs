//! The layer reuse index: maps a layer's input fingerprint to the blob written for it, so an
//! unchanged layer is never re-tarred or re-compressed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_layer::{BlobCheck, BlobStore, LayerBlob};
use kiln_oci::Digest;

/// What the index knows of a layer's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reuse {
    /// The blob written for it is in the store, verified: reuse it.
    Hit(LayerBlob),
    /// Nothing recorded, or the blob is gone: write the layer.
    Miss,
    /// The blob recorded for it no longer hashed to its digest and was removed from the
    /// store (RELIABILITY.md W09): write the layer again, and say so.
    Discarded(LayerBlob),
}

impl Reuse {
    /// Returns the blob to reuse, if any.
    pub fn hit(self) -> Option<LayerBlob> {
        match self {
            Self::Hit(blob) => Some(blob),
            _ => None,
        }
    }
}

/// A JSON file of fingerprint → [`LayerBlob`], trusted only while the blob is in the store
/// with the bytes its digest names. Any number of builds may share one: [`LayerCache::save`]
/// merges what this one added into what the file holds by then.
pub struct LayerCache {
    path: PathBuf,
    entries: BTreeMap<String, LayerBlob>,
    added: BTreeMap<String, LayerBlob>,
}

impl LayerCache {
    /// Opens the index at `path`; a missing or unreadable index is an empty one (it is a cache).
    pub fn open(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            entries: read_entries(path),
            added: BTreeMap::new(),
        }
    }

    /// Returns whether the blob recorded for `fingerprint` can be reused: it must still be
    /// in the store and hash to its digest ([`BlobStore::check_stamped`]: not hashed again
    /// while its file is untouched since it last was; a store that cannot be read counts as
    /// a miss, so the layer is written again).
    pub fn get(&self, fingerprint: &Digest, store: &BlobStore) -> Reuse {
        let Some(blob) = self.entries.get(fingerprint.hex()) else {
            return Reuse::Miss;
        };
        match store.check_stamped(&blob.digest) {
            Ok(BlobCheck::Verified) => {
                store.mark_used(&blob.digest);
                Reuse::Hit(blob.clone())
            }
            Ok(BlobCheck::Discarded) => Reuse::Discarded(blob.clone()),
            Ok(BlobCheck::Missing) | Err(_) => Reuse::Miss,
        }
    }

    /// Records `blob` for `fingerprint`.
    pub fn insert(&mut self, fingerprint: &Digest, blob: LayerBlob) {
        let key = fingerprint.hex().to_string();
        self.entries.insert(key.clone(), blob.clone());
        self.added.insert(key, blob);
    }

    /// Writes what this build added into the index file: under a lock, over what the file
    /// holds by now (other builds may have saved since this one opened it), through a temp
    /// file and a rename. Failing to save only costs a future re-tar.
    pub fn save(&self) -> std::io::Result<()> {
        if self.added.is_empty() {
            return Ok(());
        }
        let _held = kiln_layer::FileLock::exclusive(&self.path.with_extension("lock"))?;
        let mut entries = read_entries(&self.path);
        entries.extend(self.added.clone());
        kiln_layer::write_atomic(&self.path, &serde_json::to_vec(&entries)?)
    }
}

/// Returns the entries (fingerprint → blob) of the index file at `path`.
pub fn layer_cache_entries(path: &Path) -> BTreeMap<String, LayerBlob> {
    read_entries(path)
}

/// Removes the entries of the index file at `path` whose fingerprints `drop` names, under
/// its lock; returns how many went.
pub fn remove_layer_cache_entries(
    path: &Path,
    drop: &std::collections::BTreeSet<String>,
) -> std::io::Result<usize> {
    let _held = kiln_layer::FileLock::exclusive(&path.with_extension("lock"))?;
    let mut entries = read_entries(path);
    let before = entries.len();
    entries.retain(|key, _| !drop.contains(key));
    if entries.len() != before {
        kiln_layer::write_atomic(path, &serde_json::to_vec(&entries)?)?;
    }
    Ok(before - entries.len())
}

/// Returns the entries of the index file; a missing or unreadable one is empty (a cache).
fn read_entries(path: &Path) -> BTreeMap<String, LayerBlob> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use kiln_layer::{Compression, LayerContents, Ownership, TarPolicy};

    use super::*;

    fn blob(store: &BlobStore, content: &[u8]) -> LayerBlob {
        let mut c = LayerContents::new();
        c.add_file("f", content.to_vec(), 0o644, None);
        let policy = TarPolicy {
            mtime: 1,
            owner: Ownership::new(0, 0),
        };
        kiln_layer::write_layer(&c, &policy, Compression::Gzip, store).unwrap()
    }

    #[test]
    fn survives_save_and_open_and_ignores_vanished_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let (a, b) = (blob(&store, b"a"), blob(&store, b"b"));
        let (fa, fb) = (Digest::of(b"fa"), Digest::of(b"fb"));
        let path = tmp.path().join("cache/dir/layers.json");
        let mut cache = LayerCache::open(&path);
        assert_eq!(cache.get(&fa, &store), Reuse::Miss);
        cache.insert(&fa, a.clone());
        cache.insert(&fb, b.clone());
        cache.save().unwrap();

        let reopened = LayerCache::open(&path);
        assert_eq!(reopened.get(&fa, &store), Reuse::Hit(a.clone()));
        assert_eq!(reopened.get(&fb, &store), Reuse::Hit(b.clone()));

        std::fs::remove_file(store.path(&b.digest)).unwrap();
        assert_eq!(reopened.get(&fb, &store), Reuse::Miss);
        assert!(reopened.get(&fa, &store).hit().is_some());
    }

    /// W09: a recorded blob whose bytes rotted is not reused: it is removed from the store
    /// and reported, so the layer is written again.
    #[test]
    fn w09_a_rotten_blob_is_discarded_not_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let a = blob(&store, b"a");
        let fa = Digest::of(b"fa");
        let mut cache = LayerCache::open(&tmp.path().join("layers.json"));
        cache.insert(&fa, a.clone());
        let mut bytes = std::fs::read(store.path(&a.digest)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(store.path(&a.digest), bytes).unwrap();
        let later = BlobStore::open(tmp.path().join("store")).unwrap();
        assert_eq!(cache.get(&fa, &later), Reuse::Discarded(a.clone()));
        assert!(!later.contains(&a.digest));
        assert_eq!(cache.get(&fa, &later), Reuse::Miss);
    }

    #[test]
    fn builds_saving_one_index_keep_each_others_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let path = tmp.path().join("layers.json");
        let (a, b) = (blob(&store, b"a"), blob(&store, b"b"));
        let (fa, fb) = (Digest::of(b"fa"), Digest::of(b"fb"));
        let mut first = LayerCache::open(&path);
        let mut second = LayerCache::open(&path);
        first.insert(&fa, a.clone());
        second.insert(&fb, b.clone());
        first.save().unwrap();
        second.save().unwrap();
        let merged = LayerCache::open(&path);
        assert_eq!(merged.get(&fa, &store), Reuse::Hit(a));
        assert_eq!(merged.get(&fb, &store), Reuse::Hit(b));
    }

    #[test]
    fn unreadable_index_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let path = tmp.path().join("layers.json");
        std::fs::write(&path, b"{not json").unwrap();
        let mut cache = LayerCache::open(&path);
        assert_eq!(cache.get(&Digest::of(b"x"), &store), Reuse::Miss);
        cache.insert(&Digest::of(b"x"), blob(&store, b"x"));
        cache.save().unwrap();
        assert!(
            LayerCache::open(&path)
                .get(&Digest::of(b"x"), &store)
                .hit()
                .is_some()
        );
    }
}
