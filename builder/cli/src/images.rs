//! `kiln images`, `kiln rm` and `kiln cache du`: kiln's local store and cache dir, read
//! through [`kiln_pipeline::local_images`] and friends.

use anyhow::{Context as _, anyhow};
use kiln_pipeline::{
    PrunePolicy, Store, cache_usage, human_bytes, local_images, prune as prune_cache, remove_local,
};

use crate::args::{CacheDirArgs, FormatArg, ImagesArgs, PruneArgs, RmArgs};
use crate::failure::{Failure, exit};
use crate::output::Ui;
use crate::settings::Environment;

/// Opens the store of the cache dir `args` names, without a registry client.
fn open_store(
    args: &CacheDirArgs,
    env: &Environment,
) -> Result<(Store, std::path::PathBuf), Failure> {
    let cache_dir = env
        .cache_dir(args.cache_dir.as_ref())
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let store = Store::open(&cache_dir, None)
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    Ok((store, cache_dir))
}

/// Runs `kiln images`.
pub fn images(args: &ImagesArgs, env: &Environment) -> Result<(), Failure> {
    let (store, _) = open_store(&args.cache, env)?;
    let images = local_images(&store).context("reading kiln's store")?;
    match args.format {
        FormatArg::Json => println!(
            "{}",
            serde_json::to_string_pretty(&images).context("rendering JSON")?
        ),
        FormatArg::Table => {
            println!(
                "{:<40} {:<19} {:>10}  {:<20}  PLATFORMS",
                "NAME", "DIGEST", "SIZE", "CREATED"
            );
            for i in &images {
                let digest = i.digest.to_string();
                println!(
                    "{:<40} {:<19} {:>10}  {:<20}  {}",
                    i.name,
                    &digest[..digest.len().min(19)],
                    human_bytes(i.size),
                    i.created.as_deref().unwrap_or("-"),
                    i.platforms.join(",")
                );
            }
        }
    }
    Ok(())
}

/// Runs `kiln rm`: every name is removed, or the command fails naming those it did not find.
pub fn rm(args: &RmArgs, env: &Environment) -> Result<(), Failure> {
    let (store, _) = open_store(&args.cache, env)?;
    let mut missing = Vec::new();
    for name in &args.names {
        match remove_local(&store, name).context("changing kiln's store")? {
            true => println!("removed {name}"),
            false => missing.push(name.as_str()),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        exit::USAGE,
        anyhow!("kiln's store has no image named {}", missing.join(", ")),
    )
    .hint(Some("`kiln images` lists the names".into())))
}

/// Runs `kiln cache du`.
pub fn du(args: &CacheDirArgs, env: &Environment) -> Result<(), Failure> {
    let (_, cache_dir) = open_store(args, env)?;
    let parts =
        cache_usage(&cache_dir).with_context(|| format!("reading `{}`", cache_dir.display()))?;
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    for (name, bytes) in &parts {
        println!("{:>10}  {name}", human_bytes(*bytes));
    }
    println!(
        "{:>10}  total in `{}`",
        human_bytes(total),
        cache_dir.display()
    );
    Ok(())
}

/// Runs `kiln cache prune`.
pub fn prune(args: &PruneArgs, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let cache_dir = env
        .cache_dir(args.cache.cache_dir.as_ref())
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    if !cache_dir.is_dir() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`{}` is no cache dir", cache_dir.display()),
        )
        .hint(Some("name kiln's cache dir: --cache-dir DIR".into())));
    }
    let policy = PrunePolicy {
        older_than: args.older_than,
        max_size: args.max_size,
        dry_run: args.dry_run,
    };
    let pruned = prune_cache(&cache_dir, &policy, std::time::SystemTime::now(), ui)
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    if args.format == FormatArg::Json {
        let json = serde_json::to_string_pretty(&pruned).context("rendering JSON")?;
        println!("{json}");
        return Ok(());
    }
    for item in &pruned.removed {
        let reason = serde_json::to_value(item.reason).unwrap_or_default();
        println!(
            "{:>10}  {:<8} {}",
            human_bytes(item.bytes),
            reason.as_str().unwrap_or_default(),
            item.item
        );
    }
    if let Some(max) = args.max_size.filter(|max| pruned.remaining > *max) {
        ui.warn(&format!(
            "the cache dir still holds more than {}: the rest is the images of kiln's store and what builds use now; `kiln images` lists them, `kiln rm NAME` drops one",
            human_bytes(max)
        ));
    }
    let verb = if pruned.dry_run {
        "would free"
    } else {
        "freed"
    };
    println!(
        "{verb} {} in {} items; `{}` holds {} ({} of it the images of kiln's store)",
        human_bytes(pruned.freed),
        pruned.removed.len(),
        cache_dir.display(),
        human_bytes(pruned.remaining),
        human_bytes(pruned.images)
    );
    Ok(())
}
