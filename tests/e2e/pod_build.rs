//! The builder image (the `build` golden base plus the kiln binary) in a pod simulated with
//! podman as `deploy/kubernetes` locks it down: user 65532, no capabilities, a read-only
//! root, `no-new-privileges`, writable `emptyDir`-like tmpfs at `/kiln` and `/tmp` only, a
//! read-only source and a read-only docker `config.json` for an htpasswd registry. Go, Java
//! and Node apps are built and pushed from inside, then run; a cache image makes a second
//! fresh pod warm, a corrupt one makes it cold, not failed; the registry password reaches
//! no build step, layer, log or report. And the Kubernetes manifests say what they must.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common;
use crate::common::suite::timed;
use crate::common::{Kiln, bases, publish_base};
use kiln_e2e::{
    Podman, Registry, ensure_containers_conf, free_port, kiln_bin, wait_http, workspace_root,
};

/// The registry password, and so a canary: it must reach nothing but kiln's pushes.
const PASSWORD: &str = "kiln-registry-canary-93d1f0";
const USER: &str = "builder";
/// What `podman run` gets to look like the pod of `deploy/kubernetes/build-job.yaml`.
const POD: &[&str] = &[
    "--user",
    "65532:65532",
    "--cap-drop=ALL",
    "--read-only",
    "--security-opt",
    "no-new-privileges",
    // emptyDir volumes: writable, executable (npm runs `node_modules/.bin` scripts).
    "--tmpfs",
    "/tmp:rw,exec,mode=1777",
    "--tmpfs",
    "/kiln:rw,exec,mode=1777",
];

/// Builds the builder image: the `build` base from its committed lock, plus this test run's
/// kiln binary (stripped of its debug info) at `/usr/local/bin/kiln`; returns the OCI
/// archive, the lock and the directory of kiln's SBOMs of it.
fn builder(kiln: &Kiln) -> (PathBuf, PathBuf, PathBuf) {
    let chain = ["static", "base", "java21", "build"];
    let defs = kiln.golden_definitions("golden-base", &chain);
    kiln.committed_locks(&defs, &chain);
    let def = defs.join("build.toml");
    let binary = kiln.ws.join("kiln-bin");
    std::fs::copy(kiln_bin(), &binary).unwrap();
    let strip = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg(&binary)
        .status()
        .unwrap();
    assert!(strip.success());
    let archive = kiln.ws.join("builder.tar");
    let sbom = kiln.ws.join("sbom-builder");
    let cache = kiln.ws.mkdir("base-cache");
    bases::share_deb_cache(&cache);
    kiln.run(&[
        "base",
        "build",
        def.to_str().unwrap(),
        "--platform",
        "linux/amd64",
        "--add-file",
        &format!("{}:/usr/local/bin/kiln", binary.display()),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--output",
        archive.to_str().unwrap(),
        "--sbom-dir",
        sbom.to_str().unwrap(),
    ])
    .ok();
    kiln_image::validate_layout(&cache.join("oci"), "kiln-base/build")
        .unwrap_or_else(|e| panic!("validating the builder image: {e}"));
    (archive, defs.join("build.lock"), sbom)
}

/// The host's trust store, for a pod on a network whose TLS is intercepted (as here): the
/// PEM bundle (`SSL_CERT_FILE`, else Debian's) and Java's (`/etc/ssl/certs/java/cacerts`),
/// as `(host path, path in the pod)`.
fn trust_store() -> Vec<(PathBuf, &'static str)> {
    let pem = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let jks = PathBuf::from("/etc/ssl/certs/java/cacerts");
    [
        (pem, "/kiln-ca/ca-certificates.crt"),
        (jks, "/kiln-ca/cacerts"),
    ]
    .into_iter()
    .filter(|(host, _)| host.is_file())
    .collect()
}

/// The host's settings for the package registries, handed to the pod the way a pod spec
/// would (environment): Go's proxy, npm's registry, and the trust store mounted from
/// [`trust_store`] for Go (`SSL_CERT_FILE`), Node (`NODE_EXTRA_CA_CERTS`) and Maven's JVM.
fn toolchain_env() -> Vec<String> {
    let mut env = Vec::new();
    for (_, path) in trust_store() {
        if path.ends_with(".crt") {
            env.push(format!("SSL_CERT_FILE={path}"));
            env.push(format!("NODE_EXTRA_CA_CERTS={path}"));
        } else {
            env.push(format!("MAVEN_OPTS=-Djavax.net.ssl.trustStore={path}"));
        }
    }
    for key in ["GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE"] {
        let out = std::process::Command::new("go")
            .args(["env", key])
            .output()
            .unwrap();
        let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !value.is_empty() {
            env.push(format!("{key}={value}"));
        }
    }
    let out = std::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .output()
        .unwrap();
    env.push(format!(
        "NPM_CONFIG_REGISTRY={}",
        String::from_utf8_lossy(&out.stdout).trim()
    ));
    env
}

