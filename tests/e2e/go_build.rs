//! `kiln build` on real Go apps, pushed to a real registry and run by podman + runc.

use std::time::Duration;

use crate::common;
use crate::common::{
    CANARY, Kiln, client, label_json, layer_files, runtime, secrets, validate_pushed,
};
use kiln_e2e::{
    Registry, ensure_containers_conf, free_port, http_get, skopeo_inspect_config, wait_http,
};

/// Private-module credentials passed with `--env` (B02): a git URL rewrite holding a token,
/// and a `.netrc` the go tool reads through `NETRC`.
const GO_CANARY: &str = "kiln-goprivate-canary-4c8d17";

/// The headline path: a Go web app with a module dependency and assets, published, pulled by
/// podman, run as the image says, answering on 127.0.0.1 as uid 65532 with its assets.
/// B02: the private-module credentials given to the build are in no layer, config (`Env`,
/// labels, history), SBOM, output, report or cache image.
pub(crate) fn b02_go_web_app_publishes_runs_and_keeps_secrets_out() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/go-web");
    std::fs::write(app.join("secrets.env"), format!("{CANARY}\n")).unwrap();
    let cache = common::warm_cache(&kiln, "cache");
    let image = registry.reference("team/go-web:v1");
    let report = kiln.ws.join("report.json");
    let netrc = kiln.ws.write(
        "netrc",
        format!("machine git.kiln-canary.invalid login ci password {GO_CANARY}\n"),
    );
    let env = [
        "GOPRIVATE=git.kiln-canary.invalid".to_owned(),
        "GIT_CONFIG_COUNT=1".to_owned(),
        format!("GIT_CONFIG_KEY_0=url.https://ci:{GO_CANARY}@git.kiln-canary.invalid/.insteadOf"),
        "GIT_CONFIG_VALUE_0=https://git.kiln-canary.invalid/".to_owned(),
        format!("NETRC={}", netrc.display()),
    ];
    let cache_image = registry.reference("team/go-web-cache:v1");
    let mut args = vec![
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
        report.to_str().unwrap(),
    ];
    for kv in &env {
        args.extend(["--env", kv]);
    }
    let run = kiln.run(&args);
    let pinned = run.ok();
    assert!(
        pinned.starts_with(&format!("{}/team/go-web@sha256:", registry.host())),
        "{pinned}"
    );
    for phase in [
        "===> DETECTING",
        "===> BUILDING",
        "===> EXPORTING",
        "===> PUSHING",
    ] {
        assert!(
            run.stderr.contains(phase),
            "missing `{phase}` in:\n{}",
            run.stderr
        );
    }

    let client = client(None, None);
    let validated = validate_pushed(&client, &pinned);
    assert_eq!(validated.layers, 3, "static base + workspace + app layers");

    // What a scanner or runtime reads back with standard tools.
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["WorkingDir"], "/workspace");
    assert_eq!(config["config"]["Entrypoint"][0], "/workspace/bin/goweb");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH="))
    );
    let lifecycle = label_json(&config, "io.buildpacks.lifecycle.metadata");
    assert!(
        lifecycle["runImage"]["topLayer"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        lifecycle["runImage"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let build = label_json(&config, "io.buildpacks.build.metadata");
    assert_eq!(build["processes"][0]["command"][0], "/workspace/bin/goweb");
    assert!(config["config"]["Labels"]["org.opencontainers.image.created"].is_string());

    // Ignored files never reach a layer; code stays out of /workspace.
    let files = layer_files(&client, &pinned);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for (path, data) in &files {
        assert!(
            !String::from_utf8_lossy(data).contains("do-not-ship-7f3a9c"),
            "canary found in `{path}`"
        );
    }
    assert!(names.contains(&"workspace/static/hello.txt"), "{names:?}");
    assert!(
        names.contains(&"workspace/templates/index.html"),
        "{names:?}"
    );
    assert!(names.contains(&"etc/passwd"), "{names:?}");
    for absent in [
        "workspace/secrets.env",
        "workspace/main.go",
        "workspace/go.mod",
        "workspace/notes/private.txt",
        "workspace/main_test.go",
        "workspace/testdata/x.txt",
    ] {
        assert!(
            !names.contains(&absent),
            "`{absent}` must not be in the image: {names:?}"
        );
    }

    // The report says what happened.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(
        report["digest"].as_str().unwrap(),
        pinned.rsplit_once('@').unwrap().1
    );
    assert_eq!(report["layers"].as_array().unwrap().len(), 2);

    // Not a trace of the credentials.
    let report_text = std::fs::read_to_string(kiln.ws.join("report.json")).unwrap();
    secrets::assert_absent(
        GO_CANARY,
        &[
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("report", &report_text),
        ],
    );
    secrets::assert_absent(GO_CANARY, &[("config", &config.to_string())]);
    secrets::assert_not_in_files(&files, GO_CANARY, "image");
    secrets::assert_not_in_sboms(&client, &pinned, GO_CANARY);
    let cached = secrets::assert_not_in_cache_image(&client, &report, GO_CANARY);
    assert!(
        cached.iter().any(|(p, _)| p.starts_with("linked/")),
        "the cache image holds the link cache: {:?}",
        cached.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );

    // Run it as the image says.
    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let port = free_port().to_string();
    let ctr = podman.run_detached(&pinned, &["-e", &format!("PORT={port}")]);
    let base = format!("http://127.0.0.1:{port}");
    let hello = wait_http(&format!("{base}/"), Duration::from_secs(30));
    assert!(hello.contains("hello from kiln"), "{hello}");
    let asset = http_get(&format!("{base}/asset")).unwrap().text();
    let expected = std::fs::read_to_string(app.join("static/hello.txt")).unwrap();
    assert_eq!(asset, expected);
    assert_eq!(
        http_get(&format!("{base}/uid")).unwrap().text().trim(),
        "65532"
    );
    assert!(http_get(&format!("{base}/template")).unwrap().status == 200);
    assert_eq!(ctr.process_uid(), 65532);
    assert_eq!(ctr.process_gid(), 65532);
}

/// Rebuilding unchanged source reuses every layer (no re-tar) and uploads zero layer bytes.
pub(crate) fn unchanged_rebuild_reuses_layers_and_uploads_nothing() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = common::warm_cache(&kiln, "cache");
    let image = registry.reference("rebuild/app:1");
    let args = |report: &str| {
        vec![
            "build".to_string(),
            image.clone(),
            "--path".into(),
            app.display().to_string(),
            "--publish".into(),
            "--cache-dir".into(),
            cache.display().to_string(),
            "--report".into(),
            kiln.ws.join(report).display().to_string(),
        ]
    };
    let first: Vec<String> = args("r1.json");
    let first = kiln.run(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let d1 = first.digest();
    let second: Vec<String> = args("r2.json");
    let second = kiln.run(&second.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        second.digest(),
        d1,
        "unchanged source must give the same digest"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("r2.json")).unwrap()).unwrap();
    for layer in report["layers"].as_array().unwrap() {
        assert_eq!(layer["reused"], true, "{layer}");
    }
    assert_eq!(report["push"]["uploaded_bytes"], 0, "{report}");
    let r1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("r1.json")).unwrap()).unwrap();
    assert!(r1["push"]["uploaded_bytes"].as_u64().unwrap() > 0);

    // A one-line asset change rewrites only the workspace layer.
    std::fs::write(app.join("static/hello.txt"), "changed\n").unwrap();
    let third: Vec<String> = args("r3.json");
    let third = kiln.run(&third.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(third.digest(), d1);
    let r3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("r3.json")).unwrap()).unwrap();
    let reused: Vec<(String, bool)> = r3["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["reused"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reused,
        vec![("workspace".to_string(), false), ("app".to_string(), true)]
    );
}

