//! Which package manager installs the app, at which version: Corepack's `packageManager`
//! field (<https://nodejs.org/api/corepack.html>) when it is set, else the lockfile's.

use std::fmt;

use kiln_lifecycle::BuildpackError;

use crate::lockfile::Lockfile;
use crate::package_json::PackageJson;

/// A package manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// npm (the host's, beside `node`).
    Npm,
    /// pnpm.
    Pnpm,
    /// Yarn: 1 ("classic") or 4 and later ("berry").
    Yarn,
}

impl Kind {
    /// Returns the command's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pnpm => "pnpm",
            Self::Yarn => "yarn",
        }
    }
}

/// A hash pinning a package manager's download (`+sha512.<hex>` in `packageManager`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedHash {
    /// `sha1`, `sha224`, `sha256`, `sha384` or `sha512`.
    pub algorithm: String,
    /// Lower-case hex.
    pub hex: String,
}

/// A package manager at a version: exact (`9.15.0`) or a range to resolve (`9`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerSpec {
    /// Which one.
    pub kind: Kind,
    /// The version or npm range.
    pub version: String,
    /// The pinned hash, if any.
    pub hash: Option<PinnedHash>,
    /// Whether `packageManager` said so (else it was inferred from the lockfile).
    pub pinned: bool,
}

impl fmt::Display for ManagerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), self.version)?;
        if let Some(h) = &self.hash {
            write!(f, "+{}.{}", h.algorithm, h.hex)?;
        }
        Ok(())
    }
}

impl ManagerSpec {
    /// Parses a `packageManager` value: `name@version[+algorithm.hex]`.
    pub fn parse(field: &str) -> Result<Self, String> {
        let (name, rest) = field
            .trim()
            .split_once('@')
            .ok_or_else(|| "expected `name@version`".to_owned())?;
        let kind = match name {
            "npm" => Kind::Npm,
            "pnpm" => Kind::Pnpm,
            "yarn" => Kind::Yarn,
            other => return Err(format!("`{other}` is not npm, pnpm or yarn")),
        };
        let (version, hash) = match rest.split_once('+') {
            Some((v, h)) => {
                let (algorithm, hex) = h
                    .split_once('.')
                    .ok_or_else(|| format!("the hash `{h}` is not `algorithm.hex`"))?;
                if !["sha1", "sha224", "sha256", "sha384", "sha512"].contains(&algorithm)
                    || hex.is_empty()
                    || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(format!("the hash `{h}` is not a sha1/sha2 hex digest"));
                }
                let hash = PinnedHash {
                    algorithm: algorithm.to_owned(),
                    hex: hex.to_ascii_lowercase(),
                };
                (v, Some(hash))
            }
            None => (rest, None),
        };
        let version = version.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-^~<>=*x|| ".contains(c);
        if version.is_empty() || !version.chars().all(allowed) {
            return Err(format!("`{version}` is not a version"));
        }
        Ok(Self {
            kind,
            version: version.to_owned(),
            hash,
            pinned: true,
        })
    }

    /// Returns whether the version is exact (`9.15.0`), not a range to resolve.
    pub fn is_exact(&self) -> bool {
        let release = self.version.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<&str> = release.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Returns the major version the spec starts with (`9` for `9`, `^9.1` or `9.15.0`).
    pub fn major(&self) -> Option<u64> {
        let digits: String = self
            .version
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

/// Returns the package manager and the lockfile (none: not reproducible) of a project
/// whose lockfiles (in its root) are `lockfiles`, from `packageManager` first.
pub fn choose(
    pkg: &PackageJson,
    lockfiles: &[Lockfile],
    dir: &std::path::Path,
) -> Result<(ManagerSpec, Option<Lockfile>), BuildpackError> {
    let usage = |message: String, hint: &str| BuildpackError::Usage {
        message,
        hint: Some(hint.to_owned()),
    };
    if let Some(field) = &pkg.package_manager {
        let spec = ManagerSpec::parse(field).map_err(|why| {
            usage(
                format!("`packageManager` in package.json is `{field}`: {why}"),
                "write it as Corepack does, e.g. `\"packageManager\": \"pnpm@9.15.0\"`",
            )
        })?;
        let own: Vec<Lockfile> = lockfiles
            .iter()
            .copied()
            .filter(|l| l.manager() == spec.kind.name())
            .collect();
        return match (own.first(), lockfiles.first()) {
            (Some(lock), _) => Ok((spec, Some(*lock))),
            (None, Some(other)) => Err(usage(
                format!(
                    "`packageManager` says `{}`, but the lockfile is `{}`",
                    spec.kind.name(),
                    other.file_name()
                ),
                "install once with the package manager `packageManager` names and commit its lockfile, or fix `packageManager`",
            )),
            (None, None) => Ok((spec, None)),
        };
    }
    match lockfiles {
        [] => Ok((npm_any(), None)),
        [one] => {
            let kind = match one.manager() {
                "pnpm" => Kind::Pnpm,
                "yarn" => Kind::Yarn,
                _ => Kind::Npm,
            };
            let spec = ManagerSpec {
                kind,
                version: one.default_version(dir).to_owned(),
                hash: None,
                pinned: false,
            };
            Ok((spec, Some(*one)))
        }
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|l| format!("`{}`", l.file_name()))
                .collect();
            Err(usage(
                format!(
                    "the project has several lockfiles: {}; kiln cannot tell which package manager installs it",
                    names.join(", ")
                ),
                "delete the stale ones, or name the package manager in package.json: `\"packageManager\": \"pnpm@9.15.0\"`",
            ))
        }
    }
}

