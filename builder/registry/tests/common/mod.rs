//! A real registry for tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1, configured by a YAML file in a temporary directory, killed on drop.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_oci::{Digest, Reference};
use kiln_registry::{RegistrySettings, RetryPolicy};
use tempfile::TempDir;

/// What the registry should require.
#[derive(Default)]
pub struct Options {
    /// An htpasswd file: the registry then wants Basic auth (realm `kiln`).
    pub htpasswd: Option<PathBuf>,
    /// Certificate and key: the registry then speaks only TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running `docker-registry`.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub host: String,
    child: Child,
    dir: TempDir,
}

/// Returns a port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry and waits until `/v2/` answers.
    pub fn start(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = &opts.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(htpasswd) = &opts.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/docker-registry");
        let mut reg = Self { host, child, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if answers(&self.host) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns what the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Returns `127.0.0.1:<port>/<repo>` as a reference.
    pub fn reference(&self, repo: &str) -> Reference {
        format!("{}/{repo}", self.host).parse().unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns whether something at `host` answers an HTTP request (a TLS server answers a
/// plain request with a 400, which counts).
fn answers(host: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/"
}

/// Settings with tiny retry delays and no credentials.
pub fn settings() -> RegistrySettings {
    RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
        ..RegistrySettings::default()
    }
}

/// Writes `bytes` to `dir/name`; returns its path and digest.
pub fn blob(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, Digest) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    (path, Digest::of(bytes))
}

/// Returns `n` bytes of deterministic noise seeded by `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Returns an OCI manifest for one config and one gzip layer.
pub fn manifest(config: (&Digest, usize), layer: (&Digest, usize)) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": kiln_oci::media_types::OCI_MANIFEST,
        "config": {"mediaType": kiln_oci::media_types::OCI_CONFIG, "digest": config.0.to_string(), "size": config.1},
        "layers": [{"mediaType": kiln_oci::media_types::OCI_LAYER_GZIP, "digest": layer.0.to_string(), "size": layer.1}],
    }))
    .unwrap()
}

/// Writes a docker `config.json` with Basic credentials for `host` into `dir`.
pub fn docker_config(dir: &Path, host: &str, user: &str, pass: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let json = serde_json::json!({"auths": {host: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

/// Writes an htpasswd file (bcrypt, via the `htpasswd` tool) for one user into `dir`.
pub fn htpasswd(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let out = Command::new("/usr/bin/htpasswd")
        .args(["-Bbn", user, pass])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd failed");
    let path = dir.join("htpasswd");
    std::fs::write(&path, out.stdout).unwrap();
    path
}
