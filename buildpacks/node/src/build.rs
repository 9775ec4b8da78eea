//! The build step: check the Node.js versions, install every dependency with the project's
//! package manager, run the build script, prune to production dependencies, and lay out two
//! layers: `node_modules` (reused whole while its key holds) and the app.

use std::path::{Path, PathBuf};

use kiln_lifecycle::{BuildContext, BuildOutput, BuildpackError, LaunchLayer, Plan, Process};

use crate::detect::{LOCKFILE, MEMBER, PACKAGE_MANAGER, PINNED};
use crate::lockfile::Lockfile;
use crate::manager::{Manager, host_tools};
use crate::modules_cache::{Entry, KeyInputs, Manifest, ModulesCache, key};
use crate::native;
use crate::node_version::{check, requirement, run_image_node};
use crate::package_json::PackageJson;
use crate::package_manager::{Kind, ManagerSpec};
use crate::semver::Version;
use crate::settings::NodeSettings;
use crate::start;
use crate::tree::{link_copy, module_dirs, move_modules, remove_any, strip_for_image};

/// Files that configure (and may authenticate) the package managers: used for the install,
/// never shipped.
const INSTALL_ONLY: &[&str] = &[".npmrc", ".yarnrc", ".yarnrc.yml", ".pnpmfile.cjs"];
/// Directories of the package managers' own state, never shipped.
const INSTALL_ONLY_DIRS: &[&str] = &[".yarn", ".pnpm-store"];

/// Returns the build environment, telling npm the run image's platform when it is not this
/// machine's (`npm_config_cpu`, `_os`, `_libc`: npm then installs the optional packages with
/// prebuilt binaries for that platform). These also key the `node_modules` cache.
fn target_env(ctx: &BuildContext<'_>) -> std::collections::BTreeMap<String, String> {
    let mut env = ctx.env.clone();
    if let Some(run) = ctx.run_image {
        env.extend(npm_platform(
            &run.os,
            &run.architecture,
            kiln_lifecycle::host_arch(),
        ));
    }
    env
}

