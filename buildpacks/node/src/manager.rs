//! Running the package manager: install everything (devDependencies included, since the
//! build script needs them), run a script, prune to production dependencies. Every run has
//! the allow-listed environment only, with the package manager's caches in kiln's cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_lifecycle::{BuildContext, BuildpackError, Sandbox, Tool, find_executable, prepend_path};

use crate::package_manager::{Kind, ManagerSpec};
use crate::provision::provision;

/// Lines of a failed command's output quoted in the error.
const TAIL_LINES: usize = 60;

/// A package manager ready to run in the project root.
pub struct Manager<'a> {
    /// Which one.
    pub kind: Kind,
    /// Its exact version.
    pub version: String,
    /// Yarn 2+ (`workspaces focus`) rather than Yarn 1.
    berry: bool,
    /// `node` (running the provisioned script) or the host's `npm`.
    exe: PathBuf,
    /// Arguments before the command's own (the provisioned script).
    prefix: Vec<String>,
    /// The environment of every run, without `NODE_ENV`.
    env: BTreeMap<String, String>,
    /// `NODE_ENV` for scripts: the user's (`--env`, project.toml) or `production`.
    script_node_env: String,
    /// The project root (where the lockfile is).
    root: PathBuf,
    /// Flags every pnpm or Yarn 1 command takes (store and cache in kiln's cache).
    flags: Vec<String>,
    output: &'a (dyn Fn(&str) + Sync),
    sandbox: &'a Sandbox,
}

/// Returns the host's `node` and `npm` on the allow-listed `PATH`, or a kiln error saying
/// to install them.
pub fn host_tools(env: &BTreeMap<String, String>) -> Result<(PathBuf, PathBuf), BuildpackError> {
    let path = env.get("PATH").map(String::as_str).unwrap_or_default();
    let find = |name: &str| {
        find_executable(path, name).ok_or_else(|| BuildpackError::Kiln {
            message: format!("building the Node.js app: `{name}` not found on PATH"),
            hint: Some(
                "install Node.js with npm (Debian: `apt install nodejs npm`) and put them on PATH"
                    .to_owned(),
            ),
            source: None,
        })
    };
    Ok((find("node")?, find("npm")?))
}

