//! Test kit: a real registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1,
//! killed on drop, and images made of real deterministic layers.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_image::{Image, Layer, Origin};
use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
use kiln_oci::Reference;
use kiln_oci::spec::{Arch, ConfigBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};
use kiln_registry::{Client, RegistrySettings, RetryPolicy};
use tempfile::TempDir;

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
    /// Starts a registry with filesystem storage in a temp dir and waits until `/v2/` answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
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

    /// Returns `127.0.0.1:<port>/<repo>` (with a tag or digest if `repo` has one).
    pub fn reference(&self, repo: &str) -> Reference {
        format!("{}/{repo}", self.host).parse().unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // `Child::kill` signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Returns a client with tiny retry delays and no credentials.
pub fn client() -> Client {
    Client::new(RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
        ..RegistrySettings::default()
    })
    .unwrap()
}

/// Returns a blob store in `dir`.
pub fn store(dir: &Path) -> BlobStore {
    BlobStore::open(dir).unwrap()
}

/// Returns `n` bytes of deterministic noise seeded by `seed` (incompressible, so layer
/// sizes are not trivially small).
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

/// Writes a real layer holding `files` into `store` and returns it as a local layer.
pub fn layer(store: &BlobStore, files: &[(&str, Vec<u8>)], compression: Compression) -> Layer {
    let mut c = LayerContents::new();
    for (path, bytes) in files {
        c.add_file(path, bytes.clone(), 0o644, None);
    }
    let policy = TarPolicy {
        mtime: 1_000,
        owner: Ownership::new(0, 0),
    };
    let blob = kiln_layer::write_layer(&c, &policy, compression, store).unwrap();
    Layer {
        media_type: blob.media_type.to_string(),
        digest: blob.digest,
        size: blob.size,
        diff_id: blob.diff_id,
        origin: Origin::Local,
    }
}

/// Returns an image config for `arch` with an empty rootfs (finalize fills it).
pub fn config(arch: Arch, entrypoint: &str) -> kiln_oci::spec::ImageConfiguration {
    ImageConfigurationBuilder::default()
        .architecture(arch)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![entrypoint.to_string()])
                .env(vec!["PATH=/bin".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Returns a two-layer amd64 image (gzip base, zstd app) whose bytes depend on `seed`.
pub fn image(store: &BlobStore, seed: u64) -> Image {
    let base = layer(
        store,
        &[
            ("etc/os-release", format!("ID=test{seed}\n").into_bytes()),
            ("usr/lib/blob", noise(64 * 1024, seed)),
        ],
        Compression::Gzip,
    );
    let app = layer(
        store,
        &[("workspace/bin/app", noise(16 * 1024, seed + 1000))],
        Compression::Zstd,
    );
    Image {
        config: config(Arch::Amd64, "/workspace/bin/app"),
        layers: vec![base, app],
    }
}

/// Flips one byte in the middle of the file at `path` (in place, so hard links see it too).
pub fn flip_byte(path: &Path) {
    use std::io::{Seek as _, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mid = f.metadata().unwrap().len() / 2;
    f.seek(SeekFrom::Start(mid)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(mid)).unwrap();
    f.write_all(&[b[0] ^ 0xff]).unwrap();
}
