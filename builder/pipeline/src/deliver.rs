//! The deliver phase: an image (or index) written to each of its sinks, in order, and its
//! attestations attached in its registry beside the push, not after it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use kiln_attest::artifact::{
    ArtifactLayer, Attachment, CYCLONEDX_MEDIA_TYPE, DSSE_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION, SPDX_MEDIA_TYPE, Subject, artifact_manifest,
};
use kiln_attest::sign::SLSA_PROVENANCE_V1;
use kiln_image::{
    ArchiveSink, BlobOutcome, Blobs, Destination, ImageError, LayoutSink, PushObserver,
    RegistrySink, Sink, Written,
};
use kiln_model::Artifact;
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use tokio::sync::watch;

use crate::attach::{AttachError, Attached, SharedBlobs, push_artifact};
use crate::attest::{Attestations, ImageSbom, ProvenanceReport, SupplyReport};
use crate::{Progress, Store};
use kiln_attest::sign::Envelope;

/// Why delivering failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The push to the registry failed: the tag was not moved.
    #[error("pushing `{target}`")]
    Push {
        /// The reference pushed.
        target: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// Writing an OCI layout or archive failed.
    #[error("writing `{destination}`")]
    Write {
        /// The layout or archive.
        destination: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// The image is in the registry, and an attachment did not make it.
    #[error("{what}")]
    Attach {
        /// `attaching the SBOM`, `attaching the provenance`, `signing the image`.
        what: &'static str,
        /// Why.
        #[source]
        source: AttachError,
    },
}

/// The deliver phase's inputs.
pub struct Deliver<'a> {
    /// The client attachments are pushed with.
    pub client: &'a Client,
    /// Resolves the artifact's layer blobs.
    pub blobs: &'a Blobs,
    /// Where the artifact goes, in order: a registry, kiln's store, an archive.
    pub sinks: &'a [Box<dyn Sink>],
    /// What to attach, and the repository it goes to (the pushed one).
    pub attach: Option<(&'a Reference, &'a Attestations)>,
}

/// Returns where an artifact named `name` goes: `publish`'s registry repository, else
/// kiln's `store`; and also `archive`, an OCI archive file.
pub fn sinks(
    client: &Client,
    publish: Option<&Reference>,
    store: &Store,
    name: &str,
    archive: Option<&Path>,
) -> Vec<Box<dyn Sink>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    match publish {
        Some(target) => sinks.push(Box::new(RegistrySink {
            client: client.clone(),
            target: target.clone(),
            skip_when_tagged: true,
        })),
        None => sinks.push(Box::new(LayoutSink {
            dir: store.dir().to_path_buf(),
            name: name.to_owned(),
        })),
    }
    if let Some(path) = archive {
        sinks.push(Box::new(ArchiveSink {
            path: path.to_path_buf(),
            name: name.to_owned(),
        }));
    }
    sinks
}

/// What the deliver phase did.
pub struct Delivered {
    /// What each sink did, in order.
    pub written: Vec<Written>,
    /// Where the attestations went, when there were any.
    pub attached: Option<AttachReport>,
}

impl Delivered {
    /// Returns the registry push's report, if the artifact was pushed.
    pub fn push_report(&self) -> Option<&kiln_image::PushReport> {
        self.written.iter().find_map(Written::push_report)
    }
}

/// Where the attestations went.
#[derive(Clone, Debug, Default)]
pub struct AttachReport {
    /// Each image's SBOM, in the order of [`Attestations::sboms`].
    pub sboms: Vec<Attached>,
    /// The provenance, if any, and whether it was signed.
    pub provenance: Option<ProvenanceReport>,
    /// For an index: each image's provenance.
    pub image_provenance: Vec<ProvenanceReport>,
    /// The signatures: the signed digest and where each went.
    pub signatures: Vec<(String, Attached)>,
    /// How long attaching went on after the image's own push, in milliseconds.
    pub after_push_ms: u128,
}

