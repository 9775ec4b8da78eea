//! The error type of the registry client.
//!
//! Messages say what was being done and name things in backticks; the registry's own
//! error `code` and `message` (distribution-spec "Error Codes") are kept as fields so the
//! CLI can render them. No message ever contains a credential, a token or a URL query
//! string (signed storage URLs carry their signature there).

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use kiln_oci::Digest;
use url::Url;

mod class;
mod manifest;

pub use class::ErrorClass;
pub use manifest::ManifestProblem;

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The TCP connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed, typically an untrusted or mismatched certificate.
    Tls,
    /// The connection timed out.
    Timeout,
    /// The connection broke while sending or receiving.
    Broken,
}

/// A failure talking to a registry or reading credentials for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry (or its token server, or storage it redirected to) answered with an
    /// unexpected status.
    #[error("{0}")]
    Status(Box<StatusError>),
    /// The request did not get an HTTP answer.
    #[error("{action}: could not talk to `{url}`: {detail}")]
    Transport {
        /// What was being done.
        action: String,
        /// The registry as written.
        registry: String,
        /// The URL being requested, query redacted.
        url: String,
        /// The kind of failure.
        kind: TransportKind,
        /// The underlying error chain, without URLs.
        detail: String,
    },
    /// A plain-HTTP URL for a host that is neither loopback nor an insecure registry.
    #[error(
        "{action}: refusing plain http to `{url}`: only loopback and insecure registries may use http"
    )]
    InsecureHttp {
        /// What was being done.
        action: String,
        /// The refused URL, query redacted.
        url: String,
        /// The refused host[:port].
        host: String,
    },
    /// Content did not hash to the digest it was asked for by.
    #[error("{action}: content digest is `{actual}`, expected `{expected}`")]
    DigestMismatch {
        /// What was being done.
        action: String,
        /// The digest asked for (or announced).
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// Content had the wrong length.
    #[error("{action}: got {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// What was being done.
        action: String,
        /// The size asked for.
        expected: u64,
        /// The size seen (for an overlong download: the bytes received when kiln stopped).
        actual: u64,
    },
    /// The registry announced a blob length (`Content-Length`) other than its descriptor's
    /// size: refused before a byte is written.
    #[error(
        "{action}: the registry announced {announced} bytes (`Content-Length`), the descriptor says {expected}"
    )]
    AnnouncedSize {
        /// What was being done.
        action: String,
        /// The descriptor's size.
        expected: u64,
        /// The `Content-Length` the registry sent.
        announced: u64,
    },
    /// A manifest reference that is neither a tag nor a digest, refused before any request
    /// (a path such as `../../x` would otherwise end up in the URL).
    #[error(
        "{action}: `{reference}` is neither a tag (at most 128 of `A-Za-z0-9_.-`) nor a `sha256:` digest"
    )]
    InvalidReference {
        /// What was being done.
        action: String,
        /// The refused reference.
        reference: String,
    },
    /// The registry stored a pushed manifest under another digest than kiln computed.
    #[error("{action}: registry stored digest `{stored}`, expected `{expected}`")]
    StoredDigest {
        /// What was being done.
        action: String,
        /// The digest of the bytes kiln sent.
        expected: Digest,
        /// The `Docker-Content-Digest` the registry answered with.
        stored: Digest,
    },
    /// A manifest larger than registries must accept, refused before anything is sent.
    #[error(
        "{action}: the manifest is {size} bytes, more than the {max} bytes (4 MiB) registries must accept"
    )]
    ManifestTooLarge {
        /// What was being done.
        action: String,
        /// The manifest's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The registry refused a manifest as too large (413).
    #[error("{action}: the registry refused the {size}-byte manifest as too large (413)")]
    ManifestRefused {
        /// What was being done.
        action: String,
        /// The manifest's size.
        size: u64,
    },
    /// A pulled manifest kiln refuses to interpret.
    #[error("{action}: {problem}")]
    BadManifest {
        /// What was being done.
        action: String,
        /// What is wrong with it.
        problem: ManifestProblem,
    },
    /// A response body was larger than kiln accepts for its kind.
    #[error("{action}: response is larger than the {max} bytes kiln accepts")]
    TooLarge {
        /// What was being done.
        action: String,
        /// The limit.
        max: u64,
    },
    /// The registry broke the protocol (missing `Location`, unreadable token response...).
    #[error("{action}: {detail}")]
    Protocol {
        /// What was being done.
        action: String,
        /// What was wrong.
        detail: String,
    },
    /// A credentials file could not be read or parsed.
    #[error("reading registry credentials from `{}`: {detail}", .path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A URL a server named (a redirect, an upload location, a token realm) that kiln does
    /// not follow: another scheme than http(s), a downgrade from https, or an address on this
    /// machine or its networks that the registry has no business sending kiln to.
    #[error("{action}: refusing the {what} `{url}`: {reason}")]
    Refused {
        /// What was being done.
        action: String,
        /// What the URL was: `redirect`, `location`, `token realm`.
        what: &'static str,
        /// The refused URL, without user info or query.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// Credentials would have gone over plain http to a host that is not this machine.
    #[error(
        "{action}: refusing to send the credentials for `{registry}` over plain http to `{url}`"
    )]
    CredentialsOverHttp {
        /// What was being done.
        action: String,
        /// The registry the credentials are for.
        registry: String,
        /// The plain-http URL, without user info or query.
        url: String,
    },
    /// The token server did not grant a scope the registry asked for, even when asked for
    /// it first (`error="insufficient_scope"`).
    #[error("{action}: insufficient scope for `{scope}`: the token server did not grant it")]
    InsufficientScope {
        /// What was being done.
        action: String,
        /// The registry as written.
        registry: String,
        /// The scope(s) the registry asked for, space separated.
        scope: String,
    },
    /// The registry kept rejecting freshly fetched bearer tokens.
    #[error(
        "{action}: `{registry}` rejected {refreshes} fresh tokens in a row; kiln stopped asking"
    )]
    TokenRejected {
        /// What was being done.
        action: String,
        /// The registry as written.
        registry: String,
        /// How many times the token was refreshed.
        refreshes: u32,
    },
    /// A `docker-credential-*` helper failed.
    #[error("running credential helper `docker-credential-{helper}` for `{registry}`: {detail}")]
    Helper {
        /// The helper's suffix, e.g. `pass`, `desktop`.
        helper: String,
        /// The registry credentials were wanted for.
        registry: String,
        /// What went wrong.
        detail: String,
    },
    /// A local file operation failed.
    #[error("{action}: `{}`", .path.display())]
    Io {
        /// What was being done.
        action: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A CA certificate file could not be loaded, or the HTTP client not built.
    #[error("loading tls roots from `{}`: {detail}", .path.display())]
    TlsSetup {
        /// The certificate file or directory.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// `login` was called without a docker config directory to store credentials in.
    #[error("logging in to `{registry}`: no docker config directory to store credentials in")]
    NoConfigDir {
        /// The registry being logged in to.
        registry: String,
    },
}

/// An unexpected HTTP answer, with the registry's own error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{action}: registry said {}", status_text(*.status, .code.as_deref(), .message.as_deref(), .url.as_deref()))]
pub struct StatusError {
    /// What was being done.
    pub action: String,
    /// The registry as written (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The HTTP status code.
    pub status: u16,
    /// The first distribution error code, e.g. `UNAUTHORIZED`, `MANIFEST_UNKNOWN`.
    pub code: Option<String>,
    /// The message that came with `code`.
    pub message: Option<String>,
    /// The answering URL (query redacted) when it was not the registry itself.
    pub url: Option<String>,
    /// The `Retry-After` delay the registry asked for, if any.
    pub retry_after: Option<Duration>,
}

fn status_text(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    url: Option<&str>,
) -> String {
    let mut s = status.to_string();
    match (code, message) {
        (Some(c), Some(m)) if !m.is_empty() => s.push_str(&format!(" {c}: {m}")),
        (Some(c), _) => s.push_str(&format!(" {c}")),
        (None, Some(m)) if !m.is_empty() => s.push_str(&format!(": {m}")),
        _ => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason());
            if let Some(r) = reason {
                s.push_str(&format!(" {r}"));
            }
        }
    }
    if let Some(u) = url {
        s.push_str(&format!(" (answered by `{u}`)"));
    }
    s
}

