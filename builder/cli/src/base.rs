//! `kiln base lock | update | build`: golden bases from signed Debian packages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use futures_util::{StreamExt, TryStreamExt, stream};
use kiln_debian::base_image::{BaseBuild, LocalFile, build_base};
use kiln_debian::platform::debian_arch;
use kiln_debian::{
    DebianError, Definition, Keyring, LockedPackage, Lockfile, Mirrors, diff, fetch_deb, lock,
};
use kiln_image::Blobs;
use kiln_layer::{BlobStore, Compression};
use kiln_model::{Artifact, FinalImage, FinalIndex};
use kiln_oci::Reference;
use kiln_registry::Client;

use crate::args::{BaseBuildArgs, BaseCommand, BaseCommon, CompressionArg};
use crate::failure::{Failure, exit};
use crate::output::{Ui, human_bytes};
use crate::settings::Environment;
use crate::sink::Sinks;
use crate::supply;

/// `.deb` downloads in flight at once.
const FETCH_CONCURRENCY: usize = 4;

/// Runs a `kiln base` subcommand.
pub fn run(cmd: &BaseCommand, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        BaseCommand::Lock(a) => {
            // An unreadable old lock is being replaced anyway; a readable one guards
            // against a rollback of the archive.
            let old = Lockfile::read(&lock_path(&a.common.definition)).ok();
            let new = relock(&a.common, env, &runtime, ui, old.as_ref())?;
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
            let new = relock(&a.common, env, &runtime, ui, Some(&old))?;
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

fn mirrors(common: &BaseCommon, env: &Environment) -> Result<Mirrors, Failure> {
    env.debian_mirrors(common.mirror.as_deref(), common.security_mirror.as_deref())
        .map_err(|e| {
            Failure::new(exit::USAGE, e).hint(Some(
                "pass `--mirror URL` (and `--security-mirror URL`) or set `KILN_DEBIAN_MIRROR` (and `KILN_DEBIAN_SECURITY_MIRROR`)".into(),
            ))
        })
}

/// Turns a missing security archive into a usage error with the flag to pass.
fn no_mirror(e: kiln_debian::mirrors::NoSecurityMirror) -> Failure {
    Failure::new(exit::USAGE, e).hint(Some(
        "pass `--security-mirror URL`, set `KILN_DEBIAN_SECURITY_MIRROR`, or add a `-security` suite to the apt sources".into(),
    ))
}

fn http_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .user_agent(format!("kiln/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(exit::FAILURE, e))
}

/// Locks the definition of `common`, refusing a rollback from `previous` when given.
fn relock(
    common: &BaseCommon,
    env: &Environment,
    runtime: &tokio::runtime::Runtime,
    ui: &Ui,
    previous: Option<&Lockfile>,
) -> Result<Lockfile, Failure> {
    let def = load_definition(&common.definition)?;
    let keyring = Keyring::load(&def.keyrings).map_err(|e| Failure::new(exit::FAILURE, e))?;
    let mirrors = mirrors(common, env)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ui.phase(&format!("LOCKING {} ({})", def.name, def.suite));
    let http = http_client()?;
    let new = runtime
        .block_on(async {
            match previous {
                Some(old) => kiln_debian::relock(&def, &mirrors, &keyring, now, &http, old).await,
                None => lock(&def, &mirrors, &keyring, now, &http).await,
            }
        })
        .map_err(|e| match e {
            DebianError::NoMirror(e) => no_mirror(e),
            e => Failure::new(exit::FAILURE, e),
        })?;
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
    check_fresh(&def, &lockfile, &a.common.definition, &lock_file, ui)?;
    let dir = a.common.definition.parent().unwrap_or(Path::new("."));
    let included = def
        .includes
        .iter()
        .map(|name| Lockfile::read(&dir.join(format!("{name}.lock"))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let archs = platforms(&a.platform, &lockfile, &a.common.definition)?;
    let cache_dir = std::path::absolute(
        env.cache_dir(a.common.cache_dir.as_ref())
            .map_err(|e| Failure::new(exit::USAGE, e))?,
    )
    .context("resolving the cache directory")?;
    let store_dir = cache_dir.join("oci");
    let store = BlobStore::open(&store_dir).map_err(|e| Failure::new(exit::FAILURE, e))?;
    let compression = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
    };

    let job = PlatformBuild {
        def: &def,
        lock: &lockfile,
        included: &included,
        http: &http_client()?,
        mirrors: &mirrors(&a.common, env)?,
        deb_cache: &cache_dir.join("debian"),
        store: &store,
        compression,
        local_files: &local_files(&a.add_file)?,
    };
    let images = archs
        .iter()
        .map(|arch| job.build(arch, runtime, ui))
        .collect::<Result<Vec<_>, _>>()?;
    let index = match images.len() {
        1 => None,
        _ => Some(FinalIndex::new(images.clone()).map_err(|e| Failure::new(exit::EXPORT, e))?),
    };
    let artifact = match &index {
        Some(index) => Artifact::Index(index),
        None => Artifact::Image(&images[0]),
    };

    let settings = env
        .registry_settings(&a.registry)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let client = Client::new(settings).map_err(|e| {
        let hint = e.hint();
        Failure::new(exit::FAILURE, e).hint(hint)
    })?;
    crate::signals::watch(
        &client,
        [store.blob_dir().to_path_buf(), store.root().to_path_buf()],
    );
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
    let sign_key = supply::signing_key(&a.supply, env)?;
    if sign_key.is_some() && target.is_none() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`--sign-key` signs the base in its registry, and this build does not push"),
        )
        .hint(Some("add `--publish IMAGE`".into())));
    }
    let sbom_name = target
        .as_ref()
        .map_or_else(|| local_name.clone(), Reference::name);
    let created = kiln_debian::base_image::release_epoch(&lockfile)
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let (sboms, sbom_reports, sbom_ms) = runtime
        .block_on(supply::make_sboms(
            &a.supply,
            supply::Described {
                artifact,
                name: &sbom_name,
                declared: &[],
                created,
            },
            &blobs,
            &cache_dir,
            ui,
        ))
        .map_err(|e| Failure::new(exit::EXPORT, e))?;
    let mut report = supply::SupplyReport {
        sboms: sbom_reports,
        sbom_ms,
        ..Default::default()
    };
    let attachments = target.as_ref().map(|t| {
        let what = supply::Attachments {
            artifact,
            sboms: &sboms,
            statement: None,
            key: sign_key.as_ref(),
        };
        (t, what)
    });
    supply::deliver_and_attach(runtime, &client, attachments, &mut report, |blobs_in| {
        Sinks {
            publish: target.as_ref(),
            store_dir: &store_dir,
            name,
            output: a.output.as_deref(),
        }
        .deliver(runtime, &client, artifact, &blobs, ui, blobs_in)
    })?;
    for (digest, attached) in &report.signatures {
        ui.info(&format!("signed {digest} ({})", attached.tag));
    }
    let pinned = match &target {
        Some(t) => format!("{}@{}", t.name(), artifact.digest()),
        None => format!("{name}@{}", artifact.digest()),
    };
    println!("{pinned}");
    Ok(())
}

/// Returns the `--add-file SRC:DEST` files, checked: `DEST` absolute, `SRC` a file.
fn local_files(specs: &[String]) -> Result<Vec<LocalFile>, Failure> {
    specs
        .iter()
        .map(|spec| {
            let usage = |why: String| {
                Failure::new(exit::USAGE, anyhow!("--add-file `{spec}`: {why}")).hint(Some(
                    "write it as SOURCE:/absolute/path/in/the/image, e.g. target/release/kiln:/usr/local/bin/kiln"
                        .to_owned(),
                ))
            };
            let (source, path) = spec
                .rsplit_once(':')
                .ok_or_else(|| usage("no `:` between the file and its path in the image".into()))?;
            if !path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err(usage(format!("`{path}` is not an absolute path without `..`")));
            }
            let source = std::path::absolute(source).map_err(|e| usage(e.to_string()))?;
            if !source.is_file() {
                return Err(usage(format!("`{}` is not a file", source.display())));
            }
            Ok(LocalFile {
                source,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// What building one platform's image of a base needs.
struct PlatformBuild<'a> {
    def: &'a Definition,
    lock: &'a Lockfile,
    included: &'a [Lockfile],
    http: &'a reqwest::Client,
    mirrors: &'a Mirrors,
    deb_cache: &'a Path,
    store: &'a BlobStore,
    compression: Compression,
    local_files: &'a [LocalFile],
}

impl PlatformBuild<'_> {
    /// Fetches the `.deb`s locked for `arch` and builds and finalizes its image.
    fn build(
        &self,
        arch: &str,
        runtime: &tokio::runtime::Runtime,
        ui: &Ui,
    ) -> Result<FinalImage, Failure> {
        let locked = self.lock.packages.get(arch).map_or(&[][..], Vec::as_slice);
        ui.phase(&format!("FETCHING {} packages for {arch}", locked.len()));
        let debs = runtime.block_on(fetch_all(
            self.http,
            self.mirrors,
            &self.lock.suite,
            locked,
            self.deb_cache,
        ))?;
        ui.phase(&format!("BUILDING {arch}"));
        let image = build_base(&BaseBuild {
            definition: self.def,
            lock: self.lock,
            included: self.included,
            arch,
            debs: &debs,
            store: self.store,
            compression: self.compression,
            local_files: self.local_files,
        })
        .map_err(|e| Failure::new(exit::EXPORT, e))?;
        let final_image = image
            .finalize()
            .map_err(|e| Failure::new(exit::EXPORT, e))?;
        for l in &final_image.layers {
            ui.info(&format!("layer {} ({})", l.digest, human_bytes(l.size)));
        }
        Ok(final_image)
    }
}

/// Refuses a lock made from a definition whose suite, architectures, packages or exclusions
/// have changed since: building it would silently leave the edit out.
fn check_fresh(
    def: &Definition,
    lock: &Lockfile,
    def_path: &Path,
    lock_path: &Path,
    ui: &Ui,
) -> Result<(), Failure> {
    match &lock.inputs_sha256 {
        Some(recorded) if *recorded != def.lock_inputs_sha256() => Err(Failure::new(
            exit::FAILURE,
            anyhow!(
                "`{}` is stale: the suite, architectures, packages or exclusions of `{}` changed since it was locked",
                lock_path.display(),
                def_path.display()
            ),
        )
        .hint(Some(format!(
            "review and relock: kiln base update {}",
            def_path.display()
        )))),
        Some(_) => Ok(()),
        None => {
            ui.warn(&format!(
                "`{}` does not record what it was locked from, so kiln cannot tell whether `{}` changed since; relock it with `kiln base update`",
                lock_path.display(),
                def_path.display()
            ));
            Ok(())
        }
    }
}

/// Returns the Debian architectures to build: those of `--platform`, each of which must be in
/// the lock, or every architecture the lock has.
fn platforms(wanted: &[String], lock: &Lockfile, def: &Path) -> Result<Vec<String>, Failure> {
    if wanted.is_empty() {
        if lock.architectures.is_empty() {
            return Err(Failure::new(
                exit::FAILURE,
                anyhow!("the lock of `{}` names no architecture", def.display()),
            )
            .hint(Some(format!("relock it: kiln base lock {}", def.display()))));
        }
        return Ok(lock.architectures.clone());
    }
    let mut archs: Vec<String> = Vec::new();
    for platform in wanted {
        let arch = debian_arch(platform.trim())
            .map_err(|e| Failure::new(exit::USAGE, anyhow!("--platform: {e}")))?;
        if !lock.packages.contains_key(arch) {
            return Err(Failure::new(
                exit::USAGE,
                anyhow!(
                    "`{platform}` (Debian `{arch}`) is not in the lock of `{}`",
                    def.display()
                ),
            )
            .hint(Some(format!(
                "add \"{arch}\" to `architectures` in the definition and run `kiln base update {}`",
                def.display()
            ))));
        }
        if !archs.iter().any(|a| a == arch) {
            archs.push(arch.to_owned());
        }
    }
    Ok(archs)
}

/// Downloads (or finds in the cache) every `.deb` of `locked`, a few at a time, each checked
/// against its locked size and SHA-256. Returns package name → cached path.
async fn fetch_all(
    http: &reqwest::Client,
    mirrors: &Mirrors,
    suite: &str,
    locked: &[LockedPackage],
    cache: &Path,
) -> Result<BTreeMap<String, PathBuf>, Failure> {
    for p in locked {
        mirrors
            .for_suite(p.suite.as_deref().unwrap_or(suite))
            .map_err(no_mirror)?;
    }
    let fetched: Vec<(String, PathBuf)> = stream::iter(locked)
        .map(|p| async move {
            let mirror = mirrors
                .for_suite(p.suite.as_deref().unwrap_or(suite))
                .unwrap_or(&mirrors.main);
            let path = fetch_deb(http, mirror, p, cache).await?;
            Ok::<_, kiln_debian::FetchError>((p.name.clone(), path))
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect()
        .await
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    Ok(fetched.into_iter().collect())
}