impl SupplyReport {
    /// Records where the attestations went.
    pub fn record(&mut self, attached: AttachReport) {
        for (entry, a) in self.sboms.iter_mut().zip(attached.sboms) {
            entry.attached = Some(a);
        }
        self.provenance = attached.provenance;
        self.image_provenance = attached.image_provenance;
        self.signatures = attached.signatures;
        self.attach_after_push_ms = attached.after_push_ms;
    }
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

impl Deliver<'_> {
    /// Writes `artifact` to every sink and, when there is something to attach, attaches it
    /// meanwhile: attachment blobs go up at once, their manifests once every blob of the
    /// image is in the registry (never when its push failed before that). The digests they
    /// name are fixed before anything is pushed, so they never name the wrong image; if the
    /// image's own manifest `PUT` fails, they may name a digest the registry does not have
    /// yet, and the rerun that failure asks for pushes exactly that digest. A failed write
    /// fails first; then a failed attachment.
    pub async fn run(
        &self,
        artifact: Artifact<'_>,
        progress: &dyn Progress,
    ) -> Result<Delivered, DeliverError> {
        let (pushed_tx, pushed_rx) = watch::channel(Push::Blobs);
        let pushed_at = std::sync::OnceLock::new();
        let writing = async {
            let written = self
                .write_all(artifact, progress, &|| {
                    // A receiver gone (nothing to attach) is fine.
                    let _ = pushed_tx.send(Push::BlobsIn);
                })
                .await;
            let _ = pushed_tx.send(Push::Done(written.is_ok()));
            let _ = pushed_at.set(Instant::now());
            written
        };
        let attaching = async {
            match self.attach {
                Some((target, what)) => {
                    Some(attach(self.client, target, artifact, what, pushed_rx).await)
                }
                None => None,
            }
        };
        let (written, attached) = tokio::join!(writing, attaching);
        let written = written?;
        let attached = match attached {
            Some(result) => Some(AttachReport {
                after_push_ms: pushed_at.get().map_or(0, |t| t.elapsed().as_millis()),
                ..result?
            }),
            None => None,
        };
        Ok(Delivered { written, attached })
    }

    /// Writes `artifact` to each sink in turn; `blobs_in` is called once a sink has every
    /// blob in place, before its manifests.
    async fn write_all(
        &self,
        artifact: Artifact<'_>,
        progress: &dyn Progress,
        blobs_in: &(dyn Fn() + Sync),
    ) -> Result<Vec<Written>, DeliverError> {
        let mut written = Vec::new();
        for sink in self.sinks {
            let destination = sink.destination();
            if let Destination::Registry(_) = destination {
                progress.phase("PUSHING");
            }
            let observer = Signalling {
                inner: progress.push_observer(),
                blobs_in,
            };
            let done = sink
                .write(artifact, self.blobs, &observer)
                .await
                .map_err(|source| match destination {
                    Destination::Registry(target) => DeliverError::Push {
                        target: target.to_string(),
                        source,
                    },
                    _ => DeliverError::Write {
                        destination: sink.to_string(),
                        source,
                    },
                })?;
            progress.delivered(destination, &done);
            written.push(done);
        }
        Ok(written)
    }
}

/// Attaches `what` to the pushed `artifact` in `target`'s repository, all at once: each
/// image's SBOM, the provenance envelope and the signatures.
async fn attach(
    client: &Client,
    target: &Reference,
    artifact: Artifact<'_>,
    what: &Attestations,
    pushed: watch::Receiver<Push>,
) -> Result<AttachReport, DeliverError> {
    // The empty config every artifact shares is looked for once.
    let shared = &SharedBlobs::default();
    let to = &Attaching {
        client,
        target,
        shared,
        pushed: &pushed,
    };
    let top = Subject {
        media_type: artifact.media_type().to_owned(),
        digest: artifact.digest().clone(),
        size: artifact.bytes().len() as u64,
    };
    let provenance_job = async {
        match &what.provenance {
            Some(envelope) => to.provenance(&top, envelope).await.map(Some),
            None => Ok(None),
        }
    };
    // Each image of an index carries its own provenance, as it carries its own SBOM.
    let images = artifact.images();
    let image_provenance_jobs = what.image_provenance.iter().map(|(digest, envelope)| {
        let size = images
            .iter()
            .find(|i| &i.manifest_digest == digest)
            .map_or(0, |i| i.manifest_bytes.len() as u64);
        let subject = Subject {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            digest: digest.clone(),
            size,
        };
        async move { to.provenance(&subject, envelope).await }
    });
    let sign_jobs = what.signatures.iter().map(|s| async move {
        let ready = image_blobs_in(to.pushed.clone());
        let attached = s
            .push(client, target, ready)
            .await
            .map_err(failed("signing the image"))?;
        Ok::<_, DeliverError>((s.digest.to_string(), attached))
    });
    let (sboms, provenance, image_provenance, signatures) = tokio::join!(
        futures_util::future::join_all(what.sboms.iter().map(|s| to.sbom(s))),
        provenance_job,
        futures_util::future::join_all(image_provenance_jobs),
        futures_util::future::join_all(sign_jobs),
    );
    Ok(AttachReport {
        sboms: sboms.into_iter().collect::<Result<_, _>>()?,
        provenance: provenance?,
        image_provenance: image_provenance.into_iter().collect::<Result<_, _>>()?,
        signatures: signatures.into_iter().collect::<Result<_, _>>()?,
        after_push_ms: 0,
    })
}

