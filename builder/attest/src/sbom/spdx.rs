//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the image is the one package
//! the document describes, and it CONTAINS every cataloged package.

use serde::Serialize;

use super::document::{Entry, SbomInput, prepare, spdx_license_id};
use super::package::Ecosystem;

const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-Image";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

/// Returns the SPDX 2.3 JSON document for `input`, pretty-printed; the same input gives
/// the same bytes.
///
/// The `documentNamespace` ends in a hash of the image and its packages, so it is unique
/// per content as the spec asks, yet reproducible.
pub fn spdx_json(input: &SbomInput) -> Vec<u8> {
    let prepared = prepare(input);
    let subject = &input.subject;
    let namespace = format!(
        "https://kiln.dev/spdxdocs/{}-{}",
        sanitize(subject.name),
        hex::encode(prepared.content_hash)
    );
    let mut packages = vec![SpdxPackage {
        spdx_id: IMAGE_ID.to_string(),
        name: subject.name.to_string(),
        version_info: subject.digest.to_string(),
        supplier: None,
        download_location: NOASSERTION,
        files_analyzed: false,
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION,
        copyright_text: NOASSERTION,
        source_info: None,
        primary_package_purpose: Some("CONTAINER"),
        external_refs: vec![purl_ref(&prepared.image_purl)],
    }];
    packages.extend(prepared.entries.iter().map(package));
    let mut relationships = vec![Relationship {
        spdx_element_id: DOCUMENT_ID.to_string(),
        relationship_type: "DESCRIBES",
        related_spdx_element: IMAGE_ID.to_string(),
    }];
    relationships.extend(packages[1..].iter().map(|p| Relationship {
        spdx_element_id: IMAGE_ID.to_string(),
        relationship_type: "CONTAINS",
        related_spdx_element: p.spdx_id.clone(),
    }));
    let doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: format!("{}@{}", subject.name, subject.digest),
        document_namespace: namespace,
        creation_info: CreationInfo {
            created: prepared.timestamp.clone(),
            creators: vec![format!("Tool: kiln-{}", input.tool_version)],
        },
        packages,
        document_describes: vec![IMAGE_ID],
        relationships,
    };
    let mut out = serde_json::to_vec_pretty(&doc).expect("SPDX document serializes");
    out.push(b'\n');
    out
}

fn package(entry: &Entry) -> SpdxPackage {
    let p = entry.package;
    let name = match p.ecosystem {
        Ecosystem::Npm => p.display_name(),
        _ => p.name.clone(),
    };
    let license = p.license.as_deref().and_then(spdx_license_id);
    SpdxPackage {
        // SPDX ids allow only letters, digits, `.` and `-`; the key is hex.
        spdx_id: format!("SPDXRef-Package-{}-{}", p.ecosystem, entry.key),
        name,
        version_info: p.version.clone(),
        supplier: p.supplier.as_deref().map(supplier),
        download_location: NOASSERTION,
        files_analyzed: false,
        license_concluded: NOASSERTION,
        license_declared: license.unwrap_or(NOASSERTION),
        copyright_text: NOASSERTION,
        source_info: Some(format!("found at {}", p.location)),
        primary_package_purpose: None,
        external_refs: vec![purl_ref(&entry.purl)],
    }
}

/// Debian writes `Name <email>`; SPDX's actor syntax is `Organization: Name (email)`.
fn supplier(maintainer: &str) -> String {
    let maintainer = maintainer.trim();
    match maintainer.split_once('<') {
        Some((name, rest)) if rest.ends_with('>') => {
            let email = &rest[..rest.len() - 1];
            format!("Organization: {} ({email})", name.trim())
        }
        _ => format!("Organization: {maintainer}"),
    }
}

fn purl_ref(purl: &str) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: purl.to_string(),
    }
}

