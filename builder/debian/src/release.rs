//! The `Release` file of a suite (the signed text of `InRelease`): who made it, when, until
//! when it may be trusted, and the size and SHA-256 of every index file under `dists/<suite>/`.
//!
//! Spec: <https://wiki.debian.org/DebianRepository/Format#A.22Release.22_files>.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::control::{ControlError, parse_paragraphs};

/// How far in the future a `Release` `Date` may lie before it is refused: apt's default
/// `Acquire::Max-FutureTime` tolerance for clocks that are a little behind.
pub const MAX_FUTURE_SECS: i64 = 10;

/// The fields of a `Release` file kiln relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// `Origin` (`Debian`).
    pub origin: Option<String>,
    /// `Label` (`Debian`, `Debian-Security`).
    pub label: Option<String>,
    /// `Suite` (`stable`, `oldstable`, `stable-security`...).
    pub suite: Option<String>,
    /// `Codename` (`trixie`, `bookworm`...).
    pub codename: Option<String>,
    /// `Version` (`13.7`), absent for testing and unstable.
    pub version: Option<String>,
    /// `Date`, in Unix seconds.
    pub date: i64,
    /// `Valid-Until`, in Unix seconds (the security archive sets it; the main archive does not).
    pub valid_until: Option<i64>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: index files may be fetched under `by-hash/SHA256/<hex>`.
    pub acquire_by_hash: bool,
    /// The `SHA256` list: path under `dists/<suite>/` → size and digest.
    pub sha256: BTreeMap<String, IndexFile>,
}

/// One line of the `SHA256` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    /// The path relative to `dists/<suite>/`.
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// The lower-case hex SHA-256.
    pub sha256: String,
}

/// Why a `Release` file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The text is not deb822 control data.
    #[error("parsing `Release`")]
    Syntax(#[from] ControlError),
    /// The text does not hold exactly one paragraph.
    #[error("parsing `Release`: expected one paragraph, found {0}")]
    Paragraphs(usize),
    /// A field kiln needs is absent.
    #[error("parsing `Release`: the `{0}` field is missing")]
    Missing(&'static str),
    /// A field's value is malformed.
    #[error("parsing `Release` field `{field}`: {reason}: `{value}`")]
    Field {
        /// The field name.
        field: &'static str,
        /// The offending value (or line).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `SHA256` is absent but weaker lists are there.
    #[error(
        "`Release` of `{suite}` has no hash entry considered strong enough for security \
         purposes: it lists only {found}, and kiln needs `SHA256`"
    )]
    WeakHashesOnly {
        /// The suite or codename.
        suite: String,
        /// The weak lists present, formatted.
        found: String,
    },
    /// `SHA256` lists the same path twice.
    #[error("parsing `Release` field `SHA256`: `{0}` is listed twice")]
    DuplicatePath(String),
    /// `Valid-Until` has passed.
    #[error(
        "Release file for `{suite}` is expired (invalid since {ago}): it expired at \
         `{valid_until}` and it is now `{now}`; updates for this repository will not be \
         applied (the mirror is stale or replaying old metadata)"
    )]
    Expired {
        /// The suite or codename.
        suite: String,
        /// `Valid-Until`, formatted.
        valid_until: String,
        /// The caller's time, formatted.
        now: String,
        /// How long ago it expired (`1h 0min 0s`).
        ago: String,
    },
    /// `Date` lies in the future.
    #[error(
        "Release file for `{suite}` is not valid yet (invalid for another {ahead}): it is \
         dated `{date}` and it is now `{now}`; check the machine's clock"
    )]
    FromTheFuture {
        /// The suite or codename.
        suite: String,
        /// How far ahead of the clock it is (`1h 0min 0s`).
        ahead: String,
        /// `Date`, formatted.
        date: String,
        /// The caller's time, formatted.
        now: String,
    },
    /// The architecture asked for is not in `Architectures`.
    #[error(
        "`Release` of `{suite}` has no architecture `{arch}` (it has {available}); fix the \
         definition's `architectures`"
    )]
    NoArchitecture {
        /// The suite or codename.
        suite: String,
        /// The missing architecture.
        arch: String,
        /// The listed architectures, formatted.
        available: String,
    },
    /// The index file asked for is not listed.
    #[error(
        "`Release` of `{suite}` lists no SHA256 for `{path}`; check the definition's \
         `components` and `architectures` against the archive's"
    )]
    NotListed {
        /// The suite or codename.
        suite: String,
        /// The path under `dists/<suite>/`.
        path: String,
    },
}

