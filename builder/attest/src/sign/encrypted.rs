//! cosign's password-encrypted private key body: the JSON of go-securesystemslib's
//! `encrypted` package (<https://github.com/secure-systems-lab/go-securesystemslib/blob/main/encrypted/encrypted.go>),
//! scrypt for the key and NaCl secretbox (XSalsa20-Poly1305) for the cipher:
//!
//! `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64>"},"cipher":{"name":"nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}`
//!
//! cosign puts this JSON, as is, in the body of an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM
//! block (`ENCRYPTED COSIGN PRIVATE KEY` before cosign 2.0); the plaintext is the PKCS#8
//! DER of the private key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SignError;

/// The PEM label cosign writes since 2.0.
pub(crate) const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label cosign wrote before 2.0, still read by cosign.
pub(crate) const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

// go-securesystemslib's `Standard` strength, what `encrypted.Encrypt` (and so
// `cosign generate-key-pair`) uses. cosign refuses any (N, r, p) but 2^15, 2^16 and 2^17
// with r = 8, p = 1, so kiln writes only one of those.
const WRITE_LOG_N: u8 = 16;
const WRITE_R: u32 = 8;
const WRITE_P: u32 = 1;
const SALT_LEN: usize = 32;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

// Reading honours the file's parameters (a key from another tool may be stronger than
// cosign's), within bounds that keep a hostile file from asking for gigabytes or minutes:
// N <= 2^20 and 128·N·r <= 1 GiB of memory, p <= 16.
const MAX_LOG_N: u32 = 20;
const MAX_N_TIMES_R: u64 = 1 << 23;
const MAX_P: u32 = 16;

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: Params,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Params {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Encrypts `plaintext` under `password` with a fresh random salt and nonce and returns
/// the JSON body.
pub(crate) fn seal(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut salt = vec![0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = vec![0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let params = Params {
        n: 1 << WRITE_LOG_N,
        r: WRITE_R,
        p: WRITE_P,
    };
    let key = derive(password, &salt, &params)?;
    let ciphertext = XSalsa20Poly1305::new(key.as_slice().into())
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| SignError::EncryptedKey("encrypting with nacl/secretbox failed".into()))?;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".to_string(),
            params,
            salt,
        },
        cipher: Cipher {
            name: "nacl/secretbox".to_string(),
            nonce,
        },
        ciphertext,
    };
    serde_json::to_vec(&sealed).map_err(|e| SignError::EncryptedKey(e.to_string()))
}

/// Decrypts the JSON body `sealed` with `password` and returns the plaintext.
pub(crate) fn open(sealed: &[u8], password: &[u8]) -> Result<Vec<u8>, SignError> {
    let sealed: Sealed = serde_json::from_slice(sealed).map_err(|e| {
        SignError::EncryptedKey(format!(
            "the pem body is not cosign's encrypted-key json ({e})"
        ))
    })?;
    if sealed.kdf.name != "scrypt" {
        return Err(SignError::EncryptedKey(format!(
            "kdf `{}` is not supported; kiln reads `scrypt`",
            sealed.kdf.name
        )));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(SignError::EncryptedKey(format!(
            "cipher `{}` is not supported; kiln reads `nacl/secretbox`",
            sealed.cipher.name
        )));
    }
    if sealed.cipher.nonce.len() != NONCE_LEN {
        return Err(SignError::EncryptedKey(format!(
            "the nacl/secretbox nonce is {} bytes, not {NONCE_LEN}",
            sealed.cipher.nonce.len()
        )));
    }
    let key = derive(password, &sealed.kdf.salt, &sealed.kdf.params)?;
    XSalsa20Poly1305::new(key.as_slice().into())
        .decrypt(
            Nonce::from_slice(&sealed.cipher.nonce),
            sealed.ciphertext.as_slice(),
        )
        .map_err(|_| SignError::WrongPassword)
}

