//! `kiln base lock` and `kiln base update`: verified `InRelease` (of the suite and its extra
//! suites) → hash-checked `Packages.xz` per architecture and component → the extra suites'
//! newer packages laid over the suite's → resolution → [`Lockfile`]; and the
//! package-level difference between two lockfiles.

use std::fmt;

use url::Url;

use crate::definition::{Definition, RELEASE_INFO_FIELDS};
use crate::error::DebianError;
use crate::fetch::{fetch_index, fetch_inrelease, mirror_url, redact};
use crate::inrelease::InRelease;
use crate::keyring::Keyring;
use crate::lockfile::{LOCK_VERSION, LockedPackage, LockedSuite, Lockfile};
use crate::mirrors::Mirrors;
use crate::packages::{PackageIndex, PackagesError, parse_packages_xz};
use crate::release::{IndexFile, Release, ReleaseError, format_date, parse_date};
use crate::resolve::resolve;
use crate::version::Version;

/// Locks `def` against `mirrors`: downloads and verifies `dists/<suite>/InRelease` of the
/// suite and of each extra suite at time `now` (Unix seconds) with `keyring`, narrowed to
/// the suite's `suite-keyrings` files when the definition pins some; downloads each architecture's
/// `Packages.xz` of every component, checks it against the signed `Release`, lays the extra
/// suites' packages over the suite's (newest version wins), resolves the definition's
/// packages and returns the lockfile (not yet written).
pub async fn lock(
    def: &Definition,
    mirrors: &Mirrors,
    keyring: &Keyring,
    now: i64,
    http: &reqwest::Client,
) -> Result<Lockfile, DebianError> {
    lock_after(def, mirrors, keyring, now, http, None).await
}

/// [`lock()`], for a definition already locked as `previous`: each suite's `Release` must
/// be no older than the one `previous` was made from (a mirror replaying old metadata
/// cannot roll the base back), and its `Origin`, `Label`, `Suite` and `Codename` must be
/// the ones `previous` recorded unless the definition's `allow-release-info-change` lists
/// the field. Both are checked right after `InRelease` is verified, before any index is
/// downloaded.
pub async fn relock(
    def: &Definition,
    mirrors: &Mirrors,
    keyring: &Keyring,
    now: i64,
    http: &reqwest::Client,
    previous: &Lockfile,
) -> Result<Lockfile, DebianError> {
    lock_after(def, mirrors, keyring, now, http, Some(previous)).await
}