/// A pod: `podman run` of the builder with [`POD`]'s settings, the source dir read-only at
/// `/src`, the docker config dir read-only at `/kiln-secrets/docker`, `out` writable at
/// `/out`, running `/out/pod.sh`.
struct Pod<'a> {
    podman: &'a Podman,
    image: &'a str,
    src: &'a Path,
    docker: &'a Path,
    out: &'a Path,
}

impl Pod<'_> {
    /// Starts the pod running `sh /out/pod.sh`; its output goes to `out/pod.log`.
    fn start(&self) -> RunningPod<'_> {
        let volumes = [
            format!("{}:/src:ro", self.src.display()),
            format!("{}:/kiln-secrets/docker:ro", self.docker.display()),
            format!("{}:/out", self.out.display()),
        ];
        let mut options: Vec<String> = POD.iter().map(|s| s.to_string()).collect();
        for v in &volumes {
            options.extend(["-v".to_owned(), v.clone()]);
        }
        for (host, path) in trust_store() {
            options.extend(["-v".to_owned(), format!("{}:{path}:ro", host.display())]);
        }
        options.extend([
            "-e".to_owned(),
            "DOCKER_CONFIG=/kiln-secrets/docker".to_owned(),
        ]);
        for e in toolchain_env() {
            options.extend(["-e".to_owned(), e]);
        }
        let name = format!("kiln-e2e-pod-{}", std::process::id());
        let log = std::fs::File::create(self.out.join("pod.log")).unwrap();
        let child = self
            .podman
            .command()
            .args(["run", "--rm", "--network", "host", "--name", &name])
            .args(&options)
            .arg(self.image)
            .args(["sh", "/out/pod.sh"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the pod");
        RunningPod {
            child,
            podman: self.podman,
            name,
        }
    }
}

