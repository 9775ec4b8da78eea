//! `kiln rebase`: put app images on a newer run image without rebuilding them. With
//! `--publish` it happens in the registry: the app's layer blobs stay where they are, the new
//! base's are mounted from its repository, only configs and manifests are uploaded, and the
//! tag is pushed last, so a failure or a kill leaves the old image in place.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};
use futures_util::{StreamExt, stream};
use kiln_image::{
    Blobs, fetch_remote, fetch_remote_all, layout_has, push_image, read_layout, write_layout,
};
use kiln_layer::BlobStore;
use kiln_lifecycle::{
    Rebase, RebaseError, Rebased, RecordedRunImage, RunImage, base_id, host_arch,
    recorded_run_image,
};
use kiln_model::{Artifact, FinalImage, FinalIndex, Image};
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use serde::Serialize;

use crate::args::RebaseArgs;
use crate::base_stream::newest_in_stream;
use crate::failure::{Failure, exit};
use crate::output::{Ui, human_bytes};
use crate::run_image::{names_a_registry, read_run_image};
use crate::settings::Environment;

/// Images rebased at once.
const PARALLEL: usize = 4;

/// What `kiln rebase` needs for every image.
struct Job<'a> {
    args: &'a RebaseArgs,
    client: &'a Client,
    blobs: &'a Blobs,
    store_dir: &'a Path,
}

/// One image's row of the summary.
#[derive(Debug, Serialize)]
struct Outcome {
    image: String,
    old_base: String,
    new_base: String,
    result: &'static str,
    /// The rebased image, `name@digest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    uploaded_bytes: u64,
    /// Whether it went to its registry (else to kiln's store).
    pushed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    failure: Option<Failure>,
}

/// Runs `kiln rebase`.
pub fn run(args: &RebaseArgs, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let started = Instant::now();
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    let cache_dir = env.cache_dir(args.cache_dir.as_ref()).map_err(usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let settings = env
        .registry_settings(&args.registry)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let client = Client::new(settings).map_err(|e| {
        let hint = e.hint();
        Failure::new(exit::FAILURE, e).hint(hint)
    })?;
    let store_dir = cache_dir.join("oci");
    let store = BlobStore::open(&store_dir).map_err(|e| {
        Failure::new(exit::REBASE, e).hint(Some("check that `--cache-dir` is writable".into()))
    })?;
    crate::signals::watch(&client, [store.blob_dir().to_path_buf(), store_dir.clone()]);
    let blobs = Blobs::new(store, Some(client.clone()));
    let ctx = Job {
        args,
        client: &client,
        blobs: &blobs,
        store_dir: &store_dir,
    };
    ui.phase(if args.dry_run {
        "REBASING (dry run)"
    } else {
        "REBASING"
    });
    let mut outcomes: Vec<(usize, Outcome)> = runtime.block_on(
        stream::iter(args.images.iter().enumerate())
            .map(|(i, name)| {
                let ctx = &ctx;
                async move { (i, rebase_one(ctx, name).await) }
            })
            .buffer_unordered(PARALLEL)
            .collect(),
    );
    outcomes.sort_by_key(|(i, _)| *i);
    let mut outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    print_summary(&outcomes, args.quiet);
    ui.info(&format!("done in {} ms", started.elapsed().as_millis()));
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&outcomes).context("serializing the report")?;
        std::fs::write(path, json)
            .with_context(|| format!("writing the report `{}`", path.display()))?;
    }
    let failed: Vec<&mut Outcome> = outcomes
        .iter_mut()
        .filter(|o| o.failure.is_some())
        .collect();
    match failed.len() {
        0 => Ok(()),
        1 if args.images.len() == 1 => Err(failed
            .into_iter()
            .next()
            .and_then(|o| o.failure.take())
            .expect("one failure")),
        n => {
            let hint = failed
                .iter()
                .find_map(|o| o.failure.as_ref().and_then(|f| f.hint.clone()));
            Err(Failure::new(
                exit::REBASE,
                anyhow!(
                    "{n} of {} images could not be rebased (see the table above)",
                    args.images.len()
                ),
            )
            .hint(hint))
        }
    }
}

/// Rebases `name`, reporting instead of failing.
async fn rebase_one(ctx: &Job<'_>, name: &str) -> Outcome {
    let mut out = Outcome {
        image: name.to_owned(),
        old_base: "?".into(),
        new_base: "?".into(),
        result: "failed",
        reference: None,
        uploaded_bytes: 0,
        pushed: false,
        error: None,
        failure: None,
    };
    if let Err(f) = try_rebase(ctx, name, &mut out).await {
        out.error = Some(format!("{:#}", f.error));
        out.failure = Some(f);
    }
    out
}

