//! Multi-platform images: an OCI image index over one finished image per platform
//! (<https://github.com/opencontainers/image-spec/blob/main/image-index.md>), and
//! [`Artifact`], what the sinks write: one image or an index.

use std::fmt;

use kiln_oci::{Digest, canonical_json, media_types};
use serde_json::{Value, json};

use crate::{FinalImage, Layer, ModelError};

/// The platform an image runs on, as its config says (`os`, `architecture`, `variant`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// The GOARCH-style architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// The variant (`v8` for arm64, `v7` for arm), if the config names one.
    pub variant: Option<String>,
}

impl Platform {
    /// Reads the platform from an image config's JSON.
    pub fn of_config(config_bytes: &[u8]) -> Result<Platform, ModelError> {
        let config: Value =
            serde_json::from_slice(config_bytes).map_err(|source| ModelError::Json {
                what: "the platform of an image config".to_owned(),
                source,
            })?;
        let field = |name: &str| config[name].as_str().filter(|s| !s.is_empty());
        match (field("os"), field("architecture")) {
            (Some(os), Some(architecture)) => Ok(Platform {
                os: os.to_owned(),
                architecture: architecture.to_owned(),
                variant: field("variant").map(str::to_owned),
            }),
            _ => Err(ModelError::NoPlatform),
        }
    }

    /// Reads the `platform` object of an index entry.
    pub fn of_entry(entry: &Value) -> Option<Platform> {
        let p = &entry["platform"];
        Some(Platform {
            os: p["os"].as_str()?.to_owned(),
            architecture: p["architecture"].as_str()?.to_owned(),
            variant: p["variant"].as_str().map(str::to_owned),
        })
    }

    /// Whether both name the same platform, counting a missing variant as the architecture's
    /// default (`arm64` is `arm64/v8`), as runtimes do when they pick from an index.
    pub fn same_as(&self, other: &Platform) -> bool {
        let variant = |p: &Platform| {
            p.variant.clone().or_else(|| match p.architecture.as_str() {
                "arm64" => Some("v8".to_owned()),
                "arm" => Some("v7".to_owned()),
                _ => None,
            })
        };
        self.os == other.os
            && self.architecture == other.architecture
            && variant(self) == variant(other)
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "os": self.os, "architecture": self.architecture });
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// Finished images for several platforms and the canonical OCI image index listing them.
#[derive(Clone, Debug)]
pub struct FinalIndex {
    /// The images with their platforms, in index order.
    pub images: Vec<(Platform, FinalImage)>,
    /// Canonical index JSON.
    pub index_bytes: Vec<u8>,
    /// Digest of `index_bytes`: what a multi-platform reference resolves to.
    pub index_digest: Digest,
}

impl FinalIndex {
    /// Returns the index of `images`, listed in the given order, each with the platform its
    /// config names. Two images for the same platform are refused.
    pub fn new(images: Vec<FinalImage>) -> Result<FinalIndex, ModelError> {
        let mut listed: Vec<(Platform, FinalImage)> = Vec::new();
        for image in images {
            let platform = Platform::of_config(&image.config_bytes)?;
            if listed.iter().any(|(p, _)| p.same_as(&platform)) {
                return Err(ModelError::DuplicatePlatform { platform });
            }
            listed.push((platform, image));
        }
        if listed.is_empty() {
            return Err(ModelError::EmptyIndex);
        }
        let manifests: Vec<Value> = listed
            .iter()
            .map(|(platform, image)| {
                json!({
                    "mediaType": media_types::OCI_MANIFEST,
                    "digest": image.manifest_digest.to_string(),
                    "size": image.manifest_bytes.len(),
                    "platform": platform.to_json(),
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": manifests,
        });
        let index_bytes = canonical_json(&index).map_err(|source| ModelError::Serialize {
            what: "index",
            source,
        })?;
        Ok(FinalIndex {
            images: listed,
            index_digest: Digest::of(&index_bytes),
            index_bytes,
        })
    }
}

/// What a sink writes: one image, or an index over one image per platform.
#[derive(Clone, Copy, Debug)]
pub enum Artifact<'a> {
    /// A single-platform image.
    Image(&'a FinalImage),
    /// A multi-platform index.
    Index(&'a FinalIndex),
}

impl<'a> From<&'a FinalImage> for Artifact<'a> {
    fn from(image: &'a FinalImage) -> Self {
        Artifact::Image(image)
    }
}

impl<'a> From<&'a FinalIndex> for Artifact<'a> {
    fn from(index: &'a FinalIndex) -> Self {
        Artifact::Index(index)
    }
}

impl<'a> Artifact<'a> {
    /// The digest a reference to it resolves to (manifest or index digest).
    pub fn digest(&self) -> &'a Digest {
        match self {
            Artifact::Image(i) => &i.manifest_digest,
            Artifact::Index(x) => &x.index_digest,
        }
    }