/// Returns the log of the last step the pod started (its steps log into `/out/<step>.log`).
fn last_step_log(out: &Path) -> String {
    ["damaged", "warm", "cold", "builds", "versions"]
        .iter()
        .map(|s| read(out, &format!("{s}.log")))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// Waits until `marker` exists or `pod` exits (then panics with its logs), for at most
/// `limit`.
fn wait_for(marker: &Path, pod: &mut RunningPod<'_>, out: &Path, limit: Duration) {
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = pod.child.try_wait().unwrap() {
            panic!(
                "the pod exited ({status}) before `{}`:\n{}\n--- last step ---\n{}",
                marker.display(),
                std::fs::read_to_string(out.join("pod.log")).unwrap_or_default(),
                last_step_log(out)
            );
        }
        assert!(
            start.elapsed() < limit,
            "no `{}` after {limit:?}:\n{}",
            marker.display(),
            std::fs::read_to_string(out.join("pod.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Returns the file `name` the pod wrote into `out` (empty when it wrote none).
fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name)).unwrap_or_default()
}

/// Runs a pushed web image (pulled with the registry's credentials) and returns `GET /`.
fn call(podman: &Podman, pinned: &str) -> String {
    podman.pull_with(
        pinned,
        &[
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ],
    );
    let port = free_port().to_string();
    let _ctr = podman.run_detached(pinned, &["-e", &format!("PORT={port}")]);
    wait_http(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(60),
    )
}

/// What the pod runs (`/out/pod.sh`): every toolchain's version; Go, Java and Node apps
/// built and pushed from a fresh `/kiln` (the suite's cold builds: Go's build cache, Maven's
/// repository and npm's cache all start empty); then the nosy app with a cache image three
/// times, each from an emptied `/kiln` and `/tmp` (what a fresh pod of the same spec starts
/// with), the third after the test corrupted the cache image (it waits for
/// `/out/corrupted`). Each step's output goes to `/out/<step>.log`, and `/out/<step>.done`
/// marks its end.
const POD_SCRIPT: &str = r#"set -e
fresh() { rm -rf /kiln/* /kiln/.[!.]* /tmp/* /tmp/.[!.]* 2>/dev/null || true; }
step() { name=$1; shift; "$@" >"/out/$name.log" 2>&1; touch "/out/$name.done"; }
versions() {
  go version; mvn -v; javac -version
  node -e "console.log('node', process.getuid())"; npm -v; kiln --version
}
builds() {
  kiln build @GO@ --path /src/go-web --publish --run-image @STATIC@ -q >/out/go.ref
  kiln build @JAVA@ --path /src/java-plain --publish --run-image @JAVA_BASE@ -q >/out/java.ref
  kiln build @NODE@ --path /src/node-express --publish --run-image @NODE_BASE@ -q >/out/node.ref
}
nosy() {
  kiln build @APP@ --path /src/nosy --publish --run-image @NODE_BASE@ \
    --cache-image @CACHE@ --report "/out/$1.json"
}
cd /tmp
step versions versions
step builds builds
fresh; step cold nosy cold
fresh; step warm nosy warm
while [ ! -e /out/corrupted ]; do sleep 0.2; done
fresh; step damaged nosy damaged
"#;

/// A running pod, killed and removed if the test fails before it ends.
struct RunningPod<'a> {
    child: Child,
    podman: &'a Podman,
    name: String,
}

impl Drop for RunningPod<'_> {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = self
                .podman
                .output(&["rm", "--force", "--time", "0", &self.name]);
        }
    }
}

/// The whole story of a build pod, in one test and one container because the builder image
/// is big: loading it into podman's storage, and each container start (vfs copies the whole
/// image), is most of the cost.
pub(crate) fn builder_image_builds_apps_in_a_locked_down_pod_with_a_registry_cache() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let (archive, lock, sbom) = timed("pod_build: the builder image", || builder(&kiln));
    // syft reads the image while podman loads and runs it.
    std::thread::scope(|scope| {
        let syft = scope.spawn(|| {
            timed("pod_build: syft on the builder image", || {
                kiln.assert_syft_matches_lock(&archive, &lock, &sbom)
            })
        });
        run_the_pod(&kiln, &archive);
        if let Err(panic) = syft.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Loads the builder image `archive` and runs [`POD_SCRIPT`] in it, then checks what the
/// pod built, pushed, printed and reported; removes the image from the suite's store.
fn run_the_pod(kiln: &Kiln, archive: &Path) {
    let podman = common::suite::podman();
    timed("pod_build: podman load", || podman.load(archive));
    let image = "localhost/kiln-base/build";
    let config = podman.image_config(image);
    assert_eq!(config["User"], "65532:65532");
    let env = config["Env"].to_string();
    for want in [
        "HOME=/kiln/home",
        "KILN_CACHE_DIR=/kiln/cache",
        "TMPDIR=/tmp",
    ] {
        assert!(env.contains(want), "{want} missing: {env}");
    }

    // The registry (htpasswd) and what the pod mounts.
    let registry = Registry::htpasswd(USER, PASSWORD);
    let static_base = publish_base(&registry, "static", "linux/amd64", false, "1");
    let java_base = publish_base(&registry, "java17", "linux/amd64", false, "1");
    let node_base = publish_base(&registry, "node", "linux/amd64", false, "1");
    let docker = kiln.ws.mkdir("docker");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        docker.join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let src = kiln.ws.mkdir("src");
    for fixture in ["go-web", "java-plain", "node-express"] {
        kiln_e2e::copy_dir(
            &workspace_root().join("tests/fixtures").join(fixture),
            &src.join(fixture),
        )
        .unwrap();
    }
    // A Node app whose build step shows what a build tool can see: its environment, and
    // the docker config where it would look for one.
    kiln_e2e::copy_dir(
        &workspace_root().join("tests/fixtures/node-express"),
        &src.join("nosy"),
    )
    .unwrap();
    std::fs::write(
        src.join("nosy/nosy.js"),
        "const fs = require('fs'), os = require('os'), path = require('path');\n\
         console.log('NOSY ENV ' + JSON.stringify(process.env));\n\
         for (const dir of [path.join(os.homedir(), '.docker'), process.env.DOCKER_CONFIG || '/nonexistent']) {\n\
           try { console.log('NOSY FOUND ' + fs.readFileSync(path.join(dir, 'config.json'), 'utf8')); }\n\
           catch { console.log('NOSY NONE ' + dir); }\n\
         }\n",
    )
    .unwrap();
    let pkg = std::fs::read_to_string(src.join("nosy/package.json")).unwrap();
    std::fs::write(
        src.join("nosy/package.json"),
        pkg.replace(
            "\"start\": \"node server.js\"",
            "\"start\": \"node server.js\",\n    \"build\": \"node nosy.js\"",
        ),
    )
    .unwrap();
    let out = kiln.ws.mkdir("out");
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let pod = Pod {
        podman,
        image,
        src: &src,
        docker: &docker,
        out: &out,
    };

    let go = registry.reference("team/go:1");
    let java = registry.reference("team/java:1");
    let node = registry.reference("team/node:1");
    let app = registry.reference("team/nosy:1");
    let cache = registry.reference("cache/nosy:latest");
    let mut script = POD_SCRIPT.to_owned();
    for (key, value) in [
        ("@GO@", &go),
        ("@JAVA@", &java),
        ("@NODE@", &node),
        ("@STATIC@", &static_base),
        ("@JAVA_BASE@", &java_base),
        ("@NODE_BASE@", &node_base),
        ("@APP@", &app),
        ("@CACHE@", &cache),
    ] {
        script = script.replace(key, value);
    }
    std::fs::write(out.join("pod.sh"), script).unwrap();
    let started = Instant::now();
    let mut running = pod.start();
    wait_for(
        &out.join("warm.done"),
        &mut running,
        &out,
        Duration::from_secs(1800),
    );
    // A corrupt cache blob for the third run: it builds cold, with a warning, and succeeds.
    corrupt_a_cache_layer(&registry, &out.join("warm.json"));
    std::fs::write(out.join("corrupted"), "").unwrap();
    let status = running.child.wait().unwrap();
    common::suite::record("pod_build: the pod", started);
    let log = read(&out, "pod.log");
    let step = |name: &str| read(&out, &format!("{name}.log"));
    assert!(
        status.success(),
        "the pod failed ({status}):\n{log}\n--- last step ---\n{}",
        last_step_log(&out)
    );

    // Every toolchain, as the pod's user.
    let versions = step("versions");
    for expect in [
        "go version go1.",
        "Apache Maven",
        "javac 21.",
        "node 65532",
        "kiln ",
    ] {
        assert!(
            versions.contains(expect),
            "expected `{expect}` in {versions}"
        );
    }

    // Go, Java and Node, built and pushed from inside the pod, run.
    let pinned = |name: &str| read(&out, &format!("{name}.ref")).trim().to_owned();
    assert!(call(podman, &pinned("go")).contains("hello from kiln"));
    assert_eq!(call(podman, &pinned("node")).trim(), "hello from express");
    podman.pull_with(
        &pinned("java"),
        &[
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ],
    );
    let plain = podman.run_once(&pinned("java"), &[]);
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout).trim(),
        "plain ok Kiln"
    );

    // Two fresh pods with the same cache image: the first is cold and pushes the cache,
    // the second restores it and installs nothing.
    let cold = step("cold");
    assert!(cold.contains("no cache image"), "{cold}");
    assert!(
        cold.contains("added "),
        "npm installed in the cold pod: {cold}"
    );
    let warm = step("warm");
    assert!(warm.contains("reusing node_modules"), "{warm}");
    assert!(
        !warm.contains("added "),
        "the warm pod installed again: {warm}"
    );
    let report = json(&out.join("warm.json"));
    // The locked-down pod (no capabilities, no-new-privileges, the default seccomp profile)
    // still confines the build steps: Landlock needs none of what it lacks (B01).
    assert_eq!(
        report["sandbox"]["confinement"], "landlock",
        "the pod's build steps ran unconfined: {report}"
    );
    let restored: Vec<&str> = report["cache_image"]["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        restored.contains(&"npm") && restored.contains(&"modules"),
        "{report}"
    );
    assert_eq!(
        report["cache_image"]["uploaded_bytes"],
        0,
        "an unchanged cache is not uploaded again: {:#}\ncold: {:#}",
        report["cache_image"],
        json(&out.join("cold.json"))["cache_image"]
    );
    let total = |name: &str| {
        let r = json(&out.join(name));
        r["timings"]["total_ms"].as_u64().unwrap()
    };
    eprintln!(
        "cold pod: kiln {} ms; warm pod: kiln {} ms (restored {restored:?})",
        total("cold.json"),
        total("warm.json")
    );

    // The corrupt cache blob: the pod built cold, with a warning, and succeeded.
    let damaged = step("damaged");
    assert!(damaged.contains("building without it"), "{damaged}");
    let report = json(&out.join("damaged.json"));
    assert!(
        !report["cache_image"]["problems"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{report}"
    );

    // The password reached nothing: not the nosy build step, not kiln's output, reports or
    // the image.
    let mut everything = log;
    for name in ["versions", "builds", "cold", "warm", "damaged"] {
        everything.push_str(&step(name));
    }
    assert!(
        everything.contains("NOSY ENV "),
        "the build step never ran: {everything}"
    );
    assert!(
        !everything.contains("NOSY FOUND"),
        "a build step found the docker config"
    );
    assert!(
        !everything.contains("DOCKER_CONFIG"),
        "DOCKER_CONFIG reached a build step"
    );
    for report in ["cold.json", "warm.json", "damaged.json"] {
        everything.push_str(&std::fs::read_to_string(out.join(report)).unwrap());
    }
    for secret in [PASSWORD, auth.as_str()] {
        assert!(
            !everything.contains(secret),
            "`{secret}` is in a log or report"
        );
    }
    let client = common::client(Some(&docker), None);
    let nosy = report_reference(&out.join("warm.json"));
    for (path, bytes) in common::layer_files(&client, &nosy) {
        for secret in [PASSWORD, auth.as_str()] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "`{secret}` is in layer file `{path}`");
        }
    }
    // vfs keeps a full copy of the image per layer: free them now, beside the other tests,
    // rather than in the teardown at the end of the run.
    podman.output(&["rmi", "--force", image]);
}

/// Returns the `reference` (name@digest) a `--report` names.
fn report_reference(report: &Path) -> String {
    json(report)["reference"].as_str().unwrap().to_owned()
}

/// Returns the JSON file at `path` (a `--report` the pod wrote).
fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parsing `{}`: {e}", path.display()))
}

/// Flips bytes in the middle of the stored blob of the largest layer of the cache image the
/// report `warm` names, in the registry's own storage.
fn corrupt_a_cache_layer(registry: &Registry, warm: &Path) {
    let report = json(warm);
    let pinned = report["cache_image"]["pushed"].as_str().unwrap();
    let raw = kiln_e2e::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{pinned}"),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let largest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let blob = registry
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&largest[..2])
        .join(&largest)
        .join("data");
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&blob, bytes).unwrap();
}

/// The Job and the Tekton Task lock their pods down: on the pod (Job) and on every
/// container, init container and step.
pub(crate) fn kubernetes_manifests_lock_the_pod_down() {
    let dir = workspace_root().join("deploy/kubernetes");
    let job: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("build-job.yaml")).unwrap())
            .unwrap();
    assert_eq!(job["kind"], "Job");
    let pod = &job["spec"]["template"]["spec"];
    let pod_ctx = &pod["securityContext"];
    assert_eq!(pod_ctx["runAsNonRoot"], true);
    assert_eq!(pod_ctx["runAsUser"], 65532);
    assert_eq!(pod_ctx["seccompProfile"]["type"], "RuntimeDefault");
    let mut containers: Vec<&serde_yaml_ng::Value> = Vec::new();
    for key in ["containers", "initContainers"] {
        containers.extend(pod[key].as_sequence().unwrap());
    }
    assert_eq!(containers.len(), 2);
    let volumes: Vec<&str> = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|v| v["emptyDir"].is_mapping())
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        volumes.contains(&"kiln") && volumes.contains(&"tmp"),
        "{volumes:?}"
    );
    let build = containers[0];
    let env: Vec<(&str, &str)> = build["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["value"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        env.contains(&("DOCKER_CONFIG", "/kiln-secrets/docker")),
        "{env:?}"
    );

    let task: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("tekton-task.yaml")).unwrap())
            .unwrap();
    assert_eq!(task["kind"], "Task");
    containers.extend(task["spec"]["steps"].as_sequence().unwrap());
    containers.push(&task["spec"]["stepTemplate"]);
    for c in containers {
        let ctx = &c["securityContext"];
        let name = c["name"].as_str().unwrap_or("stepTemplate");
        assert_eq!(ctx["runAsNonRoot"], true, "{name}");
        assert_eq!(ctx["runAsUser"], 65532, "{name}");
        assert_eq!(ctx["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(ctx["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(ctx["capabilities"]["drop"][0], "ALL", "{name}");
        assert_eq!(ctx["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    }
}