async fn lock_after(
    def: &Definition,
    mirrors: &Mirrors,
    keyring: &Keyring,
    now: i64,
    http: &reqwest::Client,
    previous: Option<&Lockfile>,
) -> Result<Lockfile, DebianError> {
    let verify = |suite: &str| Verify {
        keyring: match def.suite_keyrings.get(suite) {
            Some(files) => keyring.only_from(files),
            None => keyring.clone(),
        },
        now,
        recorded: previous.and_then(|p| Recorded::of(p, suite)),
        allowed: &def.allow_release_info_change,
    };
    let main = verified_suite(http, &mirrors.main, &def.suite, &verify(&def.suite)).await?;
    let mut extras = Vec::new();
    for suite in &def.extra_suites {
        let mirror = mirrors.for_suite(suite)?;
        extras.push(verified_suite(http, mirror, suite, &verify(suite)).await?);
    }
    let mut packages = std::collections::BTreeMap::new();
    for arch in &def.architectures {
        let mut index = read_indexes(http, &main, &def.components, arch).await?;
        let mut origin = std::collections::BTreeMap::new();
        for extra in &extras {
            let overlay = read_indexes(http, extra, &def.components, arch).await?;
            for name in index.overlay(overlay) {
                origin.insert(name, extra.suite.clone());
            }
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
            .map(|entry| LockedPackage {
                suite: origin.get(&entry.package).cloned(),
                ..LockedPackage::from(entry)
            })
            .collect();
        packages.insert(arch.clone(), list);
    }
    let release = &main.release;
    Ok(Lockfile {
        version: LOCK_VERSION,
        definition: def.name.clone(),
        inputs_sha256: Some(def.lock_inputs_sha256()),
        suite: def.suite.clone(),
        codename: release
            .codename
            .clone()
            .unwrap_or_else(|| def.suite.clone()),
        release_version: release.version.clone(),
        release_origin: release.origin.clone(),
        release_label: release.label.clone(),
        release_suite: release.suite.clone(),
        release_date: format_date(release.date),
        inrelease_sha256: main.sha256,
        architectures: def.architectures.clone(),
        extra_suites: extras
            .into_iter()
            .map(|x| LockedSuite {
                release_date: format_date(x.release.date),
                release_origin: x.release.origin.clone(),
                release_label: x.release.label.clone(),
                release_suite: x.release.suite.clone(),
                release_codename: x.release.codename.clone(),
                suite: x.suite,
                inrelease_sha256: x.sha256,
            })
            .collect(),
        packages,
    })
}

/// A suite whose `InRelease` was verified.
struct VerifiedSuite {
    suite: String,
    mirror: Url,
    release: Release,
    sha256: String,
}

/// How one suite's `InRelease` is judged.
struct Verify<'a> {
    /// The keys pinned for the suite.
    keyring: Keyring,
    now: i64,
    /// What the previous lock recorded of the suite, if it locked it.
    recorded: Option<Recorded<'a>>,
    /// `allow-release-info-change`.
    allowed: &'a [String],
}

/// What a lock recorded of one suite's `Release`.
struct Recorded<'a> {
    date: &'a str,
    /// `Origin`, `Label`, `Suite`, `Codename`, in [`RELEASE_INFO_FIELDS`] order.
    info: [Option<&'a str>; 4],
}

