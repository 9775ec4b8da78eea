//! Builds the Go fixture apps with the real `go` tool and checks what comes out.
//!
//! Needs `go` on PATH and the machine's Go module proxy settings (go-web has one dependency).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln_buildpack_go::GoBuildpack;
use kiln_lifecycle::{BuildContext, BuildOutput, Buildpack, BuildpackError, Plan};

/// The host environment as the lifecycle lets it through to toolchains.
fn host_env() -> BTreeMap<String, String> {
    kiln_lifecycle::build_env(
        &std::env::vars().collect(),
        &Default::default(),
        &BTreeMap::new(),
    )
}

/// A buildpack cache shared by the tests of this run and kept between runs, whose Go build
/// and module caches are the e2e suite's warm ones in the machine cache
/// (`kiln_e2e::download_cache`), so each package compiles once per machine. (Go's caches are
/// keyed by content and safe for concurrent use.)
fn shared_cache() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-buildpack-cache");
        fs::create_dir_all(&dir).unwrap();
        for name in ["go-build", "go-mod"] {
            let link = dir.join(name);
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(kiln_e2e::download_cache(name), link).unwrap();
            }
        }
        dir
    })
    .clone()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// Copies a fixture into `parent/name`, as the lifecycle's scratch copy would be.
fn scratch_copy(name: &str, parent: &Path) -> PathBuf {
    let dest = parent.join(name);
    copy_tree(&fixture(name), &dest);
    dest
}

fn copy_tree(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dest.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Built {
    result: Result<BuildOutput, BuildpackError>,
    lines: Vec<String>,
}

fn build_with(
    app: &Path,
    layers: &Path,
    cache: &Path,
    env: &BTreeMap<String, String>,
    process: Option<&str>,
) -> Built {
    let plan: Plan = GoBuildpack
        .detect(app)
        .unwrap()
        .expect("a Go app is detected");
    let lines = Mutex::new(Vec::new());
    let output = |line: &str| lines.lock().unwrap().push(line.to_owned());
    let ctx = BuildContext {
        app_dir: app,
        layers_dir: layers,
        cache_dir: cache,
        env,
        default_process: process,
        workspace: "/workspace",
        output: &output,
        settings: &Default::default(),
        sandbox: kiln_lifecycle::Sandbox::unconfined(),
        run_image: None,
        source_stamp: None,
    };
    let result = GoBuildpack.build(&ctx, &plan);
    Built {
        result,
        lines: lines.into_inner().unwrap(),
    }
}

fn build(app: &Path, layers: &Path, process: Option<&str>) -> Built {
    build_with(app, layers, &shared_cache(), &host_env(), process)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A started binary, killed by its PID when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(binary: &Path, cwd: &Path, port: u16) -> Running {
    let child = Command::new(binary)
        .current_dir(cwd)
        .env_clear()
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

/// Returns the body of `GET path`, waiting for the server to come up; panics unless it is a 200.
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() > deadline => panic!("connecting to 127.0.0.1:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}"
    );
    body.to_owned()
}

fn app_error(built: Built) -> (String, Option<String>, Vec<String>) {
    match built.result {
        Err(BuildpackError::App { message, hint }) => (message, hint, built.lines),
        other => panic!("want an app error, got {other:?}"),
    }
}

fn layer<'a>(out: &'a BuildOutput, name: &str) -> &'a Path {
    &out.layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no `{name}` layer"))
        .dir
}

#[test]
fn go_web_builds_runs_and_ships_its_assets() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-web", tmp.path());
    let layers = tmp.path().join("layers");
    fs::create_dir(&layers).unwrap();
    let built = build(&app, &layers, None);
    let lines = built.lines;
    let out = built
        .result
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", e.hint(), lines.join("\n")));

    let names: Vec<&str> = out.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["workspace", "app"]);
    assert_eq!(out.processes.len(), 1);
    assert_eq!(out.processes[0].name, "goweb");
    assert_eq!(out.processes[0].command, ["/workspace/bin/goweb"]);
    assert!(out.processes[0].default);

    let binary = layer(&out, "app").join("workspace/bin/goweb");
    let version = Command::new(&binary)
        .arg("-version")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "goweb 1.0.0"
    );

    let workspace = layer(&out, "workspace").join("workspace");
    for kept in [
        "static/hello.txt",
        "templates/index.html",
        "notes/private.txt",
    ] {
        assert!(
            workspace.join(kept).is_file(),
            "{kept} should be in the workspace layer"
        );
    }
    for dropped in [
        "main.go",
        "main_test.go",
        "go.mod",
        "go.sum",
        "testdata",
        ".gitignore",
        ".dockerignore",
    ] {
        assert!(
            fs::symlink_metadata(workspace.join(dropped)).is_err(),
            "{dropped} should not be shipped"
        );
    }
    let entries: Vec<_> = fs::read_dir(layer(&out, "app").join("workspace/bin"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "the app layer holds the binary only");

    let port = free_port();
    let _server = start(&binary, &workspace, port);
    let root = get(port, "/");
    assert!(root.contains("hello from kiln"), "{root}");
    let hello = fs::read_to_string(fixture("go-web/static/hello.txt")).unwrap();
    assert_eq!(get(port, "/asset"), hello);
    assert!(get(port, "/template").contains("rendered from templates/index.html"));
    assert!(get(port, "/uid").trim().parse::<u32>().is_ok());
}

