use std::path::PathBuf;

use kiln_oci::{CanonicalError, Digest, DigestError, Reference};

/// Why reading, writing or validating an image failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file operation failed.
    #[error("{doing} `{}`", path.display())]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest, index or config could not be read or written as JSON.
    #[error("{doing}")]
    Json {
        /// What was being done.
        doing: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] kiln_registry::RegistryError),
    /// The local blob store failed.
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    /// The image or index is not one kiln can assemble or read.
    #[error(transparent)]
    Model(#[from] kiln_model::ModelError),
    /// Content does not match what describes it.
    #[error("{what} `{expected}` does not match its content: found {found}")]
    Mismatch {
        /// What was checked (e.g. `layer diffID`).
        what: &'static str,
        /// The digest or size the descriptor claims.
        expected: String,
        /// What the content actually has.
        found: String,
    },
    /// The `index.json` kiln writes into an OCI layout or archive could not be serialized
    /// canonically.
    #[error("serializing the `index.json` of {what} `{}`", path.display())]
    SerializeIndex {
        /// `OCI layout` or `OCI archive`.
        what: &'static str,
        /// The layout directory or archive file.
        path: PathBuf,
        /// The serializer's error.
        source: CanonicalError,
    },
    /// A descriptor, `index.json` entry or config holds a digest that does not parse.
    #[error("invalid digest in {what}")]
    InvalidDigest {
        /// What held it (e.g. ``the config descriptor of manifest `sha256:…` ``).
        what: String,
        /// Why the digest is invalid (it names the digest).
        source: DigestError,
    },
    /// An entry of an index has no digest, or one that does not parse.
    #[error("an entry of the index `{index}` has no valid digest")]
    EntryWithoutDigest {
        /// The index: its reference or digest.
        index: String,
        /// Why the digest is invalid; `None` when the entry has none.
        source: Option<DigestError>,
    },
    /// An entry of an index names no platform, where every entry must.
    #[error("an entry of the index `{index}` names no platform")]
    EntryWithoutPlatform {
        /// The index's digest.
        index: Digest,
    },
    /// An index that lists no image.
    #[error("the index `{index}` lists no image")]
    EmptyIndex {
        /// The index's digest.
        index: Digest,
    },
    /// A manifest or index is not of the media type this operation reads.
    #[error("{what} is a `{media_type}`, not {expected}")]
    MediaType {
        /// What has it, with its name in backticks (e.g. `` `localhost:5000/app:v1` ``).
        what: String,
        /// Its media type.
        media_type: String,
        /// What was needed (e.g. `an image index`).
        expected: &'static str,
    },
    /// An OCI layout without the image asked for (or without any image, when none was named).
    #[error("OCI layout `{}` has no image{}", layout.display(), named(name.as_deref()))]
    NotInLayout {
        /// The layout directory.
        layout: PathBuf,
        /// The `org.opencontainers.image.ref.name` asked for, if any.
        name: Option<String>,
    },
    /// An OCI layout of several images, read without naming one.
    #[error(
        "OCI layout `{}` holds several images; name one with `oci:{}:NAME`",
        layout.display(),
        layout.display()
    )]
    SeveralInLayout {
        /// The layout directory.
        layout: PathBuf,
    },
    /// A push target pinned to a digest: a push moves a tag.
    #[error(
        "cannot push to `{target}`: a push moves a tag, and `@{digest}` pins the reference to a digest"
    )]
    PushToDigest {
        /// The target reference.
        target: Reference,
        /// The digest it is pinned to.
        digest: Digest,
    },
    /// Work kiln ran on a blocking thread panicked or was cancelled before it finished.
    #[error("{doing} did not finish")]
    TaskFailed {
        /// What the task was doing.
        doing: String,
        /// How the task ended.
        source: tokio::task::JoinError,
    },
    /// A manifest or index larger than registries must accept, refused before any upload.
    #[error(
        "the {what} `{digest}` is {size} bytes, more than the {max} bytes (4 MiB) registries must accept; nothing was pushed"
    )]
    ManifestTooLarge {
        /// `manifest` or `index`.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A blob the image needs is neither in the store nor fetchable.
    #[error(
        "blob `{0}` is not in the local store and the image names no registry to fetch it from"
    )]
    MissingBlob(Digest),
    /// A blob in the local store no longer hashed to its digest, was removed, and cannot be
    /// fetched again (RELIABILITY.md W09): nothing was written out or pushed with it.
    #[error(
        "blob `{0}` in kiln's local store did not match its digest (a corrupted file); kiln removed it, and the image names no registry to fetch it from again"
    )]
    CorruptBlob(Digest),
}

impl ImageError {
    /// Returns the registry's error, when that is what failed (it is the error itself, not
    /// its source: `source()` skips it).
    pub fn registry(&self) -> Option<&kiln_registry::RegistryError> {
        match self {
            Self::Registry(e) => Some(e),
            _ => None,
        }
    }

    /// Returns an `Io` error for `path`.
    pub(crate) fn io(
        doing: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            doing,
            path: path.into(),
            source,
        }
    }

    /// Returns a `Json` error.
    pub(crate) fn json(doing: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            doing: doing.into(),
            source,
        }
    }

    /// Returns a hint for the user, if there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Registry(e) => e.hint(),
            Self::ManifestTooLarge { .. } => Some(
                "a manifest grows with its layers and annotations: merge layers or drop annotations"
                    .to_owned(),
            ),
            Self::PushToDigest { .. } => Some(
                "name the target by its tag (`REGISTRY/REPOSITORY:TAG`), without the `@sha256:…`"
                    .to_owned(),
            ),
            Self::CorruptBlob(_) => Some(
                "run the command again: kiln rebuilds what it built itself; an image it only has locally (a base in its store) must be built or copied in again"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// Returns `` named `name` `` for the message of [`ImageError::NotInLayout`], or nothing.
fn named(name: Option<&str>) -> String {
    name.map(|n| format!(" named `{n}`")).unwrap_or_default()
}
