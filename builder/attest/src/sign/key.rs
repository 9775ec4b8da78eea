//! ECDSA P-256 keys as cosign, openssl and podman's `policy.json` store them.
//!
//! Private keys are read from cosign's encrypted PEM (see [`super::encrypted`]), PKCS#8
//! `PRIVATE KEY` (RFC 5208) or SEC1 `EC PRIVATE KEY` (RFC 5915); public keys are SPKI
//! `PUBLIC KEY` (RFC 5280), what `cosign generate-key-pair` writes as `cosign.pub`.
//! Signatures are ECDSA over SHA-256, ASN.1 DER encoded (what cosign's and
//! containers/image's verifiers expect).

use std::fmt;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use sha2::{Digest as _, Sha256};

use super::encrypted::{self, COSIGN_LABEL, SIGSTORE_LABEL};
use super::{SignError, pem};

const PKCS8_LABEL: &str = "PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";
const P256_ONLY: &str =
    "kiln signs with ECDSA P-256 keys only, what `cosign generate-key-pair` makes";

/// An ECDSA P-256 private key.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PrivateKey {
    /// Returns a new random key from the operating system's generator.
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut OsRng))
    }

    /// Returns the public half of this key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Reads a PEM private key: cosign's encrypted format (`ENCRYPTED SIGSTORE PRIVATE
    /// KEY`, or the older `ENCRYPTED COSIGN PRIVATE KEY`), which needs `password`; or an
    /// unencrypted PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`, for which `password` is
    /// ignored. The first private key block in `pem` is used.
    ///
    /// An encrypted key without a password is [`SignError::PasswordNeeded`]; one that
    /// does not open with it is [`SignError::WrongPassword`].
    pub fn from_pem(pem: &[u8], password: Option<&[u8]>) -> Result<PrivateKey, SignError> {
        let blocks = pem::decode_all(pem)?;
        for block in &blocks {
            match block.label.as_str() {
                SIGSTORE_LABEL | COSIGN_LABEL => {
                    let password = password.ok_or_else(|| SignError::PasswordNeeded {
                        label: block.label.clone(),
                    })?;
                    let der = encrypted::open(&block.der, password)?;
                    let what = format!("the decrypted `{}`", block.label);
                    return from_pkcs8(&der, &what);
                }
                PKCS8_LABEL => return from_pkcs8(&block.der, "the `PRIVATE KEY` pem block"),
                SEC1_LABEL => {
                    return p256::SecretKey::from_sec1_der(&block.der)
                        .map(|secret| PrivateKey(SigningKey::from(secret)))
                        .map_err(|e| SignError::Key {
                            what: "the `EC PRIVATE KEY` pem block".to_string(),
                            reason: format!("not a SEC1 P-256 private key ({e}); {P256_ONLY}"),
                        });
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(SignError::Key {
                        what: "the `ENCRYPTED PRIVATE KEY` pem block".to_string(),
                        reason: "PKCS#8 password encryption is not supported; hint: decrypt it with `openssl pkcs8 -in key.pem -out plain.pem`, or import it with `cosign import-key-pair`".to_string(),
                    });
                }
                _ => {}
            }
        }
        Err(SignError::NoPemBlock {
            expected: "`ENCRYPTED SIGSTORE PRIVATE KEY`, `PRIVATE KEY` or `EC PRIVATE KEY`",
            found: pem::found_labels(&blocks),
        })
    }

    /// Returns this key as PEM: cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` under `password`
    /// (which may be empty, as with `COSIGN_PASSWORD=`), or an unencrypted PKCS#8
    /// `PRIVATE KEY` when `password` is `None`.
    pub fn to_pem(&self, password: Option<&[u8]>) -> Result<String, SignError> {
        let der = self.0.to_pkcs8_der().map_err(|e| SignError::Key {
            what: "the private key".to_string(),
            reason: format!("encoding as PKCS#8 failed: {e}"),
        })?;
        match password {
            None => Ok(pem::encode(PKCS8_LABEL, der.as_bytes())),
            Some(password) => {
                let sealed = encrypted::seal(der.as_bytes(), password)?;
                Ok(pem::encode(SIGSTORE_LABEL, &sealed))
            }
        }
    }

    /// Returns the ASN.1 DER ECDSA P-256 SHA-256 signature of `message`.
    ///
    /// Nonces are RFC 6979 deterministic, so the same key and message always give the same
    /// signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.0.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the scalar: debug output ends up in logs.
        write!(f, "PrivateKey(public {})", self.public_key().key_id())
    }
}

impl PublicKey {
    /// Reads the first SPKI `PUBLIC KEY` PEM block in `pem` (a `cosign.pub`).
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, SignError> {
        let blocks = pem::decode_all(pem)?;
        let Some(block) = blocks.iter().find(|b| b.label == PUBLIC_LABEL) else {
            return Err(SignError::NoPemBlock {
                expected: "a `PUBLIC KEY`",
                found: pem::found_labels(&blocks),
            });
        };
        VerifyingKey::from_public_key_der(&block.der)
            .map(PublicKey)
            .map_err(|e| SignError::Key {
                what: "the `PUBLIC KEY` pem block".to_string(),
                reason: format!("not a P-256 SPKI public key ({e}); {P256_ONLY}"),
            })
    }

