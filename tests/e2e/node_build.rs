//! `kiln build` on real Node.js apps (the host's Node 20 and npm; pnpm and Yarn fetched at
//! their pinned versions; packages from the npm registry through the clients' own
//! configuration), on the `node` golden base, pushed to a real registry and run by podman.

use std::path::Path;

use crate::common;
use crate::common::node::{layer_size, shipped_dev_dependencies, uploads};
use crate::common::{
    Kiln, cache_with_base, client, layer_files, publish, reuse, run_web, secrets, shared_base,
    validate_pushed,
};
use kiln_e2e::{Registry, ensure_containers_conf, skopeo_inspect_config};

/// A registry token in the project's `.npmrc`: npm reads it, nothing may ship it.
const NPMRC_CANARY: &str = "kiln-npm-token-canary-3b9e41";

fn entrypoint_and_workdir(pinned: &str) -> (serde_json::Value, serde_json::Value) {
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    (
        config["config"]["Entrypoint"].clone(),
        config["config"]["WorkingDir"].clone(),
    )
}

/// Returns the paths under `workspace/` of the layer files of an image (the app's; the
/// base's thousands of paths would drown a failure message).
fn paths(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| p.starts_with("workspace/"))
        .collect()
}

/// Checks the SBOMs kiln attached to `pinned`: both validate with the formats' reference
/// tools, their npm packages are exactly the lockfile's production packages (no
/// devDependency such as eslint), the base's Debian packages are there, and the `.npmrc`
/// token is in neither.
fn assert_sbom_lists_production_packages(
    kiln: &Kiln,
    client: &kiln_registry::Client,
    pinned: &str,
    app: &std::path::Path,
) {
    let spdx = common::attached_sbom(client, pinned, "application/spdx+json");
    let cdx = common::attached_sbom(client, pinned, "application/vnd.cyclonedx+json");
    for (bytes, file) in [(&spdx, "sbom.spdx.json"), (&cdx, "sbom.cdx.json")] {
        assert!(!String::from_utf8_lossy(bytes).contains(NPMRC_CANARY));
        std::fs::write(kiln.ws.join(file), bytes).unwrap();
    }
    assert_eq!(kiln_e2e::validate_spdx(&kiln.ws.join("sbom.spdx.json")), "");
    assert_eq!(
        kiln_e2e::validate_cyclonedx(&kiln.ws.join("sbom.cdx.json")),
        ""
    );
    let cdx: serde_json::Value = serde_json::from_slice(&cdx).unwrap();
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.join("package-lock.json")).unwrap()).unwrap();
    let production: std::collections::BTreeSet<(String, String)> = lock["packages"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, p)| path.contains("node_modules/") && p["dev"] != true)
        .map(|(path, p)| {
            let name = path.rsplit_once("node_modules/").unwrap().1;
            (name.to_owned(), p["version"].as_str().unwrap().to_owned())
        })
        .collect();
    // CycloneDX names a scoped package's scope as its group (`@scope` / `name`).
    let listed: std::collections::BTreeSet<(String, String)> =
        common::sbom_components(&cdx, "npm").into_iter().collect();
    assert!(production.iter().any(|(n, _)| n == "express"));
    assert_eq!(
        listed, production,
        "npm packages: SBOM (left) vs lockfile (right)"
    );
    assert!(!listed.iter().any(|(n, _)| n == "eslint"));
    let debs = common::sbom_components(&cdx, "deb");
    assert!(debs.iter().any(|(n, _)| n == "nodejs"), "{debs:?}");
}

