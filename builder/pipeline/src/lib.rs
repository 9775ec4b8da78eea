//! kiln's build pipeline as a library: the phases of `kiln build`, `kiln base build` and
//! `kiln rebase`, each a struct of plain inputs with one method, `run`:
//!
//! | phase | struct | crate |
//! |---|---|---|
//! | restore the build cache | [`Restore`] | here |
//! | detect the app | [`kiln_lifecycle::Detect`] | lifecycle |
//! | build it | [`kiln_lifecycle::Build`] | lifecycle |
//! | export its layers | [`kiln_lifecycle::Export`] | lifecycle |
//! | attest: SBOM, provenance, signatures | [`Attest`] | here |
//! | deliver: registry, OCI layout, archive | [`Deliver`] | here |
//!
//! [`Creator`] runs them in order, as `kiln build` does; [`AssembleBase`] and
//! [`RebaseApp`] are the first steps of `kiln base build` and `kiln rebase`, which then
//! deliver the same way. Progress goes to a [`Progress`] (the CLI renders it; [`Quiet`]
//! ignores it). Errors say what failed, never which command-line flag would fix it: that is
//! the CLI's to say.
//!
//! Build a Go app from its source directory into kiln's local store:
//!
//! ```
//! use kiln_pipeline::{Creator, Quiet, Session, default_buildpacks};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let app = dir.path().join("hello");
//! # std::fs::create_dir(&app)?;
//! # std::fs::write(app.join("go.mod"), "module example.com/hello\n\ngo 1.21\n")?;
//! # std::fs::write(app.join("main.go"), "package main\n\nfunc main() { println(\"hello\") }\n")?;
//! # let cache_dir = dir.path().join("cache");
//! let session = Session::open(Default::default())?;
//! let store = session.store(&cache_dir)?;
//! let buildpacks = default_buildpacks();
//! let target = "registry.example.com/team/hello:1".parse()?;
//! let mut creator = Creator::new(&session, &store, &buildpacks, &app, &cache_dir, target);
//! creator.env.insert("PATH".into(), std::env::var("PATH")?);
//! let created = creator.run(&Quiet)?;
//!
//! assert_eq!(created.buildpack, "kiln/go");
//! println!("saved as {}", created.digest());
//! # Ok(())
//! # }
//! ```

mod attach;
mod attest;
mod base;
mod creator;
mod curated;
mod deliver;
mod error;
mod inspect;
mod local;
mod platforms;
mod preflight;
mod progress;
mod prune;
mod rebase;
mod restore;
mod run_image;
mod session;
mod sign;
mod source;
mod stream;

pub use attach::{AttachError, Attached, find, read_blob};
pub use attest::{
    Attest, AttestError, Attestations, BuildProvenance, ImageSbom, ProvenanceReport, SbomReport,
    Sboms, SupplyReport, ecosystem_name, provenance_statement, summary,
};
pub use base::{AssembleBase, BaseError};
pub use creator::{CreateError, Created, Creator, ProvenanceSettings, Timings, WORKSPACE};
pub use curated::{
    BaseRegistry, BaseRegistryError, BuildCurated, CURATED_PREFIX, CuratedError, curated_base,
    curated_names, unpack as unpack_curated,
};
pub use deliver::{AttachReport, Deliver, DeliverError, Delivered, sinks};
pub use error::{causes, human_bytes};
pub use inspect::{
    EnvelopeStatus, InspectError, Inspection, LayerRow, ProvenanceRow, SbomSummary, inspect,
    inspect_layout,
};
pub use local::{LocalImage, cache_usage, local_images, remove_local};
pub use platforms::{is_host, parse_platform, parse_platforms};
pub use preflight::{PreflightError, preflight};
pub use progress::{Progress, Quiet};
pub use prune::{PruneError, PrunePolicy, PruneReason, Pruned, PrunedItem, prune};
pub use rebase::{RebaseApp, RebaseAppError, RebaseOutcome, RebaseResult};
pub use restore::{CacheReport, Restore};
pub use run_image::{
    GENERATED_BASE, RunImageChoice, RunImageError, RunImageSources, choose_run_image,
    resolve_run_image, run_image_info,
};
pub use session::IN_USE_LOCK;
pub use session::{Session, SessionError, Store};
pub use sign::{FoundSignature, Signature, SignatureStatus, resolve, signatures};
pub use source::{ImageSource, SourceError, names_a_registry, read_image};
pub use stream::{StreamError, newest_in_stream};

use kiln_lifecycle::Buildpack;

/// Returns kiln's buildpacks, in the order detect asks them: Go, Java, Node.js.
pub fn default_buildpacks() -> Vec<Box<dyn Buildpack>> {
    vec![
        Box::new(kiln_buildpack_go::GoBuildpack),
        Box::new(kiln_buildpack_java::JavaBuildpack),
        Box::new(kiln_buildpack_node::NodeBuildpack),
    ]
}
