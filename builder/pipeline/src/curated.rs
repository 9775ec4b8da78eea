//! The curated golden bases kiln carries in its binary: the definitions, committed locks and
//! archive keyrings of the repository's `golden-base/`, so that `kiln base build node` and a
//! `kiln build` that needs `kiln-base/node` work anywhere, not only in a checkout.
//!
//! The files are written once per content into `<cache dir>/golden-base/<hash>/`, where the
//! path-based code (definitions with includes, locks, keyrings) reads them like any other.

use std::path::{Path, PathBuf};

use kiln_debian::{DebianError, Definition, FetchError, Lockfile, Mirrors};
use kiln_layer::Compression;
use kiln_model::{Artifact, FinalImage, FinalIndex};
use kiln_oci::{Reference, ReferenceError};
use sha2::{Digest as _, Sha256};

use crate::base::{AssembleBase, BaseError};
use crate::deliver::{Deliver, DeliverError, sinks};
use crate::source::names_a_registry;
use crate::{Progress, Session, Store};

/// The name prefix of curated bases in kiln's store: `kiln-base/node`.
pub const CURATED_PREFIX: &str = "kiln-base/";

/// `(file name, bytes)` of each file of `golden-base/` a base build reads.
const FILES: &[(&str, &[u8])] = &[
    (
        "static.toml",
        include_bytes!("../../../golden-base/static.toml"),
    ),
    (
        "static.lock",
        include_bytes!("../../../golden-base/static.lock"),
    ),
    (
        "base.toml",
        include_bytes!("../../../golden-base/base.toml"),
    ),
    (
        "base.lock",
        include_bytes!("../../../golden-base/base.lock"),
    ),
    (
        "build.toml",
        include_bytes!("../../../golden-base/build.toml"),
    ),
    (
        "build.lock",
        include_bytes!("../../../golden-base/build.lock"),
    ),
    (
        "node.toml",
        include_bytes!("../../../golden-base/node.toml"),
    ),
    (
        "node.lock",
        include_bytes!("../../../golden-base/node.lock"),
    ),
    (
        "java17.toml",
        include_bytes!("../../../golden-base/java17.toml"),
    ),
    (
        "java17.lock",
        include_bytes!("../../../golden-base/java17.lock"),
    ),
    (
        "java21.toml",
        include_bytes!("../../../golden-base/java21.toml"),
    ),
    (
        "java21.lock",
        include_bytes!("../../../golden-base/java21.lock"),
    ),
    (
        "keyrings/debian-archive-bookworm-automatic.gpg",
        include_bytes!("../../../golden-base/keyrings/debian-archive-bookworm-automatic.gpg"),
    ),
    (
        "keyrings/debian-archive-bookworm-security-automatic.gpg",
        include_bytes!(
            "../../../golden-base/keyrings/debian-archive-bookworm-security-automatic.gpg"
        ),
    ),
    (
        "keyrings/debian-archive-bookworm-stable.gpg",
        include_bytes!("../../../golden-base/keyrings/debian-archive-bookworm-stable.gpg"),
    ),
    (
        "keyrings/debian-archive-trixie-automatic.gpg",
        include_bytes!("../../../golden-base/keyrings/debian-archive-trixie-automatic.gpg"),
    ),
    (
        "keyrings/debian-archive-trixie-security-automatic.gpg",
        include_bytes!(
            "../../../golden-base/keyrings/debian-archive-trixie-security-automatic.gpg"
        ),
    ),
    (
        "keyrings/debian-archive-trixie-stable.gpg",
        include_bytes!("../../../golden-base/keyrings/debian-archive-trixie-stable.gpg"),
    ),
];

/// Returns the names of the curated bases kiln carries (`static`, `base`, `node`, ...).
pub fn curated_names() -> impl Iterator<Item = &'static str> {
    FILES
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".toml"))
}

/// Returns the curated base `name` names: `node` for `node` or `kiln-base/node`.
pub fn curated_base(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix(CURATED_PREFIX).unwrap_or(name);
    curated_names().find(|n| *n == name)
}