impl Release {
    /// Parses the text of a `Release` file (for `InRelease`, the verified signed text only).
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let paragraphs = parse_paragraphs(text)?;
        let [p] = paragraphs.as_slice() else {
            return Err(ReleaseError::Paragraphs(paragraphs.len()));
        };
        let words = |name: &str| -> Vec<String> {
            p.value(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let date = p.value("Date").ok_or(ReleaseError::Missing("Date"))?;
        let date = parse_date(date).ok_or_else(|| ReleaseError::Field {
            field: "Date",
            value: date.to_owned(),
            reason: "not an RFC 2822 date",
        })?;
        let valid_until = match p.value("Valid-Until") {
            Some(v) => Some(parse_date(v).ok_or_else(|| ReleaseError::Field {
                field: "Valid-Until",
                value: v.to_owned(),
                reason: "not an RFC 2822 date",
            })?),
            None => None,
        };
        let Some(list) = p.get("SHA256") else {
            let weak: Vec<String> = ["MD5Sum", "SHA1"]
                .into_iter()
                .filter(|f| p.get(f).is_some())
                .map(|f| format!("`{f}`"))
                .collect();
            if weak.is_empty() {
                return Err(ReleaseError::Missing("SHA256"));
            }
            return Err(ReleaseError::WeakHashesOnly {
                suite: p
                    .value("Codename")
                    .or(p.value("Suite"))
                    .unwrap_or("?")
                    .to_owned(),
                found: weak.join(" and "),
            });
        };
        let mut sha256 = BTreeMap::new();
        for line in list.continuation_lines() {
            let bad = |reason| ReleaseError::Field {
                field: "SHA256",
                value: line.to_owned(),
                reason,
            };
            let mut parts = line.split_whitespace();
            let (Some(hex), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected `<sha256> <size> <path>`"));
            };
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("not a SHA-256 hex digest"));
            }
            let size = size.parse().map_err(|_| bad("the size is not a number"))?;
            if sha256.contains_key(path) {
                return Err(ReleaseError::DuplicatePath(path.to_owned()));
            }
            sha256.insert(
                path.to_owned(),
                IndexFile {
                    path: path.to_owned(),
                    size,
                    sha256: hex.to_ascii_lowercase(),
                },
            );
        }
        let owned = |name| p.value(name).map(str::to_owned);
        Ok(Release {
            origin: owned("Origin"),
            label: owned("Label"),
            suite: owned("Suite"),
            codename: owned("Codename"),
            version: owned("Version"),
            date,
            valid_until,
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: p
                .value("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            sha256,
        })
    }

    /// Returns an error when `Valid-Until` is before `now` or `Date` is more than
    /// [`MAX_FUTURE_SECS`] after it (Unix seconds), as apt's `Check-Valid-Until` and
    /// `Max-FutureTime` do.
    pub fn check_time(&self, now: i64) -> Result<(), ReleaseError> {
        if let Some(until) = self.valid_until
            && until < now
        {
            return Err(ReleaseError::Expired {
                suite: self.name().to_owned(),
                valid_until: format_date(until),
                now: format_date(now),
                ago: format_span(now - until),
            });
        }
        if self.date > now + MAX_FUTURE_SECS {
            return Err(ReleaseError::FromTheFuture {
                suite: self.name().to_owned(),
                date: format_date(self.date),
                now: format_date(now),
                ahead: format_span(self.date - now),
            });
        }
        Ok(())
    }

    /// Returns the `SHA256` entry of `path` (relative to `dists/<suite>/`).
    pub fn file(&self, path: &str) -> Result<&IndexFile, ReleaseError> {
        self.sha256
            .get(path)
            .ok_or_else(|| ReleaseError::NotListed {
                suite: self.name().to_owned(),
                path: path.to_owned(),
            })
    }

    /// Returns the `SHA256` entry of `<component>/binary-<arch>/Packages.xz`.
    pub fn packages_xz(&self, component: &str, arch: &str) -> Result<&IndexFile, ReleaseError> {
        self.file(&format!("{component}/binary-{arch}/Packages.xz"))
    }

    /// Returns the codename, else the suite, else `?`, to name this release in messages.
    pub fn name(&self) -> &str {
        self.codename
            .as_deref()
            .or(self.suite.as_deref())
            .unwrap_or("?")
    }
}

/// Parses a `Release` date (`Sat, 12 Sep 2026 07:55:41 UTC`) into Unix seconds. Debian
/// writes `UTC`, which RFC 2822 does not list, so the zone is read by hand.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (stamp, zone) = text.rsplit_once(' ')?;
    let offset: i64 = match zone {
        "UTC" | "GMT" | "UT" | "Z" => 0,
        // Sign and four digits: slicing anything else could split a UTF-8 character.
        z if z.len() == 5
            && (z.starts_with('+') || z.starts_with('-'))
            && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[3..5].parse().ok()?;
            let secs = hh * 3600 + mm * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    // The day name is optional in RFC 2822.
    let stamp = stamp.split_once(", ").map_or(stamp, |(_, rest)| rest);
    let naive = NaiveDateTime::parse_from_str(stamp, "%d %b %Y %H:%M:%S").ok()?;
    Some(naive.and_utc().timestamp() - offset)
}

