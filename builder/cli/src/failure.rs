//! Exit codes and error rendering: `error:` / `Caused by:` / `hint:`.

use std::fmt::Write as _;

/// Documented exit codes.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other failure.
    pub const FAILURE: u8 = 1;
    /// Usage error.
    pub const USAGE: u8 = 2;
    /// No buildpack detected an app.
    pub const NOTHING_DETECTED: u8 = 20;
    /// The app's own build failed (compile error, missing dependency).
    pub const APP_BUILD: u8 = 51;
    /// kiln failed during the build phase.
    pub const KILN_BUILD: u8 = 52;
    /// Export or push failed.
    pub const EXPORT: u8 = 62;
    /// Rebase refused or failed.
    pub const REBASE: u8 = 72;
    /// A network or registry failure that may pass: retry later (sysexits' `EX_TEMPFAIL`).
    pub const TRANSIENT: u8 = 75;
    /// The registry refused the credentials, or they may not do this: retrying fails again
    /// until the credentials or permissions change (sysexits' `EX_NOPERM`).
    pub const AUTH: u8 = 77;
}

/// A failure with its exit code and an optional hint.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// The error chain.
    pub error: anyhow::Error,
    /// What the user can do next.
    pub hint: Option<String>,
}

impl Failure {
    /// Returns a failure with `code`.
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Returns the failure with the exit code its cause calls for, so CI can tell what to
    /// retry (RELIABILITY.md C06): a registry that refused the credentials or the permission
    /// is [`exit::AUTH`]; a network, registry or mirror failure that may pass is
    /// [`exit::TRANSIENT`]; a wrong name, tag or registry setting is [`exit::USAGE`]. Any
    /// other cause keeps the code of the phase that failed.
    pub fn classified(mut self) -> Self {
        use kiln_registry::{ErrorClass, RegistryError};
        if self.code == exit::USAGE {
            return self;
        }
        // Wrappers that are `#[error(transparent)]` hide the registry's and the mirror's
        // errors from `source()`: ask them.
        let registry = self.error.chain().find_map(|e| {
            e.downcast_ref::<RegistryError>()
                .or_else(|| {
                    e.downcast_ref::<kiln_image::ImageError>()
                        .and_then(kiln_image::ImageError::registry)
                })
                .or_else(|| {
                    // A large image error is boxed, and its box is the chain's link.
                    e.downcast_ref::<Box<kiln_image::ImageError>>()
                        .and_then(|b| b.registry())
                })
        });
        if let Some(e) = registry
            && self.hint.is_none()
        {
            self.hint = crate::errors::registry_hint(e);
        }
        let registry = registry.map(RegistryError::class);
        let mirror_transient = self
            .error
            .chain()
            .find_map(|e| {
                e.downcast_ref::<kiln_debian::FetchError>().or_else(|| {
                    e.downcast_ref::<kiln_debian::DebianError>()
                        .and_then(kiln_debian::DebianError::fetch)
                })
            })
            .is_some_and(kiln_debian::FetchError::is_transient);
        let machine = self
            .error
            .chain()
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .find_map(|e| machine_failure(e.kind()));
        match registry {
            Some(ErrorClass::Auth) => self.code = exit::AUTH,
            Some(ErrorClass::Transient) => self.code = exit::TRANSIENT,
            Some(ErrorClass::Input) => self.code = exit::USAGE,
            _ if mirror_transient => self.code = exit::TRANSIENT,
            _ => {
                if let Some(why) = machine {
                    self.code = exit::KILN_BUILD;
                    self.hint.get_or_insert_with(|| {
                        format!("{why}: free space or fix the file system (kiln writes its cache dir, `--cache-dir`), then run again")
                    });
                }
            }
        }
        self
    }

    /// Returns the error's causes, outermost first (the error itself left out).
    fn causes(&self) -> Vec<String> {
        self.error
            .chain()
            .skip(1)
            .map(ToString::to_string)
            .collect()
    }

    /// Renders the failure as one JSON event (`--log-format json`).
    pub fn to_json(&self) -> serde_json::Value {
        let causes = self.causes();
        serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": "error",
            "message": self.error.to_string(),
            "causes": causes,
            "hint": self.hint,
            "exit_code": self.code,
        })
    }

    /// Renders the failure for the terminal.
    pub fn render(&self) -> String {
        use crate::output::{Paint, paint};
        let mut out = format!("{} {}\n", paint("error:", Paint::Error), self.error);
        let causes = self.causes();
        if !causes.is_empty() {
            out.push_str("\nCaused by:\n");
            for (i, c) in causes.iter().enumerate() {
                let _ = writeln!(out, "  {i}: {c}");
            }
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "\n{} {h}", paint("hint:", Paint::Hint));
        }
        out
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::new(exit::FAILURE, error)
    }
}

/// Returns what an I/O error of `kind` says of the machine, when it is the machine's fault
/// rather than kiln's or the input's.
fn machine_failure(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    match kind {
        StorageFull => Some("the disk is full"),
        QuotaExceeded => Some("the disk quota is used up"),
        ReadOnlyFilesystem => Some("the file system is read-only"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;
    use kiln_registry::{RegistryError, StatusError};

    use super::*;

    fn registry(status: u16, code: Option<&str>) -> anyhow::Error {
        let e = RegistryError::Status(Box::new(StatusError {
            action: "pushing manifest to `r/app`".into(),
            registry: "r".into(),
            status,
            code: code.map(Into::into),
            message: None,
            url: None,
            retry_after: None,
        }));
        Err::<(), _>(e).context("publishing `r/app:1`").unwrap_err()
    }

    /// C06: CI can tell what to retry from the exit code alone.
    #[test]
    fn c06_exit_codes_tell_auth_transient_and_input_failures_apart() {
        let code = |e| Failure::new(exit::EXPORT, e).classified().code;
        assert_eq!(code(registry(401, Some("UNAUTHORIZED"))), exit::AUTH);
        assert_eq!(code(registry(403, Some("DENIED"))), exit::AUTH);
        assert_eq!(code(registry(503, None)), exit::TRANSIENT);
        assert_eq!(
            code(registry(429, Some("TOOMANYREQUESTS"))),
            exit::TRANSIENT
        );
        assert_eq!(code(registry(404, Some("NAME_UNKNOWN"))), exit::USAGE);
        assert_eq!(code(registry(400, Some("MANIFEST_INVALID"))), exit::EXPORT);
        assert_eq!(code(anyhow::anyhow!("disk full")), exit::EXPORT);
        let rebase = Failure::new(exit::REBASE, registry(502, None)).classified();
        assert_eq!(rebase.code, exit::TRANSIENT);
        // The way `kiln build` reports a push: the image crate's error around the registry's.
        let refused = kiln_image::ImageError::from(RegistryError::Status(Box::new(StatusError {
            action: "pushing".into(),
            registry: "r".into(),
            status: 401,
            code: None,
            message: None,
            url: None,
            retry_after: None,
        })));
        let push = anyhow::Error::new(refused).context("pushing `r/app:1`");
        assert_eq!(code(push), exit::AUTH);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let full = Failure::new(
            exit::EXPORT,
            anyhow::Error::new(full).context("writing blob"),
        );
        let full = full.classified();
        assert_eq!(full.code, exit::KILN_BUILD);
        assert!(full.hint.unwrap().contains("the disk is full"));
        // A usage error stays one, whatever it wraps.
        let usage = Failure::new(exit::USAGE, registry(401, None)).classified();
        assert_eq!(usage.code, exit::USAGE);
    }
}
