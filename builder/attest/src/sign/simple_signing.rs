//! The simple-signing payload cosign signs for an image and podman's `sigstoreSigned`
//! policy verifies (containers-signature(5),
//! <https://github.com/containers/image/blob/main/docs/containers-signature.5.md>):
//!
//! `{"critical":{"identity":{"docker-reference":"<ref>"},"image":{"docker-manifest-digest":"sha256:<hex>"},"type":"cosign container image signature"},"optional":null}`
//!
//! containers/image (`signature/internal/sigstore_payload.go`) parses it paranoidly:
//! exactly `critical` and `optional` at the top, exactly `type`, `image` and `identity` in
//! `critical`, exactly one key in each of those, no duplicate keys, `optional` either
//! `null` (what cosign writes without annotations) or an object whose `creator` is a
//! string and `timestamp` an integer. [`parse_simple_signing`] is as strict.

use kiln_oci::Digest;
use serde::{Deserialize, Deserializer, Serialize};

use super::SignError;

const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a simple-signing payload claims: this manifest is the image at this reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedClaim {
    /// The `critical.identity.docker-reference`, e.g. `registry:5000/team/app`.
    pub docker_reference: String,
    /// The `critical.image.docker-manifest-digest`.
    pub manifest_digest: Digest,
}

// Field order is the payload's key order: cosign writes these keys sorted, and the bytes
// are what gets signed, so they are kept identical to cosign's.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    // `null` and an object are both accepted, but the key itself must be there.
    #[serde(deserialize_with = "present_or_null")]
    optional: Option<Optional>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

// Unknown keys in `optional` are annotations (`cosign sign -a k=v`), which
// containers/image ignores too.
#[derive(Serialize, Deserialize)]
struct Optional {
    creator: Option<String>,
    timestamp: Option<f64>,
}

/// Returns the simple-signing payload bytes for `manifest_digest` at `docker_reference`,
/// exactly as cosign writes them (and so what its signature covers).
pub fn simple_signing_payload(docker_reference: &str, manifest_digest: &Digest) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: Image {
                docker_manifest_digest: manifest_digest.to_string(),
            },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("a struct of strings always serializes")
}

/// Parses a simple-signing payload, refusing what containers/image would refuse: other
/// signature types, unknown or duplicate keys, a digest that is not `sha256:<hex>`.
///
/// This does not check any signature; verify the payload bytes first.
pub fn parse_simple_signing(payload: &[u8]) -> Result<SignedClaim, SignError> {
    let parsed: Payload =
        serde_json::from_slice(payload).map_err(|e| SignError::SimpleSigning(e.to_string()))?;
    if parsed.critical.kind != SIGNATURE_TYPE {
        return Err(SignError::SimpleSigning(format!(
            "signature type `{}` is not `{SIGNATURE_TYPE}`",
            parsed.critical.kind
        )));
    }
    if let Some(timestamp) = parsed.optional.and_then(|o| o.timestamp)
        && timestamp.fract() != 0.0
    {
        return Err(SignError::SimpleSigning(format!(
            "`optional.timestamp` {timestamp} is not an integer"
        )));
    }
    let digest = &parsed.critical.image.docker_manifest_digest;
    let manifest_digest = digest
        .parse()
        .map_err(|e| SignError::SimpleSigning(format!("`docker-manifest-digest`: {e}")))?;
    Ok(SignedClaim {
        docker_reference: parsed.critical.identity.docker_reference,
        manifest_digest,
    })
}

fn present_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Optional>, D::Error> {
    Option::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3b1c1c2d7f0e1fbd0b1b6f6c1f7e0f2a3b4c5d6e7f8091a2b3c4d5e6f708192a";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    #[test]
    fn payload_bytes_match_cosign() {
        let payload = simple_signing_payload("127.0.0.1:5000/team/app", &digest());
        let expected = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/team/app"}},"image":{{"docker-manifest-digest":"sha256:{HEX}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        assert_eq!(String::from_utf8(payload).unwrap(), expected);
    }

    #[test]
    fn parse_round_trip() {
        let payload = simple_signing_payload("registry.example/app", &digest());
        let claim = parse_simple_signing(&payload).unwrap();
        assert_eq!(
            claim,
            SignedClaim {
                docker_reference: "registry.example/app".to_string(),
                manifest_digest: digest(),
            }
        );
    }

    #[test]
    fn accepts_what_containers_image_writes() {
        // containers/image's own MarshalJSON: `optional` an object with creator and timestamp.
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"sha256:{HEX}"}},"type":"cosign container image signature"}},"optional":{{"creator":"containers/image 5.30","timestamp":1700000000,"annotation":"x"}}}}"#
        );
        assert_eq!(
            parse_simple_signing(payload.as_bytes())
                .unwrap()
                .manifest_digest,
            digest()
        );
    }

    #[test]
    fn rejects_what_containers_image_rejects() {
        let good = String::from_utf8(simple_signing_payload("r/app", &digest())).unwrap();
        let cases = [
            good.replace(
                "cosign container image signature",
                "atomic container signature",
            ),
            good.replace(r#""type":"#, r#""extra":1,"type":"#),
            good.replace(
                r#""docker-reference":"r/app""#,
                r#""docker-reference":"r/app","x":"y""#,
            ),
            good.replace(&format!("sha256:{HEX}"), "sha256:abc"),
            good.replace(&format!("sha256:{HEX}"), &format!("sha512:{HEX}")),
            good.replace(r#","optional":null"#, ""),
            good.replace(r#""optional":null"#, r#""optional":null,"more":{}"#),
            good.replace(r#""optional":null"#, r#""optional":{"timestamp":1.5}"#),
            good.replace(r#""optional":null"#, r#""optional":{"creator":7}"#),
            good.replace(r#""optional":null"#, r#""optional":[]"#),
            good.replace(
                r#""identity":"#,
                r#""identity":{"docker-reference":"a"},"identity":"#,
            ),
            format!("{good} {{}}"),
            "[]".to_string(),
        ];
        for case in cases {
            let err = parse_simple_signing(case.as_bytes()).unwrap_err();
            assert!(matches!(err, SignError::SimpleSigning(_)), "{case}: {err}");
        }
    }
}
