//! The supply-chain part of `kiln build` and `kiln base build`: SBOMs of every image
//! (written with `--sbom-dir`, attached when pushed), the signature (`--sign-key`), and
//! build provenance in a DSSE envelope, all attached beside the image's own push.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kiln_attest::artifact::{
    ArtifactLayer, Attachment, CYCLONEDX_MEDIA_TYPE, DSSE_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION,
    SPDX_MEDIA_TYPE, Subject, artifact_manifest,
};
use kiln_attest::sign::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, SLSA_PROVENANCE_V1, sign_envelope,
};
use kiln_image::Blobs;
use kiln_model::Artifact;
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use serde::Serialize;
use tokio::sync::watch;

use crate::args::SupplyArgs;
use crate::attach::{Attached, SharedBlobs, push_artifact};
use crate::failure::{Failure, exit};
use crate::keys::load_private;
use crate::output::Ui;
use crate::sbom::{Sboms, catalog, documents, summary, write};
use crate::settings::Environment;

/// The SBOM of one image of what was built.
pub struct ImageSbom {
    /// The image manifest's digest (the SBOM's subject).
    pub digest: Digest,
    /// The image manifest's size.
    pub size: u64,
    /// Both documents.
    pub sboms: Sboms,
}

/// What the supply-chain steps did, for `--report`.
#[derive(Debug, Default, Serialize)]
pub struct SupplyReport {
    /// Per image: packages found, files written, where the SBOM was attached.
    pub sboms: Vec<SbomReport>,
    /// Signatures pushed: the signed digest and where the signature went.
    pub signatures: Vec<(String, Attached)>,
    /// The provenance attestation, when attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceReport>,
    /// Cataloging the layers and writing the SBOMs, in milliseconds.
    pub sbom_ms: u128,
    /// How long attaching went on after the image's own push, in milliseconds.
    pub attach_after_push_ms: u128,
}

/// One image's SBOM in the report.
#[derive(Debug, Serialize)]
pub struct SbomReport {
    /// The image's digest.
    pub image: String,
    /// Packages per ecosystem.
    pub packages: BTreeMap<String, usize>,
    /// Files written with `--sbom-dir`.
    pub files: Vec<PathBuf>,
    /// Where it was attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached: Option<Attached>,
}

/// The provenance in the report.
#[derive(Debug, Serialize)]
pub struct ProvenanceReport {
    /// Whether the envelope is signed.
    pub signed: bool,
    /// Where it was attached.
    pub attached: Attached,
}

/// Reads the `--sign-key`, if any.
pub fn signing_key(args: &SupplyArgs, env: &Environment) -> Result<Option<PrivateKey>, Failure> {
    args.sign_key
        .as_deref()
        .map(|path| load_private(path, &args.password, env))
        .transpose()
}

/// What an SBOM describes: the images of `artifact`, named `name`, with the packages the
/// buildpack `declared`, as of `created` (unix seconds).
pub struct Described<'a> {
    /// The image or index.
    pub artifact: Artifact<'a>,
    /// The repository it is (or would be) pushed to.
    pub name: &'a str,
    /// The buildpack's declared packages.
    pub declared: &'a [kiln_lifecycle::DeclaredPackage],
    /// The documents' creation time.
    pub created: i64,
}

/// Catalogs every image described and writes the SBOMs into `--sbom-dir`; returns them with
/// the report entries and the milliseconds it took. Nothing when `--no-sbom`.
pub async fn make_sboms(
    args: &SupplyArgs,
    what: Described<'_>,
    blobs: &Blobs,
    cache_dir: &Path,
    ui: &Ui,
) -> anyhow::Result<(Vec<ImageSbom>, Vec<SbomReport>, u128)> {
    let Described {
        artifact,
        name,
        declared,
        created,
    } = what;
    if args.no_sbom {
        return Ok((Vec::new(), Vec::new(), 0));
    }
    let started = std::time::Instant::now();
    let images = artifact.images();
    let mut out = Vec::new();
    let mut reports = Vec::new();
    for image in &images {
        let found = catalog(&image.layers, declared, blobs, cache_dir).await?;
        ui.info(&format!("SBOM: {}", summary(&found)));
        let sboms = documents(name, &image.manifest_digest, found, created);
        let files = match &args.sbom_dir {
            Some(dir) => {
                let stem = match images.len() {
                    1 => "sbom".to_owned(),
                    _ => platform_stem(&image.config_bytes),
                };
                write(dir, &stem, &sboms)?
            }
            None => Vec::new(),
        };
        reports.push(SbomReport {
            image: image.manifest_digest.to_string(),
            packages: sboms
                .catalog
                .counts()
                .into_iter()
                .map(|(e, n)| (crate::sbom::ecosystem_name(e).to_owned(), n))
                .collect(),
            files,
            attached: None,
        });
        out.push(ImageSbom {
            digest: image.manifest_digest.clone(),
            size: image.manifest_bytes.len() as u64,
            sboms,
        });
    }
    Ok((out, reports, started.elapsed().as_millis()))
}

