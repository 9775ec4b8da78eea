//! What SPDX and CycloneDX documents share: the input, package identities that are unique
//! and stable, the content hash that names the document, and license ids.

use std::collections::BTreeSet;

use kiln_oci::Digest;
use sha2::{Digest as _, Sha256};

use super::catalog::Catalog;
use super::package::Package;
use super::purl::oci_purl;

/// The image an SBOM describes.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The repository it is pushed to, e.g. `127.0.0.1:5000/team/app`.
    pub name: &'a str,
    /// The digest of the image manifest.
    pub digest: &'a Digest,
}

/// Everything an SBOM document is made from; the same input gives the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct SbomInput<'a> {
    /// The image.
    pub subject: Subject<'a>,
    /// Its packages.
    pub catalog: &'a Catalog,
    /// The document's creation time in unix seconds, from SOURCE_DATE_EPOCH rather than the
    /// clock so rebuilding gives the same document.
    pub created: i64,
    /// kiln's version, recorded as the creating tool.
    pub tool_version: &'a str,
}

/// One package as both formats name it.
pub(crate) struct Entry<'a> {
    pub package: &'a Package,
    pub purl: String,
    /// 16 hex of sha256(purl + location), made unique within the document.
    pub key: String,
}

/// The parts of a document derived from the input.
pub(crate) struct Prepared<'a> {
    pub entries: Vec<Entry<'a>>,
    /// sha256 over the subject and every package's purl and location.
    pub content_hash: [u8; 32],
    /// RFC 3339 UTC, seconds precision.
    pub timestamp: String,
    pub image_purl: String,
}

pub(crate) fn prepare<'a>(input: &SbomInput<'a>) -> Prepared<'a> {
    let distro = input.catalog.distro.as_ref();
    let mut seen = BTreeSet::new();
    let mut hasher = Sha256::new();
    hasher.update(input.subject.digest.to_string());
    hasher.update(b"\n");
    hasher.update(input.subject.name);
    hasher.update(b"\n");
    let entries = input
        .catalog
        .packages
        .iter()
        .map(|package| {
            let purl = package.purl(distro);
            hasher.update(&purl);
            hasher.update(b"\t");
            hasher.update(&package.location);
            hasher.update(b"\n");
            let hash = Sha256::new()
                .chain_update(&purl)
                .chain_update(&package.location)
                .finalize();
            let base = hex::encode(&hash[..8]);
            // Only a catalog built by hand can repeat a purl at one location; the ids must
            // stay unique all the same.
            let mut key = base.clone();
            let mut n = 1;
            while !seen.insert(key.clone()) {
                n += 1;
                key = format!("{base}-{n}");
            }
            Entry { package, purl, key }
        })
        .collect();
    Prepared {
        entries,
        content_hash: hasher.finalize().into(),
        timestamp: rfc3339(input.created),
        image_purl: oci_purl(input.subject.name, input.subject.digest),
    }
}

/// Formats unix seconds as `YYYY-MM-DDThh:mm:ssZ`, clamped to years 1970–9999, which is
/// all both schemas' date-time formats accept.
fn rfc3339(secs: i64) -> String {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    chrono::DateTime::from_timestamp(secs.clamp(0, MAX), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The SPDX license list ids that both validators kiln is checked against accept (the
/// CycloneDX 1.5 schema's enum and the SPDX tools' license list).
const LICENSE_IDS: &str = include_str!("spdx_license_ids.txt");

/// Returns the canonical SPDX license id for `license` when it is one id from the list;
/// expressions and free text are not guessed at.
pub(crate) fn spdx_license_id(license: &str) -> Option<&'static str> {
    let simple = !license.is_empty()
        && license
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    if !simple {
        return None;
    }
    // SPDX matches ids case-insensitively; the documents carry the list's spelling.
    LICENSE_IDS
        .lines()
        .find(|id| id.eq_ignore_ascii_case(license))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::package::Ecosystem;

    #[test]
    fn timestamps_are_utc_seconds() {
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn license_ids_are_canonicalized_or_refused() {
        assert_eq!(spdx_license_id("mit"), Some("MIT"));
        assert_eq!(spdx_license_id("Apache-2.0"), Some("Apache-2.0"));
        assert_eq!(spdx_license_id("GPL-2.0+"), Some("GPL-2.0+"));
        assert_eq!(spdx_license_id("MIT OR Apache-2.0"), None);
        assert_eq!(spdx_license_id("Made-Up-1.0"), None);
        assert_eq!(spdx_license_id("SEE LICENSE IN LICENSE.md"), None);
        assert_eq!(spdx_license_id(""), None);
    }

    #[test]
    fn repeated_packages_still_get_unique_keys() {
        let p = Package::new(Ecosystem::Npm, None, "a", "1", "/x");
        let catalog = Catalog {
            packages: vec![p.clone(), p],
            distro: None,
        };
        let digest = Digest::of(b"m");
        let input = SbomInput {
            subject: Subject {
                name: "r/app",
                digest: &digest,
            },
            catalog: &catalog,
            created: 0,
            tool_version: "0",
        };
        let prepared = prepare(&input);
        let (a, b) = (&prepared.entries[0].key, &prepared.entries[1].key);
        assert_eq!(a.len(), 16);
        assert_eq!(b, &format!("{a}-2"));
    }
}
