//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>,
//! JSON form in `envelope.md`), what cosign stores as an attestation (`.att`) layer.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

use super::{PrivateKey, PublicKey, SignError};

/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What the payload is, e.g. [`IN_TOTO_PAYLOAD_TYPE`]; signed along with it.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The payload, standard base64.
    pub payload: String,
    /// One entry per signer.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// A hint naming the key; unauthenticated, and may be empty (or absent when read).
    #[serde(default)]
    pub keyid: String,
    /// The ASN.1 DER signature over [`pae`], standard base64.
    pub sig: String,
}

/// Returns the DSSE v1 pre-authentication encoding, the bytes actually signed:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in decimal ASCII bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` as `payload_type` with `key` and returns the one-signature envelope.
///
/// `keyid` is left empty, as cosign leaves it for key-pair signatures: go-securesystemslib's
/// verifier skips a signature whose non-empty keyid differs from the one it computes
/// itself (an SSH-style fingerprint), so any other value could make `cosign
/// verify-attestation` ignore the signature.
pub fn sign_envelope(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: STANDARD.encode(payload),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: STANDARD.encode(signature),
        }],
    }
}

/// Checks that at least one signature of `envelope` verifies with `key` over the PAE of
/// its type and payload, and returns the payload bytes.
///
/// Key ids are ignored: they are unauthenticated hints, and producers fill them in
/// differently.
pub fn verify_envelope(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, SignError> {
    let payload = decode(&envelope.payload)
        .ok_or_else(|| SignError::Envelope("`payload` is not base64".to_string()))?;
    if envelope.signatures.is_empty() {
        return Err(SignError::Envelope(
            "`signatures` is empty; the attestation was never signed".to_string(),
        ));
    }
    let message = pae(&envelope.payload_type, &payload);
    let verified = envelope
        .signatures
        .iter()
        .any(|s| decode(&s.sig).is_some_and(|signature| key.verify(&message, &signature).is_ok()));
    if !verified {
        return Err(SignError::EnvelopeUnverified {
            count: envelope.signatures.len(),
            key_id: key.key_id(),
        });
    }
    Ok(payload)
}

// The envelope spec allows either standard or URL-safe base64.
fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePrivateKey;

    use super::*;

    /// The DSSE spec's test vector key (protocol.md, "Test Vectors"), `d` and the public
    /// point `04 || X || Y` in hex (the spec prints them in decimal).
    const SPEC_POINT: &str = "0467cd390f77aa359cb08c2235f652270493a9ed832b0abcc01f70954c0390d2380c782bd54e269125a44f4433aff1432ce94e12bca73aa67ac80cea12608ddf74";
    const SPEC_D: &str = "d73ec437fd6346e3619c5ebfdfff0f6916804955ad32ac9ac492b0ede1f6ffb7";

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths count bytes, not chars.
        let mut expected = "DSSEv1 2 é 1 ".as_bytes().to_vec();
        expected.push(0xff);
        assert_eq!(pae("é", b"\xff"), expected);
    }

    #[test]
    fn matches_the_spec_signature() {
        // The spec signs with deterministic RFC 6979 nonces and prints raw r||s; kiln's
        // DER of the same (r, s) must be byte-identical once re-encoded.
        let d = hex::decode(SPEC_D).unwrap();
        let signing = SigningKey::from_slice(&d).unwrap();
        let point = signing.verifying_key().to_encoded_point(false);
        assert_eq!(hex::encode(point.as_bytes()), SPEC_POINT);
        let pem = signing.to_pkcs8_pem(Default::default()).unwrap();
        let key = PrivateKey::from_pem(pem.as_bytes(), None).unwrap();
        let envelope = sign_envelope("http://example.com/HelloWorld", b"hello world", &key);
        assert_eq!(envelope.payload, "aGVsbG8gd29ybGQ=");
        let spec_raw = STANDARD
            .decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
            .unwrap();
        let spec_der = Signature::from_slice(&spec_raw).unwrap().to_der();
        assert_eq!(
            envelope.signatures[0].sig,
            STANDARD.encode(spec_der.as_bytes())
        );
        let payload = verify_envelope(&envelope, &key.public_key()).unwrap();
        assert_eq!(payload, b"hello world");
    }

    #[test]
    fn envelope_json_shape() {
        let key = PrivateKey::generate();
        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(json.starts_with(r#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":""#), "{json}");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, envelope);
        // keyid may be absent, unknown fields are ignored (envelope.md, "Parsing rules").
        let sig = &envelope.signatures[0].sig;
        let minimal = format!(
            r#"{{"payload":"e30=","payloadType":"{IN_TOTO_PAYLOAD_TYPE}","signatures":[{{"sig":"{sig}","extra":1}}],"x":2}}"#
        );
        let minimal: Envelope = serde_json::from_str(&minimal).unwrap();
        assert_eq!(verify_envelope(&minimal, &key.public_key()).unwrap(), b"{}");
    }

    #[test]
    fn round_trip_and_rejections() {
        let key = PrivateKey::generate();
        let envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key);
        assert_eq!(
            verify_envelope(&envelope, &key.public_key()).unwrap(),
            b"{\"a\":1}"
        );

        let mut tampered = envelope.clone();
        tampered.payload = STANDARD.encode(b"{\"a\":2}");
        assert!(matches!(
            verify_envelope(&tampered, &key.public_key()),
            Err(SignError::EnvelopeUnverified { count: 1, .. })
        ));

        let mut retyped = envelope.clone();
        retyped.payload_type = "application/json".to_string();
        assert!(verify_envelope(&retyped, &key.public_key()).is_err());

        let other = PrivateKey::generate().public_key();
        assert!(matches!(
            verify_envelope(&envelope, &other),
            Err(SignError::EnvelopeUnverified { .. })
        ));

        let mut unsigned = envelope.clone();
        unsigned.signatures.clear();
        assert!(matches!(
            verify_envelope(&unsigned, &key.public_key()),
            Err(SignError::Envelope(_))
        ));

        let mut garbage = envelope.clone();
        garbage.payload = "***".to_string();
        assert!(matches!(
            verify_envelope(&garbage, &key.public_key()),
            Err(SignError::Envelope(_))
        ));
    }

    #[test]
    fn any_verifying_signature_is_enough() {
        let key = PrivateKey::generate();
        let other = PrivateKey::generate();
        let mut envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", &other);
        envelope.signatures.insert(
            0,
            EnvelopeSignature {
                keyid: "junk".to_string(),
                sig: "not base64!".to_string(),
            },
        );
        let mine = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        envelope.signatures.extend(mine.signatures);
        assert_eq!(
            verify_envelope(&envelope, &key.public_key()).unwrap(),
            b"{}"
        );
    }
}