/// What to attach to a pushed image.
pub struct Attachments<'a> {
    /// The pushed image or index.
    pub artifact: Artifact<'a>,
    /// The SBOM of each of its images.
    pub sboms: &'a [ImageSbom],
    /// The provenance statement, if any.
    pub statement: Option<Vec<u8>>,
    /// The signing key, if any.
    pub key: Option<&'a PrivateKey>,
}

/// How far the image's own push has come, as the attachments see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    /// Layers and configs are going up.
    Blobs,
    /// Every blob of the image is in the registry; its manifests are going up.
    BlobsIn,
    /// The push ended: `true` when the image is in the registry.
    Done(bool),
}

/// Attaches to the pushed artifact in `target`'s repository, all at once: each image's
/// SBOM, the provenance statement (a DSSE envelope, signed when there is a key) and the
/// signatures of the artifact and each of its images.
///
/// Blobs go up at once, beside the image's own blobs. Manifests and tags go up once
/// `pushed` says every blob of the image is in the registry, beside the image's own
/// manifests, and not at all when the push failed before that. The digests they name are
/// fixed before anything is pushed, so they never name the wrong image; if the image's
/// manifest `PUT` itself fails, they may name a digest the registry does not have yet, and
/// the rerun the failure asks for pushes exactly that digest.
async fn attach(
    client: &Client,
    target: &Reference,
    what: Attachments<'_>,
    pushed: watch::Receiver<Push>,
    report: &mut SupplyReport,
) -> anyhow::Result<()> {
    let Attachments {
        artifact,
        sboms,
        statement,
        key,
    } = what;
    let pushed = &pushed;
    // The empty config every artifact shares is looked for once.
    let shared = &SharedBlobs::default();
    let sbom_jobs = sboms.iter().map(|s| async move {
        let subject = Subject {
            media_type: kiln_attest::artifact::MANIFEST_MEDIA_TYPE.to_owned(),
            digest: s.digest.clone(),
            size: s.size,
        };
        let layers = vec![
            ArtifactLayer::titled(SPDX_MEDIA_TYPE, s.sboms.spdx.clone(), "sbom.spdx.json"),
            ArtifactLayer::titled(
                CYCLONEDX_MEDIA_TYPE,
                s.sboms.cyclonedx.clone(),
                "sbom.cdx.json",
            ),
        ];
        let manifest = artifact_manifest(SPDX_MEDIA_TYPE, Some(&subject), layers);
        let ready = image_blobs_in(pushed.clone());
        push_artifact(
            client,
            target,
            &subject,
            Attachment::Sbom,
            &manifest,
            shared,
            ready,
        )
        .await
        .context("attaching the SBOM")
    });
    let top = Subject {
        media_type: artifact.media_type().to_owned(),
        digest: artifact.digest().clone(),
        size: artifact.bytes().len() as u64,
    };
    let provenance_job = async {
        let Some(statement) = statement else {
            return Ok(None);
        };
        let envelope = match key {
            Some(k) => sign_envelope(IN_TOTO_PAYLOAD_TYPE, &statement, k),
            None => unsigned_envelope(&statement),
        };
        let mut layer = ArtifactLayer {
            media_type: DSSE_MEDIA_TYPE.to_owned(),
            bytes: serde_json::to_vec(&envelope)?,
            annotations: BTreeMap::new(),
        };
        layer.annotations.insert(
            PREDICATE_TYPE_ANNOTATION.to_owned(),
            SLSA_PROVENANCE_V1.to_owned(),
        );
        let manifest = artifact_manifest(DSSE_MEDIA_TYPE, Some(&top), vec![layer]);
        let ready = image_blobs_in(pushed.clone());
        let attached = push_artifact(
            client,
            target,
            &top,
            Attachment::Attestation,
            &manifest,
            shared,
            ready,
        )
        .await
        .context("attaching the provenance")?;
        anyhow::Ok(Some(ProvenanceReport {
            signed: key.is_some(),
            attached,
        }))
    };
    let mut signed: Vec<Digest> = vec![artifact.digest().clone()];
    if matches!(artifact, Artifact::Index(_)) {
        signed.extend(artifact.images().iter().map(|i| i.manifest_digest.clone()));
    }
    let sign_jobs = signed.iter().filter(|_| key.is_some()).map(|d| async move {
        let k = key.expect("filtered on a key");
        // The payload names the pushed tag for the top-level artifact, the repository for
        // the images of an index (nobody pulls those by that tag).
        let claim = if d == artifact.digest() {
            target.clone()
        } else {
            target.with_digest(d.clone())
        };
        let ready = image_blobs_in(pushed.clone());
        let (digest, attached) = crate::sign::sign(client, &claim, d, k, ready)
            .await
            .context("signing the image")?;
        anyhow::Ok((digest.to_string(), attached))
    });
    let (sbom_results, provenance, sign_results) = tokio::join!(
        futures_util::future::join_all(sbom_jobs),
        provenance_job,
        futures_util::future::join_all(sign_jobs),
    );
    for (entry, attached) in report.sboms.iter_mut().zip(sbom_results) {
        entry.attached = Some(attached?);
    }
    report.provenance = provenance?;
    for s in sign_results {
        report.signatures.push(s?);
    }
    Ok(())
}