/// Same source from two checkout paths, with different mtimes, umask-like modes and caches,
/// gives the same digest; `SOURCE_DATE_EPOCH` changes `created` and so the digest.
pub(crate) fn builds_are_reproducible_across_paths_mtimes_and_caches() {
    let kiln = Kiln::new();
    let a = kiln.fixture("go-web", "one/checkout");
    let b = kiln.fixture("go-web", "two/deeper/other-name");
    // Different mtimes and group/other permission bits on the second copy.
    for entry in walk(&b) {
        let f = std::fs::File::options().write(true).open(&entry).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_234_567))
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let build = |src: &std::path::Path, cache: &str, extra: &[(&str, &str)]| {
        kiln.run_with(
            &[
                "build",
                "local/repro:1",
                "--path",
                src.to_str().unwrap(),
                "--cache-dir",
                common::warm_cache(&kiln, cache).to_str().unwrap(),
            ],
            None,
            extra,
        )
        .digest()
    };
    let d1 = build(&a, "c1", &[]);
    let d2 = build(&b, "c2", &[]);
    assert_eq!(
        d1,
        d2,
        "layers: {:?} vs {:?}",
        layout_layers(&kiln.ws.join("c1/oci")),
        layout_layers(&kiln.ws.join("c2/oci"))
    );
    let d3 = build(&b, "c2", &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_ne!(
        d3, d1,
        "SOURCE_DATE_EPOCH must change created and file times"
    );
    assert_eq!(build(&a, "c3", &[("SOURCE_DATE_EPOCH", "1700000000")]), d3);
}

