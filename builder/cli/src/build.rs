//! `kiln build`: detect → build → export → publish (registry) or save (OCI layout), like `pack build`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use kiln_buildpack_go::GoBuildpack;
use kiln_buildpack_java::{JavaBuildpack, gradle_hint};
use kiln_buildpack_node::NodeBuildpack;
use kiln_image::{Blobs, layout_has};
use kiln_layer::{BlobStore, Compression};
use kiln_lifecycle::{
    BuildPhase, Buildpack, BuildpackError, Exporter, LayerCache, PhaseError, ProjectDescriptor,
    RUN_IMAGE_FACT, RunImage, RunImageInfo, SandboxMode, SandboxSettings, SandboxSupport, Scratch,
    SourceFacts, build_env, build_epoch, detect, git_info, host_arch, stack_for, static_base,
};
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;

use crate::args::{BuildArgs, CompressionArg};
use crate::build_cache;
use crate::failure::{Failure, exit};
use crate::output::{Ui, human_bytes};
use crate::provenance::{BuildFacts, provenance};
use crate::report::{Report, Timings};
use crate::run_image::{names_a_registry, read_run_image};
use crate::settings::{Environment, parse_env_flags};
use crate::sink::Sinks;
use crate::supply;

/// The image directory apps run in.
const WORKSPACE: &str = "/workspace";

