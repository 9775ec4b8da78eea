//! Known-answer tests for cosign's encrypted private key format, using keys published as
//! test data by cosign (`pkg/cosign/keys_test.go`, commit b36644f) and sigstore-rs
//! (`tests/data/keys/`, commits e2b6f33 and 48857ff), with the passwords their tests use.

use super::encrypted::{self, COSIGN_LABEL, SIGSTORE_LABEL};
use super::*;

/// cosign `pemsigstorekey`: `ENCRYPTED SIGSTORE PRIVATE KEY`, N = 2^15, password `hello`.
const COSIGN_SIGSTORE_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----";

/// sigstore-rs `ecdsa_encrypted_private.key`: `ENCRYPTED COSIGN PRIVATE KEY`, N = 2^15, password `123`.
const SIGSTORE_RS_COSIGN_KEY: &str = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiIrRFJrTXNRZmNUNTNKNCs1Y3VkUnlnWTUyWUMrK0RW
TmxaSTN4VnlwWFlvPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJnNTFORnBqQUxlemhvbGVWTWVjUFJUNUErMVhMcDAxeiJ9LCJj
aXBoZXJ0ZXh0Ijoib0YvN09mOGlQRDlkNlc2Mk5SWGVibEszWXZmNFFucTZORm16
Q0VyV2FTVUJOZTNXSFJiRVNYK2dJOCszejg4TDBDVXlWdm9LTHhuR0xhVnhnczVD
YUdyekcrMWxFTEI1cGRMVmZXd1VlQzlLelNab0hxZHZLaUsvUmNodVhpS0VqYmdv
ajNGd2pMcmhEYkY5a2lVWk93REpuT01kUkoxNnI3emxjRHdwT3htOXFrbWFDWDlB
VjQ4b1RXVG0rQXExOHlDZE50MDYybGdudVE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----";

/// sigstore-rs `cosign_generated_encrypted_empty_private.key`: made by `cosign
/// generate-key-pair` with an empty password, N = 2^16 (cosign's current default).
const COSIGN_GENERATED_EMPTY_PASSWORD_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJFY3pJR3Z0bnpFcCsxaEpudERnbGI1UnoxN3gwQVMy
YklvWGRNcDQrU1NJPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJtSVVKbG1OMzNINExvZ0dhaG5MamdmK3R4SmJwci93MCJ9LCJj
aXBoZXJ0ZXh0IjoiM3FtS2FidXRuYm1WT1IvTkZGM2NDaUErTXp1WWQ5L0VERDVI
MVlUSGhQVzZsSzAvdjVqdDZCQzlsME12NGV5am9qZkl0d3B6a2JJOXQrZGx5VXZ3
VUgvMWZjbkFZT2dEdXRLQzkvSkNiOE02SVY2VHpVaDF5c0ZFWDFzeG9xb1FzeUpL
bjM0UVlldFNlaVdDaGtmUHUyZXByQjFEV0pwekdzTGZIakxNVTkzOEdmNk1xM1A0
N0ZSd2syZzY1cFZnSGMwVWV1L1N1OUs0Zmc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----";

/// cosign `pemcosigneckey`: N = 2^16, password `hello`, but its plaintext is SEC1, not
/// PKCS#8; cosign itself refuses it ("use ParseECPrivateKey instead").
const COSIGN_SEC1_INSIDE_KEY: &str = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----";

// The public halves, as `openssl pkey -pubout` prints them for the decrypted keys.
const COSIGN_SIGSTORE_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7z9gA/tqa9iHt/f9F3ulyVi4lwqU
LfHWfhG2mK4eyJ8LDcLstb+VVhxj3pkMjc3fNo+sSfiIY2NLR7c+DG1V4w==
-----END PUBLIC KEY-----
";
const SIGSTORE_RS_COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI3sxu+p/GFrJyfgmSWr4qMzwbnd/
pRAShSG6tHcrlhBSoRCAiVYOoQR7514Uz6ft2tQlnoJLHmHcFqqy0/ERJA==
-----END PUBLIC KEY-----
";
const COSIGN_GENERATED_EMPTY_PASSWORD_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7
T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==
-----END PUBLIC KEY-----
";

