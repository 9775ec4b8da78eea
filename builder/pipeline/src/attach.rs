//! Attaching SBOMs, signatures and attestations to an image in its registry, and finding
//! them again.
//!
//! An SBOM or attestation is pushed as an artifact whose `subject` is the image, tagged with
//! cosign's name (`sha256-<hex>.sbom`, `.att`): a registry with the referrers API lists it
//! among the image's referrers (and says so, `OCI-Subject`), and on any other registry
//! tools find it by that tag.
//! Signatures always live at cosign's `.sig` tag, where podman and cosign look for them;
//! a new signature is added to those already there.

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine as _;
use kiln_attest::artifact::{
    ArtifactLayer, ArtifactManifest, Attachment, EMPTY_CONFIG, LayerRef, MANIFEST_MEDIA_TYPE,
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, Subject, manifest_layers, signature_manifest,
};
use kiln_oci::{Digest, Reference};
use kiln_registry::{Client, PulledManifest, RegistryError};
use serde::Serialize;

/// The largest attachment blob kiln reads back (SBOMs of big images are a few MiB).
const MAX_ATTACHMENT: u64 = 64 * 1024 * 1024;

/// Why an attachment could not be pushed or read.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The registry refused or failed.
    #[error("{doing}")]
    Registry {
        /// What was being done: `pushing an attachment blob`, `reading the signatures`, ...
        doing: &'static str,
        /// The registry's error.
        #[source]
        source: RegistryError,
    },
    /// An attachment blob is larger than any SBOM or signature kiln would read back.
    #[error("attachment blob `{digest}` is {size} bytes; kiln reads at most {max}")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size, as its manifest says.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The image itself did not reach the registry, so nothing may name it.
    #[error("the image itself was not pushed")]
    ImageNotPushed,
    /// The provenance envelope could not be serialized.
    #[error("serializing the provenance envelope")]
    Envelope(#[source] serde_json::Error),
}

/// Returns a function turning a registry error into an [`AttachError`] saying what failed.
fn registry(doing: &'static str) -> impl Fn(RegistryError) -> AttachError {
    move |source| AttachError::Registry { doing, source }
}

/// Where an attachment went.
#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: String,
    /// The tag it was pushed as (cosign's name for it).
    pub tag: String,
    /// Whether the registry indexed it for its referrers API too.
    pub referrers_api: bool,
}

/// Blobs several attachments of one push share: the empty config of every artifact is
/// looked for (and pushed) once, however many attachments go up at the same time.
#[derive(Default)]
pub struct SharedBlobs {
    empty_config: tokio::sync::OnceCell<()>,
}

/// Pushes `artifact` (which names `subject`) into `repo`: its blobs at once, then, when
/// `ready` resolves (the image's blobs are in the registry), the manifest under the `kind`
/// fallback tag. One `PUT` serves both ways of finding it: a registry with the referrers
/// API indexes the `subject` of any manifest it stores, and says so (`OCI-Subject`).
pub async fn push_artifact(
    client: &Client,
    repo: &Reference,
    subject: &Subject,
    kind: Attachment,
    artifact: &ArtifactManifest,
    shared: &SharedBlobs,
    ready: impl Future<Output = Result<(), AttachError>>,
) -> Result<Attached, AttachError> {
    let tag = kind.tag(&subject.digest);
    // The same attachment already under its tag (a no-op rebuild): nothing to send.
    if let Ok(digest) = client.manifest_digest(repo, &tag).await
        && digest == artifact.digest
    {
        ready.await?;
        return Ok(Attached {
            digest: digest.to_string(),
            tag,
            referrers_api: false,
        });
    }
    push_blobs(client, repo, &artifact.blobs, shared).await?;
    ready.await?;
    let (digest, acknowledged) = client
        .push_manifest_acknowledged(repo, &tag, MANIFEST_MEDIA_TYPE, &artifact.manifest)
        .await
        .map_err(registry("pushing the attachment's manifest"))?;
    Ok(Attached {
        digest: digest.to_string(),
        tag,
        referrers_api: acknowledged,
    })
}

