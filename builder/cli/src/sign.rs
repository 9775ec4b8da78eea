//! `kiln sign` and `kiln verify`: cosign-compatible image signatures.
//!
//! A signature is cosign's: a simple-signing payload naming the image and its manifest
//! digest, signed with ECDSA P-256, stored as a layer of the `sha256-<hex>.sig` manifest
//! with the signature in the `dev.cosignproject.cosign/signature` annotation. podman
//! (`sigstoreSigned` policies) and cosign verify it.

use anyhow::anyhow;
use base64::Engine as _;
use kiln_attest::artifact::{
    Attachment, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, manifest_layers,
};
use kiln_attest::sign::{PrivateKey, PublicKey, parse_simple_signing, simple_signing_payload};
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use serde::Serialize;

use crate::args::{SignArgs, VerifyArgs};
use crate::attach::{Attached, get_optional, push_signature, read_blob};
use crate::failure::{Failure, exit};
use crate::keys::{load_private, load_public};
use crate::session::{Session, parse_image as parse};
use crate::settings::Environment;

/// Runs `kiln sign`.
pub fn run_sign(args: &SignArgs, env: &Environment) -> Result<(), Failure> {
    let key = load_private(&args.key, &args.password, env)?;
    let reference = parse(&args.image)?;
    let s = Session::open(env, &args.registry)?;
    let attached = s.runtime.block_on(async {
        let digest = resolve(&s.client, &reference).await?;
        sign(&s.client, &reference, &digest, &key, async { Ok(()) }).await
    })?;
    println!(
        "{}@{} signed ({})",
        reference.name(),
        attached.0,
        attached.1.tag
    );
    Ok(())
}

/// Signs `digest` of `reference`'s repository with `key`; returns the digest and where the
/// signature went. The payload names the reference as given (with its tag), which
/// podman's default `matchRepoDigestOrExact` identity accepts for pulls by that tag and by
/// digest.
/// The signature tag is written once `ready` resolves.
pub async fn sign(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
    key: &PrivateKey,
    ready: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<(Digest, Attached)> {
    let claimed = match reference.tag() {
        Some(tag) if reference.digest().is_none() => format!("{}:{tag}", reference.name()),
        _ => reference.name(),
    };
    let payload = simple_signing_payload(&claimed, digest);
    let signature = key.sign(&payload);
    let attached = push_signature(client, reference, digest, payload, &signature, ready).await?;
    Ok((digest.clone(), attached))
}

/// One signature found at an image's `.sig` tag.
#[derive(Debug, Clone, Serialize)]
pub struct FoundSignature {
    /// The reference the payload claims.
    pub docker_reference: String,
    /// Whether the payload names this image's digest.
    pub digest_matches: bool,
    /// `verified`, `invalid` (the key does not verify it), or `unchecked` (no key given).
    pub status: &'static str,
}

/// Returns the signatures stored for `digest`, checked with `key` when given. Payloads
/// that do not parse are reported as `invalid`.
pub async fn signatures(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
    key: Option<&PublicKey>,
) -> anyhow::Result<Vec<FoundSignature>> {
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
            (None, _, _) => "unchecked",
            (Some(k), Some(sig), Some(_)) if k.verify(&payload, sig).is_ok() => "verified",
            _ => "invalid",
        };
        found.push(FoundSignature {
            docker_reference,
            digest_matches,
            status,
        });
    }
    Ok(found)
}

/// Runs `kiln verify`: exit 0 when a signature made with the key names this image's
/// digest and repository, else exit 1.
pub fn run_verify(args: &VerifyArgs, env: &Environment) -> Result<(), Failure> {
    let key = load_public(&args.key)?;
    let reference = parse(&args.image)?;
    let s = Session::open(env, &args.registry)?;
    let (digest, found) = s.runtime.block_on(async {
        let digest = resolve(&s.client, &reference).await?;
        let found = signatures(&s.client, &reference, &digest, Some(&key)).await?;
        anyhow::Ok((digest, found))
    })?;
    let good: Vec<&FoundSignature> = found
        .iter()
        .filter(|f| f.status == "verified" && f.digest_matches && same_repo(f, &reference))
        .collect();
    if good.is_empty() {
        let why = if found.is_empty() {
            "it has no signatures".to_string()
        } else {
            format!(
                "none of its {} signatures was made with this key for this image",
                found.len()
            )
        };
        return Err(Failure::new(
            exit::FAILURE,
            anyhow!("`{}@{digest}` is not verified: {why}", reference.name()),
        )
        .hint(Some(format!(
            "sign it: kiln sign {} --key KEY",
            reference.name()
        ))));
    }
    for f in good {
        println!(
            "{}@{digest}: verified signature for `{}` with key {}",
            reference.name(),
            f.docker_reference,
            &key.key_id()[..16]
        );
    }
    Ok(())
}

/// Returns whether the signature's claimed reference is of `reference`'s repository.
fn same_repo(f: &FoundSignature, reference: &Reference) -> bool {
    f.docker_reference
        .parse::<Reference>()
        .is_ok_and(|r| r.name() == reference.name())
}

/// Returns the manifest digest `reference` names (by digest, or its tag's current one).
pub async fn resolve(client: &Client, reference: &Reference) -> anyhow::Result<Digest> {
    if let Some(d) = reference.digest() {
        return Ok(d.clone());
    }
    Ok(client
        .manifest_digest(reference, &reference.manifest_ref())
        .await?)
}
