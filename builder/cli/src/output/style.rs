//! How kiln writes to stderr, chosen once per run: colour or not (`--color`, `NO_COLOR`),
//! and text or one JSON object a line (`--log-format json`, for CI).

use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{Value, json};

/// The run's output style.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours on the text.
    pub color: bool,
    /// One JSON object a line instead of text.
    pub json: bool,
}

static STYLE: OnceLock<Style> = OnceLock::new();
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Sets the run's style (the first call wins).
pub fn configure(style: Style) {
    let _ = STYLE.set(style);
    let _ = STARTED.set(Instant::now());
}

/// Returns the run's style (plain text until [`configure`]d).
pub fn style() -> Style {
    STYLE.get().copied().unwrap_or_default()
}

/// SGR codes of the few colours kiln uses.
#[derive(Clone, Copy)]
pub enum Paint {
    /// Phase headers.
    Phase,
    /// `warning:`.
    Warn,
    /// `error:`.
    Error,
    /// `hint:`.
    Hint,
    /// Toolchain output and details.
    Dim,
}

/// Returns `text` painted, when the style has colour.
pub fn paint(text: &str, paint: Paint) -> String {
    if !style().color {
        return text.to_owned();
    }
    let code = match paint {
        Paint::Phase => "1;36",
        Paint::Warn => "1;33",
        Paint::Error => "1;31",
        Paint::Hint => "1;32",
        Paint::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Writes one JSON event to stderr: `{"elapsed_ms", "level", "message", ...extra}`.
pub fn event(level: &str, message: &str, extra: Value) {
    let elapsed = STARTED.get().map_or(0, |s| s.elapsed().as_millis() as u64);
    let mut object = json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "elapsed_ms": elapsed,
        "level": level,
        "message": message,
    });
    if let (Some(object), Value::Object(extra)) = (object.as_object_mut(), extra) {
        object.extend(extra);
    }
    eprintln!("{object}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_escape_codes() {
        assert_eq!(paint("===>", Paint::Phase), "===>");
    }
}
