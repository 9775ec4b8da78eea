//! `kiln base lock | update | build`: golden bases from signed Debian packages.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use kiln_attest::sign::PrivateKey;
use kiln_debian::base_image::LocalFile;
use kiln_debian::platform::debian_arch;
use kiln_debian::{DebianError, Definition, Keyring, Lockfile, Mirrors, diff, lock};
use kiln_model::{Artifact, FinalIndex};
use kiln_oci::Reference;
use kiln_pipeline::{
    AssembleBase, Attest, Deliver, Session, Store, curated_base, curated_names, sinks,
    unpack_curated,
};

use crate::args::{BaseBuildArgs, BaseCommand, BaseCommon};
use crate::errors::{BASE_REGISTRY_HINT, base_failure, deliver_failure, no_mirror_hint};
use crate::failure::{Failure, exit};
use crate::keys::signing_key;
use crate::output::Ui;
use crate::settings::Environment;

/// Runs a `kiln base` subcommand.
pub fn run(cmd: &BaseCommand, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    match cmd {
        BaseCommand::Lock(a) => {
            // An unreadable old lock is being replaced anyway; a readable one guards
            // against a rollback of the archive.
            let old = Lockfile::read(&lock_path(&a.common.definition)).ok();
            let new = relock(&a.common, env, ui, old.as_ref())?;
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
            let new = relock(&a.common, env, ui, Some(&old))?;
            let changes = diff(&old, &new);
            if changes.is_empty() {
                ui.info("no package changed");
            }
            for c in &changes {
                println!("{c}");
            }
            write_lock(&a.common.definition, &new, ui)
        }
        BaseCommand::Build(a) => build(a, env, ui),
    }
}

