//! Shared helpers of the kiln end-to-end tests: run the real `kiln` binary with an isolated
//! credential setup, and inspect what it produced.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kiln_e2e::{Workspace, copy_dir, free_port, http_get, kiln_bin, wait_http, workspace_root};

pub mod bases;
pub mod caches;
pub mod golden;
pub mod node;
pub mod secrets;
pub mod suite;

pub use bases::{cache_with_base, publish_base, shared_base};
pub use caches::warm_cache;

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

    /// Panics with the output unless kiln exited 0; returns all it printed on stdout.
    pub fn ok_output(&self) -> String {
        assert_eq!(
            self.code, 0,
            "kiln failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout.clone()
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
        // The suite's warm toolchain caches, which test cache dirs link to: a build step
        // may write there (`caches::share_downloads`).
        env.insert(
            "KILN_SANDBOX_WRITE".into(),
            kiln_e2e::machine_cache()
                .join("downloads")
                .display()
                .to_string(),
        );
        Self { ws, env }
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

/// Returns every file (path → bytes) of the app layers a build's `report` lists, pulled
/// from the image `reference` it pushed.
pub fn app_layer_files(
    client: &kiln_registry::Client,
    reference: &str,
    report: &serde_json::Value,
) -> Vec<(String, Vec<u8>)> {
    let reference: kiln_oci::Reference = reference.parse().expect("reference");
    runtime().block_on(async {
        let mut files = Vec::new();
        for layer in report["layers"].as_array().expect("the report's layers") {
            let digest: kiln_oci::Digest = layer["digest"].as_str().unwrap().parse().unwrap();
            let bytes = client
                .get_blob_bytes(&reference, &digest, 1 << 30)
                .await
                .expect("layer");
            files.extend(tar_files(&bytes, layer["media_type"].as_str().unwrap()));
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

/// Returns the layer digests of the image manifest `reference`, as skopeo reads them.
pub fn manifest_layers(reference: &str) -> Vec<String> {
    kiln_e2e::skopeo_inspect_raw(reference, false)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
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

/// Pulls a pushed web image, runs it with `PORT` on the host network and podman `options`,
/// checks that its process runs as the nonroot user 65532, and returns `GET path` (trimmed)
/// for each of `paths`, and that uid.
pub fn run_web(pinned: &str, options: &[&str], paths: &[&str]) -> (Vec<String>, u32) {
    let podman = suite::podman();
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
