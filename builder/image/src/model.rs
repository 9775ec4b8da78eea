use kiln_oci::spec::{
    Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
};
use kiln_oci::{Digest, Reference, canonical_json, descriptor, media_types};

use crate::ImageError;

/// Where a layer's compressed blob can be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// In the local blob store.
    Local,
    /// In this registry repository (tag or digest part ignored), to be mounted or fetched.
    Remote(Reference),
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The blob's media type (always an OCI layer type once in a kiln image).
    pub media_type: String,
    /// The digest of the compressed blob.
    pub digest: Digest,
    /// The compressed size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Where the blob is.
    pub origin: Origin,
}

impl Layer {
    /// Returns the manifest descriptor of this layer.
    pub fn descriptor(&self) -> Descriptor {
        descriptor(&self.media_type, self.size, &self.digest)
    }
}

/// An image being assembled: config plus layers, bottom first.
///
/// The config's `rootfs.diff_ids` is rewritten from `layers` when the image is finalized,
/// so callers only manage the layer list.
#[derive(Clone, Debug)]
pub struct Image {
    /// The image config.
    pub config: ImageConfiguration,
    /// The layers, base layer first.
    pub layers: Vec<Layer>,
}

/// An image with its config and manifest serialized canonically and hashed.
#[derive(Clone, Debug)]
pub struct FinalImage {
    /// The layers, base layer first.
    pub layers: Vec<Layer>,
    /// Canonical config JSON.
    pub config_bytes: Vec<u8>,
    /// Digest of `config_bytes`.
    pub config_digest: Digest,
    /// Canonical manifest JSON.
    pub manifest_bytes: Vec<u8>,
    /// Digest of `manifest_bytes`: the image digest.
    pub manifest_digest: Digest,
}

impl Image {
    /// Serializes config and manifest canonically and returns the finished image.
    pub fn finalize(&self) -> Result<FinalImage, ImageError> {
        let mut config = self.config.clone();
        let diff_ids = self.layers.iter().map(|l| l.diff_id.to_string()).collect();
        config.rootfs_mut().set_diff_ids(diff_ids);
        let config_bytes = canonical_json(&config)
            .map_err(|e| ImageError::Unsupported(format!("serializing image config: {e}")))?;
        let config_digest = Digest::of(&config_bytes);
        let manifest: ImageManifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(
                media_types::OCI_CONFIG,
                config_bytes.len() as u64,
                &config_digest,
            ))
            .layers(
                self.layers
                    .iter()
                    .map(Layer::descriptor)
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(|e| ImageError::Unsupported(format!("building manifest: {e}")))?;
        let manifest_bytes = canonical_json(&manifest)
            .map_err(|e| ImageError::Unsupported(format!("serializing manifest: {e}")))?;
        let manifest_digest = Digest::of(&manifest_bytes);
        Ok(FinalImage {
            layers: self.layers.clone(),
            config_bytes,
            config_digest,
            manifest_bytes,
            manifest_digest,
        })
    }
}

/// Maps a docker layer media type to its OCI equivalent (the bytes are the same).
pub(crate) fn oci_layer_type(media_type: &str) -> Result<String, ImageError> {
    match media_type {
        media_types::OCI_LAYER_GZIP | media_types::DOCKER_LAYER_GZIP => {
            Ok(media_types::OCI_LAYER_GZIP.to_string())
        }
        media_types::OCI_LAYER_ZSTD => Ok(media_types::OCI_LAYER_ZSTD.to_string()),
        media_types::OCI_LAYER_TAR => Ok(media_types::OCI_LAYER_TAR.to_string()),
        other => Err(ImageError::Unsupported(format!(
            "layer media type `{other}` is not supported; kiln reads OCI and docker tar, tar+gzip and tar+zstd layers"
        ))),
    }
}
