//! Rendering errors as one line, for warnings that do not fail a build.

use std::error::Error;

/// Returns `e` and each of its causes, joined by `: ` (a warning is one line; an error that
/// fails the command shows its causes one per line instead).
pub fn causes(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Formats a byte count for people (`1.5 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once_each() {
        let io = std::io::Error::other("disk on fire");
        let e = kiln_layer::LayerError::Store {
            path: "/x".into(),
            source: io,
        };
        assert_eq!(causes(&e), format!("{e}: disk on fire"));
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