/// Keeps what is safe in a URI path segment.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    document_describes: Vec<&'static str>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: &'static str,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kiln_oci::Digest;
    use serde_json::Value;

    use super::*;
    use crate::sbom::document::Subject;
    use crate::sbom::{fixtures, read_packages};

    fn document(catalog: &crate::sbom::Catalog, digest: &Digest) -> Vec<u8> {
        spdx_json(&SbomInput {
            subject: Subject {
                name: "127.0.0.1:5000/team/app",
                digest,
            },
            catalog,
            created: 1_704_067_200,
            tool_version: "0.3.0",
        })
    }

    #[test]
    fn document_has_the_required_fields_and_relationships() {
        let catalog = fixtures::catalog();
        let digest = Digest::of(b"manifest");
        let bytes = document(&catalog, &digest);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["dataLicense"], "CC0-1.0");
        assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
        assert_eq!(doc["name"], format!("127.0.0.1:5000/team/app@{digest}"));
        let ns = doc["documentNamespace"].as_str().unwrap();
        assert!(
            ns.starts_with("https://kiln.dev/spdxdocs/127.0.0.1-5000-team-app-"),
            "{ns}"
        );
        assert_eq!(
            ns.len(),
            "https://kiln.dev/spdxdocs/127.0.0.1-5000-team-app-".len() + 64
        );
        assert_eq!(doc["creationInfo"]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(doc["creationInfo"]["creators"][0], "Tool: kiln-0.3.0");
        assert_eq!(doc["documentDescribes"][0], IMAGE_ID);

        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), catalog.packages.len() + 1);
        let image = &packages[0];
        assert_eq!(image["SPDXID"], IMAGE_ID);
        assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(image["versionInfo"], digest.to_string());
        assert_eq!(
            image["externalRefs"][0]["referenceLocator"],
            format!(
                "pkg:oci/app@sha256%3A{}?repository_url=127.0.0.1%3A5000%2Fteam%2Fapp",
                digest.hex()
            )
        );
        let ids: BTreeSet<&str> = packages
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), packages.len(), "SPDX ids are unique");
        for id in &ids {
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
                "{id}"
            );
        }
        for p in &packages[1..] {
            for field in [
                "name",
                "versionInfo",
                "downloadLocation",
                "licenseConcluded",
                "licenseDeclared",
                "copyrightText",
            ] {
                assert!(p[field].is_string(), "{field} missing in {p}");
            }
            assert_eq!(p["filesAnalyzed"], false);
            assert_eq!(p["externalRefs"][0]["referenceType"], "purl");
            assert!(p["sourceInfo"].as_str().unwrap().starts_with("found at /"));
        }
        let by_name = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(by_name("@types/node")["licenseDeclared"], "MIT");
        assert_eq!(by_name("odd")["licenseDeclared"], NOASSERTION);
        assert_eq!(by_name("slf4j-api")["versionInfo"], "2.0.9");
        assert!(
            by_name("libc6")["SPDXID"]
                .as_str()
                .unwrap()
                .starts_with("SPDXRef-Package-deb-")
        );
        assert_eq!(
            by_name("libc6")["supplier"],
            "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
        );
        assert_eq!(
            by_name("libgcrypt20")["supplier"],
            "Organization: Debian GnuTLS Maintainers"
        );
        assert!(by_name("stdlib").get("supplier").is_none());

        let relationships = doc["relationships"].as_array().unwrap();
        assert_eq!(relationships.len(), packages.len());
        assert_eq!(relationships[0]["relationshipType"], "DESCRIBES");
        let contained: BTreeSet<&str> = relationships[1..]
            .iter()
            .inspect(|r| assert_eq!(r["relationshipType"], "CONTAINS"))
            .map(|r| r["relatedSpdxElement"].as_str().unwrap())
            .collect();
        assert_eq!(contained.len(), catalog.packages.len());
        assert!(!contained.contains(IMAGE_ID) && contained.is_subset(&ids));
    }

    #[test]
    fn document_is_deterministic_and_reads_back() {
        let catalog = fixtures::catalog();
        let digest = Digest::of(b"manifest");
        let bytes = document(&catalog, &digest);
        assert_eq!(bytes, document(&catalog.clone(), &digest.clone()));
        let other = document(&catalog, &Digest::of(b"other"));
        let ns =
            |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["documentNamespace"].clone();
        assert_ne!(ns(&bytes), ns(&other), "namespace changes with content");

        let read = read_packages(&bytes).unwrap();
        let expected: Vec<_> = catalog
            .packages
            .iter()
            .map(|p| (p.ecosystem, p.purl(catalog.distro.as_ref())))
            .collect();
        assert_eq!(read, expected);
    }
}
