//! The creator: `kiln build` as one call. Restore, detect, build, export, attest and
//! deliver, each a phase of its own, run in that order on a source directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_attest::sign::PrivateKey;
use kiln_debian::Mirrors;
use kiln_layer::Compression;
use kiln_lifecycle::{
    Build, BuildResult, Buildpack, Confinement, Detect, ExportedLayer, GitInfo, ImageSettings,
    LayerCache, Plan, ProjectDescriptor, RunImage, SOURCE_ROOT_REASON_FACT, SandboxSettings,
    Scratch, build_epoch, git_info, source_root,
};
use kiln_model::{FinalImage, FinalIndex, Platform};
use kiln_oci::{Digest, Reference};
use serde::Serialize;

use crate::attest::SupplyReport;
use crate::curated::{BaseRegistry, curated_base};
use crate::deliver::Delivered;
use crate::human_bytes;
use crate::preflight::preflight;
use crate::restore::{self, CacheReport, Restore};
use crate::run_image::{
    RunImageChoice, RunImageError, RunImageSources, choose_run_image, run_image_info,
};
use crate::source::ImageSource;
use crate::{Progress, Session, Store, is_host};

mod error;
mod finish;
mod platforms;
mod run_images;

pub use error::CreateError;

/// The image directory apps run in.
pub const WORKSPACE: &str = "/workspace";

/// What the provenance of a pushed build says beyond the build itself.
#[derive(Clone, Debug, Default)]
pub struct ProvenanceSettings {
    /// Who builds: a URI naming the CI system or machine.
    pub builder_id: String,
    /// The names of the variables the user set for the build.
    pub env_names: Vec<String>,
    /// Record the build's wall-clock start and finish (else none: an unchanged rebuild then
    /// attests, signs and pushes nothing new).
    pub times: bool,
}

/// A build: a source directory in, an image out. Fields have defaults ([`Creator::new`]);
/// set those that differ, then [`Creator::run`].
pub struct Creator<'a> {
    /// The runtime and registry client.
    pub session: &'a Session,
    /// kiln's local store: layers, run images, saved images.
    pub store: &'a Store,
    /// The buildpacks detect asks, in order ([`crate::default_buildpacks`]).
    pub buildpacks: &'a [Box<dyn Buildpack>],
    /// The app's source directory (absolute).
    pub source_dir: PathBuf,
    /// The directory to copy for the build, an ancestor of `source_dir` holding what the
    /// app refers to outside it (default: the source dir, or the workspace root its
    /// buildpack finds).
    pub context: Option<PathBuf>,
    /// kiln's cache directory (absolute): buildpack caches, scratch dirs, the layer index.
    pub cache_dir: PathBuf,
    /// The image's name: where it is pushed, what its SBOM and provenance name.
    pub target: Reference,
    /// The name the image gets in kiln's store and an archive (default: `target` as
    /// written).
    pub name: String,
    /// The app's `project.toml`, and settings applied to it.
    pub project: ProjectDescriptor,
    /// The toolchain environment ([`kiln_lifecycle::build_env`]): nothing else reaches a
    /// build step. Empty by default: give it at least `PATH`.
    pub env: BTreeMap<String, String>,
    /// How build steps are confined.
    pub sandbox: SandboxSettings,
    /// Use this buildpack, not the one detect picks (an id: `kiln/go`).
    pub buildpack: Option<String>,
    /// The run image, instead of the stack's.
    pub run_image: Option<ImageSource>,
    /// The default process, when the app has several.
    pub process: Option<String>,
    /// `SOURCE_DATE_EPOCH`: the build's time (else the last commit's, else a constant).
    pub source_date_epoch: Option<i64>,
    /// Layer compression.
    pub compression: Compression,
    /// Restore the build cache from this image before the build, and push it after.
    pub cache_image: Option<Reference>,
    /// Make SBOMs (default: yes).
    pub sbom: bool,
    /// Also write the SBOMs into this directory.
    pub sbom_dir: Option<PathBuf>,
    /// Attach build provenance (to a pushed image).
    pub provenance: Option<ProvenanceSettings>,
    /// Sign the pushed image (and its provenance) with this key.
    pub sign_key: Option<&'a PrivateKey>,
    /// Push to `target`'s registry; else save into kiln's store as `name`.
    pub publish: bool,
    /// Also write an OCI archive here.
    pub archive: Option<PathBuf>,
    /// The Debian mirrors to build a curated run image (`kiln-base/node`) from kiln's
    /// embedded lock when the store lacks it; without them such a build stops.
    pub mirrors: Option<Mirrors>,
    /// With `publish`, check that the registry takes the push before building
    /// ([`crate::preflight`]).
    pub preflight: bool,
    /// Where curated run images are published: pulled from there instead of taken from the
    /// store or built from the embedded lock (else `[io.kiln] base-registry`).
    pub base_registry: Option<BaseRegistry>,
    /// The platforms to build (`linux/amd64`, `linux/arm64`): several make an image index
    /// over one image each. Empty (the default): one image, for the run image's platform
    /// that matches this machine.
    pub platforms: Vec<Platform>,
    /// What the user sets on the image's config: labels, launch env, ports, user, working
    /// directory.
    pub image: ImageSettings,
    /// More references the image gets, after `target`, each with its name as written:
    /// pushed (or, without `publish`, saved into kiln's store under that name) as the same
    /// manifest, one tag at a time.
    pub also_tags: Vec<(Reference, String)>,
}

