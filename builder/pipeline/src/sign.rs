//! cosign-compatible image signatures: a simple-signing payload naming the image and its
//! manifest digest, signed with ECDSA P-256, stored as a layer of the `sha256-<hex>.sig`
//! manifest with the signature in the `dev.cosignproject.cosign/signature` annotation.
//! podman (`sigstoreSigned` policies) and cosign verify it.

use std::future::Future;

use base64::Engine as _;
use kiln_attest::artifact::{
    Attachment, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, manifest_layers,
};
use kiln_attest::sign::{PrivateKey, PublicKey, parse_simple_signing, simple_signing_payload};
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use serde::Serialize;

use crate::attach::{AttachError, Attached, get_optional, push_signature, read_blob};

/// A signature of one manifest, made and not yet pushed.
pub struct Signature {
    /// The signed manifest's digest.
    pub digest: Digest,
    /// The simple-signing payload: the claimed reference and the digest.
    pub payload: Vec<u8>,
    /// The payload's ECDSA signature (DER).
    pub signature: Vec<u8>,
}

impl Signature {
    /// Signs `digest` of `reference`'s repository with `key`. The payload names the
    /// reference as given (with its tag), which podman's default `matchRepoDigestOrExact`
    /// identity accepts for pulls by that tag and by digest; a reference by digest is
    /// claimed by its repository name.
    pub fn new(reference: &Reference, digest: &Digest, key: &PrivateKey) -> Self {
        let claimed = match reference.tag() {
            Some(tag) if reference.digest().is_none() => format!("{}:{tag}", reference.name()),
            _ => reference.name(),
        };
        let payload = simple_signing_payload(&claimed, digest);
        let signature = key.sign(&payload);
        Self {
            digest: digest.clone(),
            payload,
            signature,
        }
    }

    /// Adds the signature to the `.sig` tag of its digest in `repo`, once `ready` resolves.
    pub async fn push(
        &self,
        client: &Client,
        repo: &Reference,
        ready: impl Future<Output = Result<(), AttachError>>,
    ) -> Result<Attached, AttachError> {
        push_signature(
            client,
            repo,
            &self.digest,
            self.payload.clone(),
            &self.signature,
            ready,
        )
        .await
    }
}

/// Whether a stored signature checks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureStatus {
    /// The key verifies it.
    Verified,
    /// The key does not verify it, or it does not parse.
    Invalid,
    /// No key was given to check it with.
    Unchecked,
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Verified => "verified",
            Self::Invalid => "invalid",
            Self::Unchecked => "unchecked",
        })
    }
}

/// One signature found at an image's `.sig` tag.
#[derive(Debug, Clone, Serialize)]
pub struct FoundSignature {
    /// The reference the payload claims.
    pub docker_reference: String,
    /// Whether the payload names this image's digest.
    pub digest_matches: bool,
    /// Whether it checks out.
    pub status: SignatureStatus,
}

impl FoundSignature {
    /// Returns whether this signature, made with the checking key, vouches for `digest`
    /// in `reference`'s repository.
    pub fn vouches_for(&self, reference: &Reference) -> bool {
        self.status == SignatureStatus::Verified
            && self.digest_matches
            && self
                .docker_reference
                .parse::<Reference>()
                .is_ok_and(|r| r.name() == reference.name())
    }
}

/// Returns the signatures stored for `digest`, checked with `key` when given. Payloads
/// that do not parse are [`SignatureStatus::Invalid`].
pub async fn signatures(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
    key: Option<&PublicKey>,
) -> Result<Vec<FoundSignature>, AttachError> {
    let tag = Attachment::Signature.tag(digest);
    let Some(manifest) = get_optional(client, repo, &tag).await? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for layer in manifest_layers(&manifest.bytes) {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let payload = read_blob(client, repo, &layer).await?;
        let signature = layer
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
        let claim = parse_simple_signing(&payload).ok();
        let (docker_reference, digest_matches) = match &claim {
            Some(c) => (c.docker_reference.clone(), &c.manifest_digest == digest),
            None => (String::new(), false),
        };
        let status = match (key, &signature, &claim) {
            (None, _, _) => SignatureStatus::Unchecked,
            (Some(k), Some(sig), Some(_)) if k.verify(&payload, sig).is_ok() => {
                SignatureStatus::Verified
            }
            _ => SignatureStatus::Invalid,
        };
        found.push(FoundSignature {
            docker_reference,
            digest_matches,
            status,
        });
    }
    Ok(found)
}

/// Returns the manifest digest `reference` names (by digest, or its tag's current one).
pub async fn resolve(client: &Client, reference: &Reference) -> Result<Digest, AttachError> {
    if let Some(d) = reference.digest() {
        return Ok(d.clone());
    }
    client
        .manifest_digest(reference, &reference.manifest_ref())
        .await
        .map_err(|source| AttachError::Registry {
            doing: "resolving the image's digest",
            source,
        })
}
