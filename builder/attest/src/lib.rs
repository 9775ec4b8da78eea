//! What kiln says about an image, beside it:
//!
//! - [`sbom`]: SBOMs cataloged from the image's layers, written as SPDX 2.3 JSON
//!   (<https://spdx.github.io/spdx-spec/v2.3/>) and CycloneDX 1.5 JSON
//!   (<https://cyclonedx.org/docs/1.5/json/>), packages named by package URL
//!   (<https://github.com/package-url/purl-spec>).
//! - [`sign`]: cosign-compatible signatures (the simple-signing payload,
//!   <https://github.com/containers/image/blob/main/docs/containers-signature.5.md>), ECDSA
//!   P-256 keys in cosign's encrypted format, DSSE envelopes
//!   (<https://github.com/secure-systems-lab/dsse>) and in-toto statements with a SLSA v1
//!   provenance predicate (<https://slsa.dev/spec/v1.0/provenance>).
//! - [`artifact`]: the OCI artifact manifests that attach them to an image (image-spec v1.1
//!   `subject`, and cosign's `sha256-<hex>.sig|.sbom|.att` tags for registries without the
//!   referrers API).
//!
//! Pure and synchronous: it reads `Read` streams and returns bytes; the CLI does the I/O.

pub mod artifact;
pub mod sbom;
pub mod sign;
