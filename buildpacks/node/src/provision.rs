//! Getting pnpm and Yarn at the version the project pins, from the npm registry through the
//! host's npm (never a global install): `npm view` resolves a range, `npm pack` fetches the
//! tarball (npm checks it against the registry's integrity), kiln checks Corepack's
//! `+sha512.…` pin against it, and `npm install` unpacks it into kiln's cache, keyed by
//! name and version. Installed tools are reused; a range is resolved again once a day.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_lifecycle::{BuildpackError, FileLock, Tool, write_atomic};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::package_manager::{Kind, ManagerSpec, PinnedHash};
use crate::semver::{Version, max_satisfying};

/// How long a range's resolution is trusted before `npm view` is asked again.
const RESOLVE_TTL_SECS: u64 = 24 * 3600;
/// Lines of npm's output quoted when fetching a tool fails.
const TAIL_LINES: usize = 30;

/// A package manager kiln installed: run it as `node <script>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    /// The exact version.
    pub version: String,
    /// The JavaScript entry point of the command.
    pub script: PathBuf,
    /// Its `node_modules/.bin`, for `PATH` (the project's scripts call it by name).
    pub bin_dir: PathBuf,
}

/// The npm package that ships `spec`'s package manager, and its command's entry point.
fn npm_package(spec: &ManagerSpec) -> Result<(&'static str, &'static str), BuildpackError> {
    match (spec.kind, spec.major()) {
        (Kind::Pnpm, _) => Ok(("pnpm", "bin/pnpm.cjs")),
        (Kind::Yarn, Some(1)) => Ok(("yarn", "bin/yarn.js")),
        (Kind::Yarn, Some(m)) if m >= 4 => Ok(("@yarnpkg/cli-dist", "bin/yarn.js")),
        (Kind::Yarn, _) => Err(BuildpackError::Usage {
            message: format!(
                "`{spec}`: kiln builds with Yarn 1 or Yarn 4 and later (Yarn 2 and 3 lack the built-in `workspaces focus` kiln prunes devDependencies with)"
            ),
            hint: Some("upgrade with `yarn set version stable` and commit the lockfile".to_owned()),
        }),
        (Kind::Npm, _) => unreachable!("npm is the host's, never provisioned"),
    }
}

/// Installs (or finds installed) `spec` under `tools_dir` with `npm`, a tool whose
/// environment already points npm's cache into kiln's cache.
pub fn provision(
    spec: &ManagerSpec,
    npm: &Tool<'_>,
    tools_dir: &Path,
) -> Result<Provisioned, BuildpackError> {
    let (package, script) = npm_package(spec)?;
    let version = if spec.is_exact() {
        spec.version.clone()
    } else {
        resolve(package, &spec.version, npm, tools_dir)?
    };
    let dir_name = format!(
        "{}@{version}",
        package.trim_start_matches('@').replace('/', "-")
    );
    let dir = tools_dir.join(&dir_name);
    let package_dir = dir.join("node_modules").join(package);
    if !package_dir.join(script).is_file() {
        // One build installs it; others sharing the cache dir wait, then find it there.
        let lock = locks_dir(tools_dir).join(format!("{dir_name}.lock"));
        let _held = FileLock::exclusive(&lock)
            .map_err(|e| BuildpackError::io(format!("locking `{}`", lock.display()), e))?;
        if !package_dir.join(script).is_file() {
            install(package, &version, npm, tools_dir, &dir)?;
        }
    }
    if let Some(pin) = &spec.hash {
        let tarball = dir.join("package.tgz");
        let matches = hash_file(&tarball, pin)?
            // Corepack hashes Yarn's bundle itself when it downloads it from Yarn's site.
            || (spec.kind == Kind::Yarn && hash_file(&package_dir.join(script), pin)?);
        if !matches {
            return Err(BuildpackError::Usage {
                message: format!(
                    "`{package}@{version}` from the npm registry does not have the {} hash `packageManager` pins",
                    pin.algorithm
                ),
                hint: Some("check the registry kiln's npm uses, or fix the hash in `packageManager` (`corepack use` writes it)".to_owned()),
            });
        }
    }
    Ok(Provisioned {
        version,
        script: package_dir.join(script),
        bin_dir: dir.join("node_modules").join(".bin"),
    })
}

#[derive(Default, Serialize, Deserialize)]
struct Resolved {
    version: String,
    at: u64,
}

