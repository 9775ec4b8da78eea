//! Signatures: keys, cosign simple signing, DSSE envelopes, SLSA provenance statements.
//!
//! - [`PrivateKey`] / [`PublicKey`]: ECDSA P-256 keys in cosign's encrypted PEM
//!   (go-securesystemslib's scrypt + NaCl secretbox JSON), PKCS#8, SEC1 and SPKI.
//! - [`simple_signing_payload`]: what `cosign sign` signs and podman's `sigstoreSigned`
//!   policy checks (<https://github.com/containers/image/blob/main/docs/containers-signature.5.md>).
//! - [`sign_envelope`] / [`verify_envelope`]: DSSE v1
//!   (<https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>).
//! - [`provenance_statement`] / [`read_provenance`]: in-toto Statement v1 with a SLSA v1
//!   provenance predicate (<https://slsa.dev/spec/v1.0/provenance>).

mod dsse;
mod encrypted;
mod error;
mod key;
mod pem;
mod provenance;
mod provenance_read;
mod simple_signing;

#[cfg(test)]
mod cosign_vectors;
#[cfg(test)]
mod openssl_interop;

pub use dsse::{
    Envelope, EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE, pae, sign_envelope, verify_envelope,
};
pub use error::SignError;
pub use key::{PrivateKey, PublicKey};
pub use provenance::{ProvenanceInput, SLSA_PROVENANCE_V1, provenance_statement};
pub use provenance_read::{ProvenanceSummary, read_provenance};
pub use simple_signing::{SignedClaim, parse_simple_signing, simple_signing_payload};
