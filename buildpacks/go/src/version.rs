//! Go version numbers, ordered the way the `go` command orders them
//! (<https://go.dev/doc/toolchain#version>): `1.21` < `1.21rc1` < `1.21.0` < `1.21.1`.

use std::fmt;

/// A Go version such as `1.22`, `1.22.3` or `1.23rc1` (a leading `go` is accepted).
///
/// Missing parts sort before present ones, which gives Go's order: the language version
/// `1.21` comes before every 1.21 release candidate, which come before the release `1.21.0`.
/// As in Go, `1.N` for N < 21 means the release `1.N.0`, and `1` means `1.0.0`.
#[derive(Clone, Debug)]
pub struct GoVersion {
    major: u64,
    minor: Option<u64>,
    patch: Option<u64>,
    /// `""` for releases, else `alpha`, `beta`, `rc`…: `""` sorts first, as in Go.
    kind: String,
    pre: Option<u64>,
    /// The spelling it was parsed from (without `go`), for messages.
    text: String,
}

impl GoVersion {
    /// Returns the version `text` spells (`1.22.3`, `go1.22.3`, `1.23rc1`), or `None` if it is
    /// not a Go version (e.g. `devel go1.24-abcdef`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let bare = text.strip_prefix("go").unwrap_or(text);
        let (major, rest) = cut_int(bare)?;
        let mut v = Self {
            major,
            minor: None,
            patch: None,
            kind: String::new(),
            pre: None,
            text: bare.to_owned(),
        };
        if rest.is_empty() {
            v.minor = Some(0);
            v.patch = Some(0);
            return Some(v);
        }
        let (minor, rest) = cut_int(rest.strip_prefix('.')?)?;
        v.minor = Some(minor);
        if rest.is_empty() {
            if minor < 21 {
                v.patch = Some(0);
            }
            return Some(v);
        }
        if let Some(patch) = rest.strip_prefix('.') {
            let (patch, rest) = cut_int(patch)?;
            v.patch = Some(patch);
            return rest.is_empty().then_some(v);
        }
        let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        if letters == 0 {
            return None;
        }
        v.kind = rest[..letters].to_owned();
        let rest = &rest[letters..];
        if !rest.is_empty() {
            let (pre, rest) = cut_int(rest)?;
            if !rest.is_empty() {
                return None;
            }
            v.pre = Some(pre);
        }
        Some(v)
    }
}

impl GoVersion {
    fn key(&self) -> (u64, Option<u64>, Option<u64>, &str, Option<u64>) {
        (self.major, self.minor, self.patch, &self.kind, self.pre)
    }
}

impl PartialEq for GoVersion {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for GoVersion {}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits a leading decimal number (no needless leading zero) off `s`.
fn cut_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    Some((s[..digits].parse().ok()?, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GoVersion {
        GoVersion::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn orders_like_the_go_command() {
        let ascending = [
            "1",
            "1.9",
            "1.9.1",
            "1.20",
            "1.20.1",
            "1.21",
            "1.21rc1",
            "1.21rc2",
            "1.21.0",
            "1.21.1",
            "1.22",
            "1.22.0",
            "1.22.3",
            "1.22.10",
            "1.23beta1",
            "1.23rc1",
            "1.23.0",
            "1.99",
            "2",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn old_language_versions_equal_their_first_release() {
        assert_eq!(v("1.20").cmp(&v("1.20.0")), std::cmp::Ordering::Equal);
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.22") < v("1.22.0"));
    }

    #[test]
    fn accepts_go_prefix_and_displays_without_it() {
        assert_eq!(v("go1.26.8").to_string(), "1.26.8");
        assert!(v("go1.26.8") > v("1.22"));
        assert!(v("go1.26.8") < v("1.99"));
    }

    #[test]
    fn rejects_non_versions() {
        for bad in [
            "",
            "devel go1.24-abc",
            "1.",
            "1.x",
            "01.2",
            "1.2.3.4",
            "1.21-rc1",
            "1.21rc1x",
            "v1.2",
        ] {
            assert_eq!(GoVersion::parse(bad), None, "{bad:?}");
        }
    }
}