/// Runs `kiln build`.
pub fn run(args: &BuildArgs, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let started = Instant::now();
    let target: Reference = crate::session::parse_image(&args.image)?;
    let source_dir = args.path.canonicalize().map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("source directory `{}`: {e}", args.path.display()),
        )
        .hint(Some("pass the app's directory with `--path DIR`".into()))
    })?;
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    let sign_key = supply::signing_key(&args.supply, env)?;
    if sign_key.is_some() && !args.publish {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`--sign-key` signs the image in its registry, and this build does not push"),
        )
        .hint(Some("add `--publish`".into())));
    }
    let mut project = ProjectDescriptor::load(&source_dir).map_err(|e| {
        let hint = e.hint();
        usage(e.into()).hint(Some(hint))
    })?;
    env.apply_buildpack_settings(&mut project).map_err(usage)?;
    let user_env = parse_env_flags(&args.env).map_err(usage)?;
    let cache_dir = absolute(&env.cache_dir(args.cache_dir.as_ref()).map_err(usage)?)?;
    let source_date_epoch = env.source_date_epoch().map_err(usage)?;
    let compression = match args.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let settings = env
        .registry_settings(&args.registry)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let sandbox = sandbox_settings(args, env, &user_env, &settings, &cache_dir, &source_dir, ui)?;
    let client = Client::new(settings).map_err(|e| {
        let hint = e.hint();
        Failure::new(exit::FAILURE, e).hint(hint)
    })?;
    let store_dir = cache_dir.join("oci");
    let store = BlobStore::open(&store_dir).map_err(|e| {
        Failure::new(exit::KILN_BUILD, e).hint(Some("check that `--cache-dir` is writable".into()))
    })?;
    crate::signals::watch(
        &client,
        [
            store.blob_dir().to_path_buf(),
            store_dir.clone(),
            cache_dir.clone(),
        ],
    );
    let blobs = Blobs::new(store, Some(client.clone()));

    ui.phase("DETECTING");
    let t = Instant::now();
    let buildpacks: Vec<Box<dyn Buildpack>> = vec![
        Box::new(GoBuildpack),
        Box::new(JavaBuildpack),
        Box::new(NodeBuildpack),
    ];
    let chosen = args.buildpack.as_deref().or(project.buildpack.as_deref());
    if let Some(id) = chosen.filter(|id| !buildpacks.iter().any(|b| b.id() == *id)) {
        let ids: Vec<&str> = buildpacks.iter().map(|b| b.id()).collect();
        return Err(
            Failure::new(exit::USAGE, anyhow!("there is no buildpack `{id}`"))
                .hint(Some(format!("kiln's buildpacks: {}", ids.join(", ")))),
        );
    }
    let (buildpack, plan) = detect(&buildpacks, &source_dir, chosen).map_err(|e| {
        let gradle = gradle_hint(&source_dir);
        let failure = phase_failure(e);
        match gradle {
            Some(why) if failure.code == exit::NOTHING_DETECTED => failure.hint(Some(why)),
            _ => failure,
        }
    })?;
    ui.info(&format!("detected {}", buildpack.id()));

    // The run image is known before the build, so a buildpack can check that the app will
    // run on it (the Node version a Node base holds, its platform) before any work.
    let git = git_info(&source_dir);
    let (epoch, _) = build_epoch(source_date_epoch, &git);
    let run_choice = match args.run_image.as_deref().or(project.run_image.as_deref()) {
        Some(name) => RunChoice::Named(name.to_string()),
        None => match plan.facts.get(RUN_IMAGE_FACT) {
            Some(wanted) => stack_image(wanted, false, &store_dir, ui)?,
            None => stack_default(buildpack.id(), &store_dir, ui)?,
        },
    };
    let run = runtime
        .block_on(resolve_run_image(
            run_choice,
            &client,
            &blobs,
            epoch,
            compression,
        ))
        .map_err(|f| Failure::new(exit::EXPORT, f.error).hint(f.hint))?;
    ui.info(&format!("run image {} ({})", run.name, run.digest));
    let run_info = run_image_info(&run);
    let detect_ms = t.elapsed().as_millis();

    let bp_cache = cache_dir
        .join("buildpacks")
        .join(buildpack.id().replace('/', "-"));
    let cache_image: Option<Reference> = args
        .cache_image
        .as_deref()
        .map(|r| {
            r.parse()
                .map_err(|e| Failure::new(exit::USAGE, anyhow!("--cache-image: {e}")))
        })
        .transpose()?;
    let mut cache_report = None;
    if let Some(reference) = &cache_image {
        ui.phase("RESTORING CACHE");
        let mut index = LayerCache::open(&cache_dir.join("layers.json"));
        cache_report = Some(runtime.block_on(build_cache::restore(
            &client,
            &blobs,
            reference,
            buildpack.id(),
            &bp_cache,
            &mut index,
            ui,
        )));
        if let Err(e) = index.save() {
            ui.debug(&format!("could not save the layer cache index: {e}"));
        }
    }

    ui.phase("BUILDING");
    let t = Instant::now();
    let toolchain_env = build_env(&env.toolchain_host_env(), &project, &user_env);
    // This build's own scratch dir, held until the layers in it are exported.
    let source_key = Digest::of(source_dir.as_os_str().as_encoded_bytes());
    let scratch =
        Scratch::claim(&cache_dir.join("work"), &source_key.hex()[..16]).map_err(|e| {
            Failure::new(
                exit::KILN_BUILD,
                anyhow!(
                    "claiming a scratch directory in `{}`: {e}",
                    cache_dir.join("work").display()
                ),
            )
            .hint(Some("check that `--cache-dir` is writable".into()))
        })?;
    let process = args.process.as_deref().or(project.process.as_deref());
    let print = |line: &str| ui.toolchain(line);
    let built = BuildPhase {
        source_dir: &source_dir,
        work_dir: scratch.dir(),
        cache_dir: &bp_cache,
        project: &project,
        env: &toolchain_env,
        default_process: process,
        workspace: WORKSPACE,
        output: &print,
        run_image: Some(&run_info),
        sandbox: &sandbox,
    }
    .run(buildpack, &plan)
    .map_err(phase_failure)?;
    ui.debug(&format!(
        "build steps confined: {}",
        built.confinement.describe()
    ));
    for warning in &built.output.warnings {
        ui.warn(warning);
    }
    let build_ms = t.elapsed().as_millis();

    ui.phase("EXPORTING");
    let t = Instant::now();
    let export_err = |e: anyhow::Error| Failure::new(exit::EXPORT, e);
    let mut cache = LayerCache::open(&cache_dir.join("layers.json"));
    let exporter = Exporter {
        store: blobs.store(),
        epoch,
        compression,
        workspace: WORKSPACE,
        buildpack: (buildpack.id(), env!("CARGO_PKG_VERSION")),
    };
    let facts = SourceFacts {
        url: git.remote.clone(),
        revision: git.revision.clone(),
    };
    let (image, exported) = exporter
        .export(&run, &built.output, &facts, &mut cache)
        .map_err(|e| export_err(e.into()))?;
    // The cache image goes out beside the app image (on a thread of its own, driving the
    // same runtime), not after it.
    let cache_push = cache_image.as_ref().and_then(|target| {
        let image = build_cache::pack(
            &bp_cache,
            buildpack.id(),
            &blobs,
            compression,
            &mut cache,
            ui,
        )?;
        let (handle, client, blobs) = (runtime.handle().clone(), client.clone(), blobs.clone());
        let to = target.clone();
        let thread = std::thread::spawn(move || {
            handle.block_on(build_cache::push(client, blobs, to, image))
        });
        Some((target, thread))
    });
    if let Err(e) = cache.save() {
        ui.debug(&format!("could not save the layer cache index: {e}"));
    }
    for l in &exported {
        for w in &l.warnings {
            ui.warn(&format!("layer {}: {w}", l.name));
        }
        let how = if l.reused { "reused" } else { "written" };
        ui.info(&format!(
            "layer {} {} ({}, {how})",
            l.name,
            l.blob.digest,
            human_bytes(l.blob.size)
        ));
    }
    let final_image = image.finalize().map_err(|e| export_err(e.into()))?;
    let (sboms, sbom_reports, sbom_ms) = runtime
        .block_on(supply::make_sboms(
            &args.supply,
            supply::Described {
                artifact: (&final_image).into(),
                name: &target.name(),
                declared: &built.output.packages,
                created: epoch,
            },
            &blobs,
            &cache_dir,
            ui,
        ))
        .map_err(export_err)?;
    let export_ms = t.elapsed().as_millis();

    let t = Instant::now();
    let mut supply_report = supply::SupplyReport {
        sboms: sbom_reports,
        sbom_ms,
        ..Default::default()
    };
    let statement = (args.publish && !args.no_provenance).then(|| {
        provenance(&BuildFacts {
            args,
            env,
            target: &target,
            digest: &final_image.manifest_digest,
            buildpack: buildpack.id(),
            run: &run,
            git: &git,
            started,
        })
    });
    let attachments = args.publish.then(|| {
        let what = supply::Attachments {
            artifact: (&final_image).into(),
            sboms: &sboms,
            statement,
            key: sign_key.as_ref(),
        };
        (&target, what)
    });
    let push = supply::deliver_and_attach(
        &runtime,
        &client,
        attachments,
        &mut supply_report,
        |blobs_in| {
            Sinks {
                publish: args.publish.then_some(&target),
                store_dir: &store_dir,
                name: &args.image,
                output: args.output.as_deref(),
            }
            .deliver(&runtime, &client, &final_image, &blobs, ui, blobs_in)
        },
    )?;
    for (digest, attached) in &supply_report.signatures {
        ui.info(&format!("signed {digest} ({})", attached.tag));
    }
    if let (Some((target, thread)), Some(report)) = (cache_push, cache_report.as_mut()) {
        let outcome = thread
            .join()
            .unwrap_or_else(|_| Err("pushing the cache image: the push panicked".to_owned()));
        build_cache::pushed(report, target, outcome, ui);
    }
    let push_ms = t.elapsed().as_millis();

    if let Some(path) = &args.report {
        let report = Report::new(
            &target,
            &final_image,
            &exported,
            push.as_ref(),
            cache_report.as_ref(),
            &supply_report,
            Timings {
                detect_ms,
                build_ms,
                export_ms,
                push_ms,
                total_ms: started.elapsed().as_millis(),
            },
        )
        .sandbox(&built.confinement);
        report
            .write(path)
            .map_err(|e| Failure::new(exit::FAILURE, e))?;
    }
    let pinned = format!("{}@{}", target.name(), final_image.manifest_digest);
    println!("{pinned}");
    Ok(())
}

