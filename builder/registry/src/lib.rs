//! The OCI distribution client kiln pushes and pulls with: blobs (HEAD, cross-repository
//! mount, monolithic or chunked upload, verified download), manifests, and the auth flows
//! registries use (docker `config.json`, credential helpers, podman `auth.json`, Basic and
//! Bearer token auth).
//!
//! Async: tokio + reqwest. Library code never prints and never reads environment
//! variables or the home directory: every path and policy comes in through
//! [`RegistrySettings`], which the CLI fills.
//!
//! Specs:
//! - distribution: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md>
//! - token auth: <https://distribution.github.io/distribution/spec/auth/token/>
//! - docker credential helpers: <https://github.com/docker/docker-credential-helpers>

mod auth;
mod client;
mod error;
mod guard;
mod hosts;
mod login;
mod manifest;
mod payload;
mod pull;
mod push;
mod referrers;
mod request;
mod retry;
mod settings;
mod tags;
mod tls;
mod upload;

/// The `WWW-Authenticate` parser the client answers a 401 with, for the fuzzers (`fuzz/`).
#[doc(hidden)]
pub use auth::challenge::{Challenge, parse as parse_www_authenticate};
pub use client::Client;
pub use error::{ErrorClass, ManifestProblem, RegistryError, StatusError, TransportKind};
pub use login::{login, logout};
pub use manifest::MAX_MANIFEST_BYTES;
pub use pull::PulledManifest;
pub use push::BlobPush;
pub use referrers::Referrer;
pub use retry::RetryPolicy;
pub use settings::{DEFAULT_CREDENTIAL_TTL, DEFAULT_HELPER_TIMEOUT, RegistrySettings};