    /// The media type of its top-level JSON.
    pub fn media_type(&self) -> &'static str {
        match self {
            Artifact::Image(_) => media_types::OCI_MANIFEST,
            Artifact::Index(_) => media_types::OCI_INDEX,
        }
    }

    /// Its top-level JSON (manifest or index).
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Artifact::Image(i) => &i.manifest_bytes,
            Artifact::Index(x) => &x.index_bytes,
        }
    }

    /// The images it holds, one or one per platform.
    pub fn images(&self) -> Vec<&'a FinalImage> {
        match self {
            Artifact::Image(i) => vec![*i],
            Artifact::Index(x) => x.images.iter().map(|(_, i)| i).collect(),
        }
    }

    /// Every layer of every image, each digest once, in first-seen order.
    pub fn unique_layers(&self) -> Vec<&'a Layer> {
        let mut unique: Vec<&Layer> = Vec::new();
        for image in self.images() {
            for layer in &image.layers {
                if !unique.iter().any(|l| l.digest == layer.digest) {
                    unique.push(layer);
                }
            }
        }
        unique
    }

    /// Every JSON blob besides the top level one: configs and (for an index) manifests.
    pub fn json_blobs(&self) -> Vec<(&'a Digest, &'a [u8])> {
        let mut out = Vec::new();
        for image in self.images() {
            out.push((&image.config_digest, image.config_bytes.as_slice()));
            if matches!(self, Artifact::Index(_)) {
                out.push((&image.manifest_digest, image.manifest_bytes.as_slice()));
            }
        }
        out
    }
}

/// Returns the digest and size of the manifest for `os`/`arch` in the index JSON
/// `index_bytes` (of `what`, for the error).
pub fn pick_platform(
    index_bytes: &[u8],
    os: &str,
    arch: &str,
    what: &str,
) -> Result<(Digest, u64), ModelError> {
    let index: Value = serde_json::from_slice(index_bytes).map_err(|source| ModelError::Json {
        what: format!("the index of `{what}`"),
        source,
    })?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = entries
        .iter()
        .find(|m| Platform::of_entry(m).is_some_and(|p| p.os == os && p.architecture == arch))
        .ok_or_else(|| {
            let offered: Vec<String> = entries
                .iter()
                .filter_map(Platform::of_entry)
                .map(|p| p.to_string())
                .collect();
            ModelError::NoImageFor {
                image: what.to_owned(),
                wanted: format!("{os}/{arch}"),
                offered: if offered.is_empty() {
                    "none".into()
                } else {
                    offered.join(", ")
                },
            }
        })?;
    let digest = chosen["digest"]
        .as_str()
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or_else(|| ModelError::BadEntry {
            image: what.to_owned(),
            field: "digest",
        })?;
    let size = chosen["size"]
        .as_u64()
        .ok_or_else(|| ModelError::BadEntry {
            image: what.to_owned(),
            field: "size",
        })?;
    Ok((digest, size))
}

/// Returns whether `media_type` is an image index (OCI) or manifest list (Docker).
pub fn is_index(media_type: &str) -> bool {
    media_type == media_types::OCI_INDEX || media_type == media_types::DOCKER_MANIFEST_LIST
}