/// Formats a duration in seconds as apt does (`2d 3h 0min 5s`, `1h 0min 0s`, `42s`).
pub fn format_span(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}min {s}s"),
        (0, _, _) => format!("{h}h {m}min {s}s"),
        _ => format!("{d}d {h}h {m}min {s}s"),
    }
}

/// Formats Unix seconds the way `Release` files write dates.
pub fn format_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("@{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
Origin: Debian
Label: Debian
Suite: stable
Version: 13.7
Codename: trixie
Date: Sat, 12 Sep 2026 07:55:41 UTC
Valid-Until: Sat, 19 Sep 2026 07:55:41 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
MD5Sum:
 3e498904a30e240573dac8ddac594e6f  1961125 contrib/Contents-all
SHA256:
 7778d3e3f303b7ddb8ce0fe7c8d57473a076c6bf2e8f241f75421d2396352498  9678380 main/binary-amd64/Packages.xz
 4f2c68d67001d595fbd343f6dbad44468953a51c4d9dec3a4803249f6e295940 56620099 main/binary-amd64/Packages
";

    #[test]
    fn fields_and_packages_lookup() {
        let r = Release::parse(TEXT).unwrap();
        assert_eq!(r.codename.as_deref(), Some("trixie"));
        assert_eq!(r.suite.as_deref(), Some("stable"));
        assert_eq!(r.origin.as_deref(), Some("Debian"));
        assert_eq!(r.date, 1_789_199_741);
        assert_eq!(format_date(r.date), "Sat, 12 Sep 2026 07:55:41 UTC");
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert!(r.acquire_by_hash);
        let xz = r.packages_xz("main", "amd64").unwrap();
        assert_eq!(xz.size, 9_678_380);
        assert!(xz.sha256.starts_with("7778d3e3"));
        let err = r.packages_xz("main", "riscv64").unwrap_err().to_string();
        assert!(err.contains("`main/binary-riscv64/Packages.xz`"), "{err}");
    }

    #[test]
    fn time_window() {
        let r = Release::parse(TEXT).unwrap();
        assert!(r.check_time(r.date).is_ok());
        assert!(r.check_time(r.date - MAX_FUTURE_SECS).is_ok());
        assert!(matches!(
            r.check_time(r.date - MAX_FUTURE_SECS - 1),
            Err(ReleaseError::FromTheFuture { .. })
        ));
        assert_eq!(format_span(3600), "1h 0min 0s");
        assert_eq!(format_span(86_400 * 2 + 5), "2d 0h 0min 5s");
        assert_eq!(format_span(11), "11s");
        assert!(matches!(
            r.check_time(r.valid_until.unwrap() + 1),
            Err(ReleaseError::Expired { .. })
        ));
    }

    #[test]
    fn dates_with_offsets() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 01:00:00 +0100"), Some(0));
        assert_eq!(parse_date("01 Jan 1970 00:00:10 GMT"), Some(10));
        assert_eq!(parse_date("yesterday"), None);
    }

    /// Found by the `deb822` fuzz target: a zone of five bytes with a multi-byte
    /// character panicked (a slice inside the character); a sign with non-digits parsed.
    #[test]
    fn fuzz_release_date_zone_that_is_not_a_sign_and_four_digits() {
        assert_eq!(parse_date("n:: -%\u{55e}7"), None);
        assert_eq!(parse_date("01 Jan 1970 00:00:00 +1\u{e9}"), None);
        assert_eq!(parse_date("01 Jan 1970 00:00:00 ++1+1"), None);
        assert_eq!(parse_date("01 Jan 1970 00:00:00 -0130"), Some(5400));
    }

    #[test]
    fn malformed_hash_lines_and_missing_fields() {
        let no_date = TEXT.replace("Date: Sat, 12 Sep 2026 07:55:41 UTC\n", "");
        assert!(matches!(
            Release::parse(&no_date),
            Err(ReleaseError::Missing("Date"))
        ));
        let bad = TEXT.replace("9678380 main", "9x78380 main");
        assert!(
            Release::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("size")
        );
        assert!(matches!(
            Release::parse("Origin: a\n\nOrigin: b\n"),
            Err(ReleaseError::Paragraphs(2))
        ));
    }
}
