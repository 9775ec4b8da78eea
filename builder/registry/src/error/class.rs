//! What kind of failure a [`RegistryError`] is, for callers that react differently to each:
//! the CLI picks its exit code by it, and CI retries only [`ErrorClass::Transient`]
//! (RELIABILITY.md C06).

use super::{RegistryError, TransportKind};

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Credentials are missing, wrong or not allowed to do this (401, 403, `DENIED`, a scope
    /// not granted, a failing credential helper, credentials kept off plain http). Retrying
    /// the same thing fails again: fix the credentials or the permissions.
    Auth,
    /// The network or the registry failed in a way that may pass (connection refused or
    /// broken, timeout, 5xx, 408, 429). Retrying later may succeed.
    Transient,
    /// The user's request or configuration is wrong: an invalid or unknown name, tag or
    /// digest, a plain-http or untrusted-TLS registry without the setting that allows it,
    /// an unreadable credentials or CA file, an image too large for registries. Retrying the
    /// same thing fails again: fix the input.
    Input,
    /// The registry's answer is wrong or hostile: a refused redirect or endpoint, content
    /// with another digest or size, a confusing manifest, an oversized answer, a broken
    /// protocol, a request refused for no reason kiln can name. Retrying rarely helps.
    Protocol,
    /// Anything else (local I/O).
    Other,
}

/// Distribution error codes that say the name, tag or digest asked for is wrong.
const INPUT_CODES: &[&str] = &[
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "TAG_INVALID",
    "MANIFEST_UNKNOWN",
    "DIGEST_INVALID",
];

impl RegistryError {
    /// Returns what kind of failure this is: see [`ErrorClass`]. The registry's error code
    /// wins over its status (`DENIED` is auth whatever the status, `TOOMANYREQUESTS`
    /// transient); a `Retry-After` beyond kiln's patience is still transient.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Status(e) => match (e.code.as_deref(), e.status) {
                (Some("UNAUTHORIZED" | "DENIED"), _) | (_, 401 | 403 | 407) => ErrorClass::Auth,
                (Some("TOOMANYREQUESTS"), _) => ErrorClass::Transient,
                (_, s)
                    if reqwest::StatusCode::from_u16(s)
                        .is_ok_and(crate::retry::retryable_status) =>
                {
                    ErrorClass::Transient
                }
                (Some(code), 400..=499) if INPUT_CODES.contains(&code) => ErrorClass::Input,
                (None, 404) => ErrorClass::Input,
                (_, 400..=499) => ErrorClass::Protocol,
                _ => ErrorClass::Other,
            },
            Self::Transport { kind, .. } => match kind {
                // An untrusted certificate stays untrusted until the settings change.
                TransportKind::Tls => ErrorClass::Input,
                TransportKind::Connect | TransportKind::Timeout | TransportKind::Broken => {
                    ErrorClass::Transient
                }
            },
            Self::InsufficientScope { .. }
            | Self::TokenRejected { .. }
            | Self::Helper { .. }
            | Self::CredentialsOverHttp { .. } => ErrorClass::Auth,
            Self::InsecureHttp { .. }
            | Self::InvalidReference { .. }
            | Self::ManifestTooLarge { .. }
            | Self::Credentials { .. }
            | Self::TlsSetup { .. }
            | Self::NoConfigDir { .. } => ErrorClass::Input,
            Self::Refused { .. }
            | Self::DigestMismatch { .. }
            | Self::SizeMismatch { .. }
            | Self::AnnouncedSize { .. }
            | Self::StoredDigest { .. }
            | Self::ManifestRefused { .. }
            | Self::BadManifest { .. }
            | Self::TooLarge { .. }
            | Self::Protocol { .. } => ErrorClass::Protocol,
            Self::Io { .. } => ErrorClass::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use kiln_oci::Digest;

    use super::*;
    use crate::error::StatusError;

    fn status(status: u16, code: Option<&str>) -> RegistryError {
        RegistryError::Status(Box::new(StatusError {
            action: "pushing blob `sha256:ab` to `127.0.0.1:5000/app`".into(),
            registry: "127.0.0.1:5000".into(),
            status,
            code: code.map(Into::into),
            message: None,
            url: None,
            retry_after: None,
        }))
    }

    /// The CLI maps these classes to exit codes (RELIABILITY.md C06): auth, input and
    /// protocol failures are not worth retrying, transient ones are.
    #[test]
    fn classifies_errors_into_auth_transient_input_protocol_and_other() {
        use ErrorClass::*;
        let with_code = |s: u16, c: &str| status(s, Some(c));
        let tr = |kind| RegistryError::Transport {
            action: "a".into(),
            registry: "r".into(),
            url: "https://r/v2/".into(),
            kind,
            detail: "x".into(),
        };
        for (e, want) in [
            (tr(TransportKind::Connect), Transient),
            (tr(TransportKind::Timeout), Transient),
            (tr(TransportKind::Broken), Transient),
            (tr(TransportKind::Tls), Input),
            (status(401, None), Auth),
            (status(403, None), Auth),
            (with_code(400, "DENIED"), Auth),
            (status(429, None), Transient),
            (with_code(400, "TOOMANYREQUESTS"), Transient),
            (status(408, None), Transient),
            (status(500, None), Transient),
            (status(400, None), Protocol),
            (status(404, None), Input),
            (with_code(404, "NAME_UNKNOWN"), Input),
            (with_code(400, "NAME_INVALID"), Input),
            (with_code(400, "MANIFEST_INVALID"), Protocol),
            (status(413, None), Protocol),
            (status(501, None), Other),
            (status(304, None), Other),
        ] {
            assert_eq!(e.class(), want, "{e}");
        }
        let auth = [
            RegistryError::InsufficientScope {
                action: "a".into(),
                registry: "r".into(),
                scope: "repository:x:pull".into(),
            },
            RegistryError::TokenRejected {
                action: "a".into(),
                registry: "r".into(),
                refreshes: 5,
            },
            RegistryError::CredentialsOverHttp {
                action: "a".into(),
                registry: "r".into(),
                url: "http://r/v2/".into(),
            },
            RegistryError::Helper {
                helper: "pass".into(),
                registry: "r".into(),
                detail: "exited with 1".into(),
            },
        ];
        for e in auth {
            assert_eq!(e.class(), Auth, "{e}");
            assert!(e.hint().is_some(), "{e}");
        }
        let protocol = [
            RegistryError::Refused {
                action: "a".into(),
                what: "redirect",
                url: "file:///etc/passwd".into(),
                reason: "no".into(),
            },
            RegistryError::DigestMismatch {
                action: "a".into(),
                expected: Digest::of(b"a"),
                actual: Digest::of(b"b"),
            },
        ];
        for e in protocol {
            assert_eq!(e.class(), Protocol, "{e}");
        }
        let input = [
            RegistryError::InsecureHttp {
                action: "a".into(),
                url: "http://r/v2/".into(),
                host: "r".into(),
            },
            RegistryError::NoConfigDir {
                registry: "r".into(),
            },
        ];
        for e in input {
            assert_eq!(e.class(), Input, "{e}");
        }
        let io = RegistryError::Io {
            action: "a".into(),
            path: "/x".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(io.class(), Other);
    }
}
