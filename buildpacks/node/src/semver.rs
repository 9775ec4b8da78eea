//! npm-style semver (<https://github.com/npm/node-semver#ranges>), just enough to check a
//! Node.js release against `engines.node` (package.json), `.nvmrc` or `.node-version`.
//!
//! Only release versions are ever checked, since Node.js releases have no pre-release tag,
//! so [`Version`] stores none and a pre-release in a range is turned into the equivalent
//! constraint on releases.

use std::fmt;
use std::str::FromStr;

/// node-semver refuses numbers above JavaScript's `Number.MAX_SAFE_INTEGER`. So do we,
/// which also keeps the `+ 1`s of range desugaring from overflowing.
const MAX_NUMBER: u64 = (1 << 53) - 1;

/// A release version `major.minor.patch`, such as the Node.js release `20.11.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The major version: `20` in `20.11.1`.
    pub major: u64,
    /// The minor version: `11` in `20.11.1`.
    pub minor: u64,
    /// The patch version: `1` in `20.11.1`.
    pub patch: u64,
}

impl Version {
    const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for Version {
    type Err = VersionError;

    /// Parses `20.11.1`, `v20.11.1` or `V20.11.1`, with any surrounding whitespace.
    ///
    /// Build metadata (`+…`) is dropped because semver gives it no part in ordering. A
    /// pre-release tag (`-rc.1`) is checked, then dropped as well: Node.js releases never
    /// have one, so `20.0.0-rc.1` is read as `20.0.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let bare = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let reason = match parse_partial(bare).map(|p| (p.major, p.minor, p.patch)) {
            Ok((Some(major), Some(minor), Some(patch))) => {
                return Ok(Self::new(major, minor, patch));
            }
            Ok(_) => "expected three numbers, as in 20.11.1".to_owned(),
            Err(reason) => reason,
        };
        let version = text.to_owned();
        Err(VersionError { version, reason })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a string is not a [`Version`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionError {
    /// The rejected text, trimmed.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { version, reason } = self;
        write!(f, "`{version}` is not a version: {reason}")
    }
}

impl std::error::Error for VersionError {}

/// An npm version range such as `>=18 <21`, `^20.11.0` or `18 || 20 || >=22`: a union
/// (`||`) of comparator sets, each an intersection of `<`, `<=`, `>`, `>=` or `=` bounds.
///
/// It accepts what node-semver accepts, save a few strings its regular expressions let
/// through by accident (`2.2*.0`, a bare `+b`), and it is a little more lenient with
/// prefixes: `==1.2.3`, `v 1.2.3` and `=1.2.3 - 2` are fine here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    text: String,
    /// One interval per comparator set, which is all an intersection of bounds can be.
    sets: Vec<Interval>,
}

impl Range {
    /// Whether `v` satisfies the range, as node-semver's `satisfies(v, range)` would say.
    pub fn matches(&self, v: &Version) -> bool {
        self.sets.iter().any(|set| set.contains(v))
    }
}

impl FromStr for Range {
    type Err = RangeError;

    /// Parses a range; an empty string, like `*`, `x` or `X`, is satisfied by any version.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_owned();
        match text.split("||").map(comparator_set).collect() {
            Ok(sets) => Ok(Self { text, sets }),
            Err(reason) => Err(RangeError {
                range: text,
                reason,
            }),
        }
    }
}

impl fmt::Display for Range {
    /// Prints the range as it was given, trimmed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a string is not a [`Range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeError {
    /// The rejected text, trimmed.
    pub range: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { range, reason } = self;
        write!(f, "`{range}` is not a version range: {reason}")
    }
}

impl std::error::Error for RangeError {}

/// The greatest of `versions` that satisfies `range`, if any.
pub fn max_satisfying<'a>(
    range: &Range,
    versions: impl IntoIterator<Item = &'a Version>,
) -> Option<Version> {
    versions
        .into_iter()
        .filter(|v| range.matches(v))
        .max()
        .copied()
}

const ZERO: Version = Version::new(0, 0, 0);

