//! Shared helpers of the kiln end-to-end tests: run the real `kiln` binary with an isolated
//! credential setup, and inspect what it produced.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use kiln_e2e::{
    Podman, Workspace, copy_dir, free_port, http_get, kiln_bin, wait_http, workspace_root,
};

pub mod node;

/// The canary a test writes into `secrets.env`; it must appear in no layer.
pub const CANARY: &str = "KILN_CANARY=do-not-ship-7f3a9c";

/// A kiln invocation's result.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless kiln exited 0; returns the printed reference.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code, 0,
            "kiln failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    }

    /// Returns the digest part of the printed `name@sha256:…` reference.
    pub fn digest(&self) -> String {
        let r = self.ok();
        r.rsplit_once('@')
            .expect("reference with digest")
            .1
            .to_string()
    }
}

/// An isolated place to run kiln: its own docker config dir, podman auth file and cache.
pub struct Kiln {
    /// Scratch space for this test.
    pub ws: Workspace,
    /// Extra environment for kiln.
    pub env: BTreeMap<String, String>,
}

impl Kiln {
    /// Returns a fresh setup with an empty docker config and no auth files.
    pub fn new() -> Self {
        let ws = Workspace::new();
        let mut env = BTreeMap::new();
        env.insert(
            "DOCKER_CONFIG".into(),
            ws.mkdir("docker").display().to_string(),
        );
        env.insert(
            "REGISTRY_AUTH_FILE".into(),
            ws.join("auth.json").display().to_string(),
        );
        env.insert(
            "XDG_RUNTIME_DIR".into(),
            ws.mkdir("xdg-run").display().to_string(),
        );
        env.insert(
            "XDG_CONFIG_HOME".into(),
            ws.mkdir("xdg-config").display().to_string(),
        );
        Self { ws, env }
    }

    /// Returns the shared cache dir (Go module and build caches warm across the tests of one
    /// test binary): `<target>/e2e-shared/<pid>/cache`. A static outlives every destructor, so
    /// each binary removes the directories of binaries that have exited instead; disk use
    /// stays at one binary's cache however often the suite runs.
    pub fn shared_cache() -> PathBuf {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let root = kiln_e2e::target_dir().join("e2e-shared");
            if let Ok(entries) = std::fs::read_dir(&root) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let pid = name.to_str().and_then(|n| n.parse::<u32>().ok());
                    if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
            let dir = root.join(std::process::id().to_string()).join("cache");
            std::fs::create_dir_all(&dir).expect("creating the shared e2e cache");
            dir
        })
        .clone()
    }

    /// Copies fixture `name` into this test's workspace under `dir` and returns its path.
    pub fn fixture(&self, name: &str, dir: &str) -> PathBuf {
        let dst = self.ws.join(dir);
        copy_dir(&workspace_root().join("tests/fixtures").join(name), &dst)
            .expect("copying fixture");
        dst
    }

    /// Runs `kiln ARGS` with this setup's environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None, &[])
    }

    /// Runs `kiln ARGS` with optional stdin and extra environment.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>, extra_env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(kiln_bin());
        cmd.args(args)
            .envs(&self.env)
            .env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting kiln");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out: Output = child.wait_with_output().expect("waiting for kiln");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Returns a registry client with the settings of `kiln` for tests (loopback HTTP allowed).
pub fn client(docker_config: Option<&Path>, ca: Option<&Path>) -> kiln_registry::Client {
    kiln_registry::Client::new(kiln_registry::RegistrySettings {
        docker_config_dir: docker_config.map(Path::to_path_buf),
        ca_files: ca.map(Path::to_path_buf).into_iter().collect(),
        user_agent: "kiln-e2e".into(),
        ..Default::default()
    })
    .expect("registry client")
}

/// Pulls and validates the pushed multi-platform index `reference`: every platform's
/// manifest, config and layers (digests, sizes, diffIDs) and the platforms it claims.
pub fn validate_pushed_index(
    client: &kiln_registry::Client,
    reference: &str,
) -> kiln_image::ValidatedIndex {
    let reference: kiln_oci::Reference = reference.parse().expect("reference");
    runtime()
        .block_on(kiln_image::validate_remote_index(client, &reference))
        .unwrap_or_else(|e| panic!("validating the index `{reference}`: {e}"))
}

