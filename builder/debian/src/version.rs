//! Debian package versions (`[epoch:]upstream[-revision]`) and their ordering.
//!
//! Spec: Debian Policy §5.6.12 "Version"
//! (<https://www.debian.org/doc/debian-policy/ch-controlfields.html#version>).

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version. Ordering follows dpkg: epoch numerically, then upstream version,
/// then Debian revision, each compared with the policy's alternating non-digit / digit
/// algorithm where `~` sorts before everything, even the end of the string.
#[derive(Clone, Debug)]
pub struct Version {
    text: String,
    epoch: u64,
    upstream: (usize, usize),
    revision: (usize, usize),
}

/// Why a version string is not a Debian version.
#[derive(Debug, thiserror::Error)]
#[error("parsing version `{text}`: {reason}")]
pub struct VersionError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Version {
    /// Parses `text`, returning an error when the epoch is not a number, the upstream part is
    /// empty or does not start with a digit, or a character outside policy's set appears.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError {
            text: text.to_owned(),
            reason,
        };
        let (epoch, rest_start) = match text.split_once(':') {
            Some((e, _)) => {
                let epoch = e
                    .parse::<u64>()
                    .map_err(|_| err("the epoch is not a number"))?;
                (epoch, e.len() + 1)
            }
            None => (0, 0),
        };
        let rest = &text[rest_start..];
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => (
                (rest_start, rest_start + i),
                (rest_start + i + 1, text.len()),
            ),
            None => ((rest_start, text.len()), (text.len(), text.len())),
        };
        let up = &text[upstream.0..upstream.1];
        if !up.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("the upstream version must start with a digit"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !up.chars().all(allowed) {
            return Err(err(
                "the upstream version has a character outside `A-Za-z0-9.+~-:`",
            ));
        }
        let rev = &text[revision.0..revision.1];
        if rest.contains('-') && rev.is_empty() {
            return Err(err("the Debian revision after `-` is empty"));
        }
        if !rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
        {
            return Err(err(
                "the Debian revision has a character outside `A-Za-z0-9.+~`",
            ));
        }
        Ok(Version {
            text: text.to_owned(),
            epoch,
            upstream,
            revision,
        })
    }

    /// Returns the version exactly as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// The weight of one non-digit character: `~` before the end of the string, the end before
/// letters, letters before everything else (dpkg's `order()`).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit prefixes, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let ord = order(ca).cmp(&order(cb));
            if ord != Ordering::Equal {
                return ord;
            }
            a = &a[1..];
            b = &b[1..];
        }
        // The digit runs, numerically (without overflow: compare stripped lengths first).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

/// A version relation of a dependency: `<<`, `<=`, `=`, `>=`, `>>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `<<`: strictly earlier.
    Earlier,
    /// `<=` (and the obsolete `<`): earlier or equal.
    EarlierOrEqual,
    /// `=`: exactly equal.
    Equal,
    /// `>=` (and the obsolete `>`): later or equal.
    LaterOrEqual,
    /// `>>`: strictly later.
    Later,
}

impl Relation {
    /// Parses a relation operator, accepting policy's obsolete `<` and `>` as `<=` and `>=`.
    pub fn parse(op: &str) -> Option<Relation> {
        Some(match op {
            "<<" => Relation::Earlier,
            "<=" | "<" => Relation::EarlierOrEqual,
            "=" => Relation::Equal,
            ">=" | ">" => Relation::LaterOrEqual,
            ">>" => Relation::Later,
            _ => return None,
        })
    }

    /// Returns whether `candidate RELATION wanted` holds.
    pub fn holds(self, candidate: &Version, wanted: &Version) -> bool {
        let ord = candidate.cmp(wanted);
        match self {
            Relation::Earlier => ord == Ordering::Less,
            Relation::EarlierOrEqual => ord != Ordering::Greater,
            Relation::Equal => ord == Ordering::Equal,
            Relation::LaterOrEqual => ord != Ordering::Less,
            Relation::Later => ord == Ordering::Greater,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::Earlier => "<<",
            Relation::EarlierOrEqual => "<=",
            Relation::Equal => "=",
            Relation::LaterOrEqual => ">=",
            Relation::Later => ">>",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn policy_examples_of_tilde() {
        // Policy §5.6.12: "~~ < ~~a < ~ < the empty part < a".
        let ordered = ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a"];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn epochs_dominate() {
        assert!(v("1:0.1") > v("9.9"));
        assert!(v("2:1.0") > v("1:9.9"));
        assert_eq!(v("0:1.2-3"), v("1.2-3"));
    }

    #[test]
    fn numeric_runs_compare_as_numbers() {
        assert!(v("1.10") > v("1.9"));
        assert!(v("1.002") == v("1.2"));
        assert!(v("2.30-1") > v("2.3-1"));
        assert!(v("123456789012345678901234567890") > v("99999999999999999999999999999"));
    }

    #[test]
    fn revisions_and_real_debian_versions() {
        assert!(v("1.0-1") < v("1.0-2"));
        assert!(v("1.0-1") < v("1.0-1+deb13u1"));
        assert!(v("1.0-1~bpo12+1") < v("1.0-1"));
        assert!(v("2.41-12") < v("2.41-12+deb13u1"));
        assert!(v("3.5.1-1~deb13u1") < v("3.5.1-1"));
        assert!(v("1.0") < v("1.0-0.1"));
        assert!(
            v("1.2-3-4") > v("1.2-3"),
            "the revision is after the last hyphen"
        );
        assert!(v("1.0+dfsg") > v("1.0"));
        assert!(v("1.0a") < v("1.0+"), "letters sort before non-letters");
    }

    #[test]
    fn relations() {
        use Relation::*;
        assert!(Earlier.holds(&v("1.0"), &v("1.1")));
        assert!(!Earlier.holds(&v("1.1"), &v("1.1")));
        assert!(EarlierOrEqual.holds(&v("1.1"), &v("1.1")));
        assert!(Equal.holds(&v("0:1.1"), &v("1.1")));
        assert!(LaterOrEqual.holds(&v("1.1~rc1"), &v("1.1~")));
        assert!(Later.holds(&v("1:0"), &v("5")));
        assert_eq!(Relation::parse(">"), Some(LaterOrEqual));
        assert_eq!(Relation::parse("!="), None);
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in ["", "a1.0", "x:1.0", "1.0-", "1.0 2", "1.0-r_1"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