#[test]
fn go_multi_builds_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-multi", tmp.path());
    let layers = tmp.path().join("layers");
    let out = build(&app, &layers, Some("worker")).result.unwrap();

    let names: Vec<&str> = out.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["app"],
        "go-multi has no non-code files, so no workspace layer"
    );
    let processes: Vec<(&str, bool)> = out
        .processes
        .iter()
        .map(|p| (p.name.as_str(), p.default))
        .collect();
    assert_eq!(processes, [("api", false), ("worker", true)]);
    assert_eq!(out.processes[0].command, ["/workspace/bin/api"]);

    let bin = layer(&out, "app").join("workspace/bin");
    for name in ["api", "worker"] {
        let port = free_port();
        let _server = start(&bin.join(name), tmp.path(), port);
        assert_eq!(get(port, "/anything").trim(), name);
    }
}

#[test]
fn go_multi_without_a_choice_or_with_a_wrong_one_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-multi", tmp.path());
    for (choice, words) in [
        (None, "none is chosen"),
        (Some("web"), "unknown process `web`"),
    ] {
        let built = build(&app, &tmp.path().join("layers"), choice);
        let Err(BuildpackError::Usage { message, hint }) = built.result else {
            panic!("want a usage error, got {:?}", built.result)
        };
        assert!(
            message.contains(words) && message.contains("`api`, `worker`"),
            "{message}"
        );
        assert!(hint.unwrap().contains("--process NAME"));
    }
}

#[test]
fn compile_errors_are_app_errors_quoting_the_compiler() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-broken", tmp.path());
    let (message, hint, lines) = app_error(build(&app, &tmp.path().join("layers"), None));
    assert!(message.contains("undefined: undefinedThing"), "{message}");
    assert!(message.contains("example.com/broken"), "{message}");
    assert!(hint.is_some());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("undefined: undefinedThing")),
        "streamed: {lines:?}"
    );
}

#[test]
fn missing_go_sum_asks_for_go_mod_tidy() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-web", tmp.path());
    fs::remove_file(app.join("go.sum")).unwrap();
    let mut env = host_env();
    // Whatever the machine says, go.sum must not be fixed up behind the app's back.
    env.insert("GOFLAGS".into(), "-mod=readonly".into());
    let (message, hint, _) = app_error(build_with(
        &app,
        &tmp.path().join("layers"),
        &shared_cache(),
        &env,
        None,
    ));
    assert!(message.contains("missing go.sum entry"), "{message}");
    assert_eq!(hint.as_deref(), Some("run go mod tidy"));
}

/// A Go module proxy on 127.0.0.1 that answers every request 404 and records it.
struct Proxy {
    url: String,
    requests: std::sync::Arc<Mutex<Vec<String>>>,
}

fn proxy() -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    // Detached: it dies with the test process.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]);
            seen.lock()
                .unwrap()
                .push(line.lines().next().unwrap_or_default().to_owned());
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    Proxy { url, requests }
}

/// B03: a `go` line newer than the host's Go (and a `toolchain` line naming it) is an app
/// error naming both versions and saying kiln never downloads a Go, before `go` runs.
#[test]
fn b03_a_newer_go_directive_names_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-multi", tmp.path());
    let go_mod = fs::read_to_string(app.join("go.mod"))
        .unwrap()
        .replace("go 1.22", "go 1.99\n\ntoolchain go1.99.0");
    fs::write(app.join("go.mod"), go_mod).unwrap();
    let proxy = proxy();
    let mut env = host_env();
    env.insert("GOPROXY".into(), proxy.url.clone());
    let (message, hint, lines) = app_error(build_with(
        &app,
        &tmp.path().join("layers"),
        &shared_cache(),
        &env,
        Some("api"),
    ));
    assert!(
        message.starts_with("`go.mod` requires go 1.99 but the host has go 1."),
        "{message}"
    );
    assert!(message.contains("toolchain go1.99.0"), "{message}");
    let hint = hint.unwrap();
    assert!(hint.contains("install Go 1.99 or newer"), "{hint}");
    assert!(hint.contains("never downloads"), "{hint}");
    assert!(proxy.requests.lock().unwrap().is_empty(), "{lines:?}");
}

