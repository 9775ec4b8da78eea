//! `kiln build`: resolves the flags and settings into the library's [`Creator`], runs it,
//! and prints the image's pinned reference, like `pack build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use kiln_attest::sign::PrivateKey;
use kiln_lifecycle::{
    ProjectDescriptor, SandboxError, SandboxMode, SandboxSettings, SandboxSupport, build_env,
};
use kiln_model::Platform;
use kiln_oci::Reference;
use kiln_pipeline::{
    Creator, ImageSource, ProvenanceSettings, Store, default_buildpacks, parse_platforms,
};

use crate::args::BuildArgs;
use crate::errors::{BASE_REGISTRY_HINT, build_failure};
use crate::failure::{Failure, exit};
use crate::image_config::{
    also_tags, creation_time, image_settings, read_env_file, write_image_refs,
};
use crate::keys::signing_key;
use crate::output::Ui;
use crate::report::{FailureReport, Report};
use crate::session::parse_image;
use crate::settings::{Environment, parse_env_flags};

/// Runs `kiln build`; with `--report`, writes the report whether the build succeeded or
/// failed.
pub fn run(args: &BuildArgs, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let mut phase = "setup";
    let Err(failure) = build(args, env, ui, &mut phase) else {
        return Ok(());
    };
    let failure = failure.classified();
    if let Some(path) = &args.report
        && let Err(e) = FailureReport::new(&args.image, phase, &failure).write(path)
    {
        ui.warn(&format!("{e:#}"));
    }
    Err(failure)
}

/// Builds the image; `phase` says which phase failed (`setup` until the pipeline runs).
fn build(
    args: &BuildArgs,
    env: &Environment,
    ui: &Ui,
    phase: &mut &'static str,
) -> Result<(), Failure> {
    let target = parse_image(&args.image)?;
    let source_dir = args.path.canonicalize().map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("source directory `{}`: {e}", args.path.display()),
        )
        .hint(Some("pass the app's directory with `--path DIR`".into()))
    })?;
    let sign_key = signing_key(&args.supply, env)?;
    if sign_key.is_some() && !args.publish {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`--sign-key` signs the image in its registry, and this build does not push"),
        )
        .hint(Some("add `--publish`".into())));
    }
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    let cache_dir = absolute(&env.cache_dir(args.cache_dir.as_ref()).map_err(usage)?)?;
    let registry = env.registry_settings(&args.registry).map_err(usage)?;
    let mut user_env = args
        .env_file
        .as_deref()
        .map(read_env_file)
        .transpose()?
        .unwrap_or_default();
    user_env.extend(parse_env_flags(&args.env).map_err(usage)?);
    let mut secrets = vec![cache_dir.clone(), source_dir.clone()];
    secrets.extend(registry.docker_config_dir.iter().cloned());
    secrets.extend(registry.auth_files.iter().cloned());
    secrets.extend(registry.certs_dirs.iter().cloned());
    secrets.extend(args.supply.sign_key.iter().cloned());
    secrets.extend(args.env_file.iter().cloned());
    secrets.extend(args.supply.password.key_password_file.iter().cloned());
    let sandbox = sandbox_settings(args, env, &user_env, secrets, ui)?;
    let session = crate::session::open(env, &args.registry)?;
    let store = crate::session::store(&session, &cache_dir, exit::KILN_BUILD)?;
    let buildpacks = default_buildpacks();
    let mut creator = Creator::new(
        &session,
        &store,
        &buildpacks,
        &source_dir,
        &cache_dir,
        target.clone(),
    );
    let settings = Settings {
        args,
        env,
        user_env: &user_env,
        sandbox,
        sign_key: sign_key.as_ref(),
        ui,
    };
    settings.apply(&mut creator, &source_dir)?;
    let created = creator.run(ui).map_err(|e| {
        *phase = e.phase();
        build_failure(e, &source_dir)
    })?;
    if let Some(path) = &args.report {
        Report::new(&target, &created)
            .write(path)
            .map_err(|e| Failure::new(exit::FAILURE, e))?;
    }
    if let Some(path) = &args.image_refs {
        let names = std::iter::once(&creator.name).chain(creator.also_tags.iter().map(|t| &t.1));
        write_image_refs(path, names, &created.digest().to_string())?;
    }
    ui.stdout(&created.pinned(&target));
    Ok(())
}

/// What `kiln build` resolved, to set on the creator.
struct Settings<'a> {
    args: &'a BuildArgs,
    env: &'a Environment,
    user_env: &'a BTreeMap<String, String>,
    sandbox: SandboxSettings,
    sign_key: Option<&'a PrivateKey>,
    ui: &'a Ui,
}

