//! The Maven wrapper's settings, `.mvn/wrapper/maven-wrapper.properties`
//! (<https://maven.apache.org/wrapper/>), in the Java properties format
//! (<https://docs.oracle.com/javase/8/docs/api/java/util/Properties.html#load-java.io.Reader->).
//!
//! `./mvnw` downloads the Maven distribution named by `distributionUrl` and runs it, so kiln
//! only lets it do so when `distributionSha256Sum` pins what it downloads.

use std::path::{Path, PathBuf};

/// Where the wrapper's settings live, relative to the app's root.
pub const WRAPPER_PROPERTIES: &str = ".mvn/wrapper/maven-wrapper.properties";

/// The Maven distribution a project's wrapper downloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MavenWrapper {
    /// `distributionUrl`, if set.
    pub distribution_url: Option<String>,
    /// `distributionSha256Sum` (lowercase hex), set whenever `distribution_url` is.
    pub distribution_sha256: Option<String>,
}

/// Why the wrapper's settings are refused.
#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    /// The settings file could not be read.
    #[error("reading `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The wrapper would download Maven without checking what it got.
    #[error(
        "`{}` sets `distributionUrl` (`{url}`) without `distributionSha256Sum`: kiln does not \
         run a downloaded maven it cannot verify",
        path.display()
    )]
    Unpinned {
        /// The file.
        path: PathBuf,
        /// The distribution URL, credentials and query string redacted.
        url: String,
    },
    /// The checksum is not a SHA-256 in hex.
    #[error("`{}`: `distributionSha256Sum` `{value}` is not 64 hex digits", path.display())]
    BadChecksum {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: String,
    },
}

impl WrapperError {
    /// Returns what the user can do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unpinned { .. } | Self::BadChecksum { .. } => Some(
                "pin the distribution: add `distributionSha256Sum=<sha256 of the zip>` to \
                 `.mvn/wrapper/maven-wrapper.properties`, e.g. with \
                 `mvn wrapper:wrapper -DdistributionSha256Sum=<sha256>`"
                    .to_owned(),
            ),
            Self::Read { .. } => None,
        }
    }
}

/// Returns the wrapper settings of the app at `app_dir`, `None` when it has no settings file.
pub fn read_wrapper(app_dir: &Path) -> Result<Option<MavenWrapper>, WrapperError> {
    let path = app_dir.join(WRAPPER_PROPERTIES);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        kiln_lifecycle::read_bounded(&path, kiln_lifecycle::MANIFEST_LIMIT).map_err(|source| {
            WrapperError::Read {
                path: path.clone(),
                source,
            }
        })?;
    parse_wrapper(&String::from_utf8_lossy(&text), &path).map(Some)
}

/// Returns the settings in `text` (read from `path`, named in errors), refusing an
/// unpinned or malformed distribution checksum.
pub fn parse_wrapper(text: &str, path: &Path) -> Result<MavenWrapper, WrapperError> {
    let mut url = None;
    let mut sha = None;
    for (key, value) in properties(text) {
        match key.as_str() {
            "distributionUrl" if !value.is_empty() => url = Some(value),
            "distributionSha256Sum" if !value.is_empty() => sha = Some(value),
            _ => {}
        }
    }
    if let Some(value) = &sha
        && (value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(WrapperError::BadChecksum {
            path: path.to_path_buf(),
            value: value.clone(),
        });
    }
    if let (Some(url), None) = (&url, &sha) {
        return Err(WrapperError::Unpinned {
            path: path.to_path_buf(),
            url: redact(url),
        });
    }
    Ok(MavenWrapper {
        distribution_url: url,
        distribution_sha256: sha.map(|s| s.to_ascii_lowercase()),
    })
}

/// Returns `url` without credentials (`user:pass@`) or query string, fit for a message.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Returns the key/value pairs of a Java properties text, in order, escapes resolved.
fn properties(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.bytes().rev().take_while(|&b| b == b'\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        pairs.push(split(&std::mem::take(&mut logical)));
    }
    if !logical.is_empty() {
        pairs.push(split(&logical));
    }
    pairs
}

