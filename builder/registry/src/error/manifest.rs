//! Why a pulled manifest is refused.

/// Why a pulled manifest is refused (RELIABILITY.md R15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// A Docker image manifest schema 1 (signed or not).
    #[error("the registry sent a Docker schema1 manifest: schema1 unsupported")]
    Schema1,
    /// A document with both `manifests` and `layers` or `config`: an index to one reader,
    /// an image to another (CVE-2021-41190).
    #[error(
        "the document has both `manifests` and `layers`/`config`, so it reads as an index and as an image; refusing the ambiguous document"
    )]
    Ambiguous,
    /// The body's `mediaType` contradicts the `Content-Type` it came with.
    #[error(
        "the registry sent it as `{header}` but its `mediaType` says `{body}`; refusing the mismatch"
    )]
    MediaTypeMismatch {
        /// The `Content-Type` (without parameters).
        header: String,
        /// The body's `mediaType`.
        body: String,
    },
    /// The media type names one kind of document and the fields are the other kind's.
    #[error("it is declared `{media_type}` but has the fields of {shape}; refusing the mismatch")]
    Shape {
        /// The declared media type.
        media_type: String,
        /// What the fields look like: `an image index` or `an image manifest`.
        shape: &'static str,
    },
    /// The body is not a JSON object.
    #[error("the manifest is not a JSON object")]
    NotJson,
}