/// Returns a function turning an attachment error into a [`DeliverError`] saying what
/// was being attached.
fn failed(what: &'static str) -> impl Fn(AttachError) -> DeliverError {
    move |source| DeliverError::Attach { what, source }
}

/// Where attachments go, once the image they name is in the registry.
struct Attaching<'a> {
    client: &'a Client,
    target: &'a Reference,
    shared: &'a SharedBlobs,
    pushed: &'a watch::Receiver<Push>,
}

impl Attaching<'_> {
    /// Attaches one image's SBOMs (SPDX and CycloneDX, one artifact).
    async fn sbom(&self, s: &ImageSbom) -> Result<Attached, DeliverError> {
        let subject = Subject {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
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
        let ready = image_blobs_in(self.pushed.clone());
        push_artifact(
            self.client,
            self.target,
            &subject,
            Attachment::Sbom,
            &manifest,
            self.shared,
            ready,
        )
        .await
        .map_err(failed("attaching the SBOM"))
    }

    /// Attaches a provenance envelope to `top`: the pushed image or index, or an image of
    /// the index.
    async fn provenance(
        &self,
        top: &Subject,
        envelope: &Envelope,
    ) -> Result<ProvenanceReport, DeliverError> {
        let bytes = serde_json::to_vec(envelope)
            .map_err(|e| failed("attaching the provenance")(AttachError::Envelope(e)))?;
        let layer = ArtifactLayer {
            media_type: DSSE_MEDIA_TYPE.to_owned(),
            bytes,
            annotations: BTreeMap::from([(
                PREDICATE_TYPE_ANNOTATION.to_owned(),
                SLSA_PROVENANCE_V1.to_owned(),
            )]),
        };
        let manifest = artifact_manifest(DSSE_MEDIA_TYPE, Some(top), vec![layer]);
        let ready = image_blobs_in(self.pushed.clone());
        let attached = push_artifact(
            self.client,
            self.target,
            top,
            Attachment::Attestation,
            &manifest,
            self.shared,
            ready,
        )
        .await
        .map_err(failed("attaching the provenance"))?;
        Ok(ProvenanceReport {
            signed: !envelope.signatures.is_empty(),
            attached,
        })
    }
}

/// Resolves once every blob of the image is in the registry; fails when its push failed
/// before that or was abandoned.
async fn image_blobs_in(mut pushed: watch::Receiver<Push>) -> Result<(), AttachError> {
    match pushed.wait_for(|p| *p != Push::Blobs).await.map(|p| *p) {
        Ok(Push::BlobsIn | Push::Done(true)) => Ok(()),
        _ => Err(AttachError::ImageNotPushed),
    }
}

/// The progress's push observer, and a signal once every blob is in.
struct Signalling<'a> {
    inner: Box<dyn PushObserver + 'a>,
    blobs_in: &'a (dyn Fn() + Sync),
}

impl PushObserver for Signalling<'_> {
    fn started(&self, digest: &Digest, size: u64) {
        self.inner.started(digest, size);
    }

    fn progress(&self, digest: &Digest, sent: u64) {
        self.inner.progress(digest, sent);
    }

    fn finished(&self, digest: &Digest, outcome: &BlobOutcome) {
        self.inner.finished(digest, outcome);
    }

    fn blobs_pushed(&self) {
        (self.blobs_in)();
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