    /// Returns this key as an SPKI `PUBLIC KEY` PEM block, what cosign writes as
    /// `cosign.pub` and what podman's `policy.json` `keyPath` reads.
    pub fn to_pem(&self) -> String {
        pem::encode(PUBLIC_LABEL, &self.spki_der())
    }

    /// Checks that `signature_der` is this key's ASN.1 DER ECDSA signature of `message`.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), SignError> {
        let signature = Signature::from_der(signature_der)
            .map_err(|e| SignError::SignatureEncoding(e.to_string()))?;
        self.0
            .verify(message, &signature)
            .map_err(|_| SignError::SignatureMismatch {
                key_id: self.key_id(),
            })
    }

    /// Returns the lowercase hex sha256 of the key's SPKI DER, for display.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.spki_der()))
    }

    fn spki_der(&self) -> Vec<u8> {
        self.0
            .to_public_key_der()
            .expect("a P-256 point always encodes as SPKI")
            .into_vec()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

fn from_pkcs8(der: &[u8], what: &str) -> Result<PrivateKey, SignError> {
    SigningKey::from_pkcs8_der(der)
        .map(PrivateKey)
        .map_err(|e| SignError::Key {
            what: what.to_string(),
            reason: format!("not a PKCS#8 P-256 private key ({e}); {P256_ONLY}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_round_trip_signs_and_verifies() {
        let key = PrivateKey::generate();
        let pem = key.to_pem(Some(b"hunter2")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(pem.as_bytes(), Some(b"hunter2")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let sig = back.sign(b"message");
        key.public_key().verify(b"message", &sig).unwrap();
    }

    #[test]
    fn encrypted_key_wrong_or_missing_password() {
        let pem = PrivateKey::generate().to_pem(Some(b"")).unwrap();
        let wrong = PrivateKey::from_pem(pem.as_bytes(), Some(b"x")).unwrap_err();
        assert!(matches!(wrong, SignError::WrongPassword), "{wrong}");
        let none = PrivateKey::from_pem(pem.as_bytes(), None).unwrap_err();
        assert!(
            matches!(none, SignError::PasswordNeeded { ref label } if label == SIGSTORE_LABEL),
            "{none}"
        );
        // The empty password is a password (`COSIGN_PASSWORD=`).
        PrivateKey::from_pem(pem.as_bytes(), Some(b"")).unwrap();
    }

    #[test]
    fn pkcs8_round_trip_ignores_password() {
        let key = PrivateKey::generate();
        let pem = key.to_pem(None).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        for password in [None, Some(&b"ignored"[..])] {
            let back = PrivateKey::from_pem(pem.as_bytes(), password).unwrap();
            assert_eq!(back.public_key(), key.public_key());
        }
    }

    #[test]
    fn reads_sec1_ec_private_key() {
        let secret = p256::SecretKey::random(&mut OsRng);
        let sec1 = secret.to_sec1_der().unwrap();
        let pem = pem::encode(SEC1_LABEL, &sec1);
        let key = PrivateKey::from_pem(pem.as_bytes(), None).unwrap();
        assert_eq!(key.public_key().0, VerifyingKey::from(secret.public_key()));
    }

    #[test]
    fn public_key_pem_round_trip_and_key_id() {
        let public = PrivateKey::generate().public_key();
        let pem = public.to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let back = PublicKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(back, public);
        let der = pem::decode_all(pem.as_bytes()).unwrap().remove(0).der;
        assert_eq!(public.key_id(), hex::encode(Sha256::digest(&der)));
        assert_eq!(public.key_id().len(), 64);
    }

    #[test]
    fn verify_rejects_other_message_other_key_and_non_der() {
        let key = PrivateKey::generate();
        let sig = key.sign(b"message");
        assert_eq!(
            sig,
            key.sign(b"message"),
            "rfc 6979 signatures are deterministic"
        );
        let err = key.public_key().verify(b"messagE", &sig).unwrap_err();
        assert!(matches!(err, SignError::SignatureMismatch { .. }), "{err}");
        let other = PrivateKey::generate().public_key();
        assert!(matches!(
            other.verify(b"message", &sig),
            Err(SignError::SignatureMismatch { .. })
        ));
        let raw = Signature::from_der(&sig).unwrap().to_bytes();
        let err = key.public_key().verify(b"message", &raw).unwrap_err();
        assert!(matches!(err, SignError::SignatureEncoding(_)), "{err}");
    }

    #[test]
    fn unreadable_inputs_name_what_was_found() {
        let err = PrivateKey::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("found `CERTIFICATE`"), "{err}");
        let err = PrivateKey::from_pem(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, SignError::Key { .. }), "{err}");
        let public_as_private = PrivateKey::generate().public_key().to_pem();
        assert!(matches!(
            PrivateKey::from_pem(public_as_private.as_bytes(), None),
            Err(SignError::NoPemBlock { .. })
        ));
        let bad = pem::encode(PKCS8_LABEL, b"\x30\x03\x02\x01\x00");
        assert!(matches!(
            PrivateKey::from_pem(bad.as_bytes(), None),
            Err(SignError::Key { .. })
        ));
        let private_as_public = PrivateKey::generate().to_pem(None).unwrap();
        assert!(matches!(
            PublicKey::from_pem(private_as_public.as_bytes()),
            Err(SignError::NoPemBlock { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = PrivateKey::generate();
        let secret_hex = hex::encode(key.0.to_bytes());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&secret_hex));
        assert!(debug.contains(&key.public_key().key_id()));
    }
}