/// Adds the signature `signature` of `payload` to `subject`'s `.sig` tag in `repo`, keeping
/// the signatures already there (signing twice with the same key adds nothing: ECDSA here
/// is deterministic, RFC 6979). The tag is written once `ready` resolves.
pub async fn push_signature(
    client: &Client,
    repo: &Reference,
    subject: &Digest,
    payload: Vec<u8>,
    signature: &[u8],
    ready: impl Future<Output = Result<(), AttachError>>,
) -> Result<Attached, AttachError> {
    let tag = Attachment::Signature.tag(subject);
    let new = ArtifactLayer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
        bytes: payload,
        annotations: BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(signature),
        )]),
    };
    let mut layers = Vec::new();
    let existing = get_optional(client, repo, &tag).await?;
    if let Some(existing) = &existing {
        for l in manifest_layers(&existing.bytes) {
            let bytes = read_blob(client, repo, &l).await?;
            layers.push(ArtifactLayer {
                media_type: l.media_type,
                bytes,
                annotations: l.annotations,
            });
        }
    }
    if let Some(existing) = existing.filter(|_| layers.contains(&new)) {
        // This key already signed this image: the tag stays as it is.
        ready.await?;
        return Ok(Attached {
            digest: Digest::of(&existing.bytes).to_string(),
            tag,
            referrers_api: false,
        });
    }
    layers.push(new);
    let manifest = signature_manifest(layers);
    push_blobs(client, repo, &manifest.blobs, &SharedBlobs::default()).await?;
    ready.await?;
    client
        .push_manifest(repo, &tag, MANIFEST_MEDIA_TYPE, &manifest.manifest)
        .await
        .map_err(registry("pushing the signatures' manifest"))?;
    Ok(Attached {
        digest: manifest.digest.to_string(),
        tag,
        referrers_api: false,
    })
}

/// Returns the `kind` attachment of `subject` in `repo`: the newest referrer of
/// `artifact_type` when the registry lists referrers, else the cosign tag's manifest.
pub async fn find(
    client: &Client,
    repo: &Reference,
    subject: &Digest,
    kind: Attachment,
    artifact_type: &str,
) -> Result<Option<PulledManifest>, AttachError> {
    if kind != Attachment::Signature
        && let Some(referrers) = client
            .referrers(repo, subject)
            .await
            .map_err(registry("listing the image's referrers"))?
        && let Some(found) = referrers
            .iter()
            .rev()
            .find(|r| r.artifact_type.as_deref() == Some(artifact_type))
    {
        let digest = found.digest.to_string();
        let manifest = client
            .get_manifest(repo, &digest)
            .await
            .map_err(registry("reading an attachment's manifest"))?;
        return Ok(Some(manifest));
    }
    get_optional(client, repo, &kind.tag(subject)).await
}

/// Returns the bytes of the layer `layer` of an attachment, verified against its digest.
pub async fn read_blob(
    client: &Client,
    repo: &Reference,
    layer: &LayerRef,
) -> Result<Vec<u8>, AttachError> {
    if layer.size > MAX_ATTACHMENT {
        return Err(AttachError::TooLarge {
            digest: layer.digest.clone(),
            size: layer.size,
            max: MAX_ATTACHMENT,
        });
    }
    client
        .get_blob_bytes(repo, &layer.digest, layer.size)
        .await
        .map_err(registry("reading an attachment blob"))
}

/// Returns manifest `reference` of `repo`, or `None` when the registry has no such manifest.
pub async fn get_optional(
    client: &Client,
    repo: &Reference,
    reference: &str,
) -> Result<Option<PulledManifest>, AttachError> {
    match client.get_manifest(repo, reference).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(registry("reading an attachment's manifest")(e)),
    }
}

/// Uploads `contents` at once, from memory. The empty config every artifact shares is
/// looked for first, once per `shared` (it is there after the first attachment); other
/// blobs are new.
async fn push_blobs(
    client: &Client,
    repo: &Reference,
    contents: &[Vec<u8>],
    shared: &SharedBlobs,
) -> Result<(), AttachError> {
    let jobs = contents.iter().map(|bytes| async move {
        if bytes.as_slice() == EMPTY_CONFIG {
            return shared
                .empty_config
                .get_or_try_init(|| push_absent(client, repo, bytes))
                .await
                .map(|_| ());
        }
        client
            .push_blob_bytes(repo, bytes.clone().into())
            .await
            .map_err(registry("pushing an attachment blob"))?;
        Ok(())
    });
    for result in futures_util::future::join_all(jobs).await {
        result?;
    }
    Ok(())
}

/// Uploads `bytes` unless `repo` has them.
async fn push_absent(client: &Client, repo: &Reference, bytes: &[u8]) -> Result<(), AttachError> {
    // A check the registry does not answer (403, 5xx) means "unknown": push it, and let the
    // upload carry the registry's own error (RELIABILITY.md R04, R10).
    let present = match client.blob_exists(repo, &Digest::of(bytes)).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::debug!(error = %e, "attachment blob existence unknown");
            false
        }
    };
    if !present {
        client
            .push_blob_bytes(repo, bytes.to_vec().into())
            .await
            .map_err(registry("pushing an attachment blob"))?;
    }
    Ok(())
}
