//! OCI artifact manifests that attach SBOMs, signatures and attestations to an image.
//!
//! Two ways to find an attachment, and kiln writes both where it must:
//! - image-spec v1.1 artifacts with a `subject`, listed by the registry's referrers API
//!   (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers>);
//! - cosign's tag names, `sha256-<hex>.sig|.sbom|.att` in the image's repository, which
//!   every registry can store and which podman's `use-sigstore-attachments` reads.
//!
//! Signature manifests keep cosign's shape exactly (an image config whose `diff_ids` are
//! the payload layers, no `subject`) because containers/image and cosign read them by tag.

use std::collections::BTreeMap;

use kiln_oci::{Digest, canonical_json};
use serde_json::{Value, json};

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The image-spec v1.1 empty descriptor's media type, the config of an artifact.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty descriptor's content.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// An SPDX JSON document.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// A CycloneDX JSON document.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// A cosign simple-signing payload (one layer a signature).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A DSSE envelope (an attestation).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation naming an attestation's predicate type (as cosign writes it).
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// The annotation giving a layer its file name (`oras pull` writes files by it).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The OCI image config media type (cosign's signature manifests use it).
const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// What an attachment is, which decides its tag suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// cosign simple-signing signatures.
    Signature,
    /// SBOM documents.
    Sbom,
    /// Signed in-toto attestations (provenance).
    Attestation,
}

impl Attachment {
    /// Returns the cosign tag of this attachment for `subject`: `sha256-<hex>.sig` and so on.
    pub fn tag(self, subject: &Digest) -> String {
        let suffix = match self {
            Attachment::Signature => "sig",
            Attachment::Sbom => "sbom",
            Attachment::Attestation => "att",
        };
        format!("sha256-{}.{suffix}", subject.hex())
    }
}

/// One blob an artifact carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLayer {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactLayer {
    /// Returns a layer of `bytes` named `title` (the file name `oras pull` gives it).
    pub fn titled(media_type: &str, bytes: Vec<u8>, title: &str) -> Self {
        Self {
            media_type: media_type.to_owned(),
            bytes,
            annotations: BTreeMap::from([(TITLE_ANNOTATION.to_owned(), title.to_owned())]),
        }
    }
}

/// The manifest a referrer points at: media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The subject manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A manifest ready to push, with every blob it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactManifest {
    /// The manifest's canonical bytes.
    pub manifest: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The config and layer blobs, config first.
    pub blobs: Vec<Vec<u8>>,
}

/// Returns an image-spec v1.1 artifact of `artifact_type` with `layers`, pointing at
/// `subject` when given.
pub fn artifact_manifest(
    artifact_type: &str,
    subject: Option<&Subject>,
    layers: Vec<ArtifactLayer>,
) -> ArtifactManifest {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG, &BTreeMap::new()),
        "layers": layers.iter().map(|l| descriptor(&l.media_type, &l.bytes, &l.annotations)).collect::<Vec<_>>(),
    });
    if let Some(s) = subject {
        manifest["subject"] = json!({
            "mediaType": s.media_type,
            "digest": s.digest.to_string(),
            "size": s.size,
        });
    }
    let mut blobs = vec![EMPTY_CONFIG.to_vec()];
    blobs.extend(layers.into_iter().map(|l| l.bytes));
    finish(&manifest, blobs)
}

/// Returns cosign's signature manifest (the `.sig` tag's content) holding `layers`, each a
/// simple-signing payload with its [`SIGNATURE_ANNOTATION`].
pub fn signature_manifest(layers: Vec<ArtifactLayer>) -> ArtifactManifest {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::of(&l.bytes).to_string())
        .collect();
    let history: Vec<Value> = layers
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    let config = canonical(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(IMAGE_CONFIG_MEDIA_TYPE, &config, &BTreeMap::new()),
        "layers": layers.iter().map(|l| descriptor(&l.media_type, &l.bytes, &l.annotations)).collect::<Vec<_>>(),
    });
    let mut blobs = vec![config];
    blobs.extend(layers.into_iter().map(|l| l.bytes));
    finish(&manifest, blobs)
}