/// The headline Node path: an Express app with an eslint devDependency and an `.npmrc`
/// holding a token runs on the `node` base as nonroot with `NODE_ENV=production`; its image
/// has `node_modules` and app layers without eslint, lockfile or `.npmrc`. A one-line change
/// reuses `node_modules` (not installed, tarred or uploaded again) and uploads the app layer
/// only; an unchanged rebuild is the same digest. B02: the token is nowhere: no layer,
/// config (`Env`, labels, history), SBOM, report or output, nor the cache image the last
/// build pushes.
pub(crate) fn b02_express_app_ships_production_dependencies_only_and_a_code_change_reuses_node_modules()
 {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let app = kiln.fixture("node-express", "src/express");
    std::fs::write(
        app.join(".npmrc"),
        format!("//npm.kiln-canary.invalid/:_authToken={NPMRC_CANARY}\nfund=false\n"),
    )
    .unwrap();
    let image = registry.reference("team/express:1");
    let first = kiln.run(&[
        "build",
        &image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--report",
        kiln.ws.join("r1.json").to_str().unwrap(),
    ]);
    let pinned = first.ok();
    secrets::assert_absent(
        NPMRC_CANARY,
        &[
            ("first build's stdout", &first.stdout),
            ("first build's stderr", &first.stderr),
        ],
    );
    let r1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("r1.json")).unwrap()).unwrap();
    assert_eq!(
        reuse(&r1),
        [
            ("node_modules".to_owned(), false),
            ("public".to_owned(), false),
            ("app".to_owned(), false)
        ]
    );
    let client = client(None, None);
    validate_pushed(&client, &pinned);
    let (entrypoint, workdir) = entrypoint_and_workdir(&pinned);
    assert_eq!(
        entrypoint,
        serde_json::json!(["/usr/bin/node", "server.js"])
    );
    assert_eq!(workdir, "/workspace");

    let files = layer_files(&client, &pinned);
    let all = paths(&files);
    assert!(
        all.contains(&"workspace/node_modules/express/package.json"),
        "{all:?}"
    );
    assert!(all.contains(&"workspace/public/hello.txt"));
    for absent in [
        "workspace/node_modules/eslint/",
        "workspace/package-lock.json",
        "workspace/.npmrc",
        "workspace/node_modules/.bin/",
    ] {
        assert!(
            !all.iter().any(|p| p.starts_with(absent)),
            "`{absent}` shipped"
        );
    }
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false).to_string();
    assert!(config.contains("NODE_ENV=production"), "{config}");
    let report = std::fs::read_to_string(kiln.ws.join("r1.json")).unwrap();
    for (what, text) in [("config", &config), ("report", &report)] {
        assert!(
            !text.contains(NPMRC_CANARY),
            "the .npmrc token is in the {what}"
        );
    }
    secrets::assert_not_in_files(&files, NPMRC_CANARY, "image");
    assert_sbom_lists_production_packages(&kiln, &client, &pinned, &app);

    let (got, uid) = run_web(
        &pinned,
        &[],
        &["/", "/user", "/env", "/dev", "/static/hello.txt"],
    );
    assert_eq!(got[0], "hello from express");
    assert_eq!((got[1].as_str(), uid), ("65532", 65532));
    assert_eq!(got[2], "production");
    assert!(shipped_dev_dependencies(&got[3]).is_empty(), "{}", got[3]);
    assert_eq!(got[4], "static ok");

    // Unchanged: same digest, nothing uploaded.
    let (again, r2) = publish(&kiln, &image, &app, &cache, "r2.json");
    assert_eq!(again, pinned, "same source, same digest");
    assert_eq!(uploads(&r2), 0, "{r2}");

    // One line of app code: node_modules reused, only the app layer's bytes uploaded.
    let server = app.join("server.js");
    let text = std::fs::read_to_string(&server).unwrap();
    let changed = text.replace("'hello from express'", "'hello again from express'");
    assert_ne!(
        changed, text,
        "the fixture's greeting moved; update this test"
    );
    std::fs::write(&server, changed).unwrap();
    let cache_image = registry.reference("team/express-cache:1");
    let run = kiln.run(&[
        "build",
        &image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--cache-image",
        &cache_image,
        "--report",
        kiln.ws.join("r3.json").to_str().unwrap(),
    ]);
    let third = run.ok();
    assert!(
        run.stderr.contains("reusing node_modules"),
        "{}",
        run.stderr
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(NPMRC_CANARY),
            "the .npmrc token is in kiln's output"
        );
    }
    let r3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("r3.json")).unwrap()).unwrap();
    // The cache image holds the node_modules trees kiln keeps, and not the token.
    let cached = secrets::assert_not_in_cache_image(&client, &r3, NPMRC_CANARY);
    assert!(
        cached
            .iter()
            .any(|(p, _)| p.ends_with("node_modules/express/package.json")),
        "{:?}",
        cached.iter().map(|(p, _)| p).take(20).collect::<Vec<_>>()
    );
    // Static assets have a layer of their own: a code change leaves it as it was.
    assert_eq!(
        reuse(&r3),
        [
            ("node_modules".to_owned(), true),
            ("public".to_owned(), true),
            ("app".to_owned(), false)
        ]
    );
    assert_eq!(
        uploads(&r3),
        layer_size(&r3, "app"),
        "only the app layer is uploaded: {r3}"
    );
    assert_eq!(
        run_web(&third, &[], &["/", "/static/hello.txt"]).0,
        ["hello again from express", "static ok"]
    );

    // The scratch copy was synced, not made afresh: a fresh one gives the same image.
    std::fs::remove_dir_all(cache.join("work")).unwrap();
    let (fresh, _) = publish(&kiln, &image, &app, &cache, "r4.json");
    assert_eq!(
        fresh, third,
        "a synced scratch copy differs from a fresh one"
    );
}

