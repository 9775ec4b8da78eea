//! Manifests on the wire: which references may name one, how large one may be, and which
//! pulled documents kiln refuses to interpret (RELIABILITY.md C05, R13, R15).
//! Spec: distribution-spec "Pulling manifests" and "Pushing Manifests"
//! <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>,
//! image-spec "Image Index" (`manifests` and `layers` never in one document).

use kiln_oci::{Digest, media_types};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::request::Target;
use crate::{ManifestProblem, RegistryError};

/// The largest manifest kiln reads or pushes: the 4 MiB the distribution spec says
/// registries should accept (and distribution's `maxManifestBodySize`).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Media types of Docker's image manifest schema 1.
const SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Checks that `reference` is a tag or a digest before it goes into a URL path.
pub(crate) fn check_reference(t: &Target, reference: &str) -> Result<(), RegistryError> {
    if reference.parse::<Digest>().is_ok() || kiln_oci::is_valid_tag(reference) {
        return Ok(());
    }
    Err(RegistryError::InvalidReference {
        action: t.action.clone(),
        reference: reference.chars().take(200).collect(),
    })
}

/// Checks that manifest `bytes` are small enough to push.
pub(crate) fn check_size(t: &Target, bytes: &[u8]) -> Result<(), RegistryError> {
    let size = bytes.len() as u64;
    if size > MAX_MANIFEST_BYTES {
        return Err(RegistryError::ManifestTooLarge {
            action: t.action.clone(),
            size,
            max: MAX_MANIFEST_BYTES,
        });
    }
    Ok(())
}

/// The fields that say what kind of document a manifest is.
#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<serde_json::Value>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<IgnoredAny>,
    layers: Option<IgnoredAny>,
    config: Option<IgnoredAny>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<IgnoredAny>,
}

/// Returns the media type of the manifest `bytes` that came with `content_type`: the
/// header's (parameters such as `charset` ignored), or the body's `mediaType` when the
/// header is missing or generic. Refuses schema 1, a document that is both an index and an
/// image, a `mediaType` that contradicts the header, and fields of the other kind.
pub(crate) fn media_type_of(
    t: &Target,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<String, RegistryError> {
    let refuse = |problem| RegistryError::BadManifest {
        action: t.action.clone(),
        problem,
    };
    let header = content_type
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty() && v != "application/json" && v != "text/plain");
    if header.as_deref().is_some_and(|h| SCHEMA1.contains(&h)) {
        return Err(refuse(ManifestProblem::Schema1));
    }
    let shape: Shape =
        serde_json::from_slice(bytes).map_err(|_| refuse(ManifestProblem::NotJson))?;
    let body = shape.media_type.as_deref().map(str::to_ascii_lowercase);
    if shape.schema_version.as_ref().and_then(|v| v.as_u64()) == Some(1)
        || shape.fs_layers.is_some()
        || body.as_deref().is_some_and(|b| SCHEMA1.contains(&b))
    {
        return Err(refuse(ManifestProblem::Schema1));
    }
    let has_image_fields = shape.layers.is_some() || shape.config.is_some();
    if shape.manifests.is_some() && has_image_fields {
        return Err(refuse(ManifestProblem::Ambiguous));
    }
    if let (Some(h), Some(b)) = (&header, &body)
        && h != b
    {
        return Err(refuse(ManifestProblem::MediaTypeMismatch {
            header: h.clone(),
            body: b.clone(),
        }));
    }
    let media_type = header.or(body).ok_or_else(|| RegistryError::Protocol {
        action: t.action.clone(),
        detail: "the manifest has neither a `Content-Type` nor a `mediaType`".to_string(),
    })?;
    let is_index = matches!(
        media_type.as_str(),
        media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST
    );
    let is_image = matches!(
        media_type.as_str(),
        media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST
    );
    if is_index && has_image_fields {
        return Err(refuse(ManifestProblem::Shape {
            media_type,
            shape: "an image manifest",
        }));
    }
    if is_image && shape.manifests.is_some() {
        return Err(refuse(ManifestProblem::Shape {
            media_type,
            shape: "an image index",
        }));
    }
    Ok(media_type)
}

#[cfg(test)]
mod tests {
    use kiln_oci::Reference;
    use kiln_oci::media_types::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

    use super::*;

    fn target() -> Target {
        let r: Reference = "127.0.0.1:5000/app".parse().unwrap();
        Target::pull(&r, "pulling manifest `v1` from `127.0.0.1:5000/app`".into())
    }

    fn problem(ct: Option<&str>, body: &str) -> ManifestProblem {
        match media_type_of(&target(), ct, body.as_bytes()) {
            Err(RegistryError::BadManifest { problem, .. }) => problem,
            other => panic!("{ct:?} {body}: expected a refusal, got {other:?}"),
        }
    }

    /// R15 (a)-(d) on the document alone; the fault tests drive the same through a registry.
    #[test]
    fn r15_confusing_manifests_are_refused_and_parameters_ignored() {
        let both = r#"{"schemaVersion":2,"manifests":[],"layers":[],"config":{}}"#;
        for ct in [Some(OCI_INDEX), Some(OCI_MANIFEST), None] {
            assert_eq!(problem(ct, both), ManifestProblem::Ambiguous);
        }
        let said_docker = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}"}}"#);
        assert_eq!(
            problem(Some(OCI_MANIFEST), &said_docker),
            ManifestProblem::MediaTypeMismatch {
                header: OCI_MANIFEST.into(),
                body: DOCKER_MANIFEST.into()
            }
        );
        assert!(matches!(
            problem(Some(OCI_INDEX), r#"{"schemaVersion":2,"layers":[]}"#),
            ManifestProblem::Shape { .. }
        ));
        let ok = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#);
        let with_charset = format!("{OCI_MANIFEST}; charset=utf-8");
        assert_eq!(
            media_type_of(&target(), Some(&with_charset), ok.as_bytes()).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(&target(), Some("application/json"), ok.as_bytes()).unwrap(),
            OCI_MANIFEST
        );
        for (ct, body) in [
            (Some(SCHEMA1[1]), "{}"),
            (None, r#"{"schemaVersion":1,"fsLayers":[]}"#),
            (Some("application/json"), r#"{"schemaVersion":1}"#),
        ] {
            assert_eq!(problem(ct, body), ManifestProblem::Schema1);
        }
        assert_eq!(
            problem(Some(OCI_MANIFEST), "<html>"),
            ManifestProblem::NotJson
        );
    }

    #[test]
    fn c05_only_tags_and_digests_name_manifests() {
        let d = Digest::of(b"m").to_string();
        for ok in ["v1", "latest", "1.0_rc-2", d.as_str()] {
            check_reference(&target(), ok).unwrap();
        }
        for bad in ["../../x", "", "a/b", "sha256:../../x", "v1?x=y", "v1#f"] {
            let err = check_reference(&target(), bad).unwrap_err();
            assert!(
                matches!(err, RegistryError::InvalidReference { .. }),
                "{bad}"
            );
        }
    }
}
