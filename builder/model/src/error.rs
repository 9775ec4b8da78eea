//! Why an image or index cannot be assembled or read.

use kiln_oci::CanonicalError;

use crate::Platform;

/// Why an image or index cannot be assembled, or a pulled one read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config, manifest or index could not be serialized canonically.
    #[error("serializing the {what}")]
    Serialize {
        /// `image config`, `manifest` or `index`.
        what: &'static str,
        /// The serializer's error.
        source: CanonicalError,
    },
    /// The manifest's fields were refused by the OCI model.
    #[error("building the manifest")]
    Manifest {
        /// What the model said.
        source: kiln_oci::spec::OciSpecError,
    },
    /// A layer media type kiln does not read.
    #[error(
        "layer media type `{media_type}` is not supported; kiln reads OCI and docker tar, tar+gzip and tar+zstd layers"
    )]
    LayerMediaType {
        /// The media type.
        media_type: String,
    },
    /// An image config that says no platform, where an index needs one.
    #[error("an image config without `os` and `architecture` cannot go into an index")]
    NoPlatform,
    /// Two images of one platform for one index.
    #[error("two images for platform `{platform}` cannot share an index")]
    DuplicatePlatform {
        /// The platform.
        platform: Platform,
    },
    /// An index of no image.
    #[error("an index needs an image")]
    EmptyIndex,
    /// A config, manifest or index that is not the JSON it should be.
    #[error("reading {what}")]
    Json {
        /// What was being read.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A pulled index without an image for the platform asked for.
    #[error("`{image}` has no image for platform `{wanted}` (it has: {offered})")]
    NoImageFor {
        /// The image.
        image: String,
        /// `os/arch`.
        wanted: String,
        /// The platforms it has, or `none`.
        offered: String,
    },
    /// A pulled index entry without a valid digest or size.
    #[error("an entry of `{image}` has no valid {field}")]
    BadEntry {
        /// The image.
        image: String,
        /// `digest` or `size`.
        field: &'static str,
    },
}