async fn try_rebase(ctx: &Job<'_>, name: &str, out: &mut Outcome) -> Result<(), Failure> {
    let fail = |e: anyhow::Error| Failure::new(exit::REBASE, e);
    let target: Reference = name
        .parse()
        .map_err(|e| Failure::new(exit::USAGE, anyhow!("`{name}`: {e}")))?;
    let (apps, is_index) = read_app(ctx, name, &target).await?;
    let mut rebased: Vec<Rebased> = Vec::new();
    for app in &apps {
        let recorded = recorded_run_image(app).map_err(|e| refusal(name, e))?;
        let platform = (
            app.config.os().to_string(),
            app.config.architecture().to_string(),
        );
        let platform = (platform.0.as_str(), platform.1.as_str());
        let new_base = choose_base(ctx, app, &recorded, platform).await?;
        let old_base = old_base(ctx, &recorded, platform).await;
        out.old_base = describe_old(&recorded);
        out.new_base = format!("{} ({})", new_base.name, short(&new_base.digest));
        let r = Rebase {
            app,
            new_base: &new_base,
            old_base: old_base.as_ref(),
            force: ctx.args.force,
        }
        .run()
        .map_err(|e| refusal(name, e))?;
        rebased.push(r);
    }
    if rebased.iter().all(|r| r.unchanged) {
        out.result = "up to date";
        return Ok(());
    }
    let images: Vec<FinalImage> = rebased
        .iter()
        .map(|r| r.image.finalize())
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.into()))?;
    let index = match is_index {
        true => Some(FinalIndex::new(images.clone()).map_err(|e| fail(e.into()))?),
        false => None,
    };
    let artifact: Artifact<'_> = match &index {
        Some(i) => i.into(),
        None => (&images[0]).into(),
    };
    out.reference = Some(format!("{}@{}", target.name(), artifact.digest()));
    if ctx.args.dry_run {
        out.result = "would rebase";
        return Ok(());
    }
    if ctx.args.publish {
        let report = push_image(ctx.client, &target, artifact, ctx.blobs, &())
            .await
            .map_err(|e| {
                let hint = e.hint();
                fail(anyhow!(e).context(format!("pushing `{name}`"))).hint(hint)
            })?;
        out.uploaded_bytes = report.uploaded_bytes;
        out.pushed = true;
    } else {
        write_layout(ctx.store_dir, artifact, name, ctx.blobs)
            .await
            .map_err(|e| fail(anyhow!(e).context(format!("saving `{name}` in kiln's store"))))?;
    }
    out.result = "rebased";
    Ok(())
}

/// Reads the app: from kiln's store when it holds `name` and nothing is to be published,
/// else from its registry (every platform of an index).
async fn read_app(
    ctx: &Job<'_>,
    name: &str,
    target: &Reference,
) -> Result<(Vec<Image>, bool), Failure> {
    let fail = |e: anyhow::Error| Failure::new(exit::REBASE, e);
    if !ctx.args.publish && layout_has(ctx.store_dir, name) {
        let (image, _) = read_layout(ctx.store_dir, Some(name), ("linux", host_arch()), ctx.blobs)
            .map_err(|e| fail(anyhow!(e).context(format!("reading `{name}` from kiln's store"))))?;
        return Ok((vec![image], false));
    }
    let (images, is_index) = fetch_remote_all(ctx.client, target).await.map_err(|e| {
        let hint = e.hint();
        fail(anyhow!(e).context(format!("reading `{name}`"))).hint(hint)
    })?;
    Ok((images.into_iter().map(|(i, _)| i).collect(), is_index))
}