/// Returns the build sandbox's settings. Steps never see kiln's cache and store, the
/// original source tree (the copy leaves ignored files out), registry credentials and
/// certificates, or the signing key. Where the machine cannot confine, says so once (or
/// fails, with `--sandbox require`).
fn sandbox_settings(
    args: &BuildArgs,
    env: &Environment,
    user_env: &std::collections::BTreeMap<String, String>,
    registry: &kiln_registry::RegistrySettings,
    cache_dir: &Path,
    source_dir: &Path,
    ui: &Ui,
) -> Result<SandboxSettings, Failure> {
    let mut secrets = vec![cache_dir.to_path_buf(), source_dir.to_path_buf()];
    secrets.extend(registry.docker_config_dir.iter().cloned());
    secrets.extend(registry.auth_files.iter().cloned());
    secrets.extend(registry.certs_dirs.iter().cloned());
    secrets.extend(args.supply.sign_key.iter().cloned());
    secrets.extend(args.supply.password.key_password_file.iter().cloned());
    let settings = env
        .sandbox_settings(args.sandbox.map(Into::into), user_env, secrets)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    if settings.mode != SandboxMode::Off
        && let SandboxSupport::Unavailable { reason } = kiln_lifecycle::probe()
    {
        if settings.mode == SandboxMode::Require {
            let e = kiln_lifecycle::SandboxError::Unavailable { reason };
            let hint = e.hint();
            return Err(Failure::new(exit::KILN_BUILD, e).hint(Some(hint)));
        }
        ui.warn(&format!(
            "build steps run unconfined: {reason} (they still get a kiln-owned HOME; `--sandbox require` makes this an error)"
        ));
    }
    Ok(settings)
}

/// Where the run image comes from.
enum RunChoice {
    /// `--run-image`, `[io.kiln] run-image` or the stack's base: a registry reference, a name
    /// in kiln's local image store, or `oci:PATH[:NAME]`.
    Named(String),
    /// kiln's generated minimal base.
    Generated,
}

