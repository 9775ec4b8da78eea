use std::path::PathBuf;

use kiln_layer::{BlobCheck, BlobStore};
use kiln_oci::Digest;
use kiln_registry::Client;

use kiln_model::{Layer, Origin};

use crate::ImageError;

/// Resolves layer blobs to local files: the blob store, filled from the registry on demand.
#[derive(Clone)]
pub struct Blobs {
    store: std::sync::Arc<BlobStore>,
    client: Option<Client>,
}

impl Blobs {
    /// Returns a resolver over `store` that fetches missing remote blobs with `client`.
    pub fn new(store: BlobStore, client: Option<Client>) -> Self {
        Self {
            store: std::sync::Arc::new(store),
            client,
        }
    }

    /// Returns the local blob store.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Returns the registry client, if any.
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    /// Returns the path of `layer`'s blob in the store, verified: hashed once per store
    /// and process before it is handed out (to a layout, an archive, a push), fetched (and
    /// verified as it downloads) when only a registry has it. A stored blob that no longer
    /// matches its digest is removed and fetched again, or, when no registry has it, is an
    /// [`ImageError::CorruptBlob`]: it is never written out or pushed (RELIABILITY.md W09).
    pub async fn local_path(&self, layer: &Layer) -> Result<PathBuf, ImageError> {
        let path = self.store.path(&layer.digest);
        let store = self.store.clone();
        let digest = layer.digest.clone();
        let check = tokio::task::spawn_blocking(move || store.check(&digest))
            .await
            .map_err(|source| ImageError::TaskFailed {
                doing: format!("checking the stored blob `{}`", layer.digest),
                source,
            })??;
        let discarded = match check {
            BlobCheck::Verified => return Ok(path),
            BlobCheck::Discarded => {
                tracing::warn!(digest = %layer.digest, "a stored blob did not match its digest; removed it");
                true
            }
            BlobCheck::Missing => false,
        };
        match (&layer.origin, &self.client) {
            (Origin::Remote(repo), Some(client)) => {
                client
                    .get_blob_to_file(repo, &layer.digest, Some(layer.size), &path)
                    .await?;
                Ok(path)
            }
            _ if discarded => Err(ImageError::CorruptBlob(layer.digest.clone())),
            _ => Err(ImageError::MissingBlob(layer.digest.clone())),
        }
    }

    /// Writes `bytes` into the store and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        Ok(self.store.put_bytes(bytes)?)
    }
}
