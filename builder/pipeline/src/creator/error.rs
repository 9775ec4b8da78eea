//! Why a build failed, by the phase that failed.

use std::path::PathBuf;

use kiln_lifecycle::{ExportError, PhaseError};
use kiln_model::ModelError;

use crate::attest::AttestError;
use crate::deliver::DeliverError;
use crate::preflight::PreflightError;
use crate::run_image::RunImageError;

/// Why a build failed, by the phase that failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The buildpack asked for is not one of the creator's.
    #[error("there is no buildpack `{id}`")]
    UnknownBuildpack {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: Vec<&'static str>,
    },
    /// The registry will not take the push: checked before building.
    #[error(transparent)]
    Preflight(Box<PreflightError>),
    /// No buildpack, or more than one, recognised the app.
    #[error(transparent)]
    Detect(PhaseError),
    /// The run image could not be chosen or read.
    #[error(transparent)]
    RunImage(Box<RunImageError>),
    /// The build's scratch directory could not be claimed.
    #[error("claiming a scratch directory in `{}`", dir.display())]
    Scratch {
        /// The directory scratch directories live in.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The buildpack's build failed: the app's (a compile error) or kiln's.
    #[error(transparent)]
    Build(PhaseError),
    /// The layers or the image could not be written.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The image could not be assembled.
    #[error(transparent)]
    Assemble(#[from] ModelError),
    /// An SBOM could not be made.
    #[error(transparent)]
    Attest(Box<AttestError>),
    /// The image could not be pushed or saved, or its attestations attached.
    #[error(transparent)]
    Deliver(Box<DeliverError>),
}

impl CreateError {
    /// Returns the phase that failed: `preflight`, `detect`, `run-image`, `build`,
    /// `export`, `attest` or `deliver`.
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Preflight(_) => "preflight",
            Self::UnknownBuildpack { .. } | Self::Detect(_) => "detect",
            Self::RunImage(_) => "run-image",
            Self::Scratch { .. } | Self::Build(_) => "build",
            Self::Export(_) | Self::Assemble(_) => "export",
            Self::Attest(_) => "attest",
            Self::Deliver(_) => "deliver",
        }
    }
}

/// Errors of the phases that carry an image's error are boxed, so a build's `Result`
/// stays small.
macro_rules! boxed_from {
    ($($error:ident => $variant:ident),*) => {$(
        impl From<$error> for CreateError {
            fn from(e: $error) -> Self {
                Self::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(RunImageError => RunImage, AttestError => Attest, DeliverError => Deliver);
