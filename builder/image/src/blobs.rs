use std::path::PathBuf;

use kiln_layer::BlobStore;
use kiln_oci::Digest;
use kiln_registry::Client;

use crate::{ImageError, Layer, Origin};

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

    /// Returns the path of `layer`'s blob in the store, fetching and verifying it first if
    /// it is only in a registry.
    pub async fn local_path(&self, layer: &Layer) -> Result<PathBuf, ImageError> {
        let path = self.store.path(&layer.digest);
        if self.store.contains(&layer.digest) {
            return Ok(path);
        }
        match (&layer.origin, &self.client) {
            (Origin::Remote(repo), Some(client)) => {
                client
                    .get_blob_to_file(repo, &layer.digest, Some(layer.size), &path)
                    .await?;
                Ok(path)
            }
            _ => Err(ImageError::MissingBlob(layer.digest.clone())),
        }
    }

    /// Writes `bytes` into the store and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        Ok(self.store.put_bytes(bytes)?)
    }
}
