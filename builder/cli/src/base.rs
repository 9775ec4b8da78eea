//! `kiln base lock | update | build`: golden bases from signed Debian packages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use kiln_debian::base_image::{BaseBuild, build_base};
use kiln_debian::{Definition, Keyring, Lockfile, diff, fetch_deb, lock};
use kiln_image::Blobs;
use kiln_layer::{BlobStore, Compression};
use kiln_oci::Reference;
use kiln_registry::Client;
use url::Url;

use crate::args::{BaseBuildArgs, BaseCommand, BaseCommon, CompressionArg};
use crate::failure::{Failure, exit};
use crate::output::{Ui, human_bytes};
use crate::settings::Environment;
use crate::sink::Sinks;

/// Runs a `kiln base` subcommand.
pub fn run(cmd: &BaseCommand, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        BaseCommand::Lock(a) => {
            let new = relock(&a.common, env, &runtime, ui)?;
            write_lock(&a.common.definition, &new, ui)
        }
        BaseCommand::Update(a) => {
            let path = lock_path(&a.common.definition);
            let old = Lockfile::read(&path).map_err(|e| {
                Failure::new(exit::FAILURE, e).hint(Some(format!(
                    "create the lock first: kiln base lock {}",
                    a.common.definition.display()
                )))
            })?;
            let new = relock(&a.common, env, &runtime, ui)?;
            let changes = diff(&old, &new);
            if changes.is_empty() {
                ui.info("no package changed");
            }
            for c in &changes {
                println!("{c}");
            }
            write_lock(&a.common.definition, &new, ui)
        }
        BaseCommand::Build(a) => build(a, env, &runtime, ui),
    }
}

/// Returns `golden-base/<name>.lock` for `golden-base/<name>.toml`.
fn lock_path(def: &Path) -> PathBuf {
    def.with_extension("lock")
}

fn load_definition(path: &Path) -> Result<Definition, Failure> {
    Definition::load(path).map_err(|e| Failure::new(exit::USAGE, e))
}

fn mirror(common: &BaseCommon, env: &Environment) -> Result<Url, Failure> {
    env.debian_mirror(common.mirror.as_deref()).map_err(|e| {
        Failure::new(exit::USAGE, e).hint(Some(
            "pass `--mirror URL` or set `KILN_DEBIAN_MIRROR`".into(),
        ))
    })
}

fn http_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .user_agent(format!("kiln/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(exit::FAILURE, e))
}

fn relock(
    common: &BaseCommon,
    env: &Environment,
    runtime: &tokio::runtime::Runtime,
    ui: &Ui,
) -> Result<Lockfile, Failure> {
    let def = load_definition(&common.definition)?;
    let keyring = Keyring::load(&def.keyrings).map_err(|e| Failure::new(exit::FAILURE, e))?;
    let mirror = mirror(common, env)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ui.phase(&format!("LOCKING {} ({})", def.name, def.suite));
    let new = runtime
        .block_on(lock(&def, &mirror, &keyring, now, &http_client()?))
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    Ok(new)
}

fn write_lock(def_path: &Path, lockfile: &Lockfile, ui: &Ui) -> Result<(), Failure> {
    let path = lock_path(def_path);
    lockfile
        .write(&path)
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let count: usize = lockfile.packages.values().map(Vec::len).sum();
    ui.info(&format!(
        "locked {count} packages from {} ({}) into `{}`",
        lockfile.codename,
        lockfile.release_date,
        path.display()
    ));
    Ok(())
}

fn build(
    a: &BaseBuildArgs,
    env: &Environment,
    runtime: &tokio::runtime::Runtime,
    ui: &Ui,
) -> Result<(), Failure> {
    let def = load_definition(&a.common.definition)?;
    let lock_file = lock_path(&a.common.definition);
    let lockfile = Lockfile::read(&lock_file).map_err(|e| {
        Failure::new(exit::FAILURE, e).hint(Some(format!(
            "lock it first: kiln base lock {}",
            a.common.definition.display()
        )))
    })?;
    let dir = a.common.definition.parent().unwrap_or(Path::new("."));
    let included = def
        .includes
        .iter()
        .map(|name| Lockfile::read(&dir.join(format!("{name}.lock"))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let arch = lockfile
        .architectures
        .first()
        .cloned()
        .unwrap_or_else(|| "amd64".into());
    let cache_dir = std::path::absolute(
        env.cache_dir(a.common.cache_dir.as_ref())
            .map_err(|e| Failure::new(exit::USAGE, e))?,
    )
    .context("resolving the cache directory")?;
    let mirror = mirror(&a.common, env)?;
    let http = http_client()?;

    ui.phase(&format!(
        "FETCHING {} packages",
        lockfile.packages.get(&arch).map_or(0, Vec::len)
    ));
    let deb_cache = cache_dir.join("debian");
    let mut debs = BTreeMap::new();
    for p in lockfile.packages.get(&arch).into_iter().flatten() {
        let path = runtime
            .block_on(fetch_deb(&http, &mirror, p, &deb_cache))
            .map_err(|e| Failure::new(exit::FAILURE, e))?;
        debs.insert(p.name.clone(), path);
    }

    ui.phase("BUILDING");
    let store_dir = cache_dir.join("oci");
    let store = BlobStore::open(&store_dir).map_err(|e| Failure::new(exit::FAILURE, e))?;
    let compression = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let image = build_base(&BaseBuild {
        definition: &def,
        lock: &lockfile,
        included: &included,
        arch: &arch,
        debs: &debs,
        store: &store,
        compression,
    })
    .map_err(|e| Failure::new(exit::EXPORT, e))?;
    let final_image = image
        .finalize()
        .map_err(|e| Failure::new(exit::EXPORT, e))?;
    for l in &final_image.layers {
        ui.info(&format!("layer {} ({})", l.digest, human_bytes(l.size)));
    }

    let client = Client::new(env.registry_settings(&a.registry)).map_err(|e| {
        let hint = e.hint();
        Failure::new(exit::FAILURE, e).hint(hint)
    })?;
    let blobs = Blobs::new(store, Some(client.clone()));
    let target: Option<Reference> = a
        .publish
        .as_deref()
        .map(|r| {
            r.parse()
                .map_err(|e| Failure::new(exit::USAGE, anyhow!("--publish: {e}")))
        })
        .transpose()?;
    let local_name = format!("kiln-base/{}", def.name);
    let name = a.publish.as_deref().unwrap_or(&local_name);
    Sinks {
        publish: target.as_ref(),
        store_dir: &store_dir,
        name,
        output: a.output.as_deref(),
    }
    .deliver(runtime, &client, &final_image, &blobs, ui)?;
    let pinned = match &target {
        Some(t) => format!("{}@{}", t.name(), final_image.manifest_digest),
        None => format!("{name}@{}", final_image.manifest_digest),
    };
    println!("{pinned}");
    Ok(())
}