const VECTORS: [(&str, &str, &str, &str); 3] = [
    (
        COSIGN_SIGSTORE_KEY,
        "hello",
        SIGSTORE_LABEL,
        COSIGN_SIGSTORE_PUB,
    ),
    (
        SIGSTORE_RS_COSIGN_KEY,
        "123",
        COSIGN_LABEL,
        SIGSTORE_RS_COSIGN_PUB,
    ),
    (
        COSIGN_GENERATED_EMPTY_PASSWORD_KEY,
        "",
        SIGSTORE_LABEL,
        COSIGN_GENERATED_EMPTY_PASSWORD_PUB,
    ),
];

#[test]
fn decrypts_published_cosign_keys() {
    for (key_pem, password, label, public_pem) in VECTORS {
        let key = PrivateKey::from_pem(key_pem.as_bytes(), Some(password.as_bytes()))
            .unwrap_or_else(|e| panic!("{label} / {password:?}: {e}"));
        let public = PublicKey::from_pem(public_pem.as_bytes()).unwrap();
        assert_eq!(key.public_key(), public, "{label} / {password:?}");
        assert_eq!(key.public_key().to_pem(), public_pem);
        let signature = key.sign(b"payload");
        public.verify(b"payload", &signature).unwrap();
    }
}

#[test]
fn derived_public_key_matches_the_one_go_stored_in_the_plaintext() {
    // Go's x509.MarshalPKCS8PrivateKey stores the public point at the end of the
    // ECPrivateKey; it was computed by Go, not by kiln, so it checks the scalar kiln
    // decrypted independently of the pinned PEMs above.
    for (key_pem, password, _, public_pem) in VECTORS {
        let block = pem::decode_all(key_pem.as_bytes()).unwrap().remove(0);
        let plaintext = encrypted::open(&block.der, password.as_bytes()).unwrap();
        let spki = pem::decode_all(public_pem.as_bytes())
            .unwrap()
            .remove(0)
            .der;
        assert_eq!(plaintext[plaintext.len() - 65..], spki[spki.len() - 65..]);
        assert_eq!(
            plaintext[plaintext.len() - 65],
            0x04,
            "an uncompressed point"
        );
    }
}

#[test]
fn published_keys_refuse_wrong_or_missing_passwords() {
    for (key_pem, password, label, _) in VECTORS {
        let wrong = format!("{password}x");
        let err = PrivateKey::from_pem(key_pem.as_bytes(), Some(wrong.as_bytes())).unwrap_err();
        assert!(matches!(err, SignError::WrongPassword), "{label}: {err}");
        let err = PrivateKey::from_pem(key_pem.as_bytes(), None).unwrap_err();
        assert!(
            matches!(err, SignError::PasswordNeeded { label: ref l } if l == label),
            "{label}: {err}"
        );
    }
}

#[test]
fn sec1_plaintext_is_refused_like_cosign_does() {
    // It does decrypt (so scrypt at N = 2^16 and the secretbox are right), then fails as
    // a key, not as a password.
    let block = pem::decode_all(COSIGN_SEC1_INSIDE_KEY.as_bytes())
        .unwrap()
        .remove(0);
    let plaintext = encrypted::open(&block.der, b"hello").unwrap();
    assert_eq!(&plaintext[..2], b"\x30\x77", "a SEC1 ECPrivateKey SEQUENCE");
    let err = PrivateKey::from_pem(COSIGN_SEC1_INSIDE_KEY.as_bytes(), Some(b"hello")).unwrap_err();
    assert!(matches!(err, SignError::Key { .. }), "{err}");
    let err = PrivateKey::from_pem(COSIGN_SEC1_INSIDE_KEY.as_bytes(), Some(b"hellO")).unwrap_err();
    assert!(matches!(err, SignError::WrongPassword), "{err}");
}
