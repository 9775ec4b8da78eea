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