impl RegistryError {
    /// Returns the next step for the user when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Status(e) => {
                let registry = &e.registry;
                match (e.status, e.code.as_deref()) {
                (401, _) if e.action.starts_with("logging in") => Some(format!(
                    "check the user name and password (or access token) for `{registry}`"
                )),
                (401, _) => Some(format!(
                    "log in to `{registry}` (kiln also reads docker and podman credentials)"
                )),
                (403, _) | (_, Some("DENIED")) => Some(format!(
                    "your credentials for `{registry}` may not do this: check the repository name, or log in as another user"
                )),
                (404, _) => Some("check the repository name and tag or digest".to_string()),
                (429, _) => Some(match e.retry_after {
                    Some(after) => format!(
                        "`{registry}` is rate limiting and asks to wait {} s (Retry-After); retry after that, or log in for a higher limit",
                        after.as_secs()
                    ),
                    None => format!(
                        "`{registry}` is rate limiting; wait and retry, or log in for a higher limit"
                    ),
                }),
                (s, _) if s >= 500 => Some(format!("`{registry}` failed; try again later")),
                _ => None,
                }
            }
            Self::Transport { registry, kind, .. } => match kind {
                TransportKind::Tls => Some(format!(
                    "if `{registry}` uses a private CA, trust it: put it in `/etc/containers/certs.d/{registry}/ca.crt`"
                )),
                TransportKind::Connect => {
                    Some(format!("check that a registry is listening at `{registry}`"))
                }
                _ => None,
            },
            Self::InsecureHttp { host, .. } => Some(format!(
                "`{host}` answers over plain http: allow that only for a registry you trust"
            )),
            Self::Refused { .. } => Some(
                "the registry (or its token server) pointed kiln somewhere it does not follow; tell the registry operator"
                    .to_string(),
            ),
            Self::CredentialsOverHttp { registry, .. } => Some(format!(
                "serve `{registry}` over https: kiln sends credentials over plain http only to registries on this machine, or when told to, as anyone on the network can read them"
            )),
            Self::InsufficientScope { registry, .. } => Some(format!(
                "your credentials for `{registry}` may not do this: log in as a user who may, or check the repository name"
            )),
            Self::TokenRejected { registry, .. } => Some(format!(
                "`{registry}` keeps refusing the tokens its own token server issues; check the clocks of both machines, then tell the registry operator"
            )),
            Self::DigestMismatch { .. } => Some(
                "the registry sent other content than asked for; retry, and tell the registry operator if it persists"
                    .to_string(),
            ),
            Self::StoredDigest { .. } => Some(
                "something between kiln and the registry rewrote the manifest (a proxy, or a registry converting formats); the tag may now name other bytes than kiln built: push to a registry that stores manifests as sent"
                    .to_string(),
            ),
            Self::ManifestTooLarge { .. } | Self::ManifestRefused { .. } => Some(
                "a manifest grows with its layers and annotations: merge layers or drop annotations, or use a registry that accepts larger manifests"
                    .to_string(),
            ),
            Self::BadManifest { problem, .. } => Some(match problem {
                ManifestProblem::Schema1 => "copy the image again with a current tool (`skopeo copy`, `docker push`): it then gets a schema 2 or OCI manifest".to_string(),
                _ => "the image or the registry is broken or hostile; pull it by digest from a registry you trust, and tell its operator".to_string(),
            }),
            Self::InvalidReference { .. } => {
                Some("name a tag like `v1.2` or a digest like `sha256:<64 hex>`".to_string())
            }
            Self::AnnouncedSize { .. } => Some(
                "the registry sent other content than asked for; retry, and tell the registry operator if it persists"
                    .to_string(),
            ),
            Self::Helper { helper, .. } => Some(format!(
                "check that `docker-credential-{helper}` is installed and on PATH, or remove it from config.json"
            )),
            Self::NoConfigDir { .. } => {
                Some("set DOCKER_CONFIG or make sure the home directory is known".to_string())
            }
            _ => None,
        }
    }

    /// Returns the HTTP status that failed (401 for a scope or token kept being refused).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(e) => Some(e.status),
            Self::InsufficientScope { .. } | Self::TokenRejected { .. } => Some(401),
            _ => None,
        }
    }

    /// Returns the distribution error code (`UNAUTHORIZED`, `BLOB_UNKNOWN`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status(e) => e.code.as_deref(),
            _ => None,
        }
    }

    /// Returns the error with `note` added to what was being done, e.g. how many attempts
    /// were made before giving up.
    pub(crate) fn noting(mut self, note: &str) -> Self {
        match &mut self {
            Self::Status(e) => e.action.push_str(note),
            Self::Transport { action, .. }
            | Self::Protocol { action, .. }
            | Self::SizeMismatch { action, .. }
            | Self::Io { action, .. } => action.push_str(note),
            _ => {}
        }
        self
    }

    /// Returns whether trying again may help.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Status(e) => {
                reqwest::StatusCode::from_u16(e.status).is_ok_and(crate::retry::retryable_status)
            }
            Self::Transport { kind, .. } => *kind != TransportKind::Tls,
            _ => false,
        }
    }

    /// Returns the delay the registry asked for before retrying.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status(e) => e.retry_after,
            _ => None,
        }
    }

    /// Returns a transport error for a failed `reqwest` call, without any URL in the detail.
    pub(crate) fn transport(action: &str, registry: &str, url: &Url, err: reqwest::Error) -> Self {
        let kind = classify(&err);
        let err = err.without_url();
        // Keep the causes that say something; drop reqwest's and hyper's generic wrappers.
        let mut parts: Vec<String> = Vec::new();
        let mut source = err.source();
        while let Some(s) = source {
            let text = s.to_string();
            let generic =
                text.starts_with("client error (") || text.starts_with("error sending request");
            if !generic && !parts.last().is_some_and(|p| p.ends_with(&text)) {
                parts.push(text);
            }
            source = s.source();
        }
        let detail = if parts.is_empty() {
            err.to_string()
        } else {
            parts.join(": ")
        };
        Self::Transport {
            action: action.to_string(),
            registry: registry.to_string(),
            url: redact_url(url),
            kind,
            detail,
        }
    }
}

