use std::path::PathBuf;

use kiln_oci::Digest;

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
    /// The image is not usable as asked (unsupported media type, no matching platform, ...).
    #[error("{0}")]
    Unsupported(String),
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
            Self::CorruptBlob(_) => Some(
                "run the command again: kiln rebuilds what it built itself; an image it only has locally (a base in its store) is rebuilt with `kiln base build` or copied in again"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
