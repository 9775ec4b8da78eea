//! The machine's apt sources, read for one thing: the Debian mirror kiln locks against when
//! no mirror is given. kiln never writes a mirror into a repository; the CLI reads
//! `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.{list,sources}` and hands their
//! texts to [`default_mirror`].
//!
//! Formats: `sources.list(5)`, both the one-line style (`deb [opts] URI suite comp...`) and
//! the deb822 style (`Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled:`, `Signed-By:`).

use url::Url;

/// How a sources file is written, decided by its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcesFormat {
    /// `*.sources`: deb822 stanzas.
    Deb822,
    /// `sources.list` and `*.list`: one `deb URI suite components...` line per source.
    OneLine,
}

impl SourcesFormat {
    /// Returns the format apt reads a file of that name in, or `None` when apt ignores the
    /// file (`*.disabled`, `*.save`, backups, anything else).
    pub fn from_file_name(name: &str) -> Option<SourcesFormat> {
        if name.ends_with(".sources") {
            Some(SourcesFormat::Deb822)
        } else if name.ends_with(".list") {
            Some(SourcesFormat::OneLine)
        } else {
            None
        }
    }
}

/// One enabled `deb` source: a base URI and the suites it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSource {
    /// The archive base URI, always ending in `/` so that `dists/...` joins under it.
    pub uri: Url,
    /// The suites (`trixie`, `bookworm-updates`, `trixie-security`...).
    pub suites: Vec<String>,
    /// The `Signed-By` option, when present.
    pub signed_by: Option<String>,
}

impl AptSource {
    fn serves_a_main_suite(&self) -> bool {
        self.suites.iter().any(|s| !s.ends_with("-security"))
    }

    fn looks_like_debian(&self) -> bool {
        self.signed_by
            .as_deref()
            .is_some_and(|s| s.contains("debian-archive"))
            || self.uri.path().trim_end_matches('/').ends_with("/debian")
    }
}

/// Returns every enabled binary (`deb`) source with an `http`/`https` URI, in file order.
pub fn parse_sources<'a>(
    files: impl IntoIterator<Item = (SourcesFormat, &'a str)>,
) -> Vec<AptSource> {
    let mut out = Vec::new();
    for (format, text) in files {
        match format {
            SourcesFormat::Deb822 => parse_deb822(text, &mut out),
            SourcesFormat::OneLine => parse_one_line(text, &mut out),
        }
    }
    out
}

/// Returns the Debian mirror of the machine's apt sources: among enabled `deb` sources that
/// serve at least one suite not ending in `-security` (the security archive is a separate
/// tree), the first one that looks like Debian's archive (a `Signed-By` naming a
/// `debian-archive` keyring, or a URI path ending in `/debian`), else the first of them.
/// `None` when no such source is configured.
pub fn default_mirror<'a>(
    files: impl IntoIterator<Item = (SourcesFormat, &'a str)>,
) -> Option<Url> {
    let sources: Vec<AptSource> = parse_sources(files)
        .into_iter()
        .filter(AptSource::serves_a_main_suite)
        .collect();
    sources
        .iter()
        .find(|s| s.looks_like_debian())
        .or_else(|| sources.first())
        .map(|s| s.uri.clone())
}

/// Returns the Debian security archive of the machine's apt sources: the first enabled `deb`
/// source serving a suite ending in `-security` (any release's: the archive serves them
/// all). `None` when there is none.
pub fn default_security_mirror<'a>(
    files: impl IntoIterator<Item = (SourcesFormat, &'a str)>,
) -> Option<Url> {
    parse_sources(files)
        .into_iter()
        .find(|s| s.suites.iter().any(|x| x.ends_with("-security")))
        .map(|s| s.uri)
}

fn parse_deb822(text: &str, out: &mut Vec<AptSource>) {
    let mut stanza: Vec<(String, String)> = Vec::new();
    let mut flush = |stanza: &mut Vec<(String, String)>| {
        let field = |name: &str| {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let types = field("Types").unwrap_or("");
        let enabled = field("Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
        if enabled && types.split_whitespace().any(|t| t == "deb") {
            let suites: Vec<String> = field("Suites")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let signed_by = field("Signed-By").map(|s| s.trim().to_owned());
            for uri in field("URIs").unwrap_or("").split_whitespace() {
                if let Some(uri) = archive_url(uri) {
                    out.push(AptSource {
                        uri,
                        suites: suites.clone(),
                        signed_by: signed_by.clone(),
                    });
                }
            }
        }
        stanza.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut stanza);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line (an inline keyring in `Signed-By`, most often).
            if let Some((_, value)) = stanza.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            stanza.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    flush(&mut stanza);
}

fn parse_one_line(text: &str, out: &mut Vec<AptSource>) {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_owned);
            rest = after.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some(uri) = archive_url(uri) {
            out.push(AptSource {
                uri,
                suites: vec![suite.to_owned()],
                signed_by,
            });
        }
    }
}

fn archive_url(text: &str) -> Option<Url> {
    let mut url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_skips_security_and_disabled_stanzas() {
        let text = "\
Types: deb
URIs: http://security.example.org/debian-security
Suites: trixie-security
Components: main

Types: deb-src
URIs: http://src.example.org/debian
Suites: trixie

Types: deb
Enabled: no
URIs: http://off.example.org/debian
Suites: trixie

# a comment
Types: deb
URIs: http://mirror.example.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
        let url = default_mirror([(SourcesFormat::Deb822, text)]).unwrap();
        assert_eq!(url.as_str(), "http://mirror.example.org/debian/");
        let security = default_security_mirror([(SourcesFormat::Deb822, text)]).unwrap();
        assert_eq!(
            security.as_str(),
            "http://security.example.org/debian-security/"
        );
        let none = default_security_mirror([(
            SourcesFormat::Deb822,
            &text[text.find("Types: deb-src").unwrap()..],
        )]);
        assert_eq!(none, None);
    }

    #[test]
    fn one_line_with_options_and_comments() {
        let text = "\
# deb http://commented.example.org/debian trixie main
deb-src http://src.example.org/debian trixie main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] https://m.example.org/debian/ trixie main
";
        let url = default_mirror([(SourcesFormat::OneLine, text)]).unwrap();
        assert_eq!(url.as_str(), "https://m.example.org/debian/");
    }

    #[test]
    fn prefers_a_debian_looking_source_over_a_third_party_one() {
        let third = "deb https://deb.example.com/node_22.x nodistro main\n";
        let debian = "Types: deb\nURIs: http://m.example.org/debian\nSuites: trixie\n";
        let url = default_mirror([
            (SourcesFormat::OneLine, third),
            (SourcesFormat::Deb822, debian),
        ])
        .unwrap();
        assert_eq!(url.as_str(), "http://m.example.org/debian/");
    }

    #[test]
    fn nothing_configured_is_none() {
        assert_eq!(
            default_mirror([(SourcesFormat::OneLine, "# empty\n")]),
            None
        );
        assert_eq!(
            default_mirror([(SourcesFormat::OneLine, "deb cdrom:[x]/ trixie main\n")]),
            None
        );
        assert_eq!(SourcesFormat::from_file_name("x.list.disabled"), None);
        assert_eq!(
            SourcesFormat::from_file_name("debian.sources"),
            Some(SourcesFormat::Deb822)
        );
    }
}