/// TypeScript Fastify with pnpm (`packageManager: pnpm@9`, resolved by kiln): `tsc` runs,
/// `dist/` ships, typescript does not; after a source change the build script runs again
/// against the kept full tree while the production `node_modules` layer is reused, and
/// without that tree kiln installs again.
pub(crate) fn typescript_pnpm_app_builds_with_its_devdependencies_and_ships_without_them() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let app = kiln.fixture("node-ts-pnpm", "src/ts");
    let image = registry.reference("team/ts:1");
    let (pinned, _) = publish(&kiln, &image, &app, &cache, "r1.json");
    validate_pushed(&client(None, None), &pinned);
    let files = layer_files(&client(None, None), &pinned);
    let all = paths(&files);
    assert!(all.contains(&"workspace/dist/server.js"), "{all:?}");
    assert!(
        all.iter()
            .any(|p| p.starts_with("workspace/node_modules/.pnpm/fastify@"))
    );
    for absent in ["typescript", "@types+node"] {
        assert!(
            !all.iter()
                .any(|p| p.starts_with(&format!("workspace/node_modules/.pnpm/{absent}"))),
            "`{absent}` shipped"
        );
    }
    assert!(!all.contains(&"workspace/pnpm-lock.yaml"));
    let (got, uid) = run_web(&pinned, &[], &["/", "/dev", "/env"]);
    assert_eq!(got[0], "hello from fastify and typescript");
    assert!(shipped_dev_dependencies(&got[1]).is_empty(), "{}", got[1]);
    assert_eq!((got[2].as_str(), uid), ("production", 65532));

    let source = app.join("src/server.ts");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        text.replace("hello from fastify", "hello again from fastify"),
    )
    .unwrap();
    let (second, r2) = publish(&kiln, &image, &app, &cache, "r2.json");
    assert_eq!(
        reuse(&r2),
        [("node_modules".to_owned(), true), ("app".to_owned(), false)]
    );
    assert_eq!(
        run_web(&second, &[], &["/"]).0[0],
        "hello again from fastify and typescript"
    );

    // The kept full tree gone (a concurrent build took it, a disk cleaner): kiln installs
    // afresh instead of failing, and the image is the same.
    let modules = cache.join("buildpacks/kiln-node/modules");
    for entry in std::fs::read_dir(&modules).unwrap() {
        let _ = std::fs::remove_dir_all(entry.unwrap().path().join("full"));
    }
    let (third, _) = publish(&kiln, &image, &app, &cache, "r3.json");
    assert_eq!(third, second);
}

/// Yarn 4 (node-modules linker forced, `main` as the entry) and Yarn 1 (`server.js` by
/// convention), each at its pinned version, without their devDependencies.
pub(crate) fn yarn_berry_and_classic_apps_run() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    for (fixture, entry, greeting) in [
        ("node-yarn", "app.js", "hello from yarn berry, 1m"),
        (
            "node-yarn-classic",
            "server.js",
            "hello from yarn classic, 1m",
        ),
    ] {
        let app = kiln.fixture(fixture, &format!("src/{fixture}"));
        let image = registry.reference(&format!("team/{fixture}:1"));
        let (pinned, _) = publish(&kiln, &image, &app, &cache, &format!("{fixture}.json"));
        let (entrypoint, _) = entrypoint_and_workdir(&pinned);
        assert_eq!(entrypoint, serde_json::json!(["/usr/bin/node", entry]));
        let files = layer_files(&client(None, None), &pinned);
        let all = paths(&files);
        assert!(
            all.contains(&"workspace/node_modules/ms/package.json"),
            "{all:?}"
        );
        assert!(
            !all.iter().any(|p| p.starts_with("workspace/.yarn")
                || p.ends_with("yarn.lock")
                || p.ends_with(".yarnrc.yml")),
            "{all:?}"
        );
        let (got, _) = run_web(&pinned, &[], &["/", "/dev"]);
        assert_eq!(got[0], greeting);
        assert!(
            shipped_dev_dependencies(&got[1]).is_empty(),
            "{fixture}: {}",
            got[1]
        );
    }
}