impl<'a> Settings<'a> {
    /// Sets every flag and setting on `creator`, parsing names of images once, here.
    fn apply(self, creator: &mut Creator<'a>, source_dir: &Path) -> Result<(), Failure> {
        let (args, env) = (self.args, self.env);
        let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
        let loaded = match &args.descriptor {
            Some(file) => ProjectDescriptor::load_file(file),
            None => ProjectDescriptor::load(source_dir),
        };
        let mut project = loaded.map_err(|e| {
            let hint = e.hint();
            usage(e.into()).hint(Some(hint))
        })?;
        for key in &project.ignored {
            self.ui.warn(&format!(
                "project.toml: kiln does not honour `{key}`; building without it"
            ));
        }
        env.apply_buildpack_settings(&mut project).map_err(usage)?;
        creator.env = build_env(&env.toolchain_host_env(), &project, self.user_env);
        creator.platforms = platforms(&args.platform, &project, &creator.env)?;
        creator.image = image_settings(args, &project)?;
        creator.also_tags = also_tags(args, &project)?;
        creator.project = project;
        creator.name = args.image.clone();
        creator.sandbox = self.sandbox;
        creator.context = args.context.as_deref().map(absolute).transpose()?;
        creator.buildpack = args.buildpack.clone();
        creator.run_image = args
            .run_image
            .as_deref()
            .map(|name| run_image(name, creator.store))
            .transpose()?;
        creator.process = args.process.clone();
        creator.source_date_epoch = match creation_time(args.creation_time.as_deref())? {
            Some(time) => Some(time),
            None => env.source_date_epoch().map_err(usage)?,
        };
        creator.compression = args.compression.into();
        creator.cache_image = args
            .cache_image
            .as_deref()
            .map(|r| r.parse::<Reference>())
            .transpose()
            .map_err(|e| usage(anyhow!("--cache-image: {e}")))?;
        creator.sbom = !args.supply.no_sbom;
        creator.sbom_dir = args.supply.sbom_dir.clone();
        creator.provenance = (!args.no_provenance).then(|| ProvenanceSettings {
            builder_id: env.builder_id(),
            // Names only, as given: values may be secrets.
            env_names: self.user_env.keys().cloned().collect(),
            times: args.provenance_times,
        });
        creator.sign_key = self.sign_key;
        creator.publish = args.publish;
        creator.preflight = !args.no_preflight;
        creator.archive = args.output.clone();
        // A curated run image the store lacks is built from kiln's embedded lock, through
        // the machine's Debian mirror; without one, the build says how to get it.
        creator.mirrors = env.debian_mirrors(None, None).ok();
        creator.base_registry = env
            .base_registry(args.bases.base_registry.as_deref())
            .map_err(|e| usage(e).hint(Some(BASE_REGISTRY_HINT.into())))?;
        Ok(())
    }
}

/// Returns the platforms to build: `--platform`, else `[io.kiln] platforms`, else the one a
/// `GOOS`/`GOARCH` of the build environment names (the image is for the platform its binary
/// is compiled for), else none (the run image's platform of this machine).
fn platforms(
    flag: &[String],
    project: &ProjectDescriptor,
    env: &BTreeMap<String, String>,
) -> Result<Vec<Platform>, Failure> {
    let (written, from) = match (flag.is_empty(), project.platforms.is_empty()) {
        (false, _) => (flag.to_vec(), "--platform"),
        (true, false) => (
            project.platforms.clone(),
            "`[io.kiln] platforms` in project.toml",
        ),
        (true, true) => match (env.get("GOOS"), env.get("GOARCH")) {
            (None, None) => return Ok(Vec::new()),
            (os, arch) => {
                let os = os.map_or("linux", String::as_str);
                let arch = arch.map_or(kiln_lifecycle::host_arch(), String::as_str);
                (
                    vec![format!("{os}/{arch}")],
                    "GOOS/GOARCH in the build environment",
                )
            }
        },
    };
    parse_platforms(&written).map_err(|e| {
        Failure::new(exit::USAGE, anyhow!("{from}: {e}"))
            .hint(Some("name platforms as `linux/amd64,linux/arm64`".into()))
    })
}

/// Parses `--run-image` into where it is read from.
fn run_image(name: &str, store: &Store) -> Result<ImageSource, Failure> {
    ImageSource::parse(name, store.dir())
        .map_err(|e| Failure::new(exit::USAGE, anyhow!("run image `{name}`: {e}")))
}

/// Returns the build sandbox's settings. Steps never see `secrets`: kiln's cache and store,
/// the original source tree (the copy leaves ignored files out), registry credentials and
/// certificates, the signing key. Where the machine cannot confine, says so once (or fails,
/// with `--sandbox require`).
fn sandbox_settings(
    args: &BuildArgs,
    env: &Environment,
    user_env: &BTreeMap<String, String>,
    secrets: Vec<PathBuf>,
    ui: &Ui,
) -> Result<SandboxSettings, Failure> {
    let settings = env
        .sandbox_settings(args.sandbox.map(Into::into), user_env, secrets)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    if settings.mode != SandboxMode::Off
        && let SandboxSupport::Unavailable { reason } = kiln_lifecycle::probe()
    {
        if settings.mode == SandboxMode::Require {
            let e = SandboxError::Unavailable { reason };
            let hint = crate::errors::sandbox_hint(&e);
            return Err(Failure::new(exit::KILN_BUILD, e).hint(Some(hint)));
        }
        ui.warn(&format!(
            "build steps run unconfined: {reason} (they still get a kiln-owned HOME; `--sandbox require` makes this an error)"
        ));
    }
    Ok(settings)
}

/// Returns `dir` as an absolute path (toolchains refuse relative cache paths).
fn absolute(dir: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(dir)
        .map_err(|e| Failure::new(exit::USAGE, anyhow!("directory `{}`: {e}", dir.display())))
}
