//! Choosing a build's run image before the build, so a buildpack can check that the app
//! will run on it (the Node.js a Node base holds, its platform) before any work: the one
//! named, else the one the buildpack's plan asks for, else its stack's; kiln's generated
//! minimal base where that is enough (static binaries) and the curated one is missing.

use kiln_image::layout_has;
use kiln_layer::Compression;
use kiln_lifecycle::{
    ExportError, Plan, RUN_IMAGE_FACT, RunImage, RunImageInfo, host_arch, stack_for,
    static_base_for,
};
use kiln_model::{ModelError, Platform};
use kiln_oci::ReferenceError;
use kiln_registry::Client;

use crate::curated::{BaseRegistry, BaseRegistryError, CuratedError, curated_base};
use crate::source::{ImageSource, SourceError, names_a_registry, read_image};
use crate::{Progress, Store};

/// The name the generated minimal base is recorded under.
pub const GENERATED_BASE: &str = "kiln:static";

/// Why there is no run image.
#[derive(Debug, thiserror::Error)]
pub enum RunImageError {
    /// The stack's curated base is not in kiln's store, and the app needs it (it is not a
    /// static binary).
    #[error("the run image `{name}` is not in kiln's store, and this app needs it")]
    NotInStore {
        /// The curated base's name in the store (`kiln-base/node`).
        name: String,
    },
    /// The stack names its run image in a way that is no reference.
    #[error("the run image `{name}` is no image reference")]
    Reference {
        /// The name.
        name: String,
        /// Why it does not parse.
        #[source]
        source: ReferenceError,
    },
    /// The run image could not be read.
    #[error(transparent)]
    Read(Box<SourceError>),
    /// `[io.kiln] base-registry` is no registry.
    #[error("`[io.kiln] base-registry` in project.toml")]
    BaseRegistrySetting(#[source] BaseRegistryError),
    /// The curated base could not be read from the base registry.
    #[error("reading the curated base `{base}` from the base registry `{registry}`")]
    BaseRegistry {
        /// The base: `node`.
        base: &'static str,
        /// The base registry.
        registry: BaseRegistry,
        /// Why.
        #[source]
        source: Box<SourceError>,
    },
    /// The curated base the store lacked could not be built from kiln's embedded lock.
    #[error(transparent)]
    Curated(Box<CuratedError>),
    /// The run image has no image for a platform the build is for.
    #[error("the run image `{name}` has no image for `{wanted}` (it gave one for `{has}`)")]
    OtherPlatform {
        /// The run image.
        name: String,
        /// The platform asked for.
        wanted: String,
        /// The platform of the image it gave.
        has: String,
    },
    /// kiln's generated base could not be written.
    #[error("generating kiln's minimal base")]
    Generate(#[source] ExportError),
    /// kiln's generated base could not be assembled.
    #[error("assembling kiln's minimal base")]
    Assemble(#[source] ModelError),
}

/// Where a build's run image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunImageChoice {
    /// An image to read: named by the user, by the buildpack's plan or by its stack.
    Named(ImageSource),
    /// A curated base (`node`), from the base registry.
    Published {
        /// The base.
        base: &'static str,
        /// The registry.
        registry: BaseRegistry,
    },
    /// kiln's generated minimal base.
    Generated,
}

/// Where a build looks for the run image its buildpack's stack names.
#[derive(Clone, Copy)]
pub struct RunImageSources<'a> {
    /// kiln's local store.
    pub store: &'a Store,
    /// Where curated bases are published, if anywhere: they are pulled from there, not taken
    /// from the store.
    pub base_registry: Option<&'a BaseRegistry>,
}

/// Returns the run image of a build by `buildpack` with `plan`: `named` (the user's
/// choice), else the image the plan asks for, else the stack's (see [`stack_image`]), else
/// kiln's generated base.
pub fn choose_run_image(
    named: Option<&ImageSource>,
    plan: &Plan,
    buildpack: &str,
    sources: RunImageSources<'_>,
    progress: &dyn Progress,
) -> Result<RunImageChoice, RunImageError> {
    if let Some(source) = named {
        return Ok(RunImageChoice::Named(source.clone()));
    }
    if let Some(wanted) = plan.facts.get(RUN_IMAGE_FACT) {
        return stack_image(wanted, false, sources, progress);
    }
    match stack_for(buildpack) {
        Some(stack) => stack_image(&stack.run_image, stack.static_fallback, sources, progress),
        None => Ok(RunImageChoice::Generated),
    }
}

/// Returns `run_image`: from the base registry when it is a curated base and there is one;
/// else itself when it is a registry reference or kiln's store has it; else kiln's generated
/// minimal base if `static_fallback` (enough for static binaries), else
/// [`RunImageError::NotInStore`].
fn stack_image(
    run_image: &str,
    static_fallback: bool,
    RunImageSources {
        store,
        base_registry,
    }: RunImageSources<'_>,
    progress: &dyn Progress,
) -> Result<RunImageChoice, RunImageError> {
    if let (Some(registry), Some(base)) = (base_registry, curated_base(run_image)) {
        return Ok(RunImageChoice::Published {
            base,
            registry: registry.clone(),
        });
    }
    if names_a_registry(run_image) || layout_has(store.dir(), run_image) {
        let source = ImageSource::parse(run_image, store.dir()).map_err(|source| {
            RunImageError::Reference {
                name: run_image.to_owned(),
                source,
            }
        })?;
        return Ok(RunImageChoice::Named(source));
    }
    if static_fallback {
        progress.generated_base(run_image);
        return Ok(RunImageChoice::Generated);
    }
    Err(RunImageError::NotInStore {
        name: run_image.to_owned(),
    })
}

/// Reads the chosen run image for `platform` (else this host's platform), or generates
/// kiln's minimal base (its files dated `epoch`). An image asked for a platform must be for
/// it: an index without it, or a single image of another, is refused.
pub async fn resolve_run_image(
    choice: &RunImageChoice,
    client: &Client,
    store: &Store,
    (epoch, compression): (i64, Compression),
    platform: Option<&Platform>,
) -> Result<RunImage, RunImageError> {
    let run = read_run_image(choice, client, store, (epoch, compression), platform).await?;
    let Some(wanted) = platform else {
        return Ok(run);
    };
    let config = &run.image.config;
    let has = format!("{}/{}", config.os(), config.architecture());
    if has != format!("{}/{}", wanted.os, wanted.architecture) {
        return Err(RunImageError::OtherPlatform {
            name: run.name,
            wanted: wanted.to_string(),
            has,
        });
    }
    Ok(run)
}

async fn read_run_image(
    choice: &RunImageChoice,
    client: &Client,
    store: &Store,
    (epoch, compression): (i64, Compression),
    platform: Option<&Platform>,
) -> Result<RunImage, RunImageError> {
    let arch = platform.map_or(host_arch(), |p| p.architecture.as_str());
    match choice {
        RunImageChoice::Named(source) => {
            let platform = ("linux", arch);
            Ok(read_image(source, "run image", client, store, platform).await?)
        }
        RunImageChoice::Published { base, registry } => {
            let source =
                ImageSource::parse(&registry.image(base), store.dir()).map_err(|source| {
                    RunImageError::Reference {
                        name: registry.image(base),
                        source,
                    }
                })?;
            let platform = ("linux", arch);
            read_image(&source, "run image", client, store, platform)
                .await
                .map_err(|source| RunImageError::BaseRegistry {
                    base,
                    registry: registry.clone(),
                    source: Box::new(source),
                })
        }
        RunImageChoice::Generated => {
            let image = static_base_for(
                (arch, platform.and_then(|p| p.variant.as_deref())),
                epoch,
                compression,
                store.blobs().store(),
            )
            .map_err(RunImageError::Generate)?;
            let digest = image
                .finalize()
                .map_err(RunImageError::Assemble)?
                .manifest_digest;
            Ok(RunImage {
                image,
                digest,
                name: GENERATED_BASE.into(),
            })
        }
    }
}

/// Returns what a buildpack may know of the run image: name, platform, labels.
pub fn run_image_info(run: &RunImage) -> RunImageInfo {
    let config = &run.image.config;
    RunImageInfo {
        name: run.name.clone(),
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        labels: config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

impl From<SourceError> for RunImageError {
    fn from(e: SourceError) -> Self {
        Self::Read(Box::new(e))
    }
}