fn derive(password: &[u8], salt: &[u8], params: &Params) -> Result<Vec<u8>, SignError> {
    let Params { n, r, p } = *params;
    let bad = |why: &str| {
        SignError::EncryptedKey(format!(
            "scrypt parameters N={n} r={r} p={p} {why}; kiln reads N a power of two up to 2^{MAX_LOG_N}, 128·N·r up to 1 GiB, p up to {MAX_P}"
        ))
    };
    if n < 2 || !n.is_power_of_two() {
        return Err(bad("have N not a power of two"));
    }
    let log_n = n.trailing_zeros();
    if log_n > MAX_LOG_N || r == 0 || n * u64::from(r) > MAX_N_TIMES_R {
        return Err(bad("ask for too much memory"));
    }
    if p == 0 || p > MAX_P {
        return Err(bad("ask for too much work"));
    }
    let params = scrypt::Params::new(log_n as u8, r, p, KEY_LEN)
        .map_err(|e| bad(&format!("are invalid ({e})")))?;
    let mut key = vec![0u8; KEY_LEN];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| SignError::EncryptedKey(format!("scrypt failed: {e}")))?;
    Ok(key)
}

/// Go's `encoding/json` writes `[]byte` as padded standard base64.
mod b64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // go-securesystemslib's own vectors (encrypted/encrypted_test.go), all under
    // "supersecret", at each strength cosign accepts. The first three went through its
    // `Marshal`, so their plaintext is the JSON of the Go []byte "reallyimportant".
    const GO_VECTORS: [&str; 4] = [
        r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}"#,
        r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}"#,
        r#"{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}"#,
        r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#,
    ];

    #[test]
    fn opens_go_securesystemslib_vectors() {
        let marshalled: &[u8] = br#""cmVhbGx5aW1wb3J0YW50""#;
        let expected = [marshalled, marshalled, marshalled, b"reallyimportant"];
        for (v, expected) in GO_VECTORS.into_iter().zip(expected) {
            assert_eq!(open(v.as_bytes(), b"supersecret").unwrap(), expected);
            assert!(matches!(
                open(v.as_bytes(), b"supersecreT"),
                Err(SignError::WrongPassword)
            ));
        }
    }

    #[test]
    fn seal_writes_cosign_layout_with_fresh_salt_and_nonce() {
        let a = seal(b"plaintext", b"pw").unwrap();
        let b = seal(b"plaintext", b"pw").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(
            v["kdf"]["params"],
            serde_json::json!({"N": 65536, "r": 8, "p": 1})
        );
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        let salt = STANDARD.decode(v["kdf"]["salt"].as_str().unwrap()).unwrap();
        let nonce = STANDARD
            .decode(v["cipher"]["nonce"].as_str().unwrap())
            .unwrap();
        assert_eq!((salt.len(), nonce.len()), (32, 24));
        // Go's struct order, so the JSON reads like cosign's own.
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(
            text.starts_with(
                r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":""#
            )
        );
        assert!(text.contains(r#""cipher":{"name":"nacl/secretbox","nonce":""#));
        assert_ne!(a, b);
        assert_eq!(open(&a, b"pw").unwrap(), b"plaintext");
        assert_eq!(open(&b, b"pw").unwrap(), b"plaintext");
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&seal(b"secret", b"pw").unwrap()).unwrap();
        let mut ct = STANDARD.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        ct[20] ^= 1;
        v["ciphertext"] = STANDARD.encode(ct).into();
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(matches!(open(&bytes, b"pw"), Err(SignError::WrongPassword)));
    }

    #[test]
    fn refuses_abusive_or_unknown_parameters_before_deriving() {
        let base: serde_json::Value = serde_json::from_str(GO_VECTORS[0]).unwrap();
        let cases: [(&str, serde_json::Value); 6] = [
            ("/kdf/params/N", (1u64 << 21).into()),
            ("/kdf/params/N", 12345.into()),
            ("/kdf/params/r", 1024.into()),
            ("/kdf/params/p", 1000.into()),
            ("/kdf/name", "pbkdf2".into()),
            ("/cipher/nonce", "AAAA".into()),
        ];
        for (pointer, value) in cases {
            let mut v = base.clone();
            *v.pointer_mut(pointer).unwrap() = value;
            let err = open(&serde_json::to_vec(&v).unwrap(), b"supersecret").unwrap_err();
            assert!(
                matches!(err, SignError::EncryptedKey(_)),
                "{pointer}: {err}"
            );
        }
        let err = open(b"not json", b"pw").unwrap_err();
        assert!(matches!(err, SignError::EncryptedKey(_)));
    }
}