/// Returns where this kiln unpacks its curated bases in `cache_dir`:
/// `<cache dir>/golden-base/<hash of the embedded files>`.
pub(crate) fn unpacked_dir(cache_dir: &Path) -> PathBuf {
    let mut hash = Sha256::new();
    for (file, bytes) in FILES {
        hash.update(file.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    let hash = hash.finalize();
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    cache_dir.join("golden-base").join(hex)
}

/// A registry a platform team publishes the curated bases to, as `host[:port][/path]`: the
/// base `node` is `host[:port]/path/node` there. A build that has one pulls its curated run
/// image from it instead of building it from kiln's embedded lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseRegistry(String);

impl BaseRegistry {
    /// Parses `host[:port][/path]`; the host must name a registry (a `.`, a port or
    /// `localhost`), so that no base is looked up on a registry nobody named.
    pub fn parse(text: &str) -> Result<Self, BaseRegistryError> {
        let trimmed = text.trim().trim_end_matches('/');
        let bad = || BaseRegistryError(text.to_owned());
        if trimmed.contains("://")
            || trimmed.contains('@')
            || !names_a_registry(&format!("{trimmed}/x"))
        {
            return Err(bad());
        }
        let registry = Self(trimmed.to_owned());
        registry.reference("static").map_err(|_| bad())?;
        Ok(registry)
    }

    /// Returns where the curated base `name` (`node`) is: `host/path/node`.
    pub fn reference(&self, name: &str) -> Result<Reference, ReferenceError> {
        self.image(name).parse()
    }

    /// Returns the curated base `name` as written: `host/path/node`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.0)
    }
}

impl std::fmt::Display for BaseRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A base registry that is no `host[:port][/path]`.
#[derive(Debug, thiserror::Error)]
#[error("the base registry `{0}` is not `host[:port][/path]` (like `registry.example.com/bases`)")]
pub struct BaseRegistryError(String);

/// Writes the embedded `golden-base/` under `cache_dir` (once for these contents) and
/// returns the path of the definition of the curated base `name`.
pub fn unpack(cache_dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let dir = unpacked_dir(cache_dir);
    if !dir.is_dir() {
        // Written aside and renamed: builds sharing a cache dir may unpack at once.
        let tmp = cache_dir
            .join("golden-base")
            .join(format!(".tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (file, bytes) in FILES {
            let path = tmp.join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(&tmp))?;
            std::fs::write(&path, bytes)?;
        }
        if std::fs::rename(&tmp, &dir).is_err() && dir.is_dir() {
            // Another build unpacked the same files first.
            let _ = std::fs::remove_dir_all(&tmp);
        } else if !dir.is_dir() {
            return Err(std::io::Error::other(format!(
                "could not move the curated bases into `{}`",
                dir.display()
            )));
        }
    }
    Ok(dir.join(format!("{name}.toml")))
}

/// Why a curated base could not be built into kiln's store.
#[derive(Debug, thiserror::Error)]
pub enum CuratedError {
    /// The embedded files could not be written into the cache dir.
    #[error("unpacking kiln's curated bases into `{}`", dir.display())]
    Unpack {
        /// The cache dir.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The embedded definition or lock does not read.
    #[error("reading kiln's curated base `{name}`")]
    Read {
        /// The base.
        name: String,
        /// Why (boxed: a Debian error is large).
        #[source]
        source: Box<DebianError>,
    },
    /// The embedded lock has nothing for this machine's architecture.
    #[error("kiln's lock of the curated base `{name}` has no packages for `{arch}`")]
    NoArchitecture {
        /// The base.
        name: String,
        /// The Debian architecture.
        arch: String,
    },
    /// The mirror no longer serves a `.deb` the embedded lock pins: the lock is older than
    /// the archive's retention.
    #[error("kiln's embedded lock of `{name}` pins a package the Debian mirror no longer serves")]
    Stale {
        /// The base.
        name: String,
        /// The mirror's answer.
        #[source]
        source: FetchError,
    },
    /// The base could not be assembled.
    #[error("building kiln's curated base `{name}`")]
    Build {
        /// The base.
        name: String,
        /// Why.
        #[source]
        source: BaseError,
    },
    /// The images of the base's architectures could not make one index.
    #[error("assembling the index of kiln's curated base `{name}`")]
    Index {
        /// The base.
        name: String,
        /// Why.
        #[source]
        source: kiln_model::ModelError,
    },
    /// The base could not be saved into kiln's store.
    #[error(transparent)]
    Save(Box<DeliverError>),
    /// The HTTP client for the Debian mirror could not be built.
    #[error(transparent)]
    Session(Box<crate::SessionError>),
}

/// Builds a curated base from kiln's embedded lock, for this machine's architecture, into
/// kiln's store as `kiln-base/<name>`: what `kiln base build <name>` saves there.
pub struct BuildCurated<'a> {
    /// The base: `node`, `java17`, ...
    pub name: &'a str,
    /// The Debian mirrors to fetch its `.deb`s from.
    pub mirrors: &'a Mirrors,
    /// kiln's cache dir: the unpacked definitions and the `.deb` cache live there.
    pub cache_dir: &'a Path,
    /// The Debian architectures to build (`amd64`): several make an index.
    pub arches: &'a [&'a str],
}

