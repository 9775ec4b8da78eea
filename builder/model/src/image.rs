//! One image: a config and layers, and its finished form (canonical config and manifest,
//! hashed).

use kiln_oci::spec::{
    Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
};
use kiln_oci::{Digest, Reference, canonical_json, descriptor, media_types};

use crate::ModelError;

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
    pub fn finalize(&self) -> Result<FinalImage, ModelError> {
        let mut config = self.config.clone();
        let diff_ids = self.layers.iter().map(|l| l.diff_id.to_string()).collect();
        config.rootfs_mut().set_diff_ids(diff_ids);
        let config_bytes = canonical_json(&config).map_err(|source| ModelError::Serialize {
            what: "image config",
            source,
        })?;
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
            .map_err(|source| ModelError::Manifest { source })?;
        let manifest_bytes = canonical_json(&manifest).map_err(|source| ModelError::Serialize {
            what: "manifest",
            source,
        })?;
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
pub fn oci_layer_type(media_type: &str) -> Result<String, ModelError> {
    match media_type {
        media_types::OCI_LAYER_GZIP | media_types::DOCKER_LAYER_GZIP => {
            Ok(media_types::OCI_LAYER_GZIP.to_string())
        }
        media_types::OCI_LAYER_ZSTD => Ok(media_types::OCI_LAYER_ZSTD.to_string()),
        media_types::OCI_LAYER_TAR => Ok(media_types::OCI_LAYER_TAR.to_string()),
        other => Err(ModelError::LayerMediaType {
            media_type: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use kiln_oci::spec::{ConfigBuilder, ImageConfigurationBuilder, RootFsBuilder};
    use serde_json::Value;

    use super::*;

    fn layer(n: u8, media_type: &str) -> Layer {
        Layer {
            media_type: media_type.to_string(),
            digest: Digest::of(&[n, 1]),
            size: 100 + u64::from(n),
            diff_id: Digest::of(&[n, 2]),
            origin: Origin::Local,
        }
    }

    fn image() -> Image {
        let config = ImageConfigurationBuilder::default()
            .architecture(kiln_oci::spec::Arch::Amd64)
            .os(kiln_oci::spec::Os::Linux)
            .config(
                ConfigBuilder::default()
                    .env(vec!["PATH=/bin".to_string()])
                    .entrypoint(vec!["/app".to_string()])
                    .build()
                    .unwrap(),
            )
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    // Stale: finalize must replace these with the layers' diffIDs.
                    .diff_ids(vec![Digest::of(b"stale").to_string()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        Image {
            config,
            layers: vec![
                layer(1, media_types::OCI_LAYER_GZIP),
                layer(2, media_types::OCI_LAYER_ZSTD),
            ],
        }
    }

    /// Returns whether `bytes` are exactly the canonical form of the JSON they hold.
    fn is_canonical(bytes: &[u8]) -> bool {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        canonical_json(&v).unwrap() == bytes
    }

    #[test]
    fn finalize_rewrites_diff_ids_and_hashes_canonical_json() {
        let img = image();
        let fin = img.finalize().unwrap();
        assert!(is_canonical(&fin.config_bytes));
        assert!(is_canonical(&fin.manifest_bytes));
        assert!(!fin.manifest_bytes.contains(&b'\n'));
        assert_eq!(fin.config_digest, Digest::of(&fin.config_bytes));
        assert_eq!(fin.manifest_digest, Digest::of(&fin.manifest_bytes));
        assert_eq!(fin.layers, img.layers);

        let config: Value = serde_json::from_slice(&fin.config_bytes).unwrap();
        assert_eq!(
            config["rootfs"],
            serde_json::json!({
                "type": "layers",
                "diff_ids": [Digest::of(&[1, 2]).to_string(), Digest::of(&[2, 2]).to_string()],
            })
        );
        assert_eq!(config["config"]["Entrypoint"][0], "/app");

        let m: Value = serde_json::from_slice(&fin.manifest_bytes).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], media_types::OCI_MANIFEST);
        assert_eq!(m["config"]["mediaType"], media_types::OCI_CONFIG);
        assert_eq!(m["config"]["digest"], fin.config_digest.to_string());
        assert_eq!(m["config"]["size"], fin.config_bytes.len());
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["mediaType"], media_types::OCI_LAYER_GZIP);
        assert_eq!(layers[1]["mediaType"], media_types::OCI_LAYER_ZSTD);
        assert_eq!(layers[1]["digest"], Digest::of(&[2, 1]).to_string());
        assert_eq!(layers[1]["size"], 102);
    }

    #[test]
    fn finalize_is_deterministic_and_sensitive_to_layers() {
        let a = image().finalize().unwrap();
        let b = image().finalize().unwrap();
        assert_eq!(a.manifest_bytes, b.manifest_bytes);
        assert_eq!(a.manifest_digest, b.manifest_digest);
        // The config's rootfs follows the layer list, so the config digest changes too.
        let mut img = image();
        img.layers.pop();
        let c = img.finalize().unwrap();
        assert_ne!(c.config_digest, a.config_digest);
        assert_ne!(c.manifest_digest, a.manifest_digest);
        // Where a layer lives is not part of the image.
        let mut img = image();
        img.layers[0].origin = Origin::Remote("example.com/base:1".parse().unwrap());
        assert_eq!(img.finalize().unwrap().manifest_digest, a.manifest_digest);
    }

    #[test]
    fn docker_layer_types_map_to_oci() {
        assert_eq!(
            oci_layer_type(media_types::DOCKER_LAYER_GZIP).unwrap(),
            media_types::OCI_LAYER_GZIP
        );
        assert_eq!(
            oci_layer_type(media_types::OCI_LAYER_TAR).unwrap(),
            media_types::OCI_LAYER_TAR
        );
        let err = oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
            .unwrap_err();
        assert!(err.to_string().contains("foreign"), "{err}");
    }
}