/// Returns the layer digests and diffIDs of the only image in a layout, for failure messages.
fn layout_layers(layout: &std::path::Path) -> String {
    let v = kiln_image::validate_layout(layout, "local/repro:1").expect("valid layout");
    format!("{} {:?}", v.manifest_digest, v.config.rootfs().diff_ids())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Without `--publish` the image lands in a local OCI layout; `--output` writes an OCI archive
/// podman loads and runs; zstd layers validate and run too.
pub(crate) fn local_layout_archive_and_zstd() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = common::warm_cache(&kiln, "cache");
    let archive = kiln.ws.join("app.tar");
    let run = kiln.run(&[
        "build",
        "local/app:zstd",
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--compression",
        "zstd",
        "--output",
        archive.to_str().unwrap(),
    ]);
    run.ok();
    assert!(
        run.stderr.contains("podman run --rm oci:"),
        "{}",
        run.stderr
    );
    let layout = cache.join("oci");
    let validated = kiln_image::validate_layout(&layout, "local/app:zstd").expect("valid layout");
    assert_eq!(validated.layers, 3);
    let inspected =
        kiln_e2e::skopeo_inspect_with(&format!("oci:{}:local/app:zstd", layout.display()), &[]);
    assert_eq!(
        inspected["Digest"],
        validated.manifest_digest.to_string().as_str()
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(validated.manifest_digest.hex()),
        )
        .unwrap(),
    )
    .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    let podman = common::suite::podman();
    podman.load(&archive);
    // podman names an OCI archive's image after its ref.name annotation.
    let image_id = "localhost/local/app:zstd";
    assert_eq!(podman.image_config(image_id)["User"], "65532:65532");
    let port = free_port().to_string();
    let _ctr = podman.run_detached(image_id, &["-e", &format!("PORT={port}")]);
    let body = wait_http(
        &format!("http://127.0.0.1:{port}/asset"),
        Duration::from_secs(30),
    );
    assert_eq!(
        body,
        std::fs::read_to_string(app.join("static/hello.txt")).unwrap()
    );
    drop(runtime());
}

/// Several `cmd/*` binaries: all in the image, the user picks the default process.
pub(crate) fn multi_binary_app_needs_and_honours_process_choice() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "src/multi");
    let cache = common::warm_cache(&kiln, "cache");
    let image = registry.reference("multi:1");
    let base = [
        "build",
        image.as_str(),
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let ambiguous = kiln.run(&base);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains("api") && ambiguous.stderr.contains("worker"),
        "{}",
        ambiguous.stderr
    );
    assert!(
        ambiguous.stderr.contains("--process"),
        "{}",
        ambiguous.stderr
    );

    let mut args = base.to_vec();
    args.extend(["--process", "worker"]);
    let pinned = kiln.run(&args).ok();
    let client = client(None, None);
    validate_pushed(&client, &pinned);
    let names: Vec<String> = layer_files(&client, &pinned)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        names.contains(&"workspace/bin/api".to_string())
            && names.contains(&"workspace/bin/worker".to_string()),
        "{names:?}"
    );
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    assert_eq!(config["config"]["Entrypoint"][0], "/workspace/bin/worker");

    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let port = free_port().to_string();
    let _ctr = podman.run_detached(&pinned, &["-e", &format!("PORT={port}")]);
    let body = wait_http(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(30),
    );
    assert!(body.contains("worker"), "{body}");

    // project.toml picks it too.
    std::fs::write(app.join("project.toml"), "[io.kiln]\nprocess = \"api\"\n").unwrap();
    let pinned = kiln.run(&base).ok();
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    assert_eq!(config["config"]["Entrypoint"][0], "/workspace/bin/api");
}