/// Returns the stack's run image for `buildpack` (see [`stack_image`]); kiln's generated base
/// when kiln has no stack for it.
fn stack_default(buildpack: &str, store_dir: &Path, ui: &Ui) -> Result<RunChoice, Failure> {
    match stack_for(buildpack) {
        Some(stack) => stack_image(&stack.run_image, stack.static_fallback, store_dir, ui),
        None => Ok(RunChoice::Generated),
    }
}

/// Returns `run_image` as named when it is a registry reference or kiln's store has it;
/// else kiln's generated minimal base if `static_fallback` (enough for static binaries),
/// else an error saying how to get the curated base.
fn stack_image(
    run_image: &str,
    static_fallback: bool,
    store_dir: &Path,
    ui: &Ui,
) -> Result<RunChoice, Failure> {
    if names_a_registry(run_image) || layout_has(store_dir, run_image) {
        return Ok(RunChoice::Named(run_image.to_owned()));
    }
    let definition = format!(
        "golden-base/{}.toml",
        run_image.strip_prefix("kiln-base/").unwrap_or(run_image)
    );
    let how = format!(
        "build the curated one once: kiln base build {definition}\n  \
         or name one: --run-image REF, or [io.kiln] run-image = \"REF\" in project.toml"
    );
    if static_fallback {
        ui.info(&format!(
            "the curated base `{run_image}` is not in kiln's store; using kiln's minimal generated base.\n  {how}"
        ));
        return Ok(RunChoice::Generated);
    }
    Err(Failure::new(
        exit::EXPORT,
        anyhow!("the run image `{run_image}` is not in kiln's store, and this app needs it"),
    )
    .hint(Some(how)))
}

/// Returns the run image: kiln's generated base, or the one named (for this host's
/// platform).
async fn resolve_run_image(
    choice: RunChoice,
    client: &Client,
    blobs: &Blobs,
    epoch: i64,
    compression: Compression,
) -> Result<RunImage, Failure> {
    let name = match choice {
        RunChoice::Named(name) => name,
        RunChoice::Generated => {
            let fail = |e: anyhow::Error| Failure::new(exit::EXPORT, e);
            let image =
                static_base(epoch, compression, blobs.store()).map_err(|e| fail(e.into()))?;
            let digest = image
                .finalize()
                .map_err(|e| fail(e.into()))?
                .manifest_digest;
            return Ok(RunImage {
                image,
                digest,
                name: "kiln:static".into(),
            });
        }
    };
    let store = blobs.store().root().to_path_buf();
    read_run_image(
        &name,
        client,
        blobs,
        &store,
        ("linux", host_arch()),
        exit::EXPORT,
    )
    .await
}

/// Returns what a buildpack may know of the run image: name, platform, labels.
fn run_image_info(run: &RunImage) -> RunImageInfo {
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

/// Returns `dir` as an absolute path (toolchains refuse relative cache paths).
fn absolute(dir: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(dir).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("cache directory `{}`: {e}", dir.display()),
        )
    })
}

/// Maps a detect/build failure to its exit code and hint.
fn phase_failure(e: PhaseError) -> Failure {
    match e {
        PhaseError::NothingDetected { ref looked_for, .. } => {
            let list: Vec<String> = looked_for
                .iter()
                .map(|(id, what)| format!("{what} ({id})"))
                .collect();
            let hint = format!(
                "kiln looks for: {}; point `--path` at the app's root directory",
                list.join("; ")
            );
            Failure::new(exit::NOTHING_DETECTED, e).hint(Some(hint))
        }
        PhaseError::Ambiguous { ref ids, .. } => {
            let hint = format!(
                "pick one with `--buildpack {}` (or `[io.kiln] buildpack = \"{}\"` in project.toml)",
                ids[0], ids[0]
            );
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        PhaseError::Buildpack(bp) => {
            let hint = bp.hint().map(str::to_string);
            let code = match bp {
                BuildpackError::App { .. } => exit::APP_BUILD,
                BuildpackError::Usage { .. } => exit::USAGE,
                BuildpackError::Kiln { .. } => exit::KILN_BUILD,
            };
            Failure::new(code, bp).hint(hint)
        }
        // What to copy is the project's to say: a bad pattern or an unreadable `.dockerignore`
        // is its input error, not kiln's failure.
        PhaseError::Source(
            ref source @ (kiln_lifecycle::SourceError::Pattern { .. }
            | kiln_lifecycle::SourceError::Read { .. }),
        ) => {
            let hint = match source {
                kiln_lifecycle::SourceError::Read { path, .. } => {
                    format!("check `{}`: no real one is that large", path.display())
                }
                _ => "fix the pattern; `.dockerignore` and `project.toml` use docker's pattern syntax"
                    .to_owned(),
            };
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        PhaseError::Sandbox(e) => {
            let hint = e.hint();
            Failure::new(exit::KILN_BUILD, e).hint(Some(hint))
        }
        other => Failure::new(exit::KILN_BUILD, other),
    }
}