/// B03: `toolchain go1.99.0` with a `go` line the host meets: the host's Go builds it, even
/// with `GOTOOLCHAIN=auto` in the environment, and not a request reaches the module proxy
/// (where the go tool would fetch `golang.org/toolchain`).
#[test]
fn b03_a_newer_toolchain_line_builds_with_the_host_go_and_downloads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-multi", tmp.path());
    let go_mod = fs::read_to_string(app.join("go.mod"))
        .unwrap()
        .replace("go 1.22", "go 1.22\n\ntoolchain go1.99.0");
    fs::write(app.join("go.mod"), go_mod).unwrap();
    let proxy = proxy();
    let mut env = host_env();
    env.insert("GOPROXY".into(), proxy.url.clone());
    env.insert("GOTOOLCHAIN".into(), "auto".into());
    let layers = tmp.path().join("layers");
    let built = build_with(&app, &layers, &shared_cache(), &env, Some("api"));
    let lines = built.lines;
    built
        .result
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", e.hint(), lines.join("\n")));
    assert!(layers.join("app/workspace/bin/api").is_file());
    assert!(
        proxy.requests.lock().unwrap().is_empty(),
        "the go tool asked the proxy: {:?}",
        proxy.requests.lock().unwrap()
    );
}

#[test]
fn missing_go_is_a_kiln_error_saying_which_go_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let app = scratch_copy("go-multi", tmp.path());
    let env = BTreeMap::from([(
        "PATH".to_owned(),
        tmp.path().join("no-go-here").display().to_string(),
    )]);
    let built = build_with(
        &app,
        &tmp.path().join("layers"),
        &shared_cache(),
        &env,
        Some("api"),
    );
    let Err(err @ BuildpackError::Kiln { .. }) = built.result else {
        panic!("want a kiln error, got {:?}", built.result)
    };
    assert_eq!(err.hint(), Some("install Go ≥ 1.22 and put it on PATH"));
}

#[test]
fn not_an_app_is_not_detected() {
    assert_eq!(GoBuildpack.detect(&fixture("not-an-app")).unwrap(), None);
}

#[test]
fn builds_from_two_checkouts_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let a = scratch_copy("go-web", &tmp.path().join("a"));
    let b = scratch_copy("go-web", &tmp.path().join("second/checkout/elsewhere"));
    let fresh_cache = tmp.path().join("fresh-cache");
    let out_a = build(&a, &tmp.path().join("layers-a"), None)
        .result
        .unwrap();
    let out_b = build_with(
        &b,
        &tmp.path().join("layers-b"),
        &fresh_cache,
        &host_env(),
        None,
    )
    .result
    .unwrap();
    let bin = |out: &BuildOutput| fs::read(layer(out, "app").join("workspace/bin/goweb")).unwrap();
    assert!(
        bin(&out_a) == bin(&out_b),
        "the two builds produced different binaries"
    );
}

/// An unchanged app reuses its last link (identical bytes, no `go build`); a change in a
/// dependency's function body — which leaves the main package's own compile output alone —
/// still relinks.
#[test]
fn unchanged_binaries_reuse_their_link_and_dependency_changes_relink() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = scratch_copy("go-multi", tmp.path());
    let bin = |layers: &Path| layers.join("app/workspace/bin/api");
    let run = |n: &str| {
        let layers = tmp.path().join(n);
        let built = build_with(&app, &layers, &cache, &host_env(), Some("api"));
        let lines = built.lines.clone();
        built.result.unwrap();
        (fs::read(bin(&layers)).unwrap(), lines)
    };
    let (first, lines) = run("l1");
    assert!(!lines.iter().any(|l| l.contains("up to date")), "{lines:?}");
    let (second, lines) = run("l2");
    assert_eq!(first, second, "a reused link must be byte-identical");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`example.com/multi/cmd/api` is up to date")),
        "{lines:?}"
    );

    let greet = app.join("internal/greet/greet.go");
    let code = fs::read_to_string(&greet)
        .unwrap()
        .replace("fmt.Println(name)", "fmt.Println(\"changed\", name)");
    fs::write(&greet, code).unwrap();
    let (third, lines) = run("l3");
    assert_ne!(third, first, "a dependency change must relink");
    assert!(
        !lines.iter().any(|l| l.contains("cmd/api` is up to date")),
        "{lines:?}"
    );
}