/// Returns npm's settings for installing for `os`/`arch` (OCI names) from a `host` machine:
/// none when they are the host's own.
fn npm_platform(os: &str, arch: &str, host: &str) -> Vec<(String, String)> {
    if arch.is_empty() || arch == host {
        return Vec::new();
    }
    // Node.js names CPUs as `process.arch` does.
    let cpu = match arch {
        "amd64" => "x64",
        "386" => "ia32",
        "ppc64le" => "ppc64",
        other => other,
    };
    [
        ("npm_config_cpu", cpu),
        ("npm_config_os", os),
        // kiln's bases are Debian: glibc.
        ("npm_config_libc", "glibc"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

/// Builds the app: see the module docs.
pub(crate) fn build(ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
    let env = target_env(ctx);
    let ctx = &BuildContext { env: &env, ..*ctx };
    let settings = NodeSettings::of(ctx)?;
    let member = plan.facts.get(MEMBER).cloned().unwrap_or_default();
    let root = project_root(ctx.app_dir, &member);
    let pkg = PackageJson::read(ctx.app_dir)?;
    let mut out = BuildOutput::default();

    let (node, npm) = host_tools(ctx.env)?;
    let host = host_node(ctx, &node)?;
    let run_node = ctx.run_image.and_then(run_image_node);
    let run_name = ctx.run_image.map_or("the run image", |r| r.name.as_str());
    let root_for_versions = (!member.is_empty()).then_some(root.as_path());
    if let Some(req) = requirement(&pkg, ctx.app_dir, root_for_versions)? {
        check(&req, host, run_node.map(|v| (v, run_name)))?;
        if ctx.run_image.is_some() && run_node.is_none() {
            out.warnings.push(format!(
                "the run image `{run_name}` does not say which Node.js it has (kiln's golden bases do), so kiln could not check it against `{}`",
                req.range
            ));
        }
    }

    let spec = plan
        .facts
        .get(PACKAGE_MANAGER)
        .and_then(|f| ManagerSpec::parse(f).ok())
        .ok_or_else(|| kiln_error("the plan names no package manager"))?;
    let lockfile = plan
        .facts
        .get(LOCKFILE)
        .and_then(|f| Lockfile::from_fact(f));
    let manager = Manager::new(ctx, &spec, &root, (&node, &npm))?;
    warn_about_pins(&spec, plan, lockfile, &manager, &mut out.warnings);

    let build_script = match (settings.build_script.as_deref(), settings.build_script()) {
        (Some(named), Some(script)) if pkg.script(script).is_none() => {
            return Err(BuildpackError::Usage {
                message: format!(
                    "`[io.kiln.node] build-script` names `{named}`, which package.json's scripts lack"
                ),
                hint: Some("name a script of package.json, or `\"\"` for none".to_owned()),
            });
        }
        (_, script) => script.filter(|s| pkg.script(s).is_some()),
    };

    let workspace = ctx.workspace.trim_start_matches('/');
    let entry = match lockfile {
        Some(lock) => {
            let env = ctx.env;
            let inputs = KeyInputs {
                manager: &manager.identity(),
                node: &host.to_string(),
                env,
                layout: (ctx.workspace, &member),
            };
            let k = key(&root, lock.file_name(), &inputs)
                .map_err(|e| BuildpackError::io("reading the project's package files", e))?;
            let cache = ModulesCache::new(ctx.cache_dir);
            let held = cache
                .lock_entry(&k)
                .map_err(io("locking kiln's node_modules cache entry"))?;
            Some((cache, k, held))
        }
        None => None,
    };
    let reused = match &entry {
        Some((_, _, e)) => reuse_tree(&manager, ctx, &root, build_script, e)?,
        None => None,
    };
    // A complete entry that cannot serve this build (no full tree for its build script) is
    // another build's too: install into this build's own directory instead.
    let target = match entry {
        Some((_, _, ref e)) if e.is_owned() => Target::Cached(e),
        _ => Target::Once(ctx.layers_dir.join("node_modules")),
    };
    let (layer_dir, manifest) = match reused {
        Some(done) => done,
        None => {
            let frozen = lockfile.is_some();
            let manifest = install_tree(
                &manager,
                ctx,
                &root,
                build_script,
                &target,
                workspace,
                frozen,
            )?;
            (target.layer_dir(), manifest)
        }
    };
    let key = match entry {
        Some((cache, k, held)) => {
            cache.gc(&held);
            held.share_until_exit()
                .map_err(io("sharing kiln's node_modules cache entry"))?;
            Some(k)
        }
        None => None,
    };
    native::check(
        &manifest.addons,
        ctx.run_image.map(|r| r.architecture.as_str()),
        host.major,
        run_node.map(|v| v.major),
        run_name,
    )?;

    // Without native code the tree is the same for every platform: one build serves all.
    out.platform_neutral = manifest.addons.is_empty();
    let command = start::command(&pkg, ctx.app_dir, settings.start_words().as_deref())?;
    if !manifest.module_dirs.is_empty() {
        out.layers.push(LaunchLayer {
            name: "node_modules".to_owned(),
            dir: layer_dir,
            cache_key: key,
            ..Default::default()
        });
    }
    out.layers.extend(app_layers(ctx, &root, workspace)?);
    out.processes.push(Process {
        name: "web".to_owned(),
        command,
        default: true,
    });
    out.env
        .insert("NODE_ENV".to_owned(), "production".to_owned());
    if !member.is_empty() {
        out.working_dir = Some(format!("{}/{member}", ctx.workspace.trim_end_matches('/')));
    }
    Ok(out)
}

/// Where a fresh production tree goes.
enum Target<'e> {
    /// The cache entry of its key.
    Cached(&'e Entry),
    /// A directory of this build only (no lockfile: nothing to key it by).
    Once(PathBuf),
}

impl Target<'_> {
    fn layer_dir(&self) -> PathBuf {
        match self {
            Self::Cached(e) => e.layer_dir(),
            Self::Once(dir) => dir.clone(),
        }
    }
}

/// Serves the tree from the complete cache entry `e`: its production tree is the layer, and
/// the build script (if any) runs against its full tree, moved into the project and back.
/// `None` when the entry cannot serve (absent, incomplete, no full tree, or that tree
/// unusable): installing afresh is then always right. The caller holds the entry's lock.
fn reuse_tree(
    manager: &Manager<'_>,
    ctx: &BuildContext<'_>,
    root: &Path,
    build_script: Option<&str>,
    e: &Entry,
) -> Result<Option<(PathBuf, Manifest)>, BuildpackError> {
    if e.is_owned() {
        return Ok(None);
    }
    let Some(manifest) = e.manifest() else {
        return Ok(None);
    };
    if build_script.is_some() && !manifest.has_full {
        return Ok(None);
    }
    // Builds running a script against the full tree take turns at it.
    let _full = match build_script {
        Some(_) => Some(
            e.lock_full_tree()
                .map_err(io("locking kiln's node_modules cache entry"))?,
        ),
        None => None,
    };
    if build_script.is_some() && move_modules(&e.full_dir(), root, &manifest.full_dirs).is_err() {
        return Ok(None);
    }
    (ctx.output)(&format!(
        "reusing node_modules installed by {} (same lockfile, package files, Node.js and platform)",
        manager.identity()
    ));
    if let Some(script) = build_script {
        let built = manager.run_script(ctx.app_dir, script);
        move_modules(root, &e.full_dir(), &manifest.full_dirs)
            .map_err(io("keeping node_modules"))?;
        built?;
    }
    Ok(Some((e.layer_dir(), manifest)))
}

/// Installs (`frozen`: exactly the lockfile), runs the build script, keeps the full tree
/// (when there is a build script and a cache entry), prunes, and moves the production tree
/// into `target`.
fn install_tree(
    manager: &Manager<'_>,
    ctx: &BuildContext<'_>,
    root: &Path,
    build_script: Option<&str>,
    target: &Target<'_>,
    workspace: &str,
    frozen: bool,
) -> Result<Manifest, BuildpackError> {
    manager.install(frozen)?;
    if let Some(script) = build_script {
        manager.run_script(ctx.app_dir, script)?;
    }
    let dirs = module_dirs(root).map_err(io("finding node_modules"))?;
    if let Target::Cached(e) = target {
        e.begin()
            .map_err(io("preparing kiln's node_modules cache"))?;
    }
    let keep_full = build_script.is_some() && matches!(target, Target::Cached(_));
    if let (true, Target::Cached(e)) = (keep_full, target) {
        for d in &dirs {
            let to = e.full_dir().join(d).join("node_modules");
            link_copy(&root.join(d).join("node_modules"), &to)
                .map_err(io("keeping the full node_modules"))?;
        }
    }
    manager.prune()?;
    let full_dirs = dirs.clone();
    let dirs: Vec<String> = dirs
        .into_iter()
        .filter(|d| root.join(d).join("node_modules").is_dir())
        .collect();
    let layer_root = target.layer_dir().join(workspace);
    move_modules(root, &layer_root, &dirs).map_err(io("moving node_modules into its layer"))?;
    for d in &dirs {
        strip_for_image(&layer_root.join(d).join("node_modules"))
            .map_err(io("cleaning node_modules"))?;
    }
    let manifest = Manifest {
        addons: native::addons(&layer_root).map_err(io("looking for native addons"))?,
        module_dirs: dirs,
        has_full: keep_full,
        full_dirs: if keep_full { full_dirs } else { Vec::new() },
    };
    if let Target::Cached(e) = target {
        e.commit(&manifest)
            .map_err(io("saving kiln's node_modules cache"))?;
    }
    Ok(manifest)
}

/// Directories of the app that hold static assets: large, and changed far less often than
/// code, so each gets a layer of its own and a code change uploads only the code.
pub(crate) const ASSET_DIRS: &[&str] = &["public", "static", "assets"];

/// Lays out the project (its dependencies already moved out) as the app layer, in place in
/// the scratch copy, without the package managers' configuration (it may hold registry
/// tokens), state and lockfiles (they list devDependencies, which scanners would report as
/// shipped); each of the app's [`ASSET_DIRS`] goes into a layer of its own, before it.
fn app_layers(
    ctx: &BuildContext<'_>,
    root: &Path,
    workspace: &str,
) -> Result<Vec<LaunchLayer>, BuildpackError> {
    for lock in [
        "package-lock.json",
        "npm-shrinkwrap.json",
        "pnpm-lock.yaml",
        "yarn.lock",
    ] {
        remove_any(&root.join(lock)).map_err(io("leaving the lockfile out"))?;
    }
    for d in INSTALL_ONLY_DIRS {
        remove_any(&root.join(d)).map_err(io("leaving package manager state out"))?;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("reading the app"))? {
            let entry = entry.map_err(io("reading the app"))?;
            let name = entry.file_name();
            let ty = entry.file_type().map_err(io("reading the app"))?;
            if name == "node_modules" || (ty.is_file() && INSTALL_ONLY.iter().any(|f| name == *f)) {
                remove_any(&entry.path()).map_err(io("leaving install files out"))?;
            } else if ty.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    let member = ctx.app_dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut layers = Vec::new();
    let mut except = Vec::new();
    for d in ASSET_DIRS {
        let rel = member.join(d);
        let dir = root.join(&rel);
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let rel = rel.to_string_lossy().into_owned();
        layers.push(LaunchLayer {
            name: (*d).to_owned(),
            dir,
            prefix: format!("{workspace}/{rel}"),
            ..Default::default()
        });
        except.push(rel);
    }
    layers.push(LaunchLayer {
        name: "app".to_owned(),
        dir: root.to_path_buf(),
        prefix: workspace.to_owned(),
        except,
        ..Default::default()
    });
    Ok(layers)
}

/// Returns the project root: `app_dir` without the member path.
fn project_root(app_dir: &Path, member: &str) -> PathBuf {
    let levels = member.split('/').filter(|s| !s.is_empty()).count();
    app_dir
        .ancestors()
        .nth(levels)
        .unwrap_or(app_dir)
        .to_path_buf()
}

/// Returns the host's Node.js version (`node --version`, remembered while the binary is the
/// same file).
fn host_node(ctx: &BuildContext<'_>, node: &Path) -> Result<Version, BuildpackError> {
    // A process start costs tens of milliseconds on every build: the answer is kept, under
    // the binary's identity (path and `stat`), in a file no cache image carries.
    let memo = ctx.cache_dir.join(".host-node");
    let id = binary_id(node);
    let known = std::fs::read_to_string(&memo).ok().and_then(|text| {
        let (was, version) = text.split_once('\n')?;
        (Some(was) == id.as_deref()).then(|| version.parse().ok())?
    });
    if let Some(version) = known {
        return Ok(version);
    }
    let version = ask_node_version(ctx, node)?;
    if let Some(id) = id {
        let _ = kiln_lifecycle::write_atomic(&memo, format!("{id}\n{version}").as_bytes());
    }
    Ok(version)
}

/// Returns what tells one binary file from another: its path and its `stat`.
fn binary_id(path: &Path) -> Option<String> {
    let stamp = kiln_lifecycle::FileStamp::read(path)?;
    Some(format!("{} {:?}", path.display(), stamp.0))
}

/// Runs `node --version`.
fn ask_node_version(ctx: &BuildContext<'_>, node: &Path) -> Result<Version, BuildpackError> {
    let tool = ctx.tool(
        node.to_path_buf(),
        ctx.env.clone(),
        ctx.app_dir.to_path_buf(),
    );
    let run = tool
        .run(["--version"], true, 5)
        .map_err(|e| BuildpackError::io(format!("running `{} --version`", node.display()), e))?;
    run.stdout
        .trim()
        .parse()
        .ok()
        .filter(|_| run.status.success())
        .ok_or_else(|| {
            kiln_error(&format!(
                "`{} --version` printed `{}`",
                node.display(),
                run.stdout.trim()
            ))
        })
}

/// Adds the warnings a demanding user wants about pins: no lockfile, an unpinned pnpm or
/// Yarn, an npm other than the pinned one.
fn warn_about_pins(
    spec: &ManagerSpec,
    plan: &Plan,
    lockfile: Option<Lockfile>,
    manager: &Manager<'_>,
    warnings: &mut Vec<String>,
) {
    let pinned = plan.facts.get(PINNED).is_some_and(|p| p == "true");
    match lockfile {
        None => warnings.push(format!(
            "no lockfile: {} resolves the dependencies anew on every build, so this image is not reproducible; commit the lockfile `{} install` writes",
            manager.identity(),
            spec.kind.name()
        )),
        Some(lock) if !pinned && spec.kind != Kind::Npm => warnings.push(format!(
            "`{}` without `packageManager` in package.json: kiln installs with {}; pin it with `\"packageManager\": \"{}\"`",
            lock.file_name(),
            manager.identity(),
            manager.identity()
        )),
        _ => {}
    }
    if spec.kind == Kind::Npm && pinned && spec.is_exact() && spec.version != manager.version {
        warnings.push(format!(
            "`packageManager` pins npm@{}, but kiln installs with the host's npm@{}",
            spec.version, manager.version
        ));
    }
}

fn kiln_error(message: &str) -> BuildpackError {
    BuildpackError::Kiln {
        message: message.to_owned(),
        hint: None,
        source: None,
    }
}

fn io(doing: &'static str) -> impl Fn(std::io::Error) -> BuildpackError {
    move |e| BuildpackError::io(doing, e)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn npm_installs_for_the_run_images_platform_when_it_is_not_the_hosts() {
        let got = npm_platform("linux", "arm64", "amd64");
        let keys: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("npm_config_cpu", "arm64"),
                ("npm_config_os", "linux"),
                ("npm_config_libc", "glibc")
            ]
        );
        assert_eq!(npm_platform("linux", "amd64", "arm64")[0].1, "x64");
        assert!(npm_platform("linux", "amd64", "amd64").is_empty());
        assert!(npm_platform("linux", "", "amd64").is_empty());
    }

    #[test]
    fn the_project_root_is_above_the_member() {
        let app = Path::new("/w/app/packages/api");
        assert_eq!(project_root(app, "packages/api"), Path::new("/w/app"));
        assert_eq!(project_root(app, ""), app);
    }

    #[test]
    fn the_app_layer_leaves_install_files_out_and_assets_to_their_own_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("app");
        for f in [
            "server.js",
            "package.json",
            "package-lock.json",
            ".npmrc",
            "packages/a/.npmrc",
            "packages/a/index.js",
            "packages/a/node_modules/x/index.js",
            ".yarn/cache/x.zip",
            ".yarnrc.yml",
            "public/index.html",
            "static/img/logo.png",
            "src/assets.js",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let layers = tmp.path().join("layers");
        let out = |_: &str| {};
        let ctx = BuildContext {
            app_dir: &root,
            layers_dir: &layers,
            cache_dir: tmp.path(),
            env: &BTreeMap::new(),
            default_process: None,
            workspace: "/workspace",
            output: &out,
            settings: &Default::default(),
            sandbox: kiln_lifecycle::Sandbox::unconfined(),
            run_image: None,
            source_stamp: None,
        };
        let layers = app_layers(&ctx, &root, "workspace").unwrap();
        let described: Vec<_> = layers
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.dir.clone(),
                    l.prefix.as_str(),
                    l.except.clone(),
                )
            })
            .collect();
        assert_eq!(
            described,
            [
                ("public", root.join("public"), "workspace/public", vec![]),
                ("static", root.join("static"), "workspace/static", vec![]),
                (
                    "app",
                    root.clone(),
                    "workspace",
                    vec!["public".to_owned(), "static".to_owned()]
                ),
            ]
        );
        let mut left: Vec<String> = walkdir::WalkDir::new(&root)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&root).unwrap().display().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "package.json",
                "packages/a/index.js",
                "public/index.html",
                "server.js",
                "src/assets.js",
                "static/img/logo.png",
            ]
        );
    }
}
