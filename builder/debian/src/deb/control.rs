//! A package's `control.tar`: its `control` stanza (kept verbatim for `status.d`) and its
//! `md5sums`. Maintainer scripts are never read, only named: kiln does not run them, and
//! records which ones it skipped.
//!
//! Spec: deb(5), deb-control(5) (<https://manpages.debian.org/deb-control.5>).

use std::io::Read;
use std::path::Path;

use crate::control::parse_paragraphs;
use crate::deb::DebError;
use crate::deb::decompress::{Limited, MemberCompression};

/// The most a decompressed `control.tar` may hold: maintainer scripts, `md5sums`,
/// `triggers`, `conffiles` and `shlibs` of the largest Debian packages fit many times over.
const CONTROL_TAR_MAX: u64 = 64 << 20;

/// The most a `control` file may hold.
const CONTROL_MAX: u64 = 1 << 20;

/// The most an `md5sums` file may hold (one ~60-byte line per file shipped).
const MD5SUMS_MAX: u64 = 32 << 20;

/// The `control.tar` members dpkg runs or acts on at install time (deb-preinst(5) and
/// siblings, deb-triggers(5)): what kiln skips.
const MAINTAINER_SCRIPTS: [&str; 6] = [
    "preinst", "postinst", "prerm", "postrm", "config", "triggers",
];

/// The parts of `control.tar` kiln keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    /// The `control` file: one deb822 stanza, as shipped.
    pub text: String,
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`, when present.
    pub architecture: Option<String>,
    /// `Installed-Size` in KiB, when present and a number.
    pub installed_size: Option<u64>,
    /// The `md5sums` file, as shipped, when the package has one.
    pub md5sums: Option<Vec<u8>>,
    /// The maintainer scripts and `triggers` the package has, in archive order: none of
    /// them is run.
    pub maintainer_scripts: Vec<String>,
}

impl ControlFile {
    /// Parses a `control` file: exactly one stanza with `Package` and `Version`.
    pub fn parse(text: String) -> Result<Self, String> {
        let paragraphs = parse_paragraphs(&text).map_err(|e| e.to_string())?;
        let [p] = paragraphs.as_slice() else {
            return Err(format!("expected one stanza, found {}", paragraphs.len()));
        };
        let required = |name: &str| {
            p.value(name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("the `{name}` field is missing"))
        };
        let package = required("Package")?;
        let version = required("Version")?;
        let architecture = p.value("Architecture").map(str::to_string);
        let installed_size = p.value("Installed-Size").and_then(|v| v.parse().ok());
        Ok(Self {
            text,
            package,
            version,
            architecture,
            installed_size,
            md5sums: None,
            maintainer_scripts: Vec::new(),
        })
    }

    /// Reads `control.tar` (decompressed with `compression`) from `reader`; `file` names
    /// the `.deb` in errors.
    pub(crate) fn read(
        reader: impl Read,
        compression: MemberCompression,
        file: &Path,
    ) -> Result<Self, DebError> {
        let err = |reason: String| DebError::Control {
            file: file.to_path_buf(),
            reason,
        };
        let decoded = compression
            .decoder(reader)
            .map_err(|e| err(format!("control.tar: {e}")))?;
        let mut archive = tar::Archive::new(Limited::new(decoded, CONTROL_TAR_MAX, "control.tar"));
        let mut control = None;
        let mut md5sums = None;
        let mut scripts = Vec::new();
        let entries = archive
            .entries()
            .map_err(|e| err(format!("control.tar: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| err(format!("control.tar: {e}")))?;
            let path = entry.path_bytes();
            let name = path.strip_prefix(b"./").unwrap_or(&path);
            let (slot, max) = match name {
                b"control" => (&mut control, CONTROL_MAX),
                b"md5sums" => (&mut md5sums, MD5SUMS_MAX),
                other => {
                    if let Some(s) = MAINTAINER_SCRIPTS.iter().find(|s| s.as_bytes() == other)
                        && !scripts.contains(&s.to_string())
                    {
                        scripts.push(s.to_string());
                    }
                    continue;
                }
            };
            let name = String::from_utf8_lossy(name).into_owned();
            if !entry.header().entry_type().is_file() {
                return Err(err(format!("`{name}` is not a regular file")));
            }
            if entry.size() > max {
                return Err(err(format!(
                    "`{name}` is {} bytes, more than the {max} it can be",
                    entry.size()
                )));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry
                .take(max)
                .read_to_end(&mut bytes)
                .map_err(|e| err(format!("control.tar: {e}")))?;
            *slot = Some(bytes);
        }
        let control = control.ok_or_else(|| err("control.tar has no `control` file".into()))?;
        let text = String::from_utf8(control).map_err(|_| err("`control` is not UTF-8".into()))?;
        let mut parsed = Self::parse(text).map_err(err)?;
        parsed.md5sums = md5sums;
        parsed.maintainer_scripts = scripts;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_stanza() {
        let c = ControlFile::parse(
            "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDescription: hi\n more\n".into(),
        )
        .unwrap();
        assert_eq!(
            (c.package.as_str(), c.version.as_str()),
            ("hello", "2.10-3")
        );
        assert_eq!(c.architecture.as_deref(), Some("amd64"));
    }

    #[test]
    fn refuses_missing_fields_and_extra_stanzas() {
        let e = ControlFile::parse("Package: a\n".into()).unwrap_err();
        assert!(e.contains("`Version`"), "{e}");
        let e = ControlFile::parse("Package: a\nVersion: 1\n\nPackage: b\n".into()).unwrap_err();
        assert!(e.contains("one stanza"), "{e}");
    }
}
