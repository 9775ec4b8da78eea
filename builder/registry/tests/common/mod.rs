//! Helpers for the real-registry tests. The registry itself is `kiln_e2e::Registry`
//! (Debian's `docker-registry` on 127.0.0.1, killed on drop); here are only the
//! kiln-registry settings and the blobs and manifests the tests push.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_e2e::Registry;
use kiln_oci::{Digest, Reference};
use kiln_registry::{RegistrySettings, RetryPolicy};

pub use kiln_e2e::noise;

/// Returns `127.0.0.1:<port>/<repo>` on `reg` as a reference.
pub fn reference(reg: &Registry, repo: &str) -> Reference {
    reg.reference(repo).parse().unwrap()
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
