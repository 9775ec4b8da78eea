//! The Node.js an app asks for (`engines.node`, `.nvmrc`, `.node-version`) against the
//! host's Node (which builds it) and the run image's (which runs it).

use std::path::Path;

use kiln_lifecycle::{BuildpackError, RunImageInfo};

use crate::package_json::PackageJson;
use crate::semver::{Range, Version};

/// Node.js LTS code names, for `lts/<name>` in `.nvmrc`.
const LTS_NAMES: &[(&str, u64)] = &[
    ("argon", 4),
    ("boron", 6),
    ("carbon", 8),
    ("dubnium", 10),
    ("erbium", 12),
    ("fermium", 14),
    ("gallium", 16),
    ("hydrogen", 18),
    ("iron", 20),
    ("jod", 22),
    ("krypton", 24),
];

/// A Node.js version range and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The range.
    pub range: Range,
    /// Where it comes from, for messages (`engines.node in package.json`).
    pub source: String,
}

/// Returns what the app in `dir` asks for: `engines.node`, else `.nvmrc`, else
/// `.node-version` (in `dir`, then in `root` for a workspace member). A bare version in the
/// two files means that major line at or above it (`20.11.0` is `^20.11.0`), since that is
/// what a developer pinning their own Node means for a server image; `lts/iron` is Node 20.
/// Aliases that move (`node`, `lts/*`) ask for nothing.
pub fn requirement(
    pkg: &PackageJson,
    dir: &Path,
    root: Option<&Path>,
) -> Result<Option<Requirement>, BuildpackError> {
    if let Some(range) = &pkg.engines_node {
        return parse(range, "engines.node in package.json").map(Some);
    }
    for d in std::iter::once(dir).chain(root) {
        for file in [".nvmrc", ".node-version"] {
            let path = d.join(file);
            let text =
                match kiln_lifecycle::read_bounded_string(&path, kiln_lifecycle::MANIFEST_LIMIT) {
                    Ok(text) => text,
                    // Too large, or not text: broken or hostile, never silently skipped.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidData
                        ) =>
                    {
                        return Err(BuildpackError::reading(&path, e));
                    }
                    Err(_) => continue,
                };
            let line = text.lines().next().unwrap_or_default().trim();
            let source = if root == Some(d) && d != dir {
                format!("`{file}` of the workspace root")
            } else {
                format!("`{file}`")
            };
            return match line.to_ascii_lowercase().as_str() {
                "" | "node" | "stable" | "latest" | "current" | "lts/*" | "lts" => Ok(None),
                alias if alias.starts_with("lts/") => {
                    let name = &alias[4..];
                    let major = LTS_NAMES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, m)| *m)
                        .ok_or_else(|| {
                            usage(format!(
                                "{source} says `{line}`, which is no Node.js LTS line kiln knows"
                            ))
                        })?;
                    parse(&major.to_string(), &source).map(Some)
                }
                _ => {
                    let exact = line
                        .parse::<Version>()
                        .ok()
                        .filter(|_| line.trim_start_matches(['v', 'V']).split('.').count() == 3);
                    let range = match exact {
                        Some(v) => format!("^{v}"),
                        None => line.to_owned(),
                    };
                    parse(&range, &source).map(Some)
                }
            };
        }
    }
    Ok(None)
}

fn parse(range: &str, source: &str) -> Result<Requirement, BuildpackError> {
    let parsed = range
        .parse::<Range>()
        .map_err(|e| usage(format!("{source}: {e}")))?;
    Ok(Requirement {
        range: parsed,
        source: source.to_owned(),
    })
}

fn usage(message: String) -> BuildpackError {
    BuildpackError::Usage {
        message,
        hint: Some(
            "write a Node.js version range npm understands, such as `>=20 <21` or `20.x`"
                .to_owned(),
        ),
    }
}

/// Returns the Node.js release of the run image, from the `nodejs` Debian package a kiln
/// golden base lists (`20.19.2+dfsg-1+deb13u3` is Node 20.19.2).
pub fn run_image_node(run: &RunImageInfo) -> Option<Version> {
    let debian = run.package_version("nodejs")?;
    let upstream = debian.split_once(':').map_or(debian.as_str(), |(_, v)| v);
    let end = upstream.find(['+', '-', '~']).unwrap_or(upstream.len());
    upstream[..end].parse().ok()
}