/// Pulls and validates the pushed image `reference` (every digest, size and diffID).
pub fn validate_pushed(client: &kiln_registry::Client, reference: &str) -> kiln_image::Validated {
    let reference: kiln_oci::Reference = reference.parse().expect("reference");
    runtime()
        .block_on(kiln_image::validate_remote(client, &reference))
        .unwrap_or_else(|e| panic!("validating `{reference}`: {e}"))
}

/// Returns every file (path → bytes) of every layer of a pushed image.
pub fn layer_files(client: &kiln_registry::Client, reference: &str) -> Vec<(String, Vec<u8>)> {
    let reference: kiln_oci::Reference = reference.parse().expect("reference");
    runtime().block_on(async {
        let pulled = client
            .get_manifest(&reference, &reference.manifest_ref())
            .await
            .expect("manifest");
        let manifest: serde_json::Value = serde_json::from_slice(&pulled.bytes).unwrap();
        let mut files = Vec::new();
        for layer in manifest["layers"].as_array().unwrap() {
            let digest: kiln_oci::Digest = layer["digest"].as_str().unwrap().parse().unwrap();
            let bytes = client
                .get_blob_bytes(&reference, &digest, 1 << 30)
                .await
                .expect("layer");
            let media_type = layer["mediaType"].as_str().unwrap();
            files.extend(tar_files(&bytes, media_type));
        }
        files
    })
}

/// Returns the regular files of a compressed layer.
pub fn tar_files(blob: &[u8], media_type: &str) -> Vec<(String, Vec<u8>)> {
    let reader: Box<dyn Read> = if media_type.ends_with("zstd") {
        Box::new(zstd::Decoder::new(blob).unwrap())
    } else {
        Box::new(flate2::read::GzDecoder::new(blob))
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((path, data));
    }
    out
}

/// Returns a small tokio runtime for library calls from tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Returns the image config label `key` parsed as JSON.
pub fn label_json(config: &serde_json::Value, key: &str) -> serde_json::Value {
    let text = config["config"]["Labels"][key]
        .as_str()
        .unwrap_or_else(|| panic!("label `{key}` missing in {config}"));
    serde_json::from_str(text).unwrap()
}

impl Kiln {
    /// Copies `golden-base/<name>.toml` for each of `names`, and the pinned keyrings, into
    /// `<workspace>/<dir>`; returns that directory.
    pub fn golden_definitions(&self, dir: &str, names: &[&str]) -> PathBuf {
        let dst = self.ws.mkdir(dir);
        copy_dir(
            &workspace_root().join("golden-base/keyrings"),
            &dst.join("keyrings"),
        )
        .expect("copying keyrings");
        for name in names {
            std::fs::copy(
                workspace_root().join(format!("golden-base/{name}.toml")),
                dst.join(format!("{name}.toml")),
            )
            .expect("copying a definition");
        }
        dst
    }

    /// Copies the committed `golden-base/<name>.lock` of each of `names` into `dir` (for the
    /// includes whose locks a build reads, without re-locking them).
    pub fn committed_locks(&self, dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::copy(
                workspace_root().join(format!("golden-base/{name}.lock")),
                dir.join(format!("{name}.lock")),
            )
            .expect("copying a lock");
        }
    }

    /// Runs `kiln base lock DEF` and panics with its output unless it succeeds.
    pub fn lock_base(&self, def: &Path) {
        let lock = self.run(&["base", "lock", def.to_str().unwrap()]);
        assert_eq!(lock.code, 0, "{}", lock.stderr);
    }

    /// Runs `kiln base build DEF --platform linux/amd64 --cache-dir CACHE --output
    /// <workspace>/<name>.tar`, validates the image saved as `kiln-base/<name>` in the cache's
    /// store, and returns the archive and the image's diffIDs. (The curated locks also hold
    /// arm64; golden_base.rs builds that.)
    pub fn build_base(&self, def: &Path, cache: &Path) -> (PathBuf, Vec<String>) {
        let name = def.file_stem().unwrap().to_str().unwrap();
        let archive = self.ws.join(format!("{name}.tar"));
        self.run(&[
            "base",
            "build",
            def.to_str().unwrap(),
            "--platform",
            "linux/amd64",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--output",
            archive.to_str().unwrap(),
            "--sbom-dir",
            self.ws.join(format!("sbom-{name}")).to_str().unwrap(),
        ])
        .ok();
        let v = kiln_image::validate_layout(&cache.join("oci"), &format!("kiln-base/{name}"))
            .unwrap_or_else(|e| panic!("validating `kiln-base/{name}`: {e}"));
        (archive, v.config.rootfs().diff_ids().clone())
    }
}

