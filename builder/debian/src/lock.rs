//! `kiln base lock` and `kiln base update`: verified `InRelease` → hash-checked
//! `Packages.xz` per architecture and component → resolution → [`Lockfile`]; and the
//! package-level difference between two lockfiles.

use std::fmt;

use url::Url;

use crate::definition::Definition;
use crate::error::DebianError;
use crate::fetch::{fetch_index, fetch_inrelease, mirror_url, redact};
use crate::inrelease::InRelease;
use crate::keyring::Keyring;
use crate::lockfile::{LOCK_VERSION, LockedPackage, Lockfile};
use crate::packages::{PackageIndex, parse_packages_xz};
use crate::release::{ReleaseError, format_date};
use crate::resolve::resolve;
use crate::version::Version;

/// Locks `def` against `mirror`: downloads and verifies `dists/<suite>/InRelease` with
/// `keyring` at time `now` (Unix seconds), downloads each architecture's `Packages.xz` of
/// every component, checks it against the signed `Release`, resolves the definition's
/// packages and returns the lockfile (not yet written).
pub async fn lock(
    def: &Definition,
    mirror: &Url,
    keyring: &Keyring,
    now: i64,
    http: &reqwest::Client,
) -> Result<Lockfile, DebianError> {
    let inrelease_url = redact(&mirror_url(
        mirror,
        &format!("dists/{}/InRelease", def.suite),
    )?);
    let bytes = fetch_inrelease(http, mirror, &def.suite).await?;
    let verified =
        InRelease::verify(&bytes, keyring, now).map_err(|source| DebianError::InRelease {
            url: inrelease_url.clone(),
            source,
        })?;
    let release = &verified.release;
    let names = [release.suite.as_deref(), release.codename.as_deref()];
    if !names.contains(&Some(def.suite.as_str())) {
        return Err(DebianError::WrongSuite {
            url: inrelease_url,
            wanted: def.suite.clone(),
            found: release.name().to_owned(),
        });
    }
    let mut packages = std::collections::BTreeMap::new();
    for arch in &def.architectures {
        if !release.architectures.contains(arch) {
            return Err(ReleaseError::NoArchitecture {
                suite: release.name().to_owned(),
                arch: arch.clone(),
                available: release.architectures.join(" "),
            }
            .into());
        }
        let mut index = PackageIndex::default();
        for component in &def.components {
            let xz_file = release.packages_xz(component, arch)?.clone();
            let plain = release
                .file(&format!("{component}/binary-{arch}/Packages"))
                .ok()
                .cloned();
            let xz = fetch_index(http, mirror, &def.suite, release, &xz_file).await?;
            let task = format!("reading `{}`", xz_file.path);
            let parsed = tokio::task::spawn_blocking(move || {
                parse_packages_xz(&xz, &xz_file, plain.as_ref())
            })
            .await
            .map_err(|e| DebianError::Task {
                task,
                reason: e.to_string(),
            })??;
            index.merge(parsed);
        }
        let resolution = resolve(&index, arch, &def.packages, &def.exclude).map_err(|source| {
            DebianError::Resolve {
                definition: def.name.clone(),
                arch: arch.clone(),
                source,
            }
        })?;
        let list: Vec<LockedPackage> = resolution
            .packages
            .values()
            .map(LockedPackage::from)
            .collect();
        packages.insert(arch.clone(), list);
    }
    Ok(Lockfile {
        version: LOCK_VERSION,
        definition: def.name.clone(),
        suite: def.suite.clone(),
        codename: release
            .codename
            .clone()
            .unwrap_or_else(|| def.suite.clone()),
        release_version: release.version.clone(),
        release_date: format_date(release.date),
        inrelease_sha256: verified.sha256,
        architectures: def.architectures.clone(),
        packages,
    })
}

