//! `skopeo` wrappers: inspect and copy images between registries, layouts and archives.
//!
//! A reference without a transport (`127.0.0.1:5000/app:v1`) gets `docker://`.
//! Credentials from the machine's auth files are never used: every call points
//! `REGISTRY_AUTH_FILE` at a path that does not exist, so a test sees only what it passes.

use std::process::{Command, Output};

use serde_json::Value;

use crate::cmd::{run_checked, run_output};

const TRANSPORTS: &[&str] = &[
    "docker://",
    "oci:",
    "oci-archive:",
    "docker-archive:",
    "dir:",
    "containers-storage:",
    "docker-daemon:",
];

fn with_transport(reference: &str) -> String {
    if TRANSPORTS.iter().any(|t| reference.starts_with(t)) {
        reference.to_string()
    } else {
        format!("docker://{reference}")
    }
}

fn base() -> Command {
    let mut cmd = Command::new("skopeo");
    let no_auth = std::env::temp_dir().join("kiln-e2e-no-auth-file/auth.json");
    cmd.env("REGISTRY_AUTH_FILE", no_auth);
    cmd
}

/// Runs `skopeo ARGS...` (auth files isolated) and returns its output, whatever its status.
pub fn skopeo(args: &[&str]) -> Output {
    run_output(base().args(args))
}

/// Runs `skopeo inspect EXTRA... REFERENCE` and parses its JSON output; panics on failure.
///
/// `extra` holds options such as `--creds u:p`, `--cert-dir DIR`, `--raw`, `--config`.
pub fn skopeo_inspect_with(reference: &str, extra: &[&str]) -> Value {
    let out = run_checked(
        base()
            .arg("inspect")
            .args(extra)
            .arg(with_transport(reference)),
    );
    serde_json::from_slice(&out.stdout).expect("`skopeo inspect` printed JSON")
}

fn tls_arg(tls_verify: bool) -> String {
    format!("--tls-verify={tls_verify}")
}

/// Returns `skopeo inspect` of `reference` (name, digest, layers, labels, env, ...).
pub fn skopeo_inspect(reference: &str, tls_verify: bool) -> Value {
    skopeo_inspect_with(reference, &[&tls_arg(tls_verify)])
}

/// Returns the image config blob of `reference` (`skopeo inspect --config`).
pub fn skopeo_inspect_config(reference: &str, tls_verify: bool) -> Value {
    skopeo_inspect_with(reference, &["--config", &tls_arg(tls_verify)])
}

/// Returns the manifest of `reference` exactly as stored (`skopeo inspect --raw`).
pub fn skopeo_inspect_raw(reference: &str, tls_verify: bool) -> Value {
    skopeo_inspect_with(reference, &["--raw", &tls_arg(tls_verify)])
}

/// Copies `src` to `dst` with TLS verification off on both sides (plain-HTTP 127.0.0.1
/// registries); panics on failure.
pub fn skopeo_copy(src: &str, dst: &str) {
    let out = skopeo_copy_with(
        src,
        dst,
        &["--src-tls-verify=false", "--dest-tls-verify=false"],
    );
    assert!(
        out.status.success(),
        "`skopeo copy {src} {dst}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `skopeo copy EXTRA... SRC DST` and returns its output, whatever its status
/// (assert on `status` yourself), so refusals can be tested.
///
/// `extra` holds options such as `--dest-creds u:p`, `--dest-cert-dir DIR`, `--format oci`.
pub fn skopeo_copy_with(src: &str, dst: &str, extra: &[&str]) -> Output {
    run_output(
        base()
            .args(["copy", "--insecure-policy", "--quiet"])
            .args(extra)
            .arg(with_transport(src))
            .arg(with_transport(dst)),
    )
}