/// A layer descriptor as it appears in a pulled manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Returns the layers a pulled artifact or signature manifest names (unparsable entries
/// are left out: a hostile manifest yields fewer layers, not a panic).
pub fn manifest_layers(manifest: &[u8]) -> Vec<LayerRef> {
    let Ok(value) = serde_json::from_slice::<Value>(manifest) else {
        return Vec::new();
    };
    let layers = value["layers"].as_array().cloned().unwrap_or_default();
    layers
        .iter()
        .filter_map(|l| {
            Some(LayerRef {
                media_type: l["mediaType"].as_str()?.to_owned(),
                digest: l["digest"].as_str()?.parse().ok()?,
                size: l["size"].as_u64()?,
                annotations: l["annotations"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn descriptor(media_type: &str, bytes: &[u8], annotations: &BTreeMap<String, String>) -> Value {
    let mut d = json!({
        "mediaType": media_type,
        "digest": Digest::of(bytes).to_string(),
        "size": bytes.len(),
    });
    if !annotations.is_empty() {
        d["annotations"] = json!(annotations);
    }
    d
}

fn canonical(value: &Value) -> Vec<u8> {
    canonical_json(value).expect("a JSON value built here is always serializable")
}

fn finish(manifest: &Value, blobs: Vec<Vec<u8>>) -> ArtifactManifest {
    let manifest = canonical(manifest);
    ArtifactManifest {
        digest: Digest::of(&manifest),
        manifest,
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: Digest::of(b"image"),
            size: 5,
        }
    }

    #[test]
    fn tags_follow_cosign() {
        let d = Digest::of(b"x");
        assert_eq!(
            Attachment::Signature.tag(&d),
            format!("sha256-{}.sig", d.hex())
        );
        assert_eq!(Attachment::Sbom.tag(&d), format!("sha256-{}.sbom", d.hex()));
        assert_eq!(
            Attachment::Attestation.tag(&d),
            format!("sha256-{}.att", d.hex())
        );
    }

    #[test]
    fn artifacts_name_their_subject_type_and_blobs() {
        let layers = vec![
            ArtifactLayer::titled(SPDX_MEDIA_TYPE, b"{\"spdx\":1}".to_vec(), "sbom.spdx.json"),
            ArtifactLayer::titled(
                CYCLONEDX_MEDIA_TYPE,
                b"{\"cdx\":1}".to_vec(),
                "sbom.cdx.json",
            ),
        ];
        let a = artifact_manifest(SPDX_MEDIA_TYPE, Some(&subject()), layers.clone());
        assert_eq!(a.digest, Digest::of(&a.manifest));
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["artifactType"], SPDX_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], Digest::of(b"{}").to_string());
        assert_eq!(m["subject"]["digest"], subject().digest.to_string());
        assert_eq!(m["subject"]["size"], 5);
        assert_eq!(a.blobs.len(), 3);
        let refs = manifest_layers(&a.manifest);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].digest, Digest::of(&a.blobs[2]));
        assert_eq!(refs[1].annotations[TITLE_ANNOTATION], "sbom.cdx.json");
        // Same input, same manifest: attachments are as reproducible as images.
        assert_eq!(
            artifact_manifest(SPDX_MEDIA_TYPE, Some(&subject()), layers).digest,
            a.digest
        );
        let bare = artifact_manifest(SPDX_MEDIA_TYPE, None, vec![]);
        let m: Value = serde_json::from_slice(&bare.manifest).unwrap();
        assert!(m.get("subject").is_none());
    }

    #[test]
    fn signature_manifests_keep_cosigns_shape() {
        let mut layer = ArtifactLayer {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            bytes: b"payload".to_vec(),
            annotations: BTreeMap::new(),
        };
        layer
            .annotations
            .insert(SIGNATURE_ANNOTATION.into(), "c2ln".into());
        let s = signature_manifest(vec![layer]);
        let m: Value = serde_json::from_slice(&s.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        assert!(m.get("subject").is_none() && m.get("artifactType").is_none());
        let config: Value = serde_json::from_slice(&s.blobs[0]).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            Digest::of(b"payload").to_string()
        );
        let refs = manifest_layers(&s.manifest);
        assert_eq!(refs[0].media_type, SIMPLE_SIGNING_MEDIA_TYPE);
        assert_eq!(refs[0].annotations[SIGNATURE_ANNOTATION], "c2ln");
    }

    #[test]
    fn hostile_manifests_yield_no_layers() {
        assert!(manifest_layers(b"not json").is_empty());
        assert!(manifest_layers(br#"{"layers":[{"digest":"nope","size":1}]}"#).is_empty());
    }
}
