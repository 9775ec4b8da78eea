//! kiln-registry against fault-injecting fakes on 127.0.0.1: retries and upload session
//! restarts, mounts and existence checks, upload edge cases, manifest checks, digest
//! verification, endless answers, auth answers and secret redaction.

#[path = "../common/fake.rs"]
mod fake;

mod auth;
mod bearer;
mod exhaustion;
mod helpers;
mod hostile;
mod manifests;
mod mount;
mod redaction;
mod redirect;
mod retry;
mod upload;
mod verify;

use std::path::Path;
use std::time::Duration;

use kiln_oci::Reference;
use kiln_registry::{Client, RegistrySettings, RetryPolicy};

/// Settings with tiny retry delays (max 2 s so a `Retry-After: 1` is honoured in full).
fn settings() -> RegistrySettings {
    RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        },
        ..RegistrySettings::default()
    }
}

fn client() -> Client {
    Client::new(settings()).unwrap()
}

fn reference(host: &str, repo: &str) -> Reference {
    format!("{host}/{repo}").parse().unwrap()
}

/// Returns settings whose docker `config.json` (in `dir`) has Basic credentials for `host`.
fn with_credentials(dir: &Path, host: &str, user: &str, pass: &str) -> RegistrySettings {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let json = serde_json::json!({"auths": {host: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    RegistrySettings {
        docker_config_dir: Some(dir.to_path_buf()),
        ..settings()
    }
}