/// Returns the environment npm runs with: the allow-list plus npm's cache in kiln's, and
/// npm's chatter and log files off.
pub fn npm_env(ctx: &BuildContext<'_>) -> BTreeMap<String, String> {
    let mut env = ctx.env.clone();
    env.remove("NODE_ENV");
    for (k, v) in [
        ("npm_config_cache", dir(ctx.cache_dir, "npm")),
        ("npm_config_update_notifier", "false".to_owned()),
        ("npm_config_fund", "false".to_owned()),
        ("npm_config_audit", "false".to_owned()),
        ("npm_config_progress", "false".to_owned()),
        // npm's debug logs would land in its cache (and make every cache image new); the
        // output kiln shows has what they would.
        ("npm_config_logs_max", "0".to_owned()),
        // node-gyp keeps the Node.js headers it downloads here (else in the build's home,
        // which is emptied each build).
        ("npm_config_devdir", dir(ctx.cache_dir, "node-gyp")),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

fn dir(cache: &Path, name: &str) -> String {
    cache.join(name).display().to_string()
}

impl<'a> Manager<'a> {
    /// Returns `spec`'s package manager for the project at `root`: the host's npm, or pnpm
    /// and Yarn provisioned at the pinned version.
    pub fn new(
        ctx: &BuildContext<'a>,
        spec: &ManagerSpec,
        root: &Path,
        (node, npm): (&Path, &Path),
    ) -> Result<Self, BuildpackError> {
        let mut env = npm_env(ctx);
        let npm_tool = ctx.tool(npm.to_path_buf(), env.clone(), ctx.cache_dir.to_path_buf());
        let cache = ctx.cache_dir;
        let (exe, prefix, version, berry) = match spec.kind {
            Kind::Npm => (npm.to_path_buf(), Vec::new(), npm_version(npm), false),
            _ => {
                for d in [cache.join("tools"), cache.join(kiln_lifecycle::CACHE_LOCKS)] {
                    std::fs::create_dir_all(&d).map_err(|e| {
                        BuildpackError::io(format!("creating `{}`", d.display()), e)
                    })?;
                }
                let p = provision(spec, &npm_tool, &cache.join("tools"))?;
                prepend_path(&mut env, &p.bin_dir);
                let berry = spec.kind == Kind::Yarn && !p.version.starts_with("1.");
                let script = p.script.display().to_string();
                (node.to_path_buf(), vec![script], p.version, berry)
            }
        };
        let flags = match spec.kind {
            Kind::Pnpm => vec![
                format!("--config.store-dir={}", dir(cache, "pnpm-store")),
                format!("--config.cache-dir={}", dir(cache, "pnpm-cache")),
                // Clones and copies give every file its own inode, so the layer does not
                // depend on which files the store happened to hardlink.
                "--config.package-import-method=clone-or-copy".to_owned(),
                "--config.confirm-modules-purge=false".to_owned(),
                "--config.manage-package-manager-versions=false".to_owned(),
                "--reporter=append-only".to_owned(),
            ],
            Kind::Yarn if !berry => vec![
                "--non-interactive".to_owned(),
                "--no-progress".to_owned(),
                format!("--cache-folder={}", dir(cache, "yarn1-cache")),
                // Yarn 1's cache is not safe for concurrent installs; builds sharing the
                // cache dir take turns.
                format!(
                    "--mutex=file:{}",
                    cache
                        .join(kiln_lifecycle::CACHE_LOCKS)
                        .join("yarn1")
                        .display()
                ),
            ],
            _ => Vec::new(),
        };
        if berry {
            for (k, v) in [
                ("YARN_CACHE_FOLDER", dir(cache, "yarn-cache")),
                ("YARN_GLOBAL_FOLDER", dir(cache, "yarn-global")),
                ("YARN_ENABLE_GLOBAL_CACHE", "false".to_owned()),
                // The image runs `node` on plain files: no Plug'n'Play loader.
                ("YARN_NODE_LINKER", "node-modules".to_owned()),
                ("YARN_ENABLE_TELEMETRY", "0".to_owned()),
                ("YARN_ENABLE_PROGRESS_BARS", "false".to_owned()),
                ("YARN_ENABLE_INLINE_BUILDS", "true".to_owned()),
            ] {
                env.insert(k.to_owned(), v);
            }
        }
        Ok(Self {
            kind: spec.kind,
            version,
            berry,
            exe,
            prefix,
            env,
            script_node_env: ctx
                .env
                .get("NODE_ENV")
                .cloned()
                .unwrap_or_else(|| "production".to_owned()),
            root: root.to_path_buf(),
            flags,
            output: ctx.output,
            sandbox: ctx.sandbox,
        })
    }

    /// Returns `npm@11.1.0`-style identity, for keys and messages.
    pub fn identity(&self) -> String {
        format!("{}@{}", self.kind.name(), self.version)
    }

    /// Installs every dependency, devDependencies included; `frozen` refuses to touch the
    /// lockfile (`npm ci`, `--frozen-lockfile`, `--immutable`).
    pub fn install(&self, frozen: bool) -> Result<(), BuildpackError> {
        let args: Vec<&str> = match (self.kind, self.berry, frozen) {
            (Kind::Npm, _, true) => vec!["ci", "--include=dev"],
            (Kind::Npm, _, false) => vec!["install", "--include=dev"],
            (Kind::Pnpm, _, true) => vec!["install", "--frozen-lockfile"],
            (Kind::Pnpm, _, false) => vec!["install", "--no-frozen-lockfile"],
            (Kind::Yarn, false, true) => vec!["install", "--frozen-lockfile", "--production=false"],
            (Kind::Yarn, false, false) => vec!["install", "--production=false"],
            (Kind::Yarn, true, true) => vec!["install", "--immutable"],
            (Kind::Yarn, true, false) => vec!["install", "--no-immutable"],
        };
        self.run(&self.root, &args, &[])
    }

    /// Runs the package.json script `name` in `dir`, with `NODE_ENV=production` unless the
    /// user's build environment sets it (bundlers read it to build for production).
    pub fn run_script(&self, dir: &Path, name: &str) -> Result<(), BuildpackError> {
        self.run(dir, &["run", name], &[("NODE_ENV", &self.script_node_env)])
    }

    /// Removes devDependencies from the installed tree.
    pub fn prune(&self) -> Result<(), BuildpackError> {
        let args: Vec<&str> = match (self.kind, self.berry) {
            (Kind::Npm, _) => vec!["prune", "--omit=dev"],
            (Kind::Pnpm, _) => vec!["prune", "--prod"],
            // Yarn 1 has no prune: a production install over the tree removes the rest.
            (Kind::Yarn, false) => vec!["install", "--frozen-lockfile", "--production=true"],
            (Kind::Yarn, true) => vec!["workspaces", "focus", "--all", "--production"],
        };
        self.run(&self.root, &args, &[])
    }

    fn run(&self, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Result<(), BuildpackError> {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let tool = Tool {
            exe: self.exe.clone(),
            env,
            dir: dir.to_path_buf(),
            output: self.output,
            sandbox: self.sandbox,
        };
        let mut all: Vec<String> = self.prefix.clone();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        if args.first() != Some(&"run") {
            all.extend(self.flags.iter().cloned());
        }
        let shown = format!("{} {}", self.kind.name(), args.join(" "));
        let run = tool
            .run(&all, false, TAIL_LINES)
            .map_err(|e| BuildpackError::io(format!("running `{shown}`"), e))?;
        if run.status.success() {
            return Ok(());
        }
        if let Some(why) = run.environment_failure() {
            return Err(BuildpackError::Kiln {
                message: format!("`{shown}` failed: {why}:\n{}", run.quoted_tail()),
                hint: Some("free space or fix the file system, then build again; kiln's cache dir (`--cache-dir`) holds the package manager's cache and the build's scratch copy".to_owned()),
                source: None,
            });
        }
        Err(BuildpackError::App {
            message: format!("`{shown}` failed ({}):\n{}", run.status, run.quoted_tail()),
            hint: Some(format!(
                "fix the error above; `{shown}` in the project reproduces it"
            )),
        })
    }
}

/// Returns the host npm's version from its package.json (starting npm to ask costs a
/// quarter of a second), else `unknown`.
fn npm_version(npm: &Path) -> String {
    let real = npm.canonicalize().unwrap_or_else(|_| npm.to_path_buf());
    real.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("package.json"))
        .find_map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
            (v["name"] == "npm").then(|| v["version"].as_str().map(str::to_owned))?
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
