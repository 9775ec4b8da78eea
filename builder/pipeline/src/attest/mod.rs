//! The attest phase: what vouches for an image before it goes out. SBOMs of every image
//! (cataloged from its layers, written as files when asked), the build's provenance (an
//! in-toto statement in a DSSE envelope, signed when there is a key) and the images'
//! signatures. Nothing here talks to a registry: [`crate::Deliver`] pushes it all beside
//! the image.

mod provenance;
mod sbom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use kiln_attest::sign::{Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, sign_envelope};
use kiln_image::{Blobs, ImageError};
use kiln_lifecycle::DeclaredPackage;
use kiln_model::{Artifact, Platform};
use kiln_oci::{Digest, Reference};
use serde::Serialize;

pub use provenance::{BuildProvenance, provenance_statement};
pub use sbom::{Sboms, catalog_written, ecosystem_name, summary};

use crate::Progress;
use crate::attach::Attached;
use crate::sign::Signature;

/// Why attesting failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// A layer could not be read for its SBOM.
    #[error("reading layer `{digest}` for the SBOM")]
    Layer {
        /// The layer's digest.
        digest: Digest,
        /// Why (boxed: an image error is large).
        #[source]
        source: Box<ImageError>,
    },
    /// A layer's files could not be cataloged.
    #[error("cataloging layer `{digest}`")]
    Catalog {
        /// The layer's digest.
        digest: Digest,
        /// Why.
        #[source]
        source: kiln_attest::sbom::SbomError,
    },
    /// A file operation failed.
    #[error("{doing} `{}`", path.display())]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A cataloging task panicked.
    #[error("cataloging a layer: the task panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// The attest phase's inputs.
pub struct Attest<'a> {
    /// Resolves the images' layers (fetching what only a registry has).
    pub blobs: &'a Blobs,
    /// Where cataloged layers are remembered (by digest), so a rebuild catalogs only new
    /// layers.
    pub cache_dir: &'a Path,
    /// Whether to make SBOMs at all.
    pub sbom: bool,
    /// Also write each image's SBOMs into this directory (`sbom.spdx.json`,
    /// `sbom.cdx.json`; per platform, `linux-arm64.spdx.json`, for an index).
    pub sbom_dir: Option<&'a Path>,
    /// The repository the SBOMs name as their subject.
    pub name: &'a str,
    /// The packages the buildpack declared (found in no file of a layer).
    pub declared: &'a [DeclaredPackage],
    /// The documents' creation time (unix seconds): the build epoch, for reproducible SBOMs.
    pub created: i64,
    /// Sign the artifact (and each image of an index) and the provenance with this key.
    pub key: Option<&'a PrivateKey>,
    /// The reference the signatures claim: the tag the artifact is pushed as.
    pub target: Option<&'a Reference>,
    /// The provenance statement ([`provenance_statement`]) to put in an envelope.
    pub statement: Option<Vec<u8>>,
    /// For an index: each image's own provenance statement, by the image's digest.
    pub image_statements: Vec<(Digest, Vec<u8>)>,
}

/// What the attest phase made, ready to attach.
pub struct Attestations {
    /// The SBOM of each image of the artifact.
    pub sboms: Vec<ImageSbom>,
    /// The provenance envelope, signed when there was a key.
    pub provenance: Option<Envelope>,
    /// For an index: each image's provenance envelope, by the image's digest.
    pub image_provenance: Vec<(Digest, Envelope)>,
    /// The signatures of the artifact and, for an index, of each of its images.
    pub signatures: Vec<Signature>,
    /// What it did, for the report; attaching fills in where things went.
    pub report: SupplyReport,
}

/// The SBOM of one image of what was built.
pub struct ImageSbom {
    /// The image manifest's digest (the SBOM's subject).
    pub digest: Digest,
    /// The image manifest's size.
    pub size: u64,
    /// Both documents.
    pub sboms: Sboms,
}

/// What the supply-chain steps did, for a build report.
#[derive(Debug, Default, Serialize)]
pub struct SupplyReport {
    /// Per image: packages found, files written, where the SBOM was attached.
    pub sboms: Vec<SbomReport>,
    /// Signatures pushed: the signed digest and where the signature went.
    pub signatures: Vec<(String, Attached)>,
    /// The provenance attestation, when attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceReport>,
    /// For an index: each image's own provenance attestation, in the index's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_provenance: Vec<ProvenanceReport>,
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
    /// Files written into the SBOM directory.
    pub files: Vec<PathBuf>,
    /// Where it was attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached: Option<Attached>,
}

