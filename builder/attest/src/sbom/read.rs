//! Reading the packages back out of an SBOM, SPDX or CycloneDX JSON, for summaries.

use serde::Deserialize;
use serde_json::Value;

use super::error::SbomError;
use super::package::Ecosystem;

/// Returns the ecosystem and package URL of every package in an SPDX or CycloneDX JSON
/// `document`, in document order.
///
/// The format is told by `spdxVersion` or `bomFormat`. Packages without a purl, and
/// purls of types kiln does not catalog (the image's own `pkg:oci/…` among them), are
/// left out, so documents written by other tools read as far as kiln understands them.
pub fn read_packages(document: &[u8]) -> Result<Vec<(Ecosystem, String)>, SbomError> {
    let json: Value = serde_json::from_slice(document).map_err(|source| SbomError::Json {
        format: "SBOM",
        source,
    })?;
    let purls: Vec<String> = if json.get("spdxVersion").is_some() {
        let doc: SpdxDocument = serde_json::from_value(json).map_err(|source| SbomError::Json {
            format: "SPDX",
            source,
        })?;
        doc.packages
            .into_iter()
            .flat_map(|p| p.external_refs)
            .filter(|r| r.reference_type == "purl")
            .map(|r| r.reference_locator)
            .collect()
    } else if json.get("bomFormat").is_some() {
        let bom: CycloneDxBom = serde_json::from_value(json).map_err(|source| SbomError::Json {
            format: "CycloneDX",
            source,
        })?;
        bom.components.into_iter().filter_map(|c| c.purl).collect()
    } else {
        return Err(SbomError::UnknownFormat);
    };
    Ok(purls
        .into_iter()
        .filter_map(|purl| Some((Ecosystem::from_purl(&purl)?, purl)))
        .collect())
}

#[derive(Deserialize)]
struct SpdxDocument {
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(default)]
    external_refs: Vec<SpdxExternalRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxExternalRef {
    reference_type: String,
    reference_locator: String,
}

#[derive(Deserialize)]
struct CycloneDxBom {
    #[serde(default)]
    components: Vec<CycloneDxComponent>,
}

#[derive(Deserialize)]
struct CycloneDxComponent {
    purl: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_foreign_documents_as_far_as_it_understands_them() {
        let spdx = br#"{"spdxVersion": "SPDX-2.3", "packages": [
            {"name": "no refs"},
            {"externalRefs": [
                {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:x"},
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:pypi/flask@3.0.0"},
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:npm/express@4.21.2"}
            ]}]}"#;
        assert_eq!(
            read_packages(spdx).unwrap(),
            [(Ecosystem::Npm, "pkg:npm/express@4.21.2".to_string())]
        );
        let cdx = br#"{"bomFormat": "CycloneDX", "components": [
            {"name": "x"}, {"purl": "pkg:golang/stdlib@go1.26.8"}, {"purl": "pkg:deb/debian/a@1"}]}"#;
        assert_eq!(
            read_packages(cdx).unwrap(),
            [
                (Ecosystem::Golang, "pkg:golang/stdlib@go1.26.8".to_string()),
                (Ecosystem::Deb, "pkg:deb/debian/a@1".to_string()),
            ]
        );
        assert!(
            read_packages(br#"{"bomFormat": "CycloneDX"}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rejects_what_is_neither_format() {
        assert!(matches!(
            read_packages(b"{}"),
            Err(SbomError::UnknownFormat)
        ));
        assert!(matches!(
            read_packages(b"not json"),
            Err(SbomError::Json { format: "SBOM", .. })
        ));
        let err = read_packages(br#"{"spdxVersion": "SPDX-2.3", "packages": 3}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("parsing the SBOM document as SPDX JSON"),
            "{err}"
        );
    }
}
