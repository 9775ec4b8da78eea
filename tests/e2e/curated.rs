//! Curated bases travel with kiln (issue 22): the definitions and locks of `golden-base/`
//! are in the binary, so a kiln installed on its own, run outside this repository with an
//! empty `HOME`, builds Node and Java apps with no other step (the run image is built from
//! the embedded lock on first use) and `kiln base build NAME` works by name.

use std::path::Path;
use std::process::Command;

use kiln_e2e::{Registry, kiln_bin};

use crate::common::{self, Kiln, Run, bases};

/// Runs the installed `kiln` from `cwd` with an empty `home` and this test's registry
/// settings.
fn installed(kiln: &Kiln, bin: &Path, cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(&kiln.env)
        .output()
        .expect("running the installed kiln");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Node and Java apps build on a fresh machine with nothing but the binary, push, and run
/// under podman; `kiln base build node` (a name) saves the same base the first build made.
pub(crate) fn node_and_java_apps_build_anywhere_on_curated_bases_kiln_carries() {
    let kiln = Kiln::new();
    // kiln alone in a prefix of its own, run from a directory outside the repository.
    let bin = kiln.ws.join("prefix/bin/kiln");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(kiln_bin(), &bin).unwrap();
    let home = kiln.ws.mkdir("home");
    let elsewhere = kiln.ws.mkdir("elsewhere");
    // The `.deb`s come through the machine's mirror; the suite's download cache only
    // spares fetching them again.
    let cache = kiln.ws.join("cache");
    bases::share_deb_cache(&cache);
    let cache_arg = cache.to_str().unwrap();
    let registry = Registry::anonymous();

    let node = kiln.fixture("node-express", "node");
    let image = registry.reference("anywhere/node:1");
    let args = |app: &Path, image: &str| -> Vec<String> {
        [
            "build",
            image,
            "--path",
            app.to_str().unwrap(),
            "--publish",
            "--cache-dir",
            cache_arg,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        installed(&kiln, &bin, &elsewhere, &home, &args)
    };
    let built = run(&args(&node, &image));
    let pinned = built.ok();
    assert!(
        built.stderr.contains(
            "the run image `kiln-base/node` is not in kiln's store: building it once, from the lock kiln carries"
        ),
        "{}",
        built.stderr
    );
    let (got, _) = common::run_web(&pinned, &[], &["/"]);
    assert_eq!(got[0], "hello from express");

    // A second build finds the base in the store.
    let again = run(&args(&node, &registry.reference("anywhere/node:2")));
    assert_eq!(again.ok(), pinned, "the same app on the same base");
    assert!(
        !again.stderr.contains("building it once"),
        "{}",
        again.stderr
    );

    let java = kiln.fixture("java-plain", "java");
    let built = run(&args(&java, &registry.reference("anywhere/java:1")));
    let pinned_java = built.ok();
    assert!(
        built
            .stderr
            .contains("`kiln-base/java17` is not in kiln's store"),
        "{}",
        built.stderr
    );
    let podman = common::suite::podman();
    podman.pull(&pinned_java, false);
    let out = podman.run_once(&pinned_java, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok Kiln"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // By name, `kiln base build` saves the very base the first build made.
    let in_store = store_digest(&cache, "kiln-base/node");
    let by_name = run(&[
        "base".into(),
        "build".into(),
        "node".into(),
        "--cache-dir".into(),
        cache_arg.into(),
        "--platform".into(),
        format!("linux/{}", kiln_lifecycle_arch()),
        "--no-sbom".into(),
    ]);
    let printed = by_name.ok();
    assert_eq!(printed, format!("kiln-base/node@{in_store}"));

    // For two platforms the store's base (this machine's only) is built again for both,
    // from the same lock, and the app becomes an index over an image for each.
    let mut both = args(&node, &registry.reference("anywhere/node:multi"));
    both.extend(["--platform".into(), "linux/amd64,linux/arm64".into()]);
    let built = run(&both);
    built.ok();
    assert!(
        built.stderr.contains(
            "`kiln-base/node` is not in kiln's store for linux/amd64, linux/arm64/v8: building it once"
        ),
        "{}",
        built.stderr
    );
    let raw = kiln_e2e::skopeo_inspect_raw(&registry.reference("anywhere/node:multi"), false);
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{raw}");
}

/// Returns the manifest digest of `name` in the OCI layout `<cache>/oci`.
fn store_digest(cache: &Path, name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("oci/index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no `{name}` in the store: {index}"))
        .to_owned()
}

/// This machine's OCI architecture, as kiln builds for it.
fn kiln_lifecycle_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A mirror that has dropped every `.deb` (as an archive drops superseded ones after a
/// while): a 404 for every request, on 127.0.0.1 until dropped.
struct GoneMirror {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GoneMirror {
    fn start() -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/debian", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = requests.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        conn.set_nonblocking(false).unwrap();
                        let mut request = [0u8; 4096];
                        let _ = conn.read(&mut request);
                        let _ = conn.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self {
            url,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Returns how many connections the mirror took.
    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for GoneMirror {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An embedded lock older than the mirror's archive stops the build before any toolchain
/// runs, saying so and what to do (a snapshot of the rendered error).
pub(crate) fn a_stale_embedded_lock_says_to_update_kiln() {
    let kiln = Kiln::new();
    let mirror = GoneMirror::start();
    let app = kiln.fixture("node-express", "node");
    let cache = kiln.ws.mkdir("cache");
    let run = kiln.run_with(
        &[
            "build",
            "app:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        None,
        &[
            ("KILN_DEBIAN_MIRROR", &mirror.url),
            ("KILN_DEBIAN_SECURITY_MIRROR", &mirror.url),
        ],
    );
    drop(mirror);
    assert!(
        !run.stderr.contains("npm"),
        "a toolchain ran: {}",
        run.stderr
    );
    let from = run.stderr.find("error:").expect("an error");
    // Which `.deb` is asked for first varies, and the port does.
    let mut rendered = run.stderr[from..].to_owned();
    while let Some(i) = rendered.find("`http://127.0.0.1:") {
        let end = rendered[i + 1..]
            .find('`')
            .map_or(rendered.len(), |e| i + 2 + e);
        rendered.replace_range(i..end, "`[URL]`");
    }
    insta::assert_snapshot!(
        "stale_embedded_lock",
        format!("exit code: {}\n{rendered}", run.code)
    );
}

/// With a base registry, the platform team publishes curated bases once (`kiln base build
/// NAME --publish`) and builds pull them from there: a developer with an empty cache and no
/// reachable Debian mirror builds a Node app (`--base-registry`) and a Go app (`[io.kiln]
/// base-registry`), the registry's log shows the pulls, and the mirror is never asked.
pub(crate) fn with_a_base_registry_builds_pull_the_bases_and_fetch_no_deb() {
    let kiln = Kiln::new();
    let registry = Registry::builder().access_log().start();
    let bases = format!("{}/platform/bases", registry.host());
    let platform = format!("linux/{}", kiln_lifecycle_arch());
    let team_cache = kiln.ws.join("team-cache");
    bases::share_deb_cache(&team_cache);
    for base in ["node", "static"] {
        let published = kiln.run(&[
            "base",
            "build",
            base,
            "--publish",
            "--base-registry",
            &bases,
            "--platform",
            &platform,
            "--no-sbom",
            "--cache-dir",
            team_cache.to_str().unwrap(),
        ]);
        assert!(
            published
                .ok()
                .starts_with(&format!("{bases}/{base}@sha256:")),
            "{}",
            published.stdout
        );
    }

    let mirror = GoneMirror::start();
    let dead_mirror = [
        ("KILN_DEBIAN_MIRROR", mirror.url.as_str()),
        ("KILN_DEBIAN_SECURITY_MIRROR", mirror.url.as_str()),
    ];
    let cache = kiln.ws.mkdir("developer-cache");
    let cache_arg = cache.to_str().unwrap();
    let node = kiln.fixture("node-express", "node");
    let built = kiln.run_with(
        &[
            "build",
            &registry.reference("apps/node:1"),
            "--path",
            node.to_str().unwrap(),
            "--publish",
            "--base-registry",
            &bases,
            "--cache-dir",
            cache_arg,
        ],
        None,
        &dead_mirror,
    );
    let pinned = built.ok();
    assert!(
        built
            .stderr
            .contains(&format!("run image {bases}/node (sha256:")),
        "{}",
        built.stderr
    );
    let (got, _) = common::run_web(&pinned, &[], &["/"]);
    assert_eq!(got[0], "hello from express");

    let go = kiln.fixture("go-web", "go");
    kiln.ws.write(
        "go/project.toml",
        format!("[io.kiln]\nbase-registry = \"{bases}\"\n"),
    );
    let built = kiln.run_with(
        &[
            "build",
            "go-app:1",
            "--path",
            go.to_str().unwrap(),
            "--cache-dir",
            cache_arg,
        ],
        None,
        &dead_mirror,
    );
    built.ok();
    assert!(
        built
            .stderr
            .contains(&format!("run image {bases}/static (sha256:")),
        "{}",
        built.stderr
    );
    // The local image is whole: skopeo reads it from kiln's store, base layers included.
    let out = kiln_e2e::run_checked(std::process::Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:go-app:1", cache.join("oci").display()),
        &format!("dir:{}", kiln.ws.join("go-app-copy").display()),
    ]));
    assert!(out.status.success());

    assert_eq!(mirror.requests(), 0, "a build asked the Debian mirror");
    assert!(!cache.join("debian").exists(), "a build cached `.deb`s");
    let log = registry.log();
    for base in ["node", "static"] {
        let pull = format!("\"GET /v2/platform/bases/{base}/manifests/latest HTTP/1.1\" 200");
        assert!(
            log.contains(&pull),
            "no `{pull}` in the registry log:\n{log}"
        );
    }
}
