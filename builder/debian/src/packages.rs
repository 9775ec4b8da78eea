//! `Packages` indices: the list of binary packages of one component and architecture, as
//! `Packages.xz`. The compressed bytes are checked against the verified `Release` (size,
//! then SHA-256) before a single byte is decompressed; the decompressed text is checked
//! against the `Release` entry of the uncompressed `Packages` when it is listed.
//!
//! Spec: <https://wiki.debian.org/DebianRepository/Format#A.22Packages.22_Indices>.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::control::{ControlError, Paragraph, parse_paragraphs};
use crate::release::IndexFile;
use crate::version::Version;

/// Decompressed `Packages` larger than this are refused when `Release` does not give the size.
const MAX_PACKAGES_SIZE: u64 = 1 << 30;

/// One binary package of a `Packages` index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEntry {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`amd64`, `all`...).
    pub architecture: String,
    /// `Multi-Arch` (`same`, `foreign`, `allowed`), if set.
    pub multi_arch: Option<String>,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority` (`required`, `important`, `standard`, `optional`...), if set.
    pub priority: Option<String>,
    /// The source package name (`Source` without its version; the package name when absent).
    pub source: String,
    /// The source version, when `Source` gives one that differs from `Version`.
    pub source_version: Option<String>,
    /// `Depends`, folded onto one line (empty when absent).
    pub depends: String,
    /// `Pre-Depends`, folded onto one line (empty when absent).
    pub pre_depends: String,
    /// `Provides`, folded onto one line (empty when absent).
    pub provides: String,
    /// `Filename`: the `.deb`'s path under the mirror root (`pool/main/...`).
    pub filename: String,
    /// `Size` of the `.deb` in bytes.
    pub size: u64,
    /// `SHA256` of the `.deb`, lower-case hex.
    pub sha256: String,
    /// `Installed-Size` in KiB (0 when absent).
    pub installed_size: u64,
    /// The first line of `Description`.
    pub description: String,
}

/// A parsed `Packages` index: one entry per package name (the highest version when the
/// index lists several).
#[derive(Clone, Debug, Default)]
pub struct PackageIndex {
    /// Entries by package name.
    pub packages: BTreeMap<String, PackageEntry>,
}

impl PackageIndex {
    /// Adds the entries of `other` whose names this index does not have yet (the first
    /// component listed in the definition wins, as `main` should).
    pub fn merge(&mut self, other: PackageIndex) {
        for (name, entry) in other.packages {
            self.packages.entry(name).or_insert(entry);
        }
    }
}

impl PackageIndex {
    /// Lays `other` (an extra suite's index) over this one: each package of `other` that is
    /// absent here or has a later version replaces this index's entry, as apt prefers the
    /// newest candidate among equally pinned suites. Returns the names taken from `other`.
    pub fn overlay(&mut self, other: PackageIndex) -> Vec<String> {
        let mut taken = Vec::new();
        for (name, entry) in other.packages {
            let newer = match self.packages.get(&name) {
                None => true,
                Some(old) => match (Version::parse(&entry.version), Version::parse(&old.version)) {
                    (Ok(new), Ok(old)) => new > old,
                    _ => false,
                },
            };
            if newer {
                self.packages.insert(name.clone(), entry);
                taken.push(name);
            }
        }
        taken
    }
}

/// Why a `Packages` index was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackagesError {
    /// The downloaded size differs from `Release`.
    #[error(
        "Hash Sum mismatch: `{path}` is {actual} bytes but `Release` says {expected}; the mirror is inconsistent or the download was tampered with"
    )]
    Size {
        /// The index path.
        path: String,
        /// `Release`'s size.
        expected: u64,
        /// The downloaded size.
        actual: u64,
    },
    /// The SHA-256 differs from `Release`.
    #[error(
        "Hash Sum mismatch: `{path}` has sha256 `{actual}` but `Release` says `{expected}`; the mirror is inconsistent or the download was tampered with"
    )]
    Digest {
        /// The index path.
        path: String,
        /// `Release`'s digest.
        expected: String,
        /// The computed digest.
        actual: String,
    },
    /// xz decompression failed or the result is too large.
    #[error("decompressing `{path}`: {reason}")]
    Decompress {
        /// The index path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The text is not deb822 control data.
    #[error("parsing `{path}`")]
    Syntax {
        /// The index path.
        path: String,
        /// The control-data error.
        source: ControlError,
    },
    /// A stanza lacks a field or has a malformed one.
    #[error("parsing `{path}` line {line} (package `{package}`): {reason}")]
    Stanza {
        /// The index path.
        path: String,
        /// The stanza's first line.
        line: usize,
        /// The package name, or `?`.
        package: String,
        /// What is wrong.
        reason: String,
    },
}

/// Checks `xz` against `expected` (size, then SHA-256), decompresses it, checks the result
/// against `uncompressed` when given, and parses it. `expected.path` names the file in errors.
pub fn parse_packages_xz(
    xz: &[u8],
    expected: &IndexFile,
    uncompressed: Option<&IndexFile>,
) -> Result<PackageIndex, PackagesError> {
    check_bytes(xz, expected)?;
    let limit = uncompressed.map_or(MAX_PACKAGES_SIZE, |u| u.size);
    let mut text = Vec::with_capacity(usize::try_from(limit.min(MAX_PACKAGES_SIZE)).unwrap_or(0));
    let decompress = |reason: String| PackagesError::Decompress {
        path: expected.path.clone(),
        reason,
    };
    liblzma::read::XzDecoder::new_multi_decoder(xz)
        .take(limit + 1)
        .read_to_end(&mut text)
        .map_err(|e| decompress(e.to_string()))?;
    if text.len() as u64 > limit {
        return Err(decompress(format!("it expands beyond {limit} bytes")));
    }
    if let Some(u) = uncompressed {
        check_bytes(&text, u)?;
    }
    let text = String::from_utf8(text).map_err(|_| decompress("the index is not UTF-8".into()))?;
    parse_packages(&text, &expected.path)
}

fn check_bytes(bytes: &[u8], expected: &IndexFile) -> Result<(), PackagesError> {
    if bytes.len() as u64 != expected.size {
        return Err(PackagesError::Size {
            path: expected.path.clone(),
            expected: expected.size,
            actual: bytes.len() as u64,
        });
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected.sha256 {
        return Err(PackagesError::Digest {
            path: expected.path.clone(),
            expected: expected.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Parses the text of a `Packages` index; `path` names it in errors.
pub fn parse_packages(text: &str, path: &str) -> Result<PackageIndex, PackagesError> {
    let paragraphs = parse_paragraphs(text).map_err(|source| PackagesError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    let mut index = PackageIndex::default();
    let mut versions: HashMap<String, Version> = HashMap::new();
    for p in &paragraphs {
        let entry = entry(p).map_err(|reason| PackagesError::Stanza {
            path: path.to_owned(),
            line: p.line,
            package: p.value("Package").unwrap_or("?").to_owned(),
            reason,
        })?;
        let version = Version::parse(&entry.version).map_err(|e| PackagesError::Stanza {
            path: path.to_owned(),
            line: p.line,
            package: entry.package.clone(),
            reason: e.to_string(),
        })?;
        if versions
            .get(&entry.package)
            .is_some_and(|seen| *seen >= version)
        {
            continue;
        }
        versions.insert(entry.package.clone(), version);
        index.packages.insert(entry.package.clone(), entry);
    }
    Ok(index)
}

fn entry(p: &Paragraph<'_>) -> Result<PackageEntry, String> {
    let required = |name: &str| {
        p.value(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("the `{name}` field is missing"))
    };
    let number = |name: &str| -> Result<u64, String> {
        p.value(name).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| format!("`{name}` is not a number: `{v}`"))
        })
    };
    let folded = |name: &str| p.get(name).map(|f| f.folded()).unwrap_or_default();
    let package = required("Package")?;
    let version = required("Version")?;
    let (source, source_version) = match p.value("Source") {
        Some(s) => match s.split_once('(') {
            Some((name, v)) => (
                name.trim().to_owned(),
                Some(v.trim_end_matches(')').trim().to_owned()).filter(|sv| *sv != version),
            ),
            None => (s.to_owned(), None),
        },
        None => (package.clone(), None),
    };
    let sha256 = required("SHA256")?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`SHA256` is not a SHA-256 digest: `{sha256}`"));
    }
    let filename = required("Filename")?;
    if filename.starts_with('/') || filename.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(format!(
            "`Filename` is not a relative pool path: `{filename}`"
        ));
    }
    if p.value("Size").is_none() {
        return Err("the `Size` field is missing".into());
    }
    Ok(PackageEntry {
        architecture: required("Architecture")?,
        multi_arch: p.value("Multi-Arch").map(str::to_owned),
        essential: p.value("Essential") == Some("yes"),
        priority: p.value("Priority").map(str::to_owned),
        source,
        source_version,
        depends: folded("Depends"),
        pre_depends: folded("Pre-Depends"),
        provides: folded("Provides"),
        filename,
        size: number("Size")?,
        sha256,
        installed_size: number("Installed-Size")?,
        description: p.value("Description").unwrap_or("").to_owned(),
        package,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "\
Package: ca-certificates
Version: 20250419
Installed-Size: 425
Maintainer: Julien Cristau <jcristau@debian.org>
Architecture: all
Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0
Description: Common CA certificates
 Contains the certificate authorities shipped with Mozilla's browser.
Multi-Arch: foreign
Priority: optional
Filename: pool/main/c/ca-certificates/ca-certificates_20250419_all.deb
Size: 162364
SHA256: 9f4b7a8c3e0d2c6a1b5e7f9d0c2a4b6e8f0a1c3e5d7b9f1a3c5e7d9b0f2a4c6e

Package: libssl3t64
Source: openssl (3.5.1-1)
Version: 3.5.1-1+b1
Installed-Size: 7000
Architecture: amd64
Provides: libssl3 (= 3.5.1-1+b1)
Pre-Depends: libc6 (>= 2.34)
Depends: libzstd1 (>= 1.5.5)
Priority: optional
Filename: pool/main/o/openssl/libssl3t64_3.5.1-1+b1_amd64.deb
Size: 2000000
SHA256: 0000000000000000000000000000000000000000000000000000000000000001
Description: Secure Sockets Layer toolkit - shared libraries
";

    #[test]
    fn an_overlay_takes_newer_and_new_packages_only() {
        let mut main = parse_packages(SAMPLE, "Packages").unwrap();
        let security = SAMPLE
            .replace("Version: 3.5.1-1+b1", "Version: 3.5.1-1+deb13u1")
            .replace("Version: 20250419", "Version: 20240203")
            .replace("Package: ca-certificates", "Package: ca-certificates-old");
        let mut security = parse_packages(&security, "Packages").unwrap();
        let older = parse_packages(
            &SAMPLE
                .replace("Package: libssl3t64", "Package: keep")
                .replace(
                    "Package: ca-certificates\nVersion: 20250419",
                    "Package: ca-certificates\nVersion: 20200601",
                ),
            "Packages",
        )
        .unwrap();
        security.packages.extend(
            older
                .packages
                .into_iter()
                .filter(|(n, _)| n == "ca-certificates"),
        );
        let taken = main.overlay(security);
        assert_eq!(taken, ["ca-certificates-old", "libssl3t64"]);
        assert_eq!(main.packages["libssl3t64"].version, "3.5.1-1+deb13u1");
        assert_eq!(
            main.packages["ca-certificates"].version, "20250419",
            "an older version in the overlay never wins"
        );
    }

    #[test]
    fn stanzas_become_entries() {
        let index = parse_packages(SAMPLE, "Packages").unwrap();
        let ca = &index.packages["ca-certificates"];
        assert_eq!(ca.version, "20250419");
        assert_eq!(ca.source, "ca-certificates");
        assert_eq!(ca.installed_size, 425);
        assert_eq!(
            ca.depends,
            "openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0"
        );
        assert_eq!(ca.description, "Common CA certificates");
        assert_eq!(ca.multi_arch.as_deref(), Some("foreign"));
        let ssl = &index.packages["libssl3t64"];
        assert_eq!(ssl.source, "openssl");
        assert_eq!(ssl.source_version.as_deref(), Some("3.5.1-1"));
        assert_eq!(ssl.pre_depends, "libc6 (>= 2.34)");
    }

    #[test]
    fn the_highest_version_wins_and_bad_stanzas_name_the_package() {
        let twice = format!("{SAMPLE}\n{}", SAMPLE.replace("20250419", "20250101"));
        let index = parse_packages(&twice, "Packages").unwrap();
        assert_eq!(index.packages["ca-certificates"].version, "20250419");
        let bad = SAMPLE.replace("Filename: pool/main/c/", "Filename: ../../");
        let err = parse_packages(&bad, "main/binary-amd64/Packages")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`ca-certificates`") && err.contains("Filename"),
            "{err}"
        );
    }

    #[test]
    fn xz_is_checked_before_decompressing() {
        let xz = liblzma::encode_all(SAMPLE.as_bytes(), 1).unwrap();
        let good = IndexFile {
            path: "main/binary-amd64/Packages.xz".into(),
            size: xz.len() as u64,
            sha256: hex::encode(Sha256::digest(&xz)),
        };
        let plain = IndexFile {
            path: "main/binary-amd64/Packages".into(),
            size: SAMPLE.len() as u64,
            sha256: hex::encode(Sha256::digest(SAMPLE)),
        };
        assert_eq!(
            parse_packages_xz(&xz, &good, Some(&plain))
                .unwrap()
                .packages
                .len(),
            2
        );

        let wrong_hash = IndexFile {
            sha256: "0".repeat(64),
            ..good.clone()
        };
        let err = parse_packages_xz(&xz, &wrong_hash, None).unwrap_err();
        assert!(matches!(err, PackagesError::Digest { .. }), "{err}");
        assert!(err.to_string().contains("`main/binary-amd64/Packages.xz`"));

        let wrong_size = IndexFile {
            size: good.size + 1,
            ..good.clone()
        };
        assert!(matches!(
            parse_packages_xz(&xz, &wrong_size, None),
            Err(PackagesError::Size { .. })
        ));

        let small = IndexFile { size: 10, ..plain };
        assert!(matches!(
            parse_packages_xz(&xz, &good, Some(&small)),
            Err(PackagesError::Decompress { .. })
        ));
    }
}