/// One platform's image of a build.
pub struct PlatformImage {
    /// Its platform.
    pub platform: Platform,
    /// The image.
    pub image: FinalImage,
    /// The run image it sits on.
    pub run_image: RunImage,
    /// Its app layers, and whether each was reused.
    pub layers: Vec<ExportedLayer>,
}

/// What a build made.
pub struct Created {
    /// The image of each platform, in the index's order (one for a one-platform build).
    pub images: Vec<PlatformImage>,
    /// The index over the images, when there are several.
    pub index: Option<FinalIndex>,
    /// The buildpack that built it.
    pub buildpack: &'static str,
    /// How the build steps were confined.
    pub confinement: Confinement,
    /// Where it went.
    pub delivered: Delivered,
    /// Its name in kiln's store, when it was saved there (not pushed).
    pub saved_as: Option<String>,
    /// What the cache image did, when there was one.
    pub cache: Option<CacheReport>,
    /// SBOMs, provenance and signatures.
    pub supply: SupplyReport,
    /// How long each phase took.
    pub timings: Timings,
}

impl Created {
    /// Returns the image as `name@digest`, the reference that pins it: in its registry when
    /// pushed (`registry.example.com/team/app@sha256:…`), else by its name in kiln's store
    /// (`team/app:1@sha256:…`).
    pub fn pinned(&self, target: &Reference) -> String {
        match &self.saved_as {
            Some(name) => format!("{name}@{}", self.digest()),
            None => format!("{}@{}", target.name(), self.digest()),
        }
    }

    /// Returns what the image's reference resolves to: the index's digest, or the one
    /// image's manifest digest.
    pub fn digest(&self) -> &Digest {
        match &self.index {
            Some(index) => &index.index_digest,
            None => &self.images[0].image.manifest_digest,
        }
    }
}

/// Phase durations in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Detect, and reading the run image.
    pub detect_ms: u128,
    /// Build (copy + toolchain).
    pub build_ms: u128,
    /// Export (layers, config, manifest) and SBOMs.
    pub export_ms: u128,
    /// Push or save, and attaching.
    pub push_ms: u128,
    /// The whole build.
    pub total_ms: u128,
}

/// What detect settled, for the phases after it.
struct Detected<'a> {
    buildpack: &'a dyn Buildpack,
    plan: Plan,
    /// The run image of each platform, in the index's order; one, with no platform named,
    /// for a build of the default platform.
    runs: Vec<(Option<Platform>, RunImage)>,
    git: GitInfo,
    epoch: i64,
}

impl<'a> Creator<'a> {
    /// Returns a build of `source_dir` into `target` with every default: the buildpack
    /// detect picks, the stack's run image, gzip layers, SBOMs, saved into kiln's store.
    pub fn new(
        session: &'a Session,
        store: &'a Store,
        buildpacks: &'a [Box<dyn Buildpack>],
        source_dir: impl Into<PathBuf>,
        cache_dir: impl Into<PathBuf>,
        target: Reference,
    ) -> Self {
        Self {
            session,
            store,
            buildpacks,
            source_dir: source_dir.into(),
            context: None,
            cache_dir: cache_dir.into(),
            name: target.to_string(),
            target,
            project: ProjectDescriptor::default(),
            env: BTreeMap::new(),
            sandbox: SandboxSettings::default(),
            buildpack: None,
            run_image: None,
            process: None,
            source_date_epoch: None,
            compression: Compression::default(),
            cache_image: None,
            sbom: true,
            sbom_dir: None,
            provenance: None,
            sign_key: None,
            publish: false,
            archive: None,
            mirrors: None,
            preflight: true,
            base_registry: None,
            platforms: Vec::new(),
            image: ImageSettings::default(),
            also_tags: Vec::new(),
        }
    }