/// Splits one logical line at its first unescaped `=`, `:` or whitespace.
fn split(line: &str) -> (String, String) {
    let mut chars = line.chars();
    let mut key = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(unescape(&mut chars)),
            '=' | ':' => break,
            c if c.is_whitespace() => {
                let rest = chars.as_str().trim_start();
                chars = rest.strip_prefix(['=', ':']).unwrap_or(rest).chars();
                break;
            }
            c => key.push(c),
        }
    }
    let mut chars = chars.as_str().trim_start().chars();
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(unescape(&mut chars)),
            c => value.push(c),
        }
    }
    (key, value.trim_end().to_owned())
}

/// Returns the character escaped after a backslash.
fn unescape(chars: &mut std::str::Chars<'_>) -> char {
    match chars.next() {
        Some('t') => '\t',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('f') => '\u{c}',
        Some('u') => {
            let hex: String = chars.by_ref().take(4).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}')
        }
        Some(c) => c,
        None => '\\',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "4ec3f26fb1a692473aea0235c300bd20f0f9fe741947c82c1234cefd76ac3a3c";
    const URL: &str = "https://maven.example.org/maven2/org/apache/maven/apache-maven/3.9.9/apache-maven-3.9.9-bin.zip";

    fn parse(text: &str) -> Result<MavenWrapper, WrapperError> {
        parse_wrapper(text, Path::new(WRAPPER_PROPERTIES))
    }

    #[test]
    fn pinned_distribution_is_accepted() {
        let text = format!(
            "# generated\nwrapperVersion=3.3.2\ndistributionType=only-script\n\
             distributionUrl={URL}\ndistributionSha256Sum={}\n",
            SHA.to_uppercase()
        );
        let got = parse(&text).unwrap();
        assert_eq!(got.distribution_url.as_deref(), Some(URL));
        assert_eq!(got.distribution_sha256.as_deref(), Some(SHA));
    }

    #[test]
    fn b03_unpinned_distribution_is_refused_with_a_hint() {
        let err = parse(&format!("distributionUrl={URL}\n")).unwrap_err();
        assert!(matches!(err, WrapperError::Unpinned { .. }), "{err:?}");
        assert!(err.to_string().contains("distributionSha256Sum"), "{err}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("mvn wrapper:wrapper -DdistributionSha256Sum="),
            "{hint}"
        );
        // An empty checksum pins nothing.
        let empty = parse(&format!("distributionUrl={URL}\ndistributionSha256Sum=\n"));
        assert!(matches!(empty, Err(WrapperError::Unpinned { .. })));
    }

    #[test]
    fn malformed_checksum_is_refused() {
        let text = format!("distributionUrl={URL}\ndistributionSha256Sum=abc123\n");
        let err = parse(&text).unwrap_err();
        assert!(matches!(err, WrapperError::BadChecksum { .. }), "{err:?}");
        assert!(err.hint().is_some());
    }

    #[test]
    fn no_distribution_url_is_accepted() {
        let got = parse("# nothing here\n\nwrapperVersion=3.3.2\n").unwrap();
        assert_eq!(got.distribution_url, None);
        assert_eq!(got.distribution_sha256, None);
    }

    #[test]
    fn java_properties_escapes_and_separators() {
        // Older wrappers write `https\://`; keys may be followed by `:` or spaces.
        let text = format!(
            "distributionUrl = https\\://repo.example/maven\\\n    -3.9.9.zip\n\
             distributionSha256Sum: {SHA}\n! comment\n"
        );
        let got = parse(&text).unwrap();
        assert_eq!(
            got.distribution_url.as_deref(),
            Some("https://repo.example/maven-3.9.9.zip")
        );
        assert_eq!(got.distribution_sha256.as_deref(), Some(SHA));
        assert_eq!(split("a\\u0041b c"), ("aAb".to_owned(), "c".to_owned()));
    }

    #[test]
    fn credentials_never_reach_the_message() {
        let text = "distributionUrl=https://user:s3cret@repo.example/m.zip?token=t0k\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(!err.contains("s3cret") && !err.contains("t0k"), "{err}");
        assert!(err.contains("https://***@repo.example/m.zip"), "{err}");
    }

    #[test]
    fn reads_from_the_app_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_wrapper(dir.path()).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join(".mvn/wrapper")).unwrap();
        std::fs::write(
            dir.path().join(WRAPPER_PROPERTIES),
            format!("distributionUrl={URL}\n"),
        )
        .unwrap();
        let err = read_wrapper(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("maven-wrapper.properties"),
            "{err}"
        );
    }
}