/// One package-level difference between two lockfiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A package is new.
    Added {
        /// The architecture.
        arch: String,
        /// The package.
        name: String,
        /// Its version.
        version: String,
    },
    /// A package is gone.
    Removed {
        /// The architecture.
        arch: String,
        /// The package.
        name: String,
        /// Its old version.
        version: String,
    },
    /// A package moved to a later version.
    Upgraded {
        /// The architecture.
        arch: String,
        /// The package.
        name: String,
        /// The old version.
        old: String,
        /// The new version.
        new: String,
    },
    /// A package moved to an earlier version (a suite change, or a mirror going back).
    Downgraded {
        /// The architecture.
        arch: String,
        /// The package.
        name: String,
        /// The old version.
        old: String,
        /// The new version.
        new: String,
    },
    /// Same version, different `.deb` (size or SHA-256): Debian never reuses a version, so
    /// this deserves a look.
    Rebuilt {
        /// The architecture.
        arch: String,
        /// The package.
        name: String,
        /// The version.
        version: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added {
                arch,
                name,
                version,
            } => write!(f, "+ {name} {version} ({arch})"),
            Change::Removed {
                arch,
                name,
                version,
            } => write!(f, "- {name} {version} ({arch})"),
            Change::Upgraded {
                arch,
                name,
                old,
                new,
            } => write!(f, "↑ {name} {old} → {new} ({arch})"),
            Change::Downgraded {
                arch,
                name,
                old,
                new,
            } => {
                write!(f, "↓ {name} {old} → {new} ({arch}, a downgrade)")
            }
            Change::Rebuilt {
                arch,
                name,
                version,
            } => {
                write!(
                    f,
                    "! {name} {version} ({arch}): same version, different .deb"
                )
            }
        }
    }
}

/// Returns the package changes from `old` to `new`, by architecture then name.
pub fn diff(old: &Lockfile, new: &Lockfile) -> Vec<Change> {
    let mut arches: Vec<&String> = old.packages.keys().chain(new.packages.keys()).collect();
    arches.sort();
    arches.dedup();
    let mut out = Vec::new();
    for arch in arches {
        let by_name = |lock: &Lockfile| -> std::collections::BTreeMap<String, LockedPackage> {
            lock.packages
                .get(arch)
                .into_iter()
                .flatten()
                .map(|p| (p.name.clone(), p.clone()))
                .collect()
        };
        let (before, after) = (by_name(old), by_name(new));
        let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let arch = arch.clone();
            let name = name.clone();
            match (before.get(&name), after.get(&name)) {
                (None, Some(n)) => out.push(Change::Added {
                    arch,
                    name,
                    version: n.version.clone(),
                }),
                (Some(o), None) => out.push(Change::Removed {
                    arch,
                    name,
                    version: o.version.clone(),
                }),
                (Some(o), Some(n)) if o.version != n.version => {
                    let later = match (Version::parse(&o.version), Version::parse(&n.version)) {
                        (Ok(a), Ok(b)) => b > a,
                        _ => true,
                    };
                    let (old, new) = (o.version.clone(), n.version.clone());
                    out.push(if later {
                        Change::Upgraded {
                            arch,
                            name,
                            old,
                            new,
                        }
                    } else {
                        Change::Downgraded {
                            arch,
                            name,
                            old,
                            new,
                        }
                    });
                }
                (Some(o), Some(n)) if o.sha256 != n.sha256 || o.size != n.size => {
                    out.push(Change::Rebuilt {
                        arch,
                        name,
                        version: n.version.clone(),
                    });
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(pkgs: &[(&str, &str, &str)]) -> Lockfile {
        let list = pkgs
            .iter()
            .map(|(name, version, sha)| LockedPackage {
                name: name.to_string(),
                version: version.to_string(),
                architecture: "amd64".into(),
                source: name.to_string(),
                source_version: None,
                filename: format!("pool/{name}.deb"),
                size: 1,
                sha256: sha.repeat(64),
                installed_size: 1,
            })
            .collect();
        Lockfile {
            version: LOCK_VERSION,
            definition: "base".into(),
            suite: "trixie".into(),
            codename: "trixie".into(),
            release_version: None,
            release_date: String::new(),
            inrelease_sha256: String::new(),
            architectures: vec!["amd64".into()],
            packages: [("amd64".to_owned(), list)].into(),
        }
    }

    #[test]
    fn diff_names_every_kind_of_change() {
        let old = lock(&[
            ("gone", "1", "a"),
            ("libc6", "2.41-12", "a"),
            ("rebuilt", "1", "a"),
            ("same", "1", "a"),
            ("tzdata", "2026c-0", "a"),
        ]);
        let new = lock(&[
            ("libc6", "2.41-12+deb13u1", "b"),
            ("new", "3", "a"),
            ("rebuilt", "1", "b"),
            ("same", "1", "a"),
            ("tzdata", "2026a-0", "a"),
        ]);
        let lines: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "- gone 1 (amd64)",
                "↑ libc6 2.41-12 → 2.41-12+deb13u1 (amd64)",
                "+ new 3 (amd64)",
                "! rebuilt 1 (amd64): same version, different .deb",
                "↓ tzdata 2026c-0 → 2026a-0 (amd64, a downgrade)",
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