fn npm_any() -> ManagerSpec {
    ManagerSpec {
        kind: Kind::Npm,
        version: "*".to_owned(),
        hash: None,
        pinned: false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn parses_corepack_fields() {
        let s = ManagerSpec::parse("pnpm@9.15.0+sha512.ABC123").unwrap();
        assert_eq!(s.kind, Kind::Pnpm);
        assert_eq!(s.version, "9.15.0");
        assert_eq!(s.hash.as_ref().unwrap().hex, "abc123");
        assert!(s.is_exact());
        assert_eq!(s.to_string(), "pnpm@9.15.0+sha512.abc123");
        let r = ManagerSpec::parse("yarn@4").unwrap();
        assert!(!r.is_exact());
        assert_eq!(r.major(), Some(4));
        assert_eq!(ManagerSpec::parse("yarn@^1.22.0").unwrap().major(), Some(1));
        assert!(ManagerSpec::parse("npm@10.2.0-rc.1").unwrap().is_exact());
        for bad in [
            "pnpm",
            "bun@1.0.0",
            "pnpm@",
            "pnpm@9;rm -rf /",
            "pnpm@9+md5.abc",
            "pnpm@9+sha512.xyz",
            "pnpm@9+sha512",
        ] {
            assert!(ManagerSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn pkg(pm: Option<&str>) -> PackageJson {
        PackageJson {
            package_manager: pm.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn package_manager_field_wins_and_must_agree_with_the_lockfile() {
        let dir = Path::new("/nonexistent");
        let (spec, lock) = choose(
            &pkg(Some("pnpm@9")),
            &[Lockfile::PackageLock, Lockfile::Pnpm],
            dir,
        )
        .unwrap();
        assert_eq!((spec.kind, lock), (Kind::Pnpm, Some(Lockfile::Pnpm)));
        assert!(spec.pinned);
        let err = choose(&pkg(Some("yarn@4.5.0")), &[Lockfile::PackageLock], dir).unwrap_err();
        assert!(err.to_string().contains("`package-lock.json`"), "{err}");
        let (spec, lock) = choose(&pkg(Some("yarn@1.22.22")), &[], dir).unwrap();
        assert_eq!((spec.kind, lock), (Kind::Yarn, None));
        assert!(choose(&pkg(Some("bun@1")), &[], dir).is_err());
    }

    #[test]
    fn without_the_field_the_lockfile_decides() {
        let dir = Path::new("/nonexistent");
        let (spec, lock) = choose(&pkg(None), &[], dir).unwrap();
        assert_eq!((spec.kind, lock), (Kind::Npm, None));
        let (spec, _) = choose(&pkg(None), &[Lockfile::YarnClassic], dir).unwrap();
        assert_eq!((spec.kind, spec.version.as_str()), (Kind::Yarn, "1"));
        assert!(!spec.pinned);
        let (spec, _) = choose(&pkg(None), &[Lockfile::Pnpm], dir).unwrap();
        assert_eq!((spec.kind, spec.version.as_str()), (Kind::Pnpm, "9"));
        let err = choose(
            &pkg(None),
            &[Lockfile::PackageLock, Lockfile::YarnBerry],
            dir,
        )
        .unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        assert!(
            err.to_string().contains("`package-lock.json`, `yarn.lock`"),
            "{err}"
        );
    }
}
