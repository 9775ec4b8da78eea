//! The one error type of [`crate::sign`].

/// Why a key could not be read or written, a signature did not verify, or a signed
/// document was not what kiln accepts.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The input holds no PEM block kiln can use.
    #[error("reading pem: no {expected} block found{found}")]
    NoPemBlock {
        /// The block labels that were looked for, e.g. ``a `PUBLIC KEY` ``.
        expected: &'static str,
        /// The labels that were found instead, already formatted (`; found `X``), or empty.
        found: String,
    },
    /// A PEM block is malformed (bad base64, no END line, encryption headers).
    #[error("reading pem block `{label}`: {reason}")]
    Pem {
        /// The block's label.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key could be decoded but is not an ECDSA P-256 key, or its DER is damaged.
    #[error("reading {what}: {reason}")]
    Key {
        /// Which key, e.g. ``the `PRIVATE KEY` pem block``.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An encrypted key was given without a password.
    #[error(
        "the private key (`{label}`) is encrypted and no password was given; hint: pass the password it was made with (cosign reads it from `COSIGN_PASSWORD`; an empty password is still a password)"
    )]
    PasswordNeeded {
        /// The PEM block label.
        label: String,
    },
    /// The password does not open the encrypted key (or its ciphertext was altered).
    #[error(
        "decrypting the cosign private key failed: wrong password, or the key file was altered"
    )]
    WrongPassword,
    /// The cosign encrypted key's JSON is not one kiln can read.
    #[error("reading the cosign encrypted private key: {0}")]
    EncryptedKey(String),
    /// A signature is not ASN.1 DER ECDSA.
    #[error(
        "signature is not an ASN.1 DER ECDSA signature ({0}); hint: cosign and kiln sign with DER, not raw `r||s`"
    )]
    SignatureEncoding(String),
    /// A signature does not verify against the public key.
    #[error("signature does not verify with public key `{key_id}`")]
    SignatureMismatch {
        /// [`crate::sign::PublicKey::key_id`] of the key tried.
        key_id: String,
    },
    /// A simple-signing payload is not the cosign container image signature kiln accepts.
    #[error("reading the simple-signing payload: {0}")]
    SimpleSigning(String),
    /// A DSSE envelope is malformed.
    #[error("reading the dsse envelope: {0}")]
    Envelope(String),
    /// No signature of a DSSE envelope verifies with the key.
    #[error(
        "no signature of the dsse envelope ({count} given) verifies with public key `{key_id}`; hint: check that the attestation was signed with the key you passed"
    )]
    EnvelopeUnverified {
        /// How many signatures the envelope holds.
        count: usize,
        /// [`crate::sign::PublicKey::key_id`] of the key tried.
        key_id: String,
    },
    /// An in-toto statement is not a SLSA v1 provenance kiln can read.
    #[error("reading the slsa provenance statement: {0}")]
    Provenance(String),
}
