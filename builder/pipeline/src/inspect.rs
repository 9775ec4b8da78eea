//! What an image in its registry is: its base, buildpacks, processes and layers from the
//! manifest and config, and what is attached to it: the SBOM's summary, the signatures and
//! the provenance (checked with a key when one is given). `kiln inspect` renders it.

use std::collections::BTreeMap;

use base64::Engine as _;
use kiln_attest::artifact::{Attachment, DSSE_MEDIA_TYPE, SPDX_MEDIA_TYPE, manifest_layers};
use kiln_attest::sbom::SbomError;
use kiln_attest::sign::{Envelope, PublicKey, SignError, read_provenance, verify_envelope};
use kiln_oci::{Digest, DigestError, Reference};
use kiln_registry::{Client, RegistryError};
use serde::Serialize;
use serde_json::Value;

use crate::attach::{AttachError, find, read_blob};
use crate::attest::ecosystem_name;
use crate::sign::{FoundSignature, resolve, signatures};

/// The largest image config kiln reads.
const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// What an image is and what is attached to it.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The reference as asked.
    pub image: String,
    /// The manifest (or index) digest the reference names.
    pub digest: String,
    /// For an index: the digest of the image for this host's platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
    /// For an index: every platform it has an image for, in its order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<IndexEntry>,
    /// `os/architecture` from the config.
    pub platform: String,
    /// The config's creation time.
    pub created: Option<String>,
    /// The user the image runs as.
    pub user: Option<String>,
    /// The run image an app was built on (`image`, `digest`, `top_layer`), or `base_id`
    /// for a base image.
    pub base: Option<Value>,
    /// The buildpacks that built it, from `io.buildpacks.build.metadata`.
    pub buildpacks: Vec<Value>,
    /// Its processes, from `io.buildpacks.build.metadata`.
    pub processes: Vec<Value>,
    /// Its layers, with the history entry that made each.
    pub layers: Vec<LayerRow>,
    /// The attached SBOM's summary.
    pub sbom: Option<SbomSummary>,
    /// The signatures at its `.sig` tag.
    pub signatures: Vec<FoundSignature>,
    /// The attached provenance.
    pub provenance: Option<ProvenanceRow>,
}

/// One image of an inspected index.
#[derive(Debug, Serialize)]
pub struct IndexEntry {
    /// `linux/arm64/v8`.
    pub platform: String,
    /// The image manifest's digest.
    pub digest: String,
}

/// Returns the platforms of an index's `manifests` entries (those that name one).
fn index_entries(entries: &[Value]) -> Vec<IndexEntry> {
    entries
        .iter()
        .filter_map(|e| {
            Some(IndexEntry {
                platform: kiln_model::Platform::of_entry(e)?.to_string(),
                digest: e["digest"].as_str()?.to_owned(),
            })
        })
        .collect()
}

/// One layer of an inspected image.
#[derive(Debug, Serialize)]
pub struct LayerRow {
    /// The layer's digest.
    pub digest: String,
    /// Its compressed size.
    pub size: u64,
    /// Its history entry's `created_by`.
    pub created_by: String,
}

/// How many packages an attached SBOM lists, by ecosystem.
#[derive(Debug, Serialize)]
pub struct SbomSummary {
    /// The SBOM artifact's manifest digest.
    pub digest: String,
    /// How many packages it lists.
    pub packages: usize,
    /// Packages per ecosystem (`deb`, `golang`, `maven`, `npm`).
    pub by_type: BTreeMap<String, usize>,
}

/// What an attached provenance says, and whether it checks out.
#[derive(Debug, Serialize)]
pub struct ProvenanceRow {
    /// The attestation's manifest digest.
    pub digest: String,
    /// The builder that made the image.
    pub builder_id: String,
    /// The source repository.
    pub source: Option<String>,
    /// The source revision.
    pub revision: Option<String>,
    /// The base image it names.
    pub base_image: Option<String>,
    /// The buildpacks it names.
    pub buildpacks: Vec<String>,
    /// Whether its subject is this image's digest.
    pub subject_matches: bool,
    /// Whether its envelope's signature checks out.
    pub status: EnvelopeStatus,
}

