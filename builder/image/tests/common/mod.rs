//! Test kit: images made of real deterministic layers, and a kiln-registry client for
//! `kiln_e2e::Registry` (Debian's `docker-registry` on 127.0.0.1, killed on drop).

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use kiln_e2e::Registry;
use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::Reference;
use kiln_oci::spec::{Arch, ConfigBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};
use kiln_registry::{Client, RegistrySettings, RetryPolicy};

pub use kiln_e2e::noise;

/// Returns `127.0.0.1:<port>/<repo>` on `reg` (with a tag or digest if `repo` has one).
pub fn reference(reg: &Registry, repo: &str) -> Reference {
    reg.reference(repo).parse().unwrap()
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

/// Returns `err` and each of its causes, joined by `: `, as the CLI prints the chain.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