/// Returns the run image to put `app` on: `--run-image`, else the newest image of the
/// stream its recorded run image belongs to (or that image in kiln's store).
async fn choose_base(
    ctx: &Job<'_>,
    app: &Image,
    recorded: &RecordedRunImage,
    platform: (&str, &str),
) -> Result<RunImage, Failure> {
    if let Some(name) = &ctx.args.run_image {
        return read_run_image(
            name,
            ctx.client,
            ctx.blobs,
            ctx.store_dir,
            platform,
            exit::REBASE,
        )
        .await;
    }
    let no_stream = |why: String| {
        Failure::new(exit::REBASE, anyhow!(why)).hint(Some(
            "name the new run image with `--run-image REF`".to_owned(),
        ))
    };
    let Some(image) = &recorded.image else {
        return Err(no_stream(
            "the app does not record which run image it was built on".into(),
        ));
    };
    if !names_a_registry(image) && layout_has(ctx.store_dir, image) {
        return read_run_image(
            image,
            ctx.client,
            ctx.blobs,
            ctx.store_dir,
            platform,
            exit::REBASE,
        )
        .await;
    }
    // A registry reference, Docker Hub's short names (what pack records) included.
    let reference: Reference = image.parse().map_err(|e| {
        no_stream(format!(
            "the app was built on `{image}`, which is neither in kiln's store nor a registry reference: {e}"
        ))
    })?;
    let repository = reference.with_tag("latest");
    newest_in_stream(ctx.client, &repository, base_id(app).as_deref(), platform).await
}

/// Reads the run image the app was built on, by its recorded digest, when that still can be.
async fn old_base(
    ctx: &Job<'_>,
    recorded: &RecordedRunImage,
    (os, arch): (&str, &str),
) -> Option<Image> {
    let reference = recorded.reference.as_deref()?;
    let full: Reference = match reference.parse::<Digest>() {
        Ok(digest) => {
            let image = recorded.image.as_deref()?;
            // A name in kiln's store is no registry's; its old digest is gone from the store.
            if !names_a_registry(image) && layout_has(ctx.store_dir, image) {
                return None;
            }
            image.parse::<Reference>().ok()?.with_digest(digest)
        }
        // pack records a whole reference (`registry/repo@sha256:…`).
        Err(_) => reference.parse().ok()?,
    };
    fetch_remote(ctx.client, &full, os, arch)
        .await
        .ok()
        .map(|(i, _)| i)
}

fn refusal(name: &str, e: RebaseError) -> Failure {
    let hint = match &e {
        RebaseError::BaseMismatch { .. } => {
            "if that run image is right for this app anyway, pass `--force`".to_owned()
        }
        RebaseError::NoMetadata(_) => {
            "only images built by kiln or a CNB platform (pack) can be rebased; rebuild with `kiln build`".to_owned()
        }
        RebaseError::BadBase { .. } => "rebuild the run image, or name another with `--run-image`".to_owned(),
        RebaseError::NotRebasable
        | RebaseError::NotPrefix(_)
        | RebaseError::NotBasedOn { .. } => {
            "rebuild the app on the new run image with `kiln build`".to_owned()
        }
    };
    Failure::new(
        exit::REBASE,
        anyhow!(e).context(format!("rebasing `{name}`")),
    )
    .hint(Some(hint))
}

fn describe_old(recorded: &RecordedRunImage) -> String {
    let name = recorded.image.as_deref().unwrap_or("?");
    match &recorded.reference {
        Some(r) => match r.parse::<Digest>() {
            Ok(d) => format!("{name} ({})", short(&d)),
            Err(_) => r.clone(),
        },
        None => name.to_owned(),
    }
}

fn short(d: &Digest) -> String {
    format!("{}:{}", d.algorithm(), &d.hex()[..12])
}

/// Prints the summary table (stdout), or with `-q` the rebased references only.
fn print_summary(outcomes: &[Outcome], quiet: bool) {
    if quiet {
        for o in outcomes.iter().filter(|o| o.result == "rebased") {
            println!("{}", o.reference.as_deref().unwrap_or_default());
        }
        return;
    }
    let rows: Vec<[String; 4]> =
        std::iter::once(["IMAGE", "OLD BASE", "NEW BASE", "RESULT"].map(str::to_owned))
            .chain(outcomes.iter().map(|o| {
                let result = match (o.result, &o.reference, &o.error) {
                    ("failed", _, Some(e)) => format!("failed: {e}"),
                    ("rebased", Some(r), _) if o.pushed => format!(
                        "rebased {r} (uploaded {} of layers)",
                        human_bytes(o.uploaded_bytes)
                    ),
                    ("rebased", Some(r), _) => format!("rebased {r} (in kiln's store)"),
                    (what, Some(r), _) => format!("{what} {r}"),
                    (what, None, _) => what.to_owned(),
                };
                [
                    o.image.clone(),
                    o.old_base.clone(),
                    o.new_base.clone(),
                    result,
                ]
            }))
            .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    for r in rows {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
}