/// The versions `v` with `low <= v < high`, unbounded above without `high`. Releases are
/// discrete, so every comparator is one: `<=1.2.3` is `<1.2.4` and `>1.2.3` is `>=1.2.4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interval {
    low: Version,
    high: Option<Version>,
}

impl Interval {
    const ANY: Self = Self::new(ZERO, None);
    /// What node-semver writes `<0.0.0-0`.
    const NOTHING: Self = Self::new(ZERO, Some(ZERO));

    const fn new(low: Version, high: Option<Version>) -> Self {
        Self { low, high }
    }

    fn contains(&self, v: &Version) -> bool {
        self.low <= *v && self.high.is_none_or(|high| *v < high)
    }

    fn intersect(self, other: Self) -> Self {
        let high = self.high.into_iter().chain(other.high).min();
        Self::new(self.low.max(other.low), high)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Tilde,
    Caret,
}

/// A version whose trailing numbers may be missing or wildcards: `20`, `20.x`, `20.1.*`.
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    /// Whether a full version had a pre-release tag.
    pre: bool,
    /// Whether numbers followed a wildcard, as in `1.x.3`; they are ignored.
    stray: bool,
}

fn parse_partial(text: &str) -> Result<Partial, String> {
    let (main, suffix) = text.split_at(text.find(['-', '+']).unwrap_or(text.len()));
    let parts: Vec<&str> = main.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("`{text}` has more than three numbers"));
    }
    let mut numbers = [None; 3];
    for (slot, &part) in numbers.iter_mut().zip(&parts) {
        *slot = match part {
            "x" | "X" | "*" => None,
            "" => return Err(format!("`{text}` lacks a number")),
            _ if !part.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!("`{part}` is not a number"));
            }
            _ if part.len() > 1 && part.starts_with('0') => {
                return Err(format!("`{part}` has a leading zero"));
            }
            _ => match part.parse() {
                Ok(n) if n <= MAX_NUMBER => Some(n),
                _ => return Err(format!("`{part}` is too large")),
            },
        };
    }
    // A pre-release tag may contain `-` and needs all three numbers. Build metadata starts
    // at a `+`; node-semver allows it after a partial version, and more `+` in ranges.
    let valid =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let partial_pre = parts.len() < 3 && suffix.starts_with('-');
    let malformed = |ids: &str| !ids.split(['.', '+']).all(valid);
    if partial_pre || suffix.get(1..).is_some_and(malformed) {
        return Err(format!(
            "`{text}` has a malformed pre-release or build suffix"
        ));
    }
    let [major, minor, patch] = numbers;
    let (minor, patch) = (major.and(minor), major.and(minor).and(patch));
    let stray = (minor, patch) != (numbers[1], numbers[2]);
    let pre = patch.is_some() && suffix.starts_with('-');
    Ok(Partial {
        major,
        minor,
        patch,
        pre,
        stray,
    })
}

/// Parses the version of a comparator, which may start with any number of `v` and `=`.
fn partial(version: &str) -> Result<Partial, String> {
    parse_partial(version.trim_start_matches(['v', '=']))
}