/// Fails, naming every version involved, when the host's Node (`host`) or the run image's
/// (`run`, when known) does not satisfy `req`.
pub fn check(
    req: &Requirement,
    host: Version,
    run: Option<(Version, &str)>,
) -> Result<(), BuildpackError> {
    let run_text = match run {
        Some((v, name)) => format!("the run image `{name}` has Node.js {v}"),
        None => "the run image's Node.js is not known".to_owned(),
    };
    let host_ok = req.range.matches(&host);
    let run_ok = run.is_none_or(|(v, _)| req.range.matches(&v));
    if host_ok && run_ok {
        return Ok(());
    }
    let which = match (host_ok, run_ok) {
        (false, false) => "neither the host nor the run image has it",
        (false, true) => "the host's Node.js, which builds the app, does not satisfy it",
        _ => "the run image's Node.js, which runs the app, does not satisfy it",
    };
    Err(BuildpackError::Usage {
        message: format!(
            "the app needs Node.js `{}` ({}), but the host has Node.js {host} and {run_text}: {which}",
            req.range, req.source
        ),
        hint: Some(if run_ok {
            format!("put a Node.js that satisfies `{}` first on PATH", req.range)
        } else {
            "name a run image with a Node.js that satisfies it (`--run-image REF`), or widen the range".to_owned()
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn req_in(files: &[(&str, &str)], pkg: &PackageJson) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        requirement(pkg, dir.path(), None)
            .unwrap()
            .map(|r| format!("{} | {}", r.range, r.source))
    }

    #[test]
    fn engines_then_nvmrc_then_node_version() {
        let engines = PackageJson {
            engines_node: Some(">=18 <21".into()),
            ..Default::default()
        };
        let none = PackageJson::default();
        assert_eq!(
            req_in(&[(".nvmrc", "22\n")], &engines).unwrap(),
            ">=18 <21 | engines.node in package.json"
        );
        assert_eq!(
            req_in(&[(".nvmrc", "v20.11.0\n")], &none).unwrap(),
            "^20.11.0 | `.nvmrc`"
        );
        assert_eq!(
            req_in(&[(".nvmrc", "lts/iron")], &none).unwrap(),
            "20 | `.nvmrc`"
        );
        assert_eq!(
            req_in(&[(".node-version", "20.x")], &none).unwrap(),
            "20.x | `.node-version`"
        );
        assert_eq!(req_in(&[(".nvmrc", "lts/*")], &none), None);
        assert_eq!(req_in(&[], &none), None);
    }

    #[test]
    fn bad_ranges_and_unknown_lts_names_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".nvmrc"), "lts/unicorn").unwrap();
        let err = requirement(&PackageJson::default(), dir.path(), None).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }), "{err:?}");
        let bad = PackageJson {
            engines_node: Some(">=2x".into()),
            ..Default::default()
        };
        let err = requirement(&bad, dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("engines.node"), "{err}");
    }

    /// B04: an `.nvmrc` that is not UTF-8 is refused naming it, not skipped.
    #[test]
    fn b04_an_nvmrc_that_is_not_utf8_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".nvmrc"), b"20\xff\n").unwrap();
        let err = requirement(&PackageJson::default(), dir.path(), None).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }), "{err:?}");
        assert!(err.to_string().contains(".nvmrc`"), "{err}");
    }

    #[test]
    fn reads_the_run_images_node_from_its_package_label() {
        let mut labels = BTreeMap::new();
        labels.insert(
            kiln_lifecycle::BASE_PACKAGES_LABEL.to_owned(),
            r#"{"libc6":"2.41-12","nodejs":"20.19.2+dfsg-1+deb13u3"}"#.to_owned(),
        );
        let run = RunImageInfo {
            labels,
            ..Default::default()
        };
        assert_eq!(run_image_node(&run), Some(v("20.19.2")));
        assert_eq!(run_image_node(&RunImageInfo::default()), None);
    }

    #[test]
    fn b03_check_names_every_version() {
        let req = Requirement {
            range: ">=22".parse().unwrap(),
            source: "engines.node in package.json".into(),
        };
        let err = check(&req, v("20.20.2"), Some((v("20.19.2"), "kiln-base/node"))).unwrap_err();
        let text = err.to_string();
        for part in [
            "`>=22`",
            "20.20.2",
            "20.19.2",
            "`kiln-base/node`",
            "neither",
        ] {
            assert!(text.contains(part), "{part} missing from: {text}");
        }
        let req = Requirement {
            range: "20.20.x".parse().unwrap(),
            source: "`.nvmrc`".into(),
        };
        let err = check(&req, v("20.20.2"), Some((v("20.19.2"), "b"))).unwrap_err();
        assert!(err.to_string().contains("run image's Node.js"), "{err}");
        assert!(err.hint().unwrap().contains("--run-image"));
        assert!(check(&req, v("20.20.2"), None).is_ok());
    }
}