fn classify(err: &reqwest::Error) -> TransportKind {
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("certificate") || text.contains("HandshakeFailure") {
            return TransportKind::Tls;
        }
        source = s.source();
    }
    if err.is_timeout() {
        TransportKind::Timeout
    } else if err.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Broken
    }
}

/// Returns `url` without user info, fragment or query (a present query shows as `?<redacted>`).
pub(crate) fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_fragment(None);
    let had_query = u.query().is_some();
    u.set_query(None);
    let mut s = u.to_string();
    if had_query {
        s.push_str("?<redacted>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, message: Option<&str>) -> RegistryError {
        RegistryError::Status(Box::new(StatusError {
            action: "pushing blob `sha256:ab` to `127.0.0.1:5000/app`".into(),
            registry: "127.0.0.1:5000".into(),
            status,
            code: code.map(Into::into),
            message: message.map(Into::into),
            url: None,
            retry_after: None,
        }))
    }

    #[test]
    fn renders_registry_errors() {
        let e = status(401, Some("UNAUTHORIZED"), Some("authentication required"));
        assert_eq!(
            e.to_string(),
            "pushing blob `sha256:ab` to `127.0.0.1:5000/app`: registry said 401 UNAUTHORIZED: authentication required"
        );
        assert!(e.hint().unwrap().contains("log in to `127.0.0.1:5000`"));
        assert_eq!(e.code(), Some("UNAUTHORIZED"));
        assert_eq!(
            status(404, None, None).to_string().rsplit(": ").next(),
            Some("registry said 404 Not Found")
        );
        assert!(status(503, None, None).is_retryable());
        assert!(!status(401, None, None).is_retryable());
    }

    #[test]
    fn redacts_queries_and_userinfo() {
        let u = Url::parse("https://user:pw@s3.example/b/x?X-Amz-Signature=secret#frag").unwrap();
        let r = redact_url(&u);
        assert_eq!(r, "https://s3.example/b/x?<redacted>");
        let u = Url::parse("https://h/v2/").unwrap();
        assert_eq!(redact_url(&u), "https://h/v2/");
    }
}