/// The provenance in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ProvenanceReport {
    /// Whether the envelope is signed.
    pub signed: bool,
    /// Where it was attached.
    pub attached: Attached,
}

impl Attest<'_> {
    /// Catalogs every image of `artifact` and writes its SBOMs; puts the provenance in its
    /// envelope; signs.
    pub async fn run(
        &self,
        artifact: Artifact<'_>,
        progress: &dyn Progress,
    ) -> Result<Attestations, AttestError> {
        let started = Instant::now();
        let (sboms, reports): (Vec<ImageSbom>, Vec<SbomReport>) = match self.sbom {
            true => self.sboms(artifact, progress).await?.into_iter().unzip(),
            false => Default::default(),
        };
        let report = SupplyReport {
            sboms: reports,
            sbom_ms: if self.sbom {
                started.elapsed().as_millis()
            } else {
                0
            },
            ..Default::default()
        };
        let envelope = |statement: &[u8]| match self.key {
            Some(k) => sign_envelope(IN_TOTO_PAYLOAD_TYPE, statement, k),
            None => unsigned_envelope(statement),
        };
        let provenance = self.statement.as_deref().map(envelope);
        let image_provenance = self
            .image_statements
            .iter()
            .map(|(digest, statement)| (digest.clone(), envelope(statement)))
            .collect();
        let signatures = match (self.key, self.target) {
            (Some(key), Some(target)) => signed_digests(artifact)
                .into_iter()
                // The payload names the pushed tag, for an index and for each of its images
                // alike: a client pulling the tag (containers/image, so podman) checks the
                // signature of the image it picks from the index under that very name.
                .map(|d| Signature::new(target, &d, key))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Attestations {
            sboms,
            provenance,
            image_provenance,
            signatures,
            report,
        })
    }

    /// Returns each image's SBOM and its report entry.
    async fn sboms(
        &self,
        artifact: Artifact<'_>,
        progress: &dyn Progress,
    ) -> Result<Vec<(ImageSbom, SbomReport)>, AttestError> {
        let images = artifact.images();
        let mut out = Vec::new();
        for image in &images {
            let found =
                sbom::catalog(&image.layers, self.declared, self.blobs, self.cache_dir).await?;
            progress.info(&format!("SBOM: {}", summary(&found)));
            let sboms = sbom::documents(self.name, &image.manifest_digest, found, self.created);
            let files = match self.sbom_dir {
                Some(dir) => {
                    let stem = match images.len() {
                        1 => "sbom".to_owned(),
                        _ => platform_stem(&image.config_bytes),
                    };
                    sbom::write(dir, &stem, &sboms)?
                }
                None => Vec::new(),
            };
            let report = SbomReport {
                image: image.manifest_digest.to_string(),
                packages: sboms
                    .catalog
                    .counts()
                    .into_iter()
                    .map(|(e, n)| (ecosystem_name(e).to_owned(), n))
                    .collect(),
                files,
                attached: None,
            };
            let sbom = ImageSbom {
                digest: image.manifest_digest.clone(),
                size: image.manifest_bytes.len() as u64,
                sboms,
            };
            out.push((sbom, report));
        }
        Ok(out)
    }
}

/// Returns the digests a signature vouches for: the artifact's, and for an index each of its
/// images' too.
fn signed_digests(artifact: Artifact<'_>) -> Vec<Digest> {
    let mut signed = vec![artifact.digest().clone()];
    if matches!(artifact, Artifact::Index(_)) {
        signed.extend(artifact.images().iter().map(|i| i.manifest_digest.clone()));
    }
    signed
}

fn unsigned_envelope(statement: &[u8]) -> Envelope {
    Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        payload: base64::engine::general_purpose::STANDARD.encode(statement),
        signatures: Vec::new(),
    }
}

/// Returns `os-arch[-variant]` of an image config, the file stem of its SBOMs.
fn platform_stem(config: &[u8]) -> String {
    match Platform::of_config(config) {
        Ok(p) => match p.variant {
            Some(v) => format!("{}-{}-{v}", p.os, p.architecture),
            None => format!("{}-{}", p.os, p.architecture),
        },
        Err(_) => "unknown-unknown".to_owned(),
    }
}