/// Every error case ends with the documented exit code, the tool's own words and a hint.
pub(crate) fn errors_have_exit_codes_messages_and_hints() {
    let kiln = Kiln::new();
    let cache = common::warm_cache(&kiln, "cache");
    let cache = cache.to_str().unwrap();

    let not_app = kiln.fixture("not-an-app", "not-app");
    let r = kiln.run(&[
        "build",
        "local/x",
        "--path",
        not_app.to_str().unwrap(),
        "--cache-dir",
        cache,
    ]);
    assert_eq!(r.code, 20, "{}", r.stderr);
    assert!(
        r.stderr.contains("go.mod") && r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );

    let broken = kiln.fixture("go-broken", "broken");
    let r = kiln.run(&[
        "build",
        "local/x",
        "--path",
        broken.to_str().unwrap(),
        "--cache-dir",
        cache,
    ]);
    assert_eq!(r.code, 51, "{}", r.stderr);
    assert!(
        r.stderr.contains("undefined"),
        "compiler output expected:\n{}",
        r.stderr
    );

    let no_sum = kiln.fixture("go-web", "nosum");
    std::fs::remove_file(no_sum.join("go.sum")).unwrap();
    let r = kiln.run(&[
        "build",
        "local/x",
        "--path",
        no_sum.to_str().unwrap(),
        "--cache-dir",
        cache,
    ]);
    assert_eq!(r.code, 51, "{}", r.stderr);
    assert!(r.stderr.contains("go.sum"), "{}", r.stderr);
    assert!(r.stderr.contains("run go mod tidy"), "{}", r.stderr);

    // A GOARCH for another platform than the one asked for would mislabel the image.
    let cross = kiln.fixture("go-web", "cross");
    let r = kiln.run(&[
        "build",
        "local/x",
        "--path",
        cross.to_str().unwrap(),
        "--cache-dir",
        cache,
        "--platform",
        "linux/amd64",
        "--env",
        "GOARCH=s390x",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("GOARCH=s390x") && r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );

    let newer = kiln.fixture("go-multi", "newer");
    let gomod = std::fs::read_to_string(newer.join("go.mod")).unwrap();
    let gomod: String = gomod
        .lines()
        .map(|l| {
            if l.starts_with("go ") {
                "go 1.99".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(newer.join("go.mod"), gomod + "\n").unwrap();
    let r = kiln.run(&[
        "build",
        "local/x",
        "--path",
        newer.to_str().unwrap(),
        "--cache-dir",
        cache,
    ]);
    assert_eq!(r.code, 51, "{}", r.stderr);
    let host_go = std::process::Command::new(kiln_e2e::go_bin())
        .args(["env", "GOVERSION"])
        .output()
        .unwrap();
    let host_go = String::from_utf8_lossy(&host_go.stdout)
        .trim()
        .trim_start_matches("go")
        .to_string();
    assert!(
        r.stderr.contains("1.99") && r.stderr.contains(&host_go),
        "both versions expected:\n{}",
        r.stderr
    );

    let r = kiln.run(&["build", "Bad Name!", "--path", not_app.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = kiln.run(&["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = kiln.run(&["build", "local/x", "--path", "/nonexistent/kiln-src"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // A push to a registry port nobody listens on fails with the host named, as a transient
    // failure CI may retry (C06: exit 75).
    let app = kiln.fixture("go-multi", "push-fail");
    let port = free_port();
    let target = format!("127.0.0.1:{port}/x:1");
    let r = kiln.run(&[
        "build",
        &target,
        "--path",
        app.to_str().unwrap(),
        "--process",
        "api",
        "--publish",
        "--cache-dir",
        cache,
    ]);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
}

/// In a git checkout, `created` and every file time come from the commit, and the labels name
/// the revision and the remote (with any credentials in its URL removed).
pub(crate) fn git_checkouts_stamp_revision_source_and_commit_time() {
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "repo");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&app)
            .args(args)
            .env("GIT_AUTHOR_DATE", "@1600000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1600000000 +0000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://someone:secret-token@git.example.com/team/multi.git",
    ]);
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "init",
    ]);
    let revision = git(&["rev-parse", "HEAD"]);
    let cache = common::warm_cache(&kiln, "cache");
    kiln.run(&[
        "build",
        "local/git:1",
        "--path",
        app.to_str().unwrap(),
        "--process",
        "api",
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .ok();
    let validated = kiln_image::validate_layout(&cache.join("oci"), "local/git:1").unwrap();
    let config = serde_json::to_value(&validated.config).unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        revision.as_str()
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://git.example.com/team/multi.git"
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2020-09-13T12:26:40Z"
    );
    assert_eq!(config["created"], "2020-09-13T12:26:40Z");
    assert!(!config.to_string().contains("secret-token"));
}

/// kiln's own failure during build (here: no `go` on `PATH`) exits 52 and says what to do.
pub(crate) fn missing_toolchain_is_a_kiln_build_failure() {
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "app");
    let empty_path = kiln.ws.mkdir("empty-bin");
    let r = kiln.run_with(
        &[
            "build",
            "local/x",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            kiln.ws.mkdir("cache").to_str().unwrap(),
        ],
        None,
        &[("PATH", empty_path.to_str().unwrap())],
    );
    assert_eq!(r.code, 52, "{}", r.stderr);
    assert!(r.stderr.contains("`go` not found"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: install Go"), "{}", r.stderr);
}