/// Returns the definition `arg` names: a file, or the name of a curated base kiln carries
/// (`node`), whose embedded definition and lock are unpacked into `cache_dir`.
fn definition_path(arg: &Path, cache_dir: &Path) -> Result<PathBuf, Failure> {
    let bare_name = arg.extension().is_none() && arg.components().count() == 1;
    if !bare_name || arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let name = arg.to_str().and_then(curated_base).ok_or_else(|| {
        let known: Vec<&str> = curated_names().collect();
        Failure::new(
            exit::USAGE,
            anyhow!(
                "`{}` is neither a base definition file nor a curated base kiln carries",
                arg.display()
            ),
        )
        .hint(Some(format!(
            "name a definition file (`golden-base/node.toml`) or one of: {}",
            known.join(", ")
        )))
    })?;
    unpack_curated(cache_dir, name)
        .with_context(|| {
            format!(
                "unpacking kiln's curated bases into `{}`",
                cache_dir.display()
            )
        })
        .map_err(|e| Failure::new(exit::KILN_BUILD, e))
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

/// Locks the definition of `common`, refusing a rollback from `previous` when given.
fn relock(
    common: &BaseCommon,
    env: &Environment,
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
    // Locking reads mirrors only: no registry settings apply.
    let session = Session::open(Default::default())
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    let http = session
        .http()
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    let new = session
        .block_on(async {
            match previous {
                Some(old) => kiln_debian::relock(&def, &mirrors, &keyring, now, http, old).await,
                None => lock(&def, &mirrors, &keyring, now, http).await,
            }
        })
        .map_err(|e| match e {
            DebianError::NoMirror(e) => Failure::new(exit::USAGE, e).hint(Some(no_mirror_hint())),
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

fn build(a: &BaseBuildArgs, env: &Environment, ui: &Ui) -> Result<(), Failure> {
    let cache_dir = std::path::absolute(
        env.cache_dir(a.common.cache_dir.as_ref())
            .map_err(|e| Failure::new(exit::USAGE, e))?,
    )
    .context("resolving the cache directory")?;
    let def_path = definition_path(&a.common.definition, &cache_dir)?;
    let def = load_definition(&def_path)?;
    let lock_file = lock_path(&def_path);
    let lockfile = Lockfile::read(&lock_file).map_err(|e| {
        Failure::new(exit::FAILURE, e).hint(Some(format!(
            "lock it first: kiln base lock {}",
            def_path.display()
        )))
    })?;
    check_fresh(&def, &lockfile, &def_path, &lock_file, ui)?;
    let dir = def_path.parent().unwrap_or(Path::new("."));
    let included = def
        .includes
        .iter()
        .map(|name| Lockfile::read(&dir.join(format!("{name}.lock"))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let archs = platforms(&a.platform, &lockfile, &def_path)?;
    let target = publish_target(a, env, &def.name)?;
    let sign_key = signing_key(&a.supply, env)?;
    if sign_key.is_some() && target.is_none() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`--sign-key` signs the base in its registry, and this build does not push"),
        )
        .hint(Some("add `--publish IMAGE`".into())));
    }
    let session = crate::session::open(env, &a.registry)?;
    let store = crate::session::store(&session, &cache_dir, exit::FAILURE)?;
    let assemble = AssembleBase {
        definition: &def,
        lock: &lockfile,
        included: &included,
        http: session
            .http()
            .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?,
        mirrors: &mirrors(&a.common, env)?,
        deb_cache: &cache_dir.join("debian"),
        store: store.blobs().store(),
        compression: a.compression.into(),
        local_files: &local_files(&a.add_file)?,
    };
    let images = archs
        .iter()
        .map(|arch| assemble.run(&session, arch, ui).map_err(base_failure))
        .collect::<Result<Vec<_>, _>>()?;
    // The first app build on this base then finds the base's symlinks already read.
    for image in &images {
        kiln_lifecycle::base_links(store.blobs().store(), &image.layers);
    }
    let index = match images.len() {
        1 => None,
        _ => Some(FinalIndex::new(images.clone()).map_err(|e| Failure::new(exit::EXPORT, e))?),
    };
    let artifact = match &index {
        Some(index) => Artifact::Index(index),
        None => Artifact::Image(&images[0]),
    };
    let out = Output {
        session: &session,
        store: &store,
        cache_dir: &cache_dir,
        target: target.as_ref(),
        name: format!("kiln-base/{}", def.name),
        sign_key: sign_key.as_ref(),
    };
    out.deliver(a, artifact, &lockfile, ui)
}

/// Returns where `--publish` pushes the base `name`: the reference given, or alone, `name`
/// in the base registry.
fn publish_target(
    a: &BaseBuildArgs,
    env: &Environment,
    name: &str,
) -> Result<Option<Reference>, Failure> {
    let usage = |e: anyhow::Error| Failure::new(exit::USAGE, e);
    match a.publish.as_deref() {
        None => Ok(None),
        Some("") => {
            let registry = env
                .base_registry(a.bases.base_registry.as_deref())
                .map_err(|e| usage(e).hint(Some(BASE_REGISTRY_HINT.into())))?
                .ok_or_else(|| {
                    usage(anyhow!("`--publish` without an image pushes to the base registry, and none is set"))
                        .hint(Some("add `--base-registry HOST/PATH` (or set `KILN_BASE_REGISTRY`), or name the image: `--publish IMAGE`".into()))
                })?;
            registry
                .reference(name)
                .map(Some)
                .map_err(|e| usage(anyhow!("the base registry `{registry}`: {e}")))
        }
        Some(r) => r
            .parse()
            .map(Some)
            .map_err(|e| usage(anyhow!("--publish: {e}"))),
    }
}

/// Where a built base goes, and what vouches for it.
struct Output<'a> {
    session: &'a Session,
    store: &'a Store,
    cache_dir: &'a Path,
    target: Option<&'a Reference>,
    /// Its name in kiln's store (`kiln-base/<name>`), when not published.
    name: String,
    sign_key: Option<&'a PrivateKey>,
}

impl Output<'_> {
    /// Makes the base's SBOMs (and signatures), then pushes or saves it with them, and
    /// prints its pinned reference.
    fn deliver(
        &self,
        a: &BaseBuildArgs,
        artifact: Artifact<'_>,
        lockfile: &Lockfile,
        ui: &Ui,
    ) -> Result<(), Failure> {
        let name = self.target.map_or(self.name.clone(), Reference::to_string);
        let name = name.as_str();
        let sbom_name = self
            .target
            .map_or_else(|| self.name.clone(), Reference::name);
        let created = kiln_debian::base_image::release_epoch(lockfile)
            .map_err(|e| Failure::new(exit::FAILURE, e))?;
        let attest = Attest {
            blobs: self.store.blobs(),
            cache_dir: self.cache_dir,
            sbom: !a.supply.no_sbom,
            sbom_dir: a.supply.sbom_dir.as_deref(),
            name: &sbom_name,
            declared: &[],
            created,
            key: self.sign_key,
            target: self.target,
            statement: None,
            image_statements: Vec::new(),
        };
        let mut attestations = self
            .session
            .block_on(attest.run(artifact, ui))
            .map_err(|e| Failure::new(exit::EXPORT, e))?;
        let client = self.session.client();
        let sinks = sinks(client, self.target, self.store, name, a.output.as_deref());
        let deliver = Deliver {
            client,
            blobs: self.store.blobs(),
            sinks: &sinks,
            attach: self.target.map(|t| (t, &attestations)),
        };
        let delivered = self
            .session
            .block_on(deliver.run(artifact, ui))
            .map_err(|e| deliver_failure(e, exit::EXPORT))?;
        if let Some(attached) = delivered.attached {
            attestations.report.record(attached);
        }
        for (digest, attached) in &attestations.report.signatures {
            ui.info(&format!("signed {digest} ({})", attached.tag));
        }
        let pinned = match self.target {
            Some(t) => format!("{}@{}", t.name(), artifact.digest()),
            None => format!("{name}@{}", artifact.digest()),
        };
        ui.stdout(&pinned);
        Ok(())
    }
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