/// Returns the `(name, version)` pairs of the `[[packages.amd64]]` entries of the lockfile
/// at `lock`; panics when there are none.
pub fn locked_amd64_packages(lock: &Path) -> std::collections::BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lock)
        .unwrap_or_else(|e| panic!("reading `{}`: {e}", lock.display()));
    let lockfile: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("parsing `{}`: {e}", lock.display()));
    let locked: std::collections::BTreeSet<_> = lockfile["packages"]["amd64"]
        .as_array()
        .unwrap_or_else(|| panic!("`{}` has no amd64 packages", lock.display()))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!locked.is_empty(), "`{}` locks no package", lock.display());
    locked
}

impl Kiln {
    /// Scans the OCI archive `archive` with syft, a real SBOM tool, and panics unless the
    /// `deb` packages it lists (read from `/var/lib/dpkg/status.d/`) are exactly the amd64
    /// packages and versions of the lockfile `lock`, and its distro is Debian (from
    /// `/etc/os-release`). Other artifact types (jars, npm and Go modules) are not compared.
    pub fn assert_syft_matches_lock(&self, archive: &Path, lock: &Path) {
        let locked = locked_amd64_packages(lock);
        let name = archive.file_stem().unwrap().to_str().unwrap();
        let sbom = kiln_e2e::syft_scan(
            &format!("oci-archive:{}", archive.display()),
            &self.ws.mkdir(format!("syft-{name}")),
        );
        let seen: std::collections::BTreeSet<(String, String)> = sbom["artifacts"]
            .as_array()
            .expect("syft's SBOM has artifacts")
            .iter()
            .filter(|a| a["type"] == "deb")
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            locked,
            "syft's deb packages in `{}` (left) differ from `{}`'s (right)\n\
             only syft: {:?}\nonly lock: {:?}",
            archive.display(),
            lock.display(),
            seen.difference(&locked).collect::<Vec<_>>(),
            locked.difference(&seen).collect::<Vec<_>>()
        );
        // kiln's own SBOM of the base (from `build_base`'s `--sbom-dir`) says the same, and
        // validates with the formats' reference tools.
        let dir = self.ws.join(format!("sbom-{name}"));
        if dir.is_dir() {
            assert_eq!(kiln_e2e::validate_spdx(&dir.join("sbom.spdx.json")), "");
            assert_eq!(kiln_e2e::validate_cyclonedx(&dir.join("sbom.cdx.json")), "");
            let cdx: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("sbom.cdx.json")).unwrap()).unwrap();
            assert_eq!(
                sbom_components(&cdx, "deb"),
                locked,
                "kiln's SBOM of `{name}` vs the lock"
            );
        }
        assert_eq!(
            sbom["distro"]["id"], "debian",
            "syft reads /etc/os-release: {}",
            sbom["distro"]
        );
    }
}

/// Runs `kiln build IMAGE --path APP --publish --cache-dir CACHE --report DIR/REPORT` and
/// returns the pinned reference and the report.
pub fn publish(
    kiln: &Kiln,
    image: &str,
    app: &Path,
    cache: &Path,
    report: &str,
) -> (String, serde_json::Value) {
    let path = kiln.ws.join(report);
    let run = kiln.run(&[
        "build",
        image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--report",
        path.to_str().unwrap(),
    ]);
    let pinned = run.ok();
    let report = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (pinned, report)
}

/// Layer name → reused, from a `--report`.
pub fn reuse(report: &serde_json::Value) -> Vec<(String, bool)> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["reused"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Builds the committed lock of golden base `base` (`node`, `java17`, `java21`) for
/// `platform` once per test binary, into a shared cache dir whose store holds it as
/// `kiln-base/<base>`, and returns that dir.
pub fn shared_base(base: &str, platform: &str) -> PathBuf {
    shared_base_version(base, platform, false)
}

/// Like [`shared_base`], for "version 2" of the base when `v2`: the same lock with one file
/// more, `/etc/kiln-base-v2` holding `v2`, as a patched base a platform team rolls out.
/// `platform` may name several (`linux/amd64,linux/arm64`: an index).
///
/// A base is built once per target dir and kiln binary, not once per test binary: it lives
/// in `<target>/e2e-bases/<key>-<stamp>`, where the stamp hashes the kiln binary's size and
/// time and every committed definition, lock and keyring, so a changed kiln or base builds
/// afresh. It is built in a directory of its own and renamed into place, so a half-built
/// base is never used. Every build shares one `.deb` cache.
pub fn shared_base_version(base: &str, platform: &str, v2: bool) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let key = format!(
        "{base}-{}{}",
        platform.replace(['/', ','], "-"),
        if v2 { "-v2" } else { "" }
    );
    // Held while building: a second test wanting the same base waits for this one.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.get(&key) {
        return dir.clone();
    }
    let root = kiln_e2e::target_dir().join("e2e-bases");
    let dir = root.join(format!("{key}-{}", bases_stamp()));
    if !dir.join("oci/index.json").is_file() {
        build_shared_base(base, platform, v2, &root, &dir);
    }
    built.insert(key, dir.clone());
    dir
}