    /// Runs the build, phase by phase, telling `progress` as it goes.
    pub fn run(&self, progress: &dyn Progress) -> Result<Created, CreateError> {
        let started = Instant::now();
        let mut timings = Timings::default();
        if self.publish && self.preflight {
            progress.debug(&format!("checking that kiln may push to `{}`", self.target));
            self.session
                .block_on(preflight(self.session.client(), &self.target))
                .map_err(|e| CreateError::Preflight(Box::new(e)))?;
        }
        let t = Instant::now();
        let detected = self.detect(progress)?;
        timings.detect_ms = t.elapsed().as_millis();
        let buildpack_cache = self.buildpack_cache(detected.buildpack);
        let mut cache = self
            .cache_image
            .as_ref()
            .map(|image| self.restore(image, &detected, &buildpack_cache, progress));
        let t = Instant::now();
        // The scratch dirs are this build's until their layers are exported.
        let builds = self.build_platforms(&detected, &buildpack_cache, progress)?;
        timings.build_ms = t.elapsed().as_millis();
        let t = Instant::now();
        let (images, cache_push) =
            self.export_platforms(&detected, &builds, &buildpack_cache, progress)?;
        let first = &builds.built[0].0;
        let confinement = first.confinement.clone();
        let index = match images.len() {
            1 => None,
            _ => Some(FinalIndex::new(
                images.iter().map(|i| i.image.clone()).collect(),
            )?),
        };
        let artifact = match &index {
            Some(index) => index.into(),
            None => (&images[0].image).into(),
        };
        let attestations = self.attest(artifact, &detected, first, started, progress)?;
        drop(builds);
        timings.export_ms = t.elapsed().as_millis();
        let t = Instant::now();
        let (delivered, supply) = self.deliver(artifact, attestations, progress)?;
        if let (Some((target, thread)), Some(report)) = (cache_push, cache.as_mut()) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err("pushing the cache image: the push panicked".into()));
            restore::pushed(report, target, outcome, progress);
        }
        timings.push_ms = t.elapsed().as_millis();
        timings.total_ms = started.elapsed().as_millis();
        Ok(Created {
            images,
            index,
            buildpack: detected.buildpack.id(),
            confinement,
            delivered,
            saved_as: (!self.publish).then(|| self.name.clone()),
            cache,
            supply,
            timings,
        })
    }

    /// Detects the app's buildpack, then reads (or generates) its run image.
    fn detect(&self, progress: &dyn Progress) -> Result<Detected<'_>, CreateError> {
        progress.phase("DETECTING");
        let chosen = self
            .buildpack
            .as_deref()
            .or(self.project.buildpack.as_deref());
        if let Some(id) = chosen.filter(|id| !self.buildpacks.iter().any(|b| b.id() == *id)) {
            return Err(CreateError::UnknownBuildpack {
                id: id.to_owned(),
                known: self.buildpacks.iter().map(|b| b.id()).collect(),
            });
        }
        let (buildpack, plan) = Detect {
            buildpacks: self.buildpacks,
            app_dir: &self.source_dir,
            choose: chosen,
        }
        .run()
        .map_err(CreateError::Detect)?;
        progress.info(&format!("detected {}", buildpack.id()));
        let git = git_info(&self.source_dir);
        let (epoch, _) = build_epoch(self.source_date_epoch, &git);
        let named = match &self.run_image {
            Some(source) => Some(source.clone()),
            None => self.project_run_image()?,
        };
        let base_registry = self.base_registry()?;
        let sources = RunImageSources {
            store: self.store,
            base_registry: base_registry.as_ref(),
        };
        let choose = || choose_run_image(named.as_ref(), &plan, buildpack.id(), sources, progress);
        let choice = match (choose(), &self.mirrors) {
            (Err(RunImageError::NotInStore { name }), Some(mirrors)) => {
                self.build_curated(&name, mirrors, progress)?;
                choose()?
            }
            (choice, _) => choice?,
        };
        let runs = match (self.resolve_runs(&choice, epoch, progress), &self.mirrors) {
            // A curated base in the store for fewer platforms than the build's: built again
            // for all of them, from the same embedded lock.
            (Err(RunImageError::OtherPlatform { .. }), Some(mirrors))
                if let RunImageChoice::Named(ImageSource::Store(name)) = &choice
                    && curated_base(name).is_some() =>
            {
                self.build_curated(name, mirrors, progress)?;
                self.resolve_runs(&choice, epoch, progress)?
            }
            (runs, _) => runs?,
        };
        Ok(Detected {
            buildpack,
            plan,
            runs,
            git,
            epoch,
        })
    }

    /// Returns the base registry: the one set, else the one `project.toml` names.
    fn base_registry(&self) -> Result<Option<BaseRegistry>, RunImageError> {
        if self.base_registry.is_some() {
            return Ok(self.base_registry.clone());
        }
        self.project
            .base_registry
            .as_deref()
            .map(BaseRegistry::parse)
            .transpose()
            .map_err(RunImageError::BaseRegistrySetting)
    }

    /// Returns the run image `project.toml` names, if any.
    fn project_run_image(&self) -> Result<Option<ImageSource>, RunImageError> {
        let Some(name) = self.project.run_image.as_deref() else {
            return Ok(None);
        };
        ImageSource::parse(name, self.store.dir())
            .map(Some)
            .map_err(|source| RunImageError::Reference {
                name: name.to_owned(),
                source,
            })
    }

    /// Returns the buildpack's persistent cache directory.
    fn buildpack_cache(&self, buildpack: &dyn Buildpack) -> PathBuf {
        self.cache_dir
            .join("buildpacks")
            .join(buildpack.id().replace('/', "-"))
    }

    /// Restores the buildpack's cache from `image`; never fails.
    fn restore(
        &self,
        image: &Reference,
        detected: &Detected<'_>,
        dir: &Path,
        progress: &dyn Progress,
    ) -> CacheReport {
        progress.phase("RESTORING CACHE");
        let mut index = LayerCache::open(&self.cache_dir.join("layers.json"));
        let report = self.session.block_on(
            Restore {
                client: self.session.client(),
                blobs: self.store.blobs(),
                image,
                buildpack: detected.buildpack.id(),
                dir,
            }
            .run(&mut index, progress),
        );
        if let Err(e) = index.save() {
            progress.debug(&format!("could not save the layer cache index: {e}"));
        }
        report
    }

    /// Copies the source into a scratch directory of this build's own and runs the
    /// buildpack's build in it, for `run` (of `platform`, when one was named).
    fn build(
        &self,
        detected: &Detected<'_>,
        (platform, run): (Option<&Platform>, &RunImage),
        buildpack_cache: &Path,
        progress: &dyn Progress,
    ) -> Result<(BuildResult, Scratch), CreateError> {
        match platform {
            Some(p) if self.platforms.len() > 1 => progress.phase(&format!("BUILDING {p}")),
            _ => progress.phase("BUILDING"),
        }
        let copy = source_root(&self.source_dir, &detected.plan, self.context.as_deref())
            .map_err(|e| CreateError::Build(e.into()))?;
        if !copy.member.as_os_str().is_empty() {
            let why = detected
                .plan
                .facts
                .get(SOURCE_ROOT_REASON_FACT)
                .map_or_else(String::new, |why| format!(" ({why})"));
            progress.info(&format!(
                "building from `{}`, the app being `{}` in it{why}",
                copy.root.display(),
                copy.member.display()
            ));
        }
        // This build's own scratch dir, held until the layers in it are exported.
        let work = self.cache_dir.join("work");
        let source_key = Digest::of(self.source_dir.as_os_str().as_encoded_bytes());
        // Another platform's build keeps a scratch dir (and path-keyed caches) of its own.
        let key = match platform.filter(|p| !is_host(p)) {
            Some(p) => format!("{}-{}", &source_key.hex()[..16], p.architecture),
            None => source_key.hex()[..16].to_owned(),
        };
        let scratch = Scratch::claim(&work, &key)
            .map_err(|source| CreateError::Scratch { dir: work, source })?;
        let run_info = run_image_info(run);
        let print = |line: &str| progress.toolchain(line);
        let built = Build {
            source_dir: &self.source_dir,
            context_dir: self.context.as_deref(),
            keep_out: std::slice::from_ref(&self.cache_dir),
            work_dir: scratch.dir(),
            cache_dir: buildpack_cache,
            project: &self.project,
            env: &self.env,
            default_process: self.process.as_deref().or(self.project.process.as_deref()),
            workspace: WORKSPACE,
            output: &print,
            run_image: Some(&run_info),
            sandbox: &self.sandbox,
        }
        .run(detected.buildpack, &detected.plan)
        .map_err(CreateError::Build)?;
        let c = &built.copied;
        progress.debug(&format!(
            "scratch copy: {} files, {} unchanged, {} copied ({}), {} removed, in {} ms",
            c.files,
            c.unchanged,
            c.copied.len(),
            human_bytes(c.copied_bytes),
            c.removed,
            c.took.as_millis()
        ));
        progress.debug(&format!(
            "build steps confined: {}",
            built.confinement.describe()
        ));
        for warning in &built.output.warnings {
            progress.warn(warning);
        }
        Ok((built, scratch))
    }
}
