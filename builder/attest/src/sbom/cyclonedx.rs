//! CycloneDX 1.5 JSON (<https://cyclonedx.org/docs/1.5/json/>): the image is the
//! metadata component and depends on every cataloged package.

use serde::Serialize;

use super::document::{Entry, SbomInput, prepare, spdx_license_id};
use super::package::Ecosystem;

const IMAGE_REF: &str = "image";

/// Returns the CycloneDX 1.5 JSON document for `input`, pretty-printed; the same input
/// gives the same bytes.
///
/// The `serialNumber` is a UUID made from a hash of the image and its packages rather
/// than a random one, so it is unique per content yet reproducible.
pub fn cyclonedx_json(input: &SbomInput) -> Vec<u8> {
    let prepared = prepare(input);
    let components: Vec<Component> = prepared.entries.iter().map(component).collect();
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        serial_number: format!("urn:uuid:{}", uuid(&prepared.content_hash)),
        version: 1,
        metadata: Metadata {
            timestamp: prepared.timestamp.clone(),
            tools: Tools {
                components: vec![Tool {
                    kind: "application",
                    name: "kiln",
                    version: input.tool_version.to_string(),
                }],
            },
            component: Component {
                kind: "container",
                bom_ref: IMAGE_REF.to_string(),
                group: None,
                name: input.subject.name.to_string(),
                version: input.subject.digest.to_string(),
                purl: prepared.image_purl.clone(),
                licenses: Vec::new(),
                properties: Vec::new(),
            },
        },
        dependencies: vec![Dependency {
            reference: IMAGE_REF.to_string(),
            depends_on: components.iter().map(|c| c.bom_ref.clone()).collect(),
        }],
        components,
    };
    let mut out = serde_json::to_vec_pretty(&bom).expect("CycloneDX document serializes");
    out.push(b'\n');
    out
}

fn component(entry: &Entry) -> Component {
    let p = entry.package;
    let group = match p.ecosystem {
        Ecosystem::Maven => p.namespace.clone(),
        Ecosystem::Npm => p.namespace.as_ref().map(|scope| format!("@{scope}")),
        Ecosystem::Deb | Ecosystem::Golang => None,
    };
    // The schema only accepts license list ids in `id`; anything else is left out rather
    // than put in `name`, where a scanner would have to guess anyway.
    let licenses = p
        .license
        .as_deref()
        .and_then(spdx_license_id)
        .map(|id| LicenseChoice {
            license: License { id },
        })
        .into_iter()
        .collect();
    Component {
        kind: "library",
        bom_ref: format!("pkg-{}", entry.key),
        group,
        name: p.name.clone(),
        version: p.version.clone(),
        purl: entry.purl.clone(),
        licenses,
        properties: vec![Property {
            name: "kiln:location",
            value: p.location.clone(),
        }],
    }
}

/// Formats the first 16 bytes of `hash` as an RFC 4122 name-based (version 5 shaped) UUID.
fn uuid(hash: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Tool>,
}

#[derive(Serialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: String,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    name: String,
    version: String,
    purl: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct LicenseChoice {
    license: License,
}

#[derive(Serialize)]
struct License {
    id: &'static str,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
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
        cyclonedx_json(&SbomInput {
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
    fn document_has_the_required_fields_and_dependencies() {
        let catalog = fixtures::catalog();
        let digest = Digest::of(b"manifest");
        let bom: Value = serde_json::from_slice(&document(&catalog, &digest)).unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["version"], 1);
        let serial = bom["serialNumber"].as_str().unwrap();
        let uuid = serial.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
        assert_eq!(&uuid[14..15], "5", "version nibble");
        assert!("89ab".contains(&uuid[19..20]), "variant bits: {uuid}");

        let meta = &bom["metadata"];
        assert_eq!(meta["timestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(meta["tools"]["components"][0]["name"], "kiln");
        assert_eq!(meta["tools"]["components"][0]["version"], "0.3.0");
        assert_eq!(meta["component"]["type"], "container");
        assert_eq!(meta["component"]["bom-ref"], IMAGE_REF);
        assert_eq!(meta["component"]["version"], digest.to_string());
        assert!(
            meta["component"]["purl"]
                .as_str()
                .unwrap()
                .starts_with("pkg:oci/app@sha256%3A")
        );

        let components = bom["components"].as_array().unwrap();
        assert_eq!(components.len(), catalog.packages.len());
        let refs: BTreeSet<&str> = components
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), components.len(), "bom-refs are unique");
        assert!(!refs.contains(IMAGE_REF));
        for c in components {
            assert_eq!(c["type"], "library");
            assert!(c["purl"].as_str().unwrap().starts_with("pkg:"));
            assert_eq!(c["properties"][0]["name"], "kiln:location");
        }
        let by_name = |name: &str| components.iter().find(|c| c["name"] == name).unwrap();
        let node = by_name("node");
        assert_eq!(node["group"], "@types");
        assert_eq!(node["purl"], "pkg:npm/%40types/node@20.1.0");
        assert_eq!(node["licenses"][0]["license"]["id"], "MIT");
        assert!(by_name("odd").get("licenses").is_none());
        assert_eq!(by_name("slf4j-api")["group"], "org.slf4j");
        assert!(by_name("libc6").get("group").is_none());
        assert_eq!(
            by_name("libc6")["properties"][0]["value"],
            "/var/lib/dpkg/status.d/libc6"
        );

        let deps = bom["dependencies"].as_array().unwrap();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0]["ref"], IMAGE_REF);
        let depends: BTreeSet<&str> = deps[0]["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(depends, refs);
    }

    #[test]
    fn document_is_deterministic_and_reads_back() {
        let catalog = fixtures::catalog();
        let digest = Digest::of(b"manifest");
        let bytes = document(&catalog, &digest);
        assert_eq!(bytes, document(&catalog.clone(), &digest.clone()));
        let serial = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["serialNumber"].clone();
        assert_ne!(
            serial(&bytes),
            serial(&document(&catalog, &Digest::of(b"other")))
        );

        let read = read_packages(&bytes).unwrap();
        let expected: Vec<_> = catalog
            .packages
            .iter()
            .map(|p| (p.ecosystem, p.purl(catalog.distro.as_ref())))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn uuid_has_version_5_and_rfc4122_variant() {
        assert_eq!(uuid(&[0xff; 32]), "ffffffff-ffff-5fff-bfff-ffffffffffff");
        assert_eq!(uuid(&[0; 32]), "00000000-0000-5000-8000-000000000000");
    }
}