/// Builds base `base` (see [`shared_base_version`]) into `dir`, through a temporary sibling.
fn build_shared_base(base: &str, platform: &str, v2: bool, root: &Path, dir: &Path) {
    // The definitions a base builds on (`java21` = `base` + OpenJDK, `base` = `static` + ...).
    let chain: &[&str] = match base {
        "java21" | "node" => &["static", "base", base],
        other => &[other],
    };
    let debs = root.join("debian");
    std::fs::create_dir_all(&debs).unwrap();
    let tmp = root.join(format!(
        "tmp-{}-{}",
        std::process::id(),
        dir.file_name().unwrap().to_str().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    std::os::unix::fs::symlink(&debs, tmp.join("debian")).unwrap();
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("defs", chain);
    kiln.committed_locks(&defs, chain);
    if v2 {
        let def = defs.join(format!("{base}.toml"));
        let mut text = std::fs::read_to_string(&def).unwrap();
        text.push_str("\n[[files]]\npath = \"/etc/kiln-base-v2\"\ncontent = \"v2\\n\"\n");
        std::fs::write(&def, text).unwrap();
    }
    kiln.run(&[
        "base",
        "build",
        defs.join(format!("{base}.toml")).to_str().unwrap(),
        "--platform",
        platform,
        "--cache-dir",
        tmp.to_str().unwrap(),
    ])
    .ok();
    // Another test process may have finished the same base first: then keep that one.
    if std::fs::rename(&tmp, dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    // This base as an earlier kiln built it is stale now: free its disk.
    let name = dir.file_name().unwrap().to_str().unwrap();
    let key = &name[..name.len() - 17];
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let other = entry.file_name().to_string_lossy().into_owned();
        if other != name && other.len() == name.len() && other.starts_with(&format!("{key}-")) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Returns a hash of what a shared base depends on: the kiln binary (size and modification
/// time) and the committed golden-base files.
fn bases_stamp() -> String {
    static STAMP: OnceLock<String> = OnceLock::new();
    STAMP
        .get_or_init(|| {
            let mut seen = String::new();
            let bin = std::fs::metadata(kiln_e2e::kiln_bin()).expect("the kiln binary");
            let mtime = bin
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            seen.push_str(&format!("kiln {} {}\n", bin.len(), mtime.as_nanos()));
            let golden = workspace_root().join("golden-base");
            let mut files: Vec<PathBuf> = walk_files(&golden);
            files.sort();
            for f in files {
                seen.push_str(&format!("{}\n", f.display()));
                seen.push_str(&kiln_oci::Digest::of(&std::fs::read(&f).unwrap()).to_string());
            }
            kiln_oci::Digest::of(seen.as_bytes()).hex()[..16].to_owned()
        })
        .clone()
}

/// Returns every file under `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Returns a new cache dir `name` in `kiln`'s workspace whose store holds the amd64 golden
/// base `base` as `kiln-base/<base>`, what the stacks run on. Its blobs are hardlinks to
/// the base built once per test binary ([`shared_base`]): the store writes through temp
/// files and renames, so no test writes through a link, and no two tests share a cache.
pub fn cache_with_base(kiln: &Kiln, name: &str, base: &str) -> PathBuf {
    let cache = kiln.ws.mkdir(name);
    link_tree(
        &shared_base(base, "linux/amd64").join("oci"),
        &cache.join("oci"),
    );
    cache
}

/// Copies a tree with every file hardlinked.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            link_tree(&entry.path(), &dst);
        } else {
            std::fs::hard_link(entry.path(), &dst).unwrap();
        }
    }
}

/// Pulls a pushed web image, runs it with `PORT` on the host network and podman `options`,
/// checks that its process runs as the nonroot user 65532, and returns `GET path` (trimmed)
/// for each of `paths`, and that uid.
pub fn run_web(pinned: &str, options: &[&str], paths: &[&str]) -> (Vec<String>, u32) {
    let podman = Podman::new();
    podman.pull(pinned, false);
    let port = free_port().to_string();
    let env = format!("PORT={port}");
    let mut all = options.to_vec();
    all.extend(["-e", env.as_str()]);
    let ctr = podman.run_detached(pinned, &all);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/"), Duration::from_secs(90));
    let got = paths
        .iter()
        .map(|p| {
            http_get(&format!("{base}{p}"))
                .unwrap()
                .text()
                .trim()
                .to_owned()
        })
        .collect();
    let uid = ctr.process_uid();
    assert_eq!(uid, 65532, "`{pinned}` runs as uid {uid}");
    (got, uid)
}

/// Copies golden base `base` (v1, or v2 with `v2`; see [`shared_base_version`]) for
/// `platform` from the binary's shared store to `registry` as `bases/<base>:<tag>` with
/// its digests unchanged (with the registry's credentials, if it has any); returns the
/// reference.
pub fn publish_base(
    registry: &kiln_e2e::Registry,
    base: &str,
    platform: &str,
    v2: bool,
    tag: &str,
) -> String {
    let dir = shared_base_version(base, platform, v2);
    let dest = registry.reference(&format!("bases/{base}:{tag}"));
    let src = format!("oci:{}:kiln-base/{base}", dir.join("oci").display());
    let creds = registry
        .credentials()
        .map(|(u, p)| format!("--dest-creds={u}:{p}"));
    let mut extra = vec!["--all", "--preserve-digests", "--dest-tls-verify=false"];
    extra.extend(creds.as_deref());
    let out = kiln_e2e::skopeo_copy_with(&src, &dest, &extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// Points the Go build cache of kiln cache dir `cache` at one shared by every test binary of
/// this target dir (`<target>/e2e-go-build`), so the standard library is compiled once per
/// test run, not once per test. Go's build cache is safe for concurrent use and keyed by
/// content: sharing it changes no output.
pub fn share_go_build_cache(cache: &Path) {
    let shared = kiln_e2e::target_dir().join("e2e-go-build");
    std::fs::create_dir_all(&shared).unwrap();
    let dir = cache.join("buildpacks/kiln-go");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("go-build");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(&shared, &link).unwrap();
    }
}

/// Returns the SBOM document of `media_type` (`application/spdx+json`,
/// `application/vnd.cyclonedx+json`) that kiln attached to the pushed image `pinned`
/// (`repo@digest`), read from cosign's `sha256-<hex>.sbom` tag as a client without the
/// referrers API would; panics unless the artifact names the image as its subject.
pub fn attached_sbom(client: &kiln_registry::Client, pinned: &str, media_type: &str) -> Vec<u8> {
    let (repo, digest) = pinned.split_once('@').expect("a pinned reference");
    let reference: kiln_oci::Reference = repo.parse().unwrap();
    let digest: kiln_oci::Digest = digest.parse().unwrap();
    runtime().block_on(async {
        let tag = format!("sha256-{}.sbom", digest.hex());
        let m = client
            .get_manifest(&reference, &tag)
            .await
            .unwrap_or_else(|e| panic!("no SBOM attached to `{pinned}`: {e}"));
        let manifest: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(manifest["subject"]["digest"], digest.to_string());
        let layer = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["mediaType"] == media_type)
            .unwrap_or_else(|| panic!("no `{media_type}` layer in {manifest}"));
        let blob: kiln_oci::Digest = layer["digest"].as_str().unwrap().parse().unwrap();
        client
            .get_blob_bytes(&reference, &blob, 64 << 20)
            .await
            .unwrap()
    })
}

/// Returns `(name, version)` of the CycloneDX components whose purl type is `purl_type`
/// (`deb`, `golang`, `maven`, `npm`); names carry their group (`@types/node`,
/// `org.slf4j/slf4j-api`).
pub fn sbom_components(
    cyclonedx: &serde_json::Value,
    purl_type: &str,
) -> std::collections::BTreeSet<(String, String)> {
    cyclonedx["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pkg:{purl_type}/"))
        })
        .map(|c| {
            let name = c["name"].as_str().unwrap();
            let name = match c["group"].as_str() {
                Some(g) => format!("{g}/{name}"),
                None => name.to_owned(),
            };
            (name, c["version"].as_str().unwrap().to_owned())
        })
        .collect()
}