impl BuildCurated<'_> {
    /// Fetches, assembles and saves the base, one image per architecture (an index over
    /// them when several); returns the images.
    pub fn run(
        &self,
        session: &Session,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Vec<FinalImage>, CuratedError> {
        let name = self.name;
        let read = |source: DebianError| CuratedError::Read {
            name: name.to_owned(),
            source: Box::new(source),
        };
        let path = unpack(self.cache_dir, name).map_err(|source| CuratedError::Unpack {
            dir: self.cache_dir.to_path_buf(),
            source,
        })?;
        let definition = Definition::load(&path).map_err(|e| read(e.into()))?;
        let lock = Lockfile::read(&path.with_extension("lock")).map_err(|e| read(e.into()))?;
        if let Some(arch) = self
            .arches
            .iter()
            .find(|a| !lock.packages.contains_key(**a))
        {
            return Err(CuratedError::NoArchitecture {
                name: name.to_owned(),
                arch: (*arch).to_owned(),
            });
        }
        let dir = path.parent().unwrap_or(self.cache_dir);
        let included = definition
            .includes
            .iter()
            .map(|n| Lockfile::read(&dir.join(format!("{n}.lock"))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read(e.into()))?;
        let assemble = AssembleBase {
            definition: &definition,
            lock: &lock,
            included: &included,
            http: session
                .http()
                .map_err(|e| CuratedError::Session(Box::new(e)))?,
            mirrors: self.mirrors,
            deb_cache: &self.cache_dir.join("debian"),
            store: store.blobs().store(),
            compression: Compression::default(),
            local_files: &[],
        };
        let build = |arch: &str| {
            assemble.run(session, arch, progress).map_err(|e| match e {
                BaseError::Fetch(source) if source.is_gone() => CuratedError::Stale {
                    name: name.to_owned(),
                    source,
                },
                source => CuratedError::Build {
                    name: name.to_owned(),
                    source,
                },
            })
        };
        let images = self
            .arches
            .iter()
            .map(|arch| build(arch))
            .collect::<Result<Vec<_>, _>>()?;
        let index = match images.len() {
            1 => None,
            _ => Some(
                FinalIndex::new(images.clone()).map_err(|source| CuratedError::Index {
                    name: name.to_owned(),
                    source,
                })?,
            ),
        };
        let artifact = match &index {
            Some(index) => Artifact::Index(index),
            None => Artifact::Image(&images[0]),
        };
        let client = session.client();
        let store_name = format!("{CURATED_PREFIX}{name}");
        let sinks = sinks(client, None, store, &store_name, None);
        let deliver = Deliver {
            client,
            blobs: store.blobs(),
            sinks: &sinks,
            attach: None,
        };
        session
            .block_on(deliver.run(artifact, &crate::Quiet))
            .map_err(|e| CuratedError::Save(Box::new(e)))?;
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every definition, lock and keyring of `golden-base/` is embedded, and nothing else.
    #[test]
    fn embeds_every_file_of_golden_base() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden-base");
        let mut on_disk = Vec::new();
        for dir in [root.clone(), root.join("keyrings")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.strip_prefix(&root).unwrap().display().to_string();
                if path.is_file() && !name.ends_with(".md") {
                    on_disk.push(name);
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(f, _)| (*f).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        assert_eq!(curated_base("kiln-base/node"), Some("node"));
        assert_eq!(curated_base("java21"), Some("java21"));
        assert_eq!(curated_base("kiln-base/python"), None);
    }

    #[test]
    fn a_base_registry_is_a_registry_host_and_path() {
        let registry = BaseRegistry::parse("127.0.0.1:5000/platform/bases/").unwrap();
        assert_eq!(registry.image("node"), "127.0.0.1:5000/platform/bases/node");
        let node = registry.reference("node").unwrap();
        assert_eq!(node.name(), "127.0.0.1:5000/platform/bases/node");
        assert_eq!(
            BaseRegistry::parse("registry.example.com")
                .unwrap()
                .image("static"),
            "registry.example.com/static"
        );
        for bad in [
            "bases",
            "https://registry.example.com/bases",
            "",
            "Registry.example.com/Bases",
            "u@h.io/x",
        ] {
            assert!(BaseRegistry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unpacks_once_and_again_after_removal() {
        let dir = tempfile::tempdir().unwrap();
        let node = unpack(dir.path(), "node").unwrap();
        assert!(node.is_file());
        assert!(node.with_file_name("base.lock").is_file());
        let keyrings = node.parent().unwrap().join("keyrings");
        assert_eq!(std::fs::read_dir(keyrings).unwrap().count(), 6);
        assert_eq!(unpack(dir.path(), "node").unwrap(), node);
        std::fs::remove_dir_all(node.parent().unwrap()).unwrap();
        assert!(unpack(dir.path(), "node").unwrap().is_file());
    }
}
