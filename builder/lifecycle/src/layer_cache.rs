//! The layer reuse index: maps a layer's input fingerprint to the blob written for it, so an
//! unchanged layer is never re-tarred or re-compressed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_layer::{BlobStore, LayerBlob};
use kiln_oci::Digest;

/// A JSON file of fingerprint → [`LayerBlob`], trusted only while the blob is still in the store.
pub struct LayerCache {
    path: PathBuf,
    entries: BTreeMap<String, LayerBlob>,
}

impl LayerCache {
    /// Opens the index at `path`; a missing or unreadable index is an empty one (it is a cache).
    pub fn open(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path: path.to_path_buf(),
            entries,
        }
    }

    /// Returns the blob recorded for `fingerprint` if the store still has it.
    pub fn get(&self, fingerprint: &Digest, store: &BlobStore) -> Option<LayerBlob> {
        self.entries
            .get(fingerprint.hex())
            .filter(|b| store.contains(&b.digest))
            .cloned()
    }

    /// Records `blob` for `fingerprint`.
    pub fn insert(&mut self, fingerprint: &Digest, blob: LayerBlob) {
        self.entries.insert(fingerprint.hex().to_string(), blob);
    }

    /// Writes the index back (temp file + rename). Failing to save only costs a future re-tar.
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.entries)?)?;
        std::fs::rename(tmp, &self.path)
    }
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
        assert_eq!(cache.get(&fa, &store), None);
        cache.insert(&fa, a.clone());
        cache.insert(&fb, b.clone());
        cache.save().unwrap();

        let reopened = LayerCache::open(&path);
        assert_eq!(reopened.get(&fa, &store), Some(a));
        assert_eq!(reopened.get(&fb, &store), Some(b.clone()));

        std::fs::remove_file(store.path(&b.digest)).unwrap();
        assert_eq!(reopened.get(&fb, &store), None);
        assert!(reopened.get(&fa, &store).is_some());
    }

    #[test]
    fn unreadable_index_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let path = tmp.path().join("layers.json");
        std::fs::write(&path, b"{not json").unwrap();
        let mut cache = LayerCache::open(&path);
        assert_eq!(cache.get(&Digest::of(b"x"), &store), None);
        cache.insert(&Digest::of(b"x"), blob(&store, b"x"));
        cache.save().unwrap();
        assert!(
            LayerCache::open(&path)
                .get(&Digest::of(b"x"), &store)
                .is_some()
        );
    }
}