/// Returns the newest version of `package` in `range`, from the day-old answer kept in
/// `tools_dir/resolved.json` or from `npm view`.
fn resolve(
    package: &str,
    range: &str,
    npm: &Tool<'_>,
    tools_dir: &Path,
) -> Result<String, BuildpackError> {
    let file = tools_dir.join("resolved.json");
    let _held = FileLock::exclusive(&locks_dir(tools_dir).join("resolved.json.lock"))
        .map_err(|e| BuildpackError::io("locking kiln's resolved versions", e))?;
    let mut known: BTreeMap<String, Resolved> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let key = format!("{package}@{range}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(r) = known
        .get(&key)
        .filter(|r| now.saturating_sub(r.at) < RESOLVE_TTL_SECS)
    {
        return Ok(r.version.clone());
    }
    let run = npm
        .run(["view", &key, "version", "--json"], true, TAIL_LINES)
        .map_err(|e| BuildpackError::io("running `npm view`", e))?;
    if !run.status.success() {
        return Err(fetch_failed(&key, &run.quoted_tail()));
    }
    let listed: Vec<String> = match serde_json::from_str(&run.stdout) {
        Ok(serde_json::Value::String(one)) => vec![one],
        Ok(serde_json::Value::Array(many)) => many
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let versions: Vec<Version> = listed.iter().filter_map(|v| v.parse().ok()).collect();
    let parsed_range = range.parse().map_err(|e| BuildpackError::Usage {
        message: format!("`packageManager` of package.json: {e}"),
        hint: None,
    })?;
    let version = max_satisfying(&parsed_range, &versions)
        .ok_or_else(|| fetch_failed(&key, "the registry has no version in that range"))?
        .to_string();
    known.insert(
        key,
        Resolved {
            version: version.clone(),
            at: now,
        },
    );
    // A cache: failing to write it only costs an `npm view` next time.
    let _ = std::fs::create_dir_all(tools_dir)
        .and_then(|()| write_atomic(&file, &serde_json::to_vec(&known).unwrap_or_default()));
    Ok(version)
}

/// Returns where the locks of `tools_dir` (`<cache>/tools`) live: `<cache>/.locks/tools`,
/// outside the cache entries a cache image carries.
fn locks_dir(tools_dir: &Path) -> PathBuf {
    tools_dir
        .with_file_name(kiln_lifecycle::CACHE_LOCKS)
        .join("tools")
}

/// `npm pack` then `npm install` of `package@version` into `dir` (through a temporary
/// directory renamed into place, so a half-done install is never used).
fn install(
    package: &str,
    version: &str,
    npm: &Tool<'_>,
    tools_dir: &Path,
    dir: &Path,
) -> Result<(), BuildpackError> {
    let spec = format!("{package}@{version}");
    let tmp = tools_dir.join(format!(".tmp-{}", std::process::id()));
    let io = |doing: &str| {
        let doing = doing.to_owned();
        move |e| BuildpackError::io(doing, e)
    };
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("creating kiln's tools directory"))?;
    let pack = npm
        .run(
            [
                "pack",
                &spec,
                "--json",
                "--pack-destination",
                &tmp.display().to_string(),
            ],
            true,
            TAIL_LINES,
        )
        .map_err(io("running `npm pack`"))?;
    if !pack.status.success() {
        return Err(fetch_failed(&spec, &pack.quoted_tail()));
    }
    let filename = serde_json::from_str::<serde_json::Value>(&pack.stdout)
        .ok()
        .and_then(|v| v[0]["filename"].as_str().map(str::to_owned))
        .ok_or_else(|| fetch_failed(&spec, "`npm pack --json` named no tarball"))?;
    let tarball = tmp.join("package.tgz");
    std::fs::rename(tmp.join(&filename), &tarball).map_err(io("keeping the tarball"))?;
    // The tools are self-contained bundles: nothing to run at install time.
    let add = npm
        .run(
            [
                "install",
                "--prefix",
                &tmp.display().to_string(),
                "--no-save",
                "--no-package-lock",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                &tarball.display().to_string(),
            ],
            false,
            TAIL_LINES,
        )
        .map_err(io("running `npm install`"))?;
    if !add.status.success() {
        return Err(fetch_failed(&spec, &add.quoted_tail()));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(io("installing the tool into kiln's cache"))
}

fn fetch_failed(spec: &str, why: &str) -> BuildpackError {
    BuildpackError::Kiln {
        message: format!("fetching `{spec}` from the npm registry with the host's npm:\n{why}"),
        hint: Some("check npm's registry settings (`npm config get registry`) and network; `npm view` of that package reproduces it".to_owned()),
        source: None,
    }
}

/// Returns whether the file's digest is the pinned one.
fn hash_file(path: &Path, pin: &PinnedHash) -> Result<bool, BuildpackError> {
    let bytes = std::fs::read(path)
        .map_err(|e| BuildpackError::io(format!("reading `{}`", path.display()), e))?;
    let hex = match pin.algorithm.as_str() {
        "sha1" => hex::encode(sha1::Sha1::digest(&bytes)),
        "sha224" => hex::encode(sha2::Sha224::digest(&bytes)),
        "sha256" => hex::encode(sha2::Sha256::digest(&bytes)),
        "sha384" => hex::encode(sha2::Sha384::digest(&bytes)),
        _ => hex::encode(sha2::Sha512::digest(&bytes)),
    };
    Ok(hex == pin.hex)
}

/// Returns the directory a provisioned tool lives in, for tests.
#[cfg(test)]
fn tool_dir(tools_dir: &Path, package: &str, version: &str) -> PathBuf {
    tools_dir.join(format!(
        "{}@{version}",
        package.trim_start_matches('@').replace('/', "-")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ManagerSpec {
        ManagerSpec::parse(s).unwrap()
    }

    #[test]
    fn picks_the_npm_package_of_each_manager() {
        assert_eq!(npm_package(&spec("pnpm@9")).unwrap().0, "pnpm");
        assert_eq!(npm_package(&spec("yarn@1.22.22")).unwrap().0, "yarn");
        assert_eq!(npm_package(&spec("yarn@4")).unwrap().0, "@yarnpkg/cli-dist");
        let err = npm_package(&spec("yarn@3.6.4")).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        assert!(err.to_string().contains("Yarn 1 or Yarn 4"), "{err}");
    }

    #[test]
    fn an_installed_tool_with_the_pinned_hash_is_used_without_npm() {
        let tmp = tempfile::tempdir().unwrap();
        let tools = tmp.path();
        let dir = tool_dir(tools, "pnpm", "9.15.9");
        std::fs::create_dir_all(dir.join("node_modules/pnpm/bin")).unwrap();
        std::fs::write(dir.join("node_modules/pnpm/bin/pnpm.cjs"), "// pnpm").unwrap();
        std::fs::write(dir.join("package.tgz"), b"tarball bytes").unwrap();
        let good = hex::encode(sha2::Sha512::digest(b"tarball bytes"));
        // An npm that cannot run proves nothing is fetched.
        let out = |_: &str| {};
        let npm = Tool {
            exe: "/nonexistent/npm".into(),
            env: BTreeMap::new(),
            dir: tools.to_path_buf(),
            output: &out,
            sandbox: kiln_lifecycle::Sandbox::unconfined(),
        };
        let got = provision(&spec(&format!("pnpm@9.15.9+sha512.{good}")), &npm, tools).unwrap();
        assert_eq!(got.version, "9.15.9");
        assert_eq!(got.script, dir.join("node_modules/pnpm/bin/pnpm.cjs"));
        assert_eq!(got.bin_dir, dir.join("node_modules/.bin"));
        let bad = format!("pnpm@9.15.9+sha512.{}", "0".repeat(128));
        let err = provision(&spec(&bad), &npm, tools).unwrap_err();
        assert!(
            err.to_string().contains("does not have the sha512 hash"),
            "{err}"
        );
    }

    #[test]
    fn a_fresh_resolution_is_reused_and_a_stale_one_asks_npm() {
        let tmp = tempfile::tempdir().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let write = |at: u64| {
            let known = BTreeMap::from([(
                "pnpm@9".to_owned(),
                Resolved {
                    version: "9.1.0".into(),
                    at,
                },
            )]);
            std::fs::write(
                tmp.path().join("resolved.json"),
                serde_json::to_vec(&known).unwrap(),
            )
            .unwrap();
        };
        let out = |_: &str| {};
        let npm = Tool {
            exe: "/nonexistent/npm".into(),
            env: BTreeMap::new(),
            dir: tmp.path().to_path_buf(),
            output: &out,
            sandbox: kiln_lifecycle::Sandbox::unconfined(),
        };
        write(now - 60);
        assert_eq!(resolve("pnpm", "9", &npm, tmp.path()).unwrap(), "9.1.0");
        write(now - RESOLVE_TTL_SECS - 1);
        assert!(
            resolve("pnpm", "9", &npm, tmp.path()).is_err(),
            "npm is asked again"
        );
    }
}
