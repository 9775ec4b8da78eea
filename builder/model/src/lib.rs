//! kiln's image model: an [`Image`] (config plus layers, bottom first) and its finished,
//! canonically serialized form ([`FinalImage`]); a multi-platform [`FinalIndex`]; the
//! [`Artifact`] a sink writes; and where a layer's blob is ([`Origin`]). Pure data and
//! serialization: no network, no files, so the buildpack API (`kiln-lifecycle`) can build
//! on it without the registry client.
//!
//! Specs: OCI image-spec manifest, config and index
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/image-index.md>).

mod error;
mod image;
mod index;

pub use error::ModelError;
pub use image::{FinalImage, Image, Layer, Origin, oci_layer_type};
pub use index::{Artifact, FinalIndex, Platform, is_index, pick_platform};