/// Whether an attestation envelope's signature checks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeStatus {
    /// The key verifies it.
    Verified,
    /// The key does not verify it.
    Invalid,
    /// No key was given to check it with.
    Unchecked,
    /// The envelope carries no signature.
    Unsigned,
}

impl std::fmt::Display for EnvelopeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Verified => "verified",
            Self::Invalid => "invalid",
            Self::Unchecked => "unchecked",
            Self::Unsigned => "unsigned",
        })
    }
}

/// Why an image could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The registry refused or failed.
    #[error("{doing}")]
    Registry {
        /// What was being read.
        doing: &'static str,
        /// The registry's error.
        #[source]
        source: RegistryError,
    },
    /// An attachment could not be read.
    #[error("reading what is attached to the image")]
    Attachment(#[source] AttachError),
    /// A manifest, index or config is not the JSON it should be.
    #[error("reading {what}")]
    Json {
        /// What was read.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest or index names a digest that does not parse.
    #[error("reading {what}")]
    Digest {
        /// Whose digest.
        what: &'static str,
        /// Why it does not parse.
        #[source]
        source: DigestError,
    },
    /// An index without any image.
    #[error("the index `{index}` lists no image (kiln looked for linux/{arch})")]
    NoPlatform {
        /// The index.
        index: Digest,
        /// This host's architecture.
        arch: &'static str,
    },
    /// The attached SBOM does not parse.
    #[error("reading the attached SBOM")]
    Sbom(#[source] SbomError),
    /// The attached provenance does not parse.
    #[error("reading the attached provenance")]
    Provenance(#[source] SignError),
    /// The provenance payload is not base64.
    #[error("decoding the provenance payload")]
    Payload(#[source] base64::DecodeError),
    /// The image is not in the layout, or its blobs could not be read there.
    #[error("reading `{name}` from the OCI layout `{}`", dir.display())]
    Local {
        /// The layout.
        dir: std::path::PathBuf,
        /// The image's name in it.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<AttachError> for InspectError {
    fn from(e: AttachError) -> Self {
        Self::Attachment(e)
    }
}

/// Returns a function turning a registry error into an [`InspectError`] saying what failed.
fn registry(doing: &'static str) -> impl Fn(RegistryError) -> InspectError {
    move |source| InspectError::Registry { doing, source }
}

/// Returns a function turning a JSON error into an [`InspectError`] saying what was read.
fn json(what: &'static str) -> impl Fn(serde_json::Error) -> InspectError {
    move |source| InspectError::Json { what, source }
}

/// Returns the digest in `value`, or why it has none.
fn digest_in(value: &Value, what: &'static str) -> Result<Digest, InspectError> {
    value
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|source| InspectError::Digest { what, source })
}

/// Reads `reference` (for an index: the image for this host's platform) and what is
/// attached to it; signatures and provenance are checked with `key` when given.
pub async fn inspect(
    client: &Client,
    reference: &Reference,
    key: Option<&PublicKey>,
) -> Result<Inspection, InspectError> {
    let digest = resolve(client, reference).await?;
    let (image_digest, manifest, platforms) = platform_manifest(client, reference, &digest).await?;
    let config_digest = digest_in(&manifest["config"]["digest"], "the config digest")?;
    let config_bytes = client
        .get_blob_bytes(reference, &config_digest, MAX_CONFIG)
        .await
        .map_err(registry("reading the image config"))?;
    let config: Value = serde_json::from_slice(&config_bytes).map_err(json("the config"))?;
    let mut inspection = described(
        &reference.to_string(),
        &digest,
        &image_digest,
        &manifest,
        &config,
    );
    inspection.platforms = platforms;
    inspection.sbom = sbom_summary(client, reference, &image_digest).await?;
    inspection.signatures = signatures(client, reference, &digest, key).await?;
    inspection.provenance = provenance(client, reference, &digest, key).await?;
    Ok(inspection)
}

/// Reads the image `name` of the OCI layout `dir` (kiln's store, for instance), for an
/// index the image for this host's platform. A local image has nothing attached: its SBOM,
/// signatures and provenance live in a registry.
pub fn inspect_layout(dir: &std::path::Path, name: &str) -> Result<Inspection, InspectError> {
    let local = |source: std::io::Error| InspectError::Local {
        dir: dir.to_path_buf(),
        name: name.to_owned(),
        source,
    };
    let entry = kiln_image::layout_entries(dir)
        .map_err(|e| local(std::io::Error::other(e)))?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| local(std::io::ErrorKind::NotFound.into()))?;
    let blob = |d: &Digest| -> Result<Value, InspectError> {
        let bytes = std::fs::read(dir.join("blobs/sha256").join(d.hex())).map_err(local)?;
        serde_json::from_slice(&bytes).map_err(json("a blob of the layout"))
    };
    let top = blob(&entry.digest)?;
    let (image_digest, manifest, platforms) = match top["manifests"].as_array() {
        None => (entry.digest.clone(), top, Vec::new()),
        Some(entries) => {
            let d = digest_in(
                &host_entry(entries, &entry.digest)?["digest"],
                "an index entry",
            )?;
            let m = blob(&d)?;
            (d, m, index_entries(entries))
        }
    };
    let config = blob(&digest_in(
        &manifest["config"]["digest"],
        "the config digest",
    )?)?;
    let mut inspection = described(name, &entry.digest, &image_digest, &manifest, &config);
    inspection.platforms = platforms;
    Ok(inspection)
}

/// Returns the entry of an index for this host's platform, else its first.
fn host_entry<'v>(entries: &'v [Value], index: &Digest) -> Result<&'v Value, InspectError> {
    let arch = kiln_lifecycle::host_arch();
    entries
        .iter()
        .find(|e| {
            kiln_model::Platform::of_entry(e)
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .or(entries.first())
        .ok_or_else(|| InspectError::NoPlatform {
            index: index.clone(),
            arch,
        })
}

/// What the manifest and config say of an image, nothing attached yet.
fn described(
    image: &str,
    digest: &Digest,
    image_digest: &Digest,
    manifest: &Value,
    config: &Value,
) -> Inspection {
    let labels = &config["config"]["Labels"];
    let label = |k: &str| -> Value {
        labels[k]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null)
    };
    let build = label("io.buildpacks.build.metadata");
    Inspection {
        image: image.to_owned(),
        digest: digest.to_string(),
        platform_digest: (image_digest != digest).then(|| image_digest.to_string()),
        platforms: Vec::new(),
        platform: format!(
            "{}/{}",
            config["os"].as_str().unwrap_or("?"),
            config["architecture"].as_str().unwrap_or("?")
        ),
        created: config["created"].as_str().map(str::to_owned),
        user: config["config"]["User"].as_str().map(str::to_owned),
        base: base_of(&label("io.buildpacks.lifecycle.metadata"), labels),
        buildpacks: build["buildpacks"].as_array().cloned().unwrap_or_default(),
        processes: build["processes"].as_array().cloned().unwrap_or_default(),
        layers: layer_rows(manifest, config),
        sbom: None,
        signatures: Vec::new(),
        provenance: None,
    }
}

/// Returns the image manifest `digest` names, or for an index its entry for this host's
/// platform (else its first), with that manifest's digest, and the index's platforms.
async fn platform_manifest(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
) -> Result<(Digest, Value, Vec<IndexEntry>), InspectError> {
    let top = client
        .get_manifest(reference, &digest.to_string())
        .await
        .map_err(registry("reading the manifest"))?;
    let top: Value = serde_json::from_slice(&top.bytes).map_err(json("the manifest"))?;
    let Some(entries) = top["manifests"].as_array() else {
        return Ok((digest.clone(), top, Vec::new()));
    };
    let d = digest_in(
        &host_entry(entries, digest)?["digest"],
        "the index entry's digest",
    )?;
    let m = client
        .get_manifest(reference, &d.to_string())
        .await
        .map_err(registry("reading the platform's manifest"))?;
    let manifest = serde_json::from_slice(&m.bytes).map_err(json("the platform's manifest"))?;
    Ok((d, manifest, index_entries(entries)))
}

/// Returns what an app image was built on, or a base image's id.
fn base_of(lifecycle: &Value, labels: &Value) -> Option<Value> {
    match &lifecycle["runImage"] {
        Value::Null => labels["io.buildpacks.base.id"]
            .as_str()
            .map(|id| serde_json::json!({ "base_id": id, "note": "this is a base image" })),
        run => Some(serde_json::json!({
            "image": run["image"],
            "digest": run["reference"],
            "top_layer": run["topLayer"],
        })),
    }
}

/// Pairs the manifest's layers with the config's non-empty history entries.
fn layer_rows(manifest: &Value, config: &Value) -> Vec<LayerRow> {
    let history: Vec<&Value> = config["history"]
        .as_array()
        .map(|h| h.iter().filter(|e| e["empty_layer"] != true).collect())
        .unwrap_or_default();
    let layers = manifest["layers"].as_array().map(Vec::as_slice);
    layers
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            digest: l["digest"].as_str().unwrap_or_default().to_owned(),
            size: l["size"].as_u64().unwrap_or(0),
            created_by: history
                .get(i)
                .and_then(|h| h["created_by"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

async fn sbom_summary(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
) -> Result<Option<SbomSummary>, InspectError> {
    let Some(m) = find(client, repo, digest, Attachment::Sbom, SPDX_MEDIA_TYPE).await? else {
        return Ok(None);
    };
    let Some(layer) = manifest_layers(&m.bytes).into_iter().next() else {
        return Ok(None);
    };
    let document = read_blob(client, repo, &layer).await?;
    let packages = kiln_attest::sbom::read_packages(&document).map_err(InspectError::Sbom)?;
    let mut by_type = BTreeMap::new();
    for (eco, _) in &packages {
        *by_type.entry(ecosystem_name(*eco).to_owned()).or_insert(0) += 1;
    }
    Ok(Some(SbomSummary {
        digest: m.digest.to_string(),
        packages: packages.len(),
        by_type,
    }))
}

async fn provenance(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
    key: Option<&PublicKey>,
) -> Result<Option<ProvenanceRow>, InspectError> {
    let attachment = Attachment::Attestation;
    let Some(m) = find(client, repo, digest, attachment, DSSE_MEDIA_TYPE).await? else {
        return Ok(None);
    };
    let Some(layer) = manifest_layers(&m.bytes).into_iter().next() else {
        return Ok(None);
    };
    let envelope: Envelope = serde_json::from_slice(&read_blob(client, repo, &layer).await?)
        .map_err(json("the provenance envelope"))?;
    let status = match key {
        _ if envelope.signatures.is_empty() => EnvelopeStatus::Unsigned,
        None => EnvelopeStatus::Unchecked,
        Some(k) if verify_envelope(&envelope, k).is_ok() => EnvelopeStatus::Verified,
        Some(_) => EnvelopeStatus::Invalid,
    };
    let statement = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(InspectError::Payload)?;
    let p = read_provenance(&statement).map_err(InspectError::Provenance)?;
    Ok(Some(ProvenanceRow {
        digest: m.digest.to_string(),
        subject_matches: p.subject_digests.contains(digest),
        builder_id: p.builder_id,
        source: p.source_uri,
        revision: p.source_revision,
        base_image: p.base_image,
        buildpacks: p.buildpacks,
        status,
    }))
}
