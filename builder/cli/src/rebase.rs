//! `kiln rebase`: put app images on a newer run image without rebuilding them, a few at a
//! time, through the library's [`RebaseApp`]; prints a table (or, with `-q`, the rebased
//! references) and writes the `--report`.

use std::time::Instant;

use anyhow::{Context, anyhow};
use futures_util::{StreamExt, stream};
use kiln_pipeline::{ImageSource, RebaseApp, RebaseOutcome, RebaseResult, human_bytes};
use serde::Serialize;

use crate::args::RebaseArgs;
use crate::errors::rebase_failure;
use crate::failure::{Failure, exit};
use crate::output::Ui;
use crate::settings::Environment;

/// Images rebased at once.
const PARALLEL: usize = 4;

/// One image's row of the summary and the report.
#[derive(Debug, Serialize)]
struct Row {
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
    let session = crate::session::open(env, &args.registry)?;
    let store = crate::session::store(&session, &cache_dir, exit::REBASE)?;
    let run_image = args
        .run_image
        .as_deref()
        .map(|name| {
            ImageSource::parse(name, store.dir())
                .map_err(|e| usage(anyhow!("run image `{name}`: {e}")))
        })
        .transpose()?;
    let rebase = RebaseApp {
        client: session.client(),
        store: &store,
        run_image: run_image.as_ref(),
        force: args.force,
        dry_run: args.dry_run,
        publish: args.publish,
    };
    ui.phase(if args.dry_run {
        "REBASING (dry run)"
    } else {
        "REBASING"
    });
    let mut outcomes: Vec<(usize, RebaseOutcome)> = session.block_on(
        stream::iter(args.images.iter().enumerate())
            .map(|(i, name)| {
                let rebase = &rebase;
                async move { (i, rebase.run(name).await) }
            })
            .buffer_unordered(PARALLEL)
            .collect(),
    );
    outcomes.sort_by_key(|(i, _)| *i);
    let mut rows: Vec<Row> = outcomes.into_iter().map(|(_, o)| row(o)).collect();
    ui.finish(false);
    print_summary(&rows, args.quiet);
    ui.info(&format!("done in {} ms", started.elapsed().as_millis()));
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&rows).context("serializing the report")?;
        std::fs::write(path, json)
            .with_context(|| format!("writing the report `{}`", path.display()))?;
    }
    failure(&mut rows)
}

/// Returns the row of an outcome.
fn row(o: RebaseOutcome) -> Row {
    let (result, uploaded_bytes, pushed, failure) = match o.result {
        Ok(RebaseResult::UpToDate) => ("up to date", 0, false, None),
        Ok(RebaseResult::WouldRebase) => ("would rebase", 0, false, None),
        Ok(RebaseResult::Rebased {
            uploaded_bytes,
            pushed,
        }) => ("rebased", uploaded_bytes, pushed, None),
        Err(e) => ("failed", 0, false, Some(rebase_failure(e))),
    };
    Row {
        image: o.image,
        old_base: o.old_base.unwrap_or_else(|| "?".into()),
        new_base: o.new_base.unwrap_or_else(|| "?".into()),
        result,
        reference: o.reference,
        uploaded_bytes,
        pushed,
        error: failure.as_ref().map(|f| format!("{:#}", f.error)),
        failure,
    }
}

/// Returns the failure of the whole command: the one failure of a single image as it is,
/// several as one.
fn failure(rows: &mut [Row]) -> Result<(), Failure> {
    let total = rows.len();
    let mut failed: Vec<Failure> = rows.iter_mut().filter_map(|r| r.failure.take()).collect();
    match failed.len() {
        0 => Ok(()),
        1 if total == 1 => Err(failed.remove(0)),
        n => {
            let hint = failed.iter().find_map(|f| f.hint.clone());
            Err(Failure::new(
                exit::REBASE,
                anyhow!("{n} of {total} images could not be rebased (see the table above)"),
            )
            .hint(hint))
        }
    }
}

/// Prints the summary table (stdout), or with `-q` the rebased references only.
fn print_summary(rows: &[Row], quiet: bool) {
    if quiet {
        for r in rows.iter().filter(|r| r.result == "rebased") {
            println!("{}", r.reference.as_deref().unwrap_or_default());
        }
        return;
    }
    let cells: Vec<[String; 4]> =
        std::iter::once(["IMAGE", "OLD BASE", "NEW BASE", "RESULT"].map(str::to_owned))
            .chain(rows.iter().map(|o| {
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
    let width = |c: usize| {
        cells
            .iter()
            .map(|r| r[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    for r in cells {
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
