//! The plain settings the CLI resolves (flags, environment, config files) and hands down.

use std::path::PathBuf;
use std::time::Duration;

use crate::RetryPolicy;

/// How long a credential helper may take unless the settings say otherwise: long enough for
/// a keyring that asks to be unlocked, short enough that a hung helper is noticed.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the registry client needs to know about its environment.
///
/// The library never looks anything up on its own: the CLI resolves `DOCKER_CONFIG`,
/// `REGISTRY_AUTH_FILE`, the certs directories and flags into this struct. It holds paths
/// and policies only, never secrets, so its `Debug` output is safe to log.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Hosts (`host` or `host:port`) that may be spoken to over plain HTTP, besides loopback
    /// (`127.0.0.0/8`, `::1`, `localhost`, `*.localhost`), which always may. An entry without a port
    /// matches every port of that host. kiln still tries HTTPS first for these hosts.
    pub insecure_registries: Vec<String>,
    /// Whether credentials (Basic, or a token obtained with them) may go over plain http
    /// to a registry or token server that is not on this machine. Off by default: an
    /// insecure registry that wants credentials is refused rather than sent them in clear
    /// (RELIABILITY.md C03). Loopback hosts (`127.0.0.0/8`, `::1`, `localhost`,
    /// `*.localhost`) never leave the machine and always get them.
    pub allow_http_credentials: bool,
    /// Extra PEM root certificates trusted for every registry (`--registry-ca`).
    pub ca_files: Vec<PathBuf>,
    /// docker/podman style certificate directories: `<dir>/<host[:port]>/*.crt` are extra
    /// roots for that host only (e.g. `/etc/containers/certs.d`).
    pub certs_dirs: Vec<PathBuf>,
    /// The directory holding docker's `config.json` (`DOCKER_CONFIG` or `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
    /// podman/containers `auth.json` files, highest priority first.
    pub auth_files: Vec<PathBuf>,
    /// The directories searched, in order, for `docker-credential-<name>`: the CLI passes
    /// the absolute entries of `PATH`. Relative ones are never searched, so a helper is
    /// never taken from the directory kiln runs in (a project's, RELIABILITY.md C01).
    pub helper_dirs: Vec<PathBuf>,
    /// The `User-Agent` header sent with every request.
    pub user_agent: String,
    /// How often and how patiently failed requests are retried.
    pub retry: RetryPolicy,
    /// `None`: upload blobs with one monolithic `PUT`; `Some(n)`: `PATCH` chunks of `n` bytes.
    pub chunk_size: Option<u64>,
    /// How long a `docker-credential-*` helper may take before its process group is killed.
    pub helper_timeout: Duration,
    /// How long credentials looked up (in a file, from a helper) are used before they are
    /// looked up again: a long build outlives a rotated token (RELIABILITY.md C04).
    pub credential_ttl: Duration,
}

/// How long credentials are used before they are looked up again, unless set otherwise.
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(5 * 60);

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            allow_http_credentials: false,
            ca_files: Vec::new(),
            certs_dirs: Vec::new(),
            docker_config_dir: None,
            auth_files: Vec::new(),
            helper_dirs: Vec::new(),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")).to_string(),
            retry: RetryPolicy::default(),
            chunk_size: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
            credential_ttl: DEFAULT_CREDENTIAL_TTL,
        }
    }
}