impl<'a> Recorded<'a> {
    /// Returns what `lock` recorded of `suite`, if it locked it.
    fn of(lock: &'a Lockfile, suite: &str) -> Option<Recorded<'a>> {
        if lock.suite == suite {
            return Some(Recorded {
                date: &lock.release_date,
                info: [
                    lock.release_origin.as_deref(),
                    lock.release_label.as_deref(),
                    lock.release_suite.as_deref(),
                    Some(lock.codename.as_str()),
                ],
            });
        }
        let x = lock.extra_suites.iter().find(|x| x.suite == suite)?;
        Some(Recorded {
            date: &x.release_date,
            info: [
                x.release_origin.as_deref(),
                x.release_label.as_deref(),
                x.release_suite.as_deref(),
                x.release_codename.as_deref(),
            ],
        })
    }
}

/// Downloads `dists/<suite>/InRelease` from `mirror`, verifies it as `verify` says, and
/// checks that it is the `Release` of `suite`.
async fn verified_suite(
    http: &reqwest::Client,
    mirror: &Url,
    suite: &str,
    verify: &Verify<'_>,
) -> Result<VerifiedSuite, DebianError> {
    let inrelease_url = redact(&mirror_url(mirror, &format!("dists/{suite}/InRelease"))?);
    let bytes = fetch_inrelease(http, mirror, suite).await?;
    let verified = InRelease::verify(&bytes, &verify.keyring, verify.now).map_err(|source| {
        DebianError::InRelease {
            url: inrelease_url.clone(),
            source,
        }
    })?;
    let release = verified.release;
    let names = [release.suite.as_deref(), release.codename.as_deref()];
    if !names.contains(&Some(suite)) {
        return Err(DebianError::WrongSuite {
            url: inrelease_url,
            wanted: suite.to_owned(),
            found: release.name().to_owned(),
        });
    }
    if let Some(recorded) = &verify.recorded
        && let Some(refusal) = check_against(&release, recorded, verify.allowed, &inrelease_url)
    {
        return Err(refusal);
    }
    Ok(VerifiedSuite {
        suite: suite.to_owned(),
        mirror: mirror.clone(),
        release,
        sha256: verified.sha256,
    })
}

/// Returns the refusal of a `Release` older than the recorded one, or whose identity
/// changed in a field `allowed` does not list.
fn check_against(
    release: &Release,
    recorded: &Recorded<'_>,
    allowed: &[String],
    url: &str,
) -> Option<DebianError> {
    if let Some(locked) = parse_date(recorded.date)
        && release.date < locked
    {
        return Some(DebianError::Rollback {
            url: url.to_owned(),
            suite: release.name().to_owned(),
            date: format_date(release.date),
            locked: recorded.date.to_owned(),
        });
    }
    let now = [
        release.origin.as_deref(),
        release.label.as_deref(),
        release.suite.as_deref(),
        release.codename.as_deref(),
    ];
    for ((field, old), new) in RELEASE_INFO_FIELDS.iter().zip(recorded.info).zip(now) {
        if let Some(old) = old
            && new != Some(old)
            && !allowed.iter().any(|a| a == field)
        {
            return Some(DebianError::ReleaseInfoChanged {
                url: url.to_owned(),
                field,
                old: old.to_owned(),
                new: new.unwrap_or("(none)").to_owned(),
            });
        }
    }
    None
}

/// Downloads, checks and parses the `Packages.xz` of `arch` for every component of `suite`,
/// merged (the first component listed wins a name).
async fn read_indexes(
    http: &reqwest::Client,
    suite: &VerifiedSuite,
    components: &[String],
    arch: &str,
) -> Result<PackageIndex, DebianError> {
    let release = &suite.release;
    if !release.architectures.iter().any(|a| a == arch) {
        return Err(ReleaseError::NoArchitecture {
            suite: release.name().to_owned(),
            arch: arch.to_owned(),
            available: release.architectures.join(" "),
        }
        .into());
    }
    let mut index = PackageIndex::default();
    for component in components {
        let xz_file = release.packages_xz(component, arch)?.clone();
        let plain = release
            .file(&format!("{component}/binary-{arch}/Packages"))
            .ok()
            .cloned();
        let parsed = match read_index(http, suite, &xz_file, plain.clone()).await {
            // A mismatch on a content-addressed URL is a bad answer (a stale cache, a broken
            // proxy), not a mirror mid-update: ask once more, as apt retries by hash.
            Err(DebianError::Packages(
                PackagesError::Size { .. } | PackagesError::Digest { .. },
            )) if release.acquire_by_hash => read_index(http, suite, &xz_file, plain).await?,
            other => other?,
        };
        index.merge(parsed);
    }
    Ok(index)
}

/// Downloads, checks and parses one `Packages.xz`.
async fn read_index(
    http: &reqwest::Client,
    suite: &VerifiedSuite,
    xz_file: &IndexFile,
    plain: Option<IndexFile>,
) -> Result<PackageIndex, DebianError> {
    let xz = fetch_index(http, &suite.mirror, &suite.suite, &suite.release, xz_file).await?;
    let task = format!("reading `{}`", xz_file.path);
    let xz_file = xz_file.clone();
    let parsed =
        tokio::task::spawn_blocking(move || parse_packages_xz(&xz, &xz_file, plain.as_ref()))
            .await
            .map_err(|e| DebianError::Task {
                task,
                reason: e.to_string(),
            })??;
    Ok(parsed)
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
                suite: None,
            })
            .collect();
        Lockfile {
            version: LOCK_VERSION,
            definition: "base".into(),
            inputs_sha256: None,
            suite: "trixie".into(),
            codename: "trixie".into(),
            release_version: None,
            release_origin: None,
            release_label: None,
            release_suite: None,
            release_date: String::new(),
            inrelease_sha256: String::new(),
            architectures: vec!["amd64".into()],
            extra_suites: Vec::new(),
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
