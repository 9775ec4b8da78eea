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

    /// Renders the failure for the terminal.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.error);
        let causes: Vec<String> = self
            .error
            .chain()
            .skip(1)
            .map(ToString::to_string)
            .collect();
        if !causes.is_empty() {
            out.push_str("\nCaused by:\n");
            for (i, c) in causes.iter().enumerate() {
                let _ = writeln!(out, "  {i}: {c}");
            }
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "\nhint: {h}");
        }
        out
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::new(exit::FAILURE, error)
    }
}
