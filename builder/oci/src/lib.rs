//! The OCI data model kiln works with: digests, references, descriptors, manifests, indexes
//! and image configs, plus the canonical JSON used for everything that gets hashed.
//!
//! Pure data, no I/O. Manifests, indexes and configs are the types of the
//! [`oci-spec`](https://docs.rs/oci-spec) crate (OCI image-spec v1.1), re-exported here;
//! this crate adds what kiln needs on top of them: a validated [`Digest`] newtype, image
//! [`Reference`] parsing with Docker Hub defaults, and [`canonical_json`].
//!
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/spec.md>

mod canonical;
mod digest;
mod media;
mod reference;

pub use canonical::{CanonicalError, canonical_json};
pub use digest::{Digest, DigestError, Sha256Writer};
pub use media::{descriptor, media_types, to_spec_digest};
pub use reference::{Reference, ReferenceError, is_valid_tag};

/// The OCI image-spec types (manifest, index, config, descriptor, media type) from `oci-spec`.
pub mod spec {
    /// What `oci-spec`'s builders and parsers fail with.
    pub use oci_spec::OciSpecError;
    pub use oci_spec::image::{
        Arch, Config, ConfigBuilder, Descriptor, DescriptorBuilder, History, HistoryBuilder,
        ImageConfiguration, ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder,
        ImageManifest, ImageManifestBuilder, MediaType, Os, Platform, PlatformBuilder, RootFs,
        RootFsBuilder,
    };
}