/// No lockfile: `npm install` with a warning that the image is not reproducible. A start
/// script that is not plain `node <file>` is refused (exit 2) naming the setting, and the
/// setting makes it build. A failing build script is the app's failure (exit 51) with the
/// compiler's words. A Node.js range neither the host nor the base satisfies is exit 2
/// naming every version (the base's read from its package label).
pub(crate) fn no_lockfile_start_scripts_broken_builds_and_version_ranges() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let build = |app: &Path| {
        kiln.run(&[
            "build",
            "local/x:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
    };

    let nolock = kiln.fixture("node-nolock", "src/nolock");
    let image = registry.reference("team/nolock:1");
    let run = kiln.run(&[
        "build",
        &image,
        "--path",
        nolock.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    let pinned = run.ok();
    assert!(run.stderr.contains("no lockfile"), "{}", run.stderr);
    assert!(run.stderr.contains("not reproducible"), "{}", run.stderr);
    assert_eq!(
        run_web(&pinned, &[], &["/"]).0[0],
        "hello without a lockfile"
    );

    let start = kiln.fixture("node-start-script", "src/start");
    let refused = build(&start);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("node scripts/migrate.js && node server.js"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("[io.kiln.node] start"),
        "{}",
        refused.stderr
    );
    std::fs::write(
        start.join("project.toml"),
        "[io.kiln.node]\nstart = \"node server.js\"\n",
    )
    .unwrap();
    let image = registry.reference("team/start:1");
    let (pinned, _) = publish(&kiln, &image, &start, &cache, "start.json");
    assert_eq!(
        run_web(&pinned, &[], &["/"]).0[0],
        "hello from a start script app"
    );

    let broken = kiln.fixture("node-broken", "src/broken");
    let failed = build(&broken);
    assert_eq!(failed.code, 51, "{}", failed.stderr);
    assert!(failed.stderr.contains("error TS2322"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("`npm run build` failed"),
        "{}",
        failed.stderr
    );

    let picky = kiln.fixture("node-express", "src/picky");
    let pkg = std::fs::read_to_string(picky.join("package.json")).unwrap();
    std::fs::write(
        picky.join("package.json"),
        pkg.replacen('{', "{\n  \"engines\": { \"node\": \">=99\" },", 1),
    )
    .unwrap();
    let refused = build(&picky);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let host = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout)
        .trim()
        .trim_start_matches('v')
        .to_owned();
    for part in [
        "`>=99`",
        "engines.node",
        &format!("the host has Node.js {host}"),
        // The committed lock of the node base pins Debian's nodejs 20.19.2.
        "`kiln-base/node` has Node.js 20.19.2",
    ] {
        assert!(
            refused.stderr.contains(part),
            "`{part}` missing: {}",
            refused.stderr
        );
    }
}

/// An app with no dependencies at all: `npm ci` makes no `node_modules`, so the image has the
/// app layer alone (it used to fail with exit 52, "looking for native addons: No such file
/// or directory"); an unchanged rebuild is the same digest.
pub(crate) fn an_app_without_dependencies_ships_its_app_layer_alone() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let app = kiln.fixture("node-nodeps", "src/nodeps");
    let image = registry.reference("team/nodeps:1");
    let (pinned, r1) = publish(&kiln, &image, &app, &cache, "r1.json");
    assert_eq!(reuse(&r1), [("app".to_owned(), false)]);
    validate_pushed(&client(None, None), &pinned);
    let (entrypoint, _) = entrypoint_and_workdir(&pinned);
    assert_eq!(
        entrypoint,
        serde_json::json!(["/usr/bin/node", "server.js"])
    );
    let (got, uid) = run_web(&pinned, &[], &["/", "/user"]);
    assert_eq!(got[0], "hello without dependencies");
    assert_eq!((got[1].as_str(), uid), ("65532", 65532));
    let (again, _) = publish(&kiln, &image, &app, &cache, "r2.json");
    assert_eq!(again, pinned, "same source, same digest");
}

/// A native addon is compiled by its install script (node-gyp, host headers) and loads in
/// the image. The same app refuses a run image of another architecture, where the addon
/// could not load; a pure-JavaScript app builds onto it.
pub(crate) fn native_addon_runs_and_another_architecture_is_refused() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let app = kiln.fixture("node-addon", "src/addon");
    let image = registry.reference("team/addon:1");
    let (pinned, _) = publish(&kiln, &image, &app, &cache, "r1.json");
    let files = layer_files(&client(None, None), &pinned);
    let all = paths(&files);
    let addon = "workspace/node_modules/kiln-hello-addon/build/Release/hello.node";
    assert!(all.contains(&addon), "{all:?}");
    assert!(
        !all.iter()
            .any(|p| p.ends_with("/build/Makefile") || p.contains("obj.target")),
        "{all:?}"
    );
    assert_eq!(
        run_web(&pinned, &[], &["/"]).0[0],
        "hello from a native addon"
    );

    let arm = format!(
        "oci:{}:kiln-base/node",
        shared_base("node", "linux/arm64").join("oci").display()
    );
    let refused = kiln.run(&[
        "build",
        "local/addon-arm:1",
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--run-image",
        &arm,
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("built for `amd64`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("is `arm64`"), "{}", refused.stderr);

    let pure = kiln.fixture("node-yarn-classic", "src/pure");
    let archive = kiln.ws.join("pure-arm64.tar");
    kiln.run(&[
        "build",
        "local/pure-arm:1",
        "--path",
        pure.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--run-image",
        &arm,
        "--output",
        archive.to_str().unwrap(),
    ])
    .ok();
}

/// `--path` to a member of an npm workspace whose lockfile is at the root: the root is
/// installed, the member's workspace dependency resolves in the image, and the member's
/// directory is the working directory.
pub(crate) fn workspace_member_builds_from_the_root_lockfile() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "node");
    let root = kiln.fixture("node-monorepo", "src/mono");
    let image = registry.reference("team/api:1");
    let (pinned, _) = publish(&kiln, &image, &root.join("packages/api"), &cache, "r1.json");
    let (entrypoint, workdir) = entrypoint_and_workdir(&pinned);
    assert_eq!(
        entrypoint,
        serde_json::json!(["/usr/bin/node", "server.js"])
    );
    assert_eq!(workdir, "/workspace/packages/api");
    let (got, _) = run_web(&pinned, &[], &["/", "/dev"]);
    assert_eq!(got[0], "hello Kiln from a workspace package");
    assert!(shipped_dev_dependencies(&got[1]).is_empty(), "{}", got[1]);
}

/// Same source, two checkouts at different paths with different caches: same digests, for
/// a plain app, one whose native addon is compiled in each checkout, and a pnpm TypeScript
/// app (symlinked store layout, a build script, the full tree kept beside the layer).
pub(crate) fn node_builds_are_reproducible_across_paths_and_caches() {
    let kiln = Kiln::new();
    for fixture in ["node-express", "node-addon", "node-ts-pnpm"] {
        let digests: Vec<String> = ["one", "two/deeper"]
            .iter()
            .map(|dir| {
                let cache = cache_with_base(
                    &kiln,
                    &format!("cache-{fixture}-{}", dir.replace('/', "-")),
                    "node",
                );
                let app = kiln.fixture(fixture, &format!("{dir}/{fixture}"));
                kiln.run(&[
                    "build",
                    "local/repro:1",
                    "--path",
                    app.to_str().unwrap(),
                    "--cache-dir",
                    cache.to_str().unwrap(),
                ])
                .digest()
            })
            .collect();
        assert_eq!(digests[0], digests[1], "{fixture}");
    }
}

/// A directory that both the Go and the Node buildpack detect is ambiguous (exit 2) and the
/// hint names the flag that picks one.
pub(crate) fn b04_a_go_app_with_a_package_json_asks_which_buildpack() {
    let kiln = Kiln::new();
    let app = kiln.ws.mkdir("both");
    std::fs::write(app.join("go.mod"), "module example.com/both\n\ngo 1.22\n").unwrap();
    std::fs::write(app.join("package.json"), "{}").unwrap();
    let run = kiln.run(&["build", "local/both:1", "--path", app.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("kiln/go, kiln/node"), "{}", run.stderr);
    assert!(run.stderr.contains("--buildpack kiln/go"), "{}", run.stderr);
    let unknown = kiln.run(&[
        "build",
        "local/both:1",
        "--path",
        app.to_str().unwrap(),
        "--buildpack",
        "kiln/rust",
    ]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("kiln/node"), "{}", unknown.stderr);
}