fn comparator_set(text: &str) -> Result<Interval, String> {
    // node-semver glues a lone operator, `v` or `=` to the next word: `>= 20` is `>=20`,
    // `1 - v 2` is `1 - v2` and, oddly, `< =2` is `<=2`.
    let (mut words, mut glued) = (Vec::new(), String::new());
    for word in text.split_whitespace() {
        glued.push_str(word);
        if !word.bytes().all(|b| b"<>=~^v".contains(&b)) {
            words.push(std::mem::take(&mut glued));
        }
    }
    if !glued.is_empty() {
        return Err(format!("`{glued}` has no version"));
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    // Hyphen ranges bound a partial version the way `>=` and `<=` do: `1.2 - 2` is
    // `>=1.2.0 <3.0.0`.
    if let [from, "-", to] = words[..] {
        return Ok(desugar(Op::Ge, partial(from)?).intersect(desugar(Op::Le, partial(to)?)));
    }
    let mut set = Interval::ANY;
    for token in words {
        const OPERATORS: [(&str, Op); 8] = [
            ("~>", Op::Tilde),
            ("~", Op::Tilde),
            ("^", Op::Caret),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ];
        let (op, version) = OPERATORS
            .iter()
            .find_map(|&(text, op)| Some((op, token.strip_prefix(text)?)))
            .unwrap_or((Op::Eq, token));
        let p = partial(version)?;
        // node-semver's grammar lets `1.x.3` through after `~`, `^` and in hyphen ranges only.
        if p.stray && !matches!(op, Op::Tilde | Op::Caret) {
            return Err(format!("`{version}` has a number after a wildcard"));
        }
        set = set.intersect(desugar(op, p));
    }
    Ok(set)
}

/// The versions `op p` stands for, after node-semver's `replaceTilde`, `replaceCaret` and
/// `replaceXRange`.
fn desugar(op: Op, p: Partial) -> Interval {
    let Some(major) = p.major else {
        // `*`, `^x`, `>=*`… hold for anything, but nothing is above or below every version.
        let nothing = matches!(op, Op::Lt | Op::Gt);
        return if nothing {
            Interval::NOTHING
        } else {
            Interval::ANY
        };
    };
    let low = Version::new(major, p.minor.unwrap_or(0), p.patch.unwrap_or(0));
    let next_major = Version::new(major + 1, 0, 0);
    let next_minor = Version::new(major, low.minor + 1, 0);
    let next_patch = Version::new(major, low.minor, low.patch + 1);
    // Just above the versions a partial stands for: `1` covers 1.x.x, `1.2` covers 1.2.x.
    let end = match (p.minor, p.patch) {
        (None, _) => next_major,
        (Some(_), None) => next_minor,
        (Some(_), Some(_)) => next_patch,
    };
    match op {
        // A pre-release sorts above every smaller release and below its own, so for
        // releases `>1.2.3-rc` is `>=1.2.3`, `<=1.2.3-rc` is `<1.2.3` and `=1.2.3-rc` is
        // nothing. Similarly a partial stands for all it covers: `>1.2` is `>=1.3.0`.
        Op::Gt | Op::Ge if p.pre => Interval::new(low, None),
        Op::Lt | Op::Le if p.pre => Interval::new(ZERO, Some(low)),
        Op::Eq if p.pre => Interval::NOTHING,
        Op::Gt => Interval::new(end, None),
        Op::Ge => Interval::new(low, None),
        Op::Lt => Interval::new(ZERO, Some(low)),
        Op::Le => Interval::new(ZERO, Some(end)),
        Op::Eq => Interval::new(low, Some(end)),
        // `~1.2.3` allows patch updates only, whereas `~1` allows minor ones.
        Op::Tilde => Interval::new(low, Some(if p.minor.is_some() { next_minor } else { end })),
        // Caret keeps the leftmost non-zero number, counting a missing one as zero
        // except where it is last: `^0.0.x` is `<0.1.0`, `^0.x` is `<1.0.0`.
        Op::Caret => Interval::new(
            low,
            Some(match (major, p.minor, p.patch) {
                (0, Some(0), Some(_)) => next_patch,
                (0, Some(_), _) => next_minor,
                _ => next_major,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn r(s: &str) -> Range {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// (range, versions it admits, versions it does not), per node-semver's `satisfies`.
    const CASES: &[(&str, &[&str], &[&str])] = &[
        ("*", &["0.0.0", "20.11.1"], &[]),
        ("", &["0.0.0", "22.0.0"], &[]),
        ("x", &["18.0.0"], &[]),
        ("X", &["18.0.0"], &[]),
        (">=18 <21", &["18.0.0", "20.99.0"], &["17.9.9", "21.0.0"]),
        ("^20.11.0", &["20.11.0", "20.19.2"], &["20.10.9", "21.0.0"]),
        ("20.x", &["20.0.0", "20.19.2"], &["19.9.9", "21.0.0"]),
        ("20.*", &["20.5.0"], &["21.0.0"]),
        ("20.1.x", &["20.1.0", "20.1.9"], &["20.2.0"]),
        (
            "18 || 20 || >=22",
            &["18.20.4", "20.0.0", "23.1.0"],
            &["19.0.0", "21.7.3"],
        ),
        ("~20.1", &["20.1.0", "20.1.9"], &["20.0.9", "20.2.0"]),
        ("~1.2.3", &["1.2.3", "1.2.9"], &["1.2.2", "1.3.0"]),
        ("~1", &["1.0.0", "1.9.9"], &["2.0.0"]),
        ("~>1.2", &["1.2.5"], &["1.3.0"]),
        (">=20.0.0-0", &["20.0.0", "21.0.0"], &["19.9.9"]),
        (">20.0.0-rc.1", &["20.0.0"], &["19.9.9"]),
        ("<=20.0.0-rc.1", &["19.9.9"], &["20.0.0"]),
        ("20.0.0-rc.1", &[], &["20.0.0"]),
        ("^20.0.0-rc.1+build.5", &["20.0.0", "20.9.0"], &["21.0.0"]),
        ("^0.2.3", &["0.2.3", "0.2.9"], &["0.2.2", "0.3.0"]),
        ("^0.0.3", &["0.0.3"], &["0.0.2", "0.0.4"]),
        ("^0.0.x", &["0.0.0", "0.0.9"], &["0.1.0"]),
        ("^0", &["0.0.0", "0.9.0"], &["1.0.0"]),
        ("^0.x", &["0.5.0"], &["1.0.0"]),
        ("^1.x", &["1.0.0", "1.9.0"], &["2.0.0"]),
        ("^1.2.x", &["1.2.0", "1.9.0"], &["1.1.9", "2.0.0"]),
        ("1.2.3 - 2.3.4", &["1.2.3", "2.3.4"], &["1.2.2", "2.3.5"]),
        ("1.2 - 2", &["1.2.0", "2.9.9"], &["1.1.9", "3.0.0"]),
        ("1.2.3 - 2.3", &["2.3.9"], &["2.4.0"]),
        ("v1.2.3 - v2.3.4", &["2.0.0"], &["2.3.5"]),
        ("* - 2", &["0.0.0"], &["3.0.0"]),
        ("<=20", &["20.0.0", "20.9.0"], &["21.0.0"]),
        ("<20", &["19.9.9"], &["20.0.0"]),
        (">20", &["21.0.0"], &["20.0.0", "20.5.0"]),
        (">=20", &["20.0.0"], &["19.9.9"]),
        ("<=20.1", &["20.1.9"], &["20.2.0"]),
        (">20.1", &["20.2.0"], &["20.1.9"]),
        ("=20.19.2", &["20.19.2"], &["20.19.1", "20.19.3"]),
        ("20.19.2", &["20.19.2"], &["20.19.3"]),
        ("v20", &["20.0.0", "20.3.0"], &["21.0.0"]),
        ("=v20.1", &["20.1.4"], &["20.2.0"]),
        (">= 20", &["20.0.0"], &["19.0.0"]),
        ("  >=  18   <  21  ", &["20.0.0"], &["21.0.0"]),
        ("^ 20", &["20.1.0"], &["21.0.0"]),
        ("< =2", &["2.9.9"], &["3.0.0"]),
        // Quirks: an empty alternative admits anything, and nothing lies above or below
        // every version.
        ("20 ||", &["1.0.0"], &[]),
        (">*", &[], &["0.0.0"]),
        ("<*", &[], &["0.0.0"]),
        (">=*", &["0.0.0"], &[]),
        ("<0", &[], &["0.0.0"]),
        ("20+build", &["20.1.0"], &["21.0.0"]),
        // node-semver's grammar ignores numbers after a wildcard here, but not in `1.x.3`.
        ("~1.x.3", &["1.0.0", "1.9.9"], &["2.0.0"]),
        ("1.x.3 - 2", &["1.0.0"], &["3.0.0"]),
    ];

    #[test]
    fn matches_like_node_semver() {
        let mut count = 0;
        for &(range, yes, no) in CASES {
            let parsed = r(range);
            for &(versions, expected) in &[(yes, true), (no, false)] {
                for version in versions {
                    let got = parsed.matches(&v(version));
                    assert_eq!(got, expected, "`{range}` on {version}: {parsed:?}");
                    count += 1;
                }
            }
        }
        assert!(count >= 40, "only {count} cases");
    }

    /// Comma-separated, as some contain spaces.
    const GARBAGE: &str = ">=2x,node,lts/*,abc,1.2.3.4,>,^,~,~>,1 -,1.2.3 - 2 - 3,>=1.2.3<2,| 1,\
        01.2.3,1.2-rc,1.2.3-,1.2.3+,1.2.3-a..b,1.x.3,v,1..2,9007199254740992,^99999999999999999999";

    #[test]
    fn rejects_garbage() {
        for bad in GARBAGE.split(',') {
            let err = bad.parse::<Range>().expect_err(bad);
            assert_eq!(
                (err.range.as_str(), err.reason.is_empty()),
                (bad.trim(), false)
            );
        }
        let err = ">=2x".parse::<Range>().unwrap_err().to_string();
        assert_eq!(err, "`>=2x` is not a version range: `2x` is not a number");
    }

    #[test]
    fn never_panics() {
        let alphabet = [
            "0", "1", ".", "x", "*", "-", "+", " ", "|", "<", ">", "=", "~", "^", "v",
        ];
        let mut inputs: Vec<String> = GARBAGE.split(',').map(String::from).collect();
        inputs.extend(
            [
                "\u{0}",
                "é.1.2",
                "1.2.3-é",
                "~9007199254740991",
                "1.2.3+a+b",
            ]
            .map(String::from),
        );
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    inputs.push(format!("{a}{b}{c}"));
                    inputs.push(format!("1{a}2{b}3{c}4"));
                }
            }
        }
        for input in &inputs {
            if let Ok(range) = input.parse::<Range>() {
                range.matches(&v("1.2.3"));
            }
            let _ = input.parse::<Version>();
        }
    }

    #[test]
    fn parses_versions() {
        for (text, major, minor, patch) in [
            ("20.11.1", 20, 11, 1),
            ("v20.11.1", 20, 11, 1),
            (" V20.11.1\n", 20, 11, 1),
            ("20.0.0-rc.1", 20, 0, 0),
            ("20.0.0+build.7", 20, 0, 0),
            ("1.2.3-pre-1+b-2", 1, 2, 3),
        ] {
            assert_eq!(v(text), Version::new(major, minor, patch), "{text}");
        }
        for bad in [
            "", "20", "20.11", "20.x.1", "=20.1.1", "vv1.2.3", "lts/iron", "1.2.3.4", "1.2-rc",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        let err = "20.x".parse::<Version>().unwrap_err().to_string();
        assert_eq!(
            err,
            "`20.x` is not a version: expected three numbers, as in 20.11.1"
        );
        assert_eq!(v("v20.11.1").to_string(), "20.11.1");
        assert!(v("20.9.0") < v("20.11.0"));
    }

    #[test]
    fn displays_range_as_given() {
        assert_eq!(r("  >=18   <21 ").to_string(), ">=18   <21");
        assert_eq!(r("^20.11.0 || 22").to_string(), "^20.11.0 || 22");
    }

    #[test]
    fn max_satisfying_picks_the_newest_match() {
        let versions = ["18.20.4", "20.9.0", "20.19.2", "22.3.0", "23.1.0"].map(v);
        for (range, expected) in [
            ("20", Some("20.19.2")),
            ("<=20.10", Some("20.9.0")),
            (">=18 <22", Some("20.19.2")),
            ("18 || 22", Some("22.3.0")),
            ("*", Some("23.1.0")),
            ("^21", None),
        ] {
            let got = max_satisfying(&r(range), &versions);
            assert_eq!(got, expected.map(v), "{range}");
        }
        assert_eq!(max_satisfying(&r("*"), &[]), None);
    }
}