/// Runs `deliver` (the image's push) and, with `attach_to`, the attachments of its target
/// beside it on another thread of `runtime` (their manifests wait for the image's blobs,
/// see [`attach`]); returns what `deliver` returned. `deliver` calls the function it is
/// given once every blob of the image is in the registry. A failed push fails; failed
/// attachments fail with [`attach_failure`].
pub fn deliver_and_attach<T>(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    attach_to: Option<(&Reference, Attachments<'_>)>,
    report: &mut SupplyReport,
    deliver: impl FnOnce(&(dyn Fn() + Sync)) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let (pushed_tx, pushed_rx) = watch::channel(Push::Blobs);
    let handle = runtime.handle().clone();
    let (delivered, attached) = std::thread::scope(|scope| {
        let for_attach = &mut *report;
        let attaching = attach_to.map(|(target, what)| {
            scope
                .spawn(move || handle.block_on(attach(client, target, what, pushed_rx, for_attach)))
        });
        // A receiver gone (nothing to attach) is fine.
        let delivered = deliver(&|| {
            let _ = pushed_tx.send(Push::BlobsIn);
        });
        let pushed_at = std::time::Instant::now();
        let _ = pushed_tx.send(Push::Done(delivered.is_ok()));
        let attached = attaching.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("attaching panicked")))
        });
        (
            delivered,
            attached.map(|a| (a, pushed_at.elapsed().as_millis())),
        )
    });
    let delivered = delivered?;
    if let Some((result, after_push_ms)) = attached {
        result.map_err(attach_failure)?;
        report.attach_after_push_ms = after_push_ms;
    }
    Ok(delivered)
}

/// Resolves once every blob of the image is in the registry; fails when its push failed
/// before that or was abandoned.
async fn image_blobs_in(mut pushed: watch::Receiver<Push>) -> anyhow::Result<()> {
    match pushed.wait_for(|p| *p != Push::Blobs).await.map(|p| *p) {
        Ok(Push::BlobsIn | Push::Done(true)) => Ok(()),
        _ => Err(anyhow::anyhow!("the image itself was not pushed")),
    }
}

/// Maps an attachment failure to the push exit code, with the hint that the image itself
/// is already in the registry.
pub fn attach_failure(e: anyhow::Error) -> Failure {
    Failure::new(exit::EXPORT, e).hint(Some(
        "the image itself was pushed; run the build again, or `kiln sign` it".into(),
    ))
}

fn unsigned_envelope(statement: &[u8]) -> Envelope {
    use base64::Engine as _;
    Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        payload: base64::engine::general_purpose::STANDARD.encode(statement),
        signatures: Vec::new(),
    }
}

/// Returns `os-arch[-variant]` of an image config, the file stem of its SBOMs.
fn platform_stem(config: &[u8]) -> String {
    match kiln_model::Platform::of_config(config) {
        Ok(p) => match p.variant {
            Some(v) => format!("{}-{}-{v}", p.os, p.architecture),
            None => format!("{}-{}", p.os, p.architecture),
        },
        Err(_) => "unknown-unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn attachments_wait_for_the_image_blobs_and_not_for_a_failed_push() {
        let rt = runtime();
        for (state, ok) in [
            (Push::BlobsIn, true),
            (Push::Done(true), true),
            (Push::Done(false), false),
        ] {
            let (tx, rx) = watch::channel(Push::Blobs);
            let waiting = image_blobs_in(rx);
            tx.send(state).unwrap();
            assert_eq!(rt.block_on(waiting).is_ok(), ok, "{state:?}");
        }
        // A push abandoned while its blobs were going up lets nothing through.
        let (tx, rx) = watch::channel(Push::Blobs);
        drop(tx);
        assert!(rt.block_on(image_blobs_in(rx)).is_err());
    }

    #[test]
    fn attachments_do_not_go_up_while_the_image_blobs_do() {
        let rt = runtime();
        let (_tx, rx) = watch::channel(Push::Blobs);
        let waited = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(50), image_blobs_in(rx)).await
        });
        assert!(waited.is_err(), "resolved before the image's blobs were in");
    }
}
