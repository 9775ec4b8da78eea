//! The errors and warnings of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why building or writing a layer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A path given to one of the `add_*` methods cannot be stored in a layer.
    #[error("adding `{path}` to a layer: {reason}")]
    InvalidPath {
        /// The path as it was given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The directory given to `add_tree` is not a directory.
    #[error("adding tree `{path}` to a layer: it is not a directory")]
    NotADirectory {
        /// The host path.
        path: PathBuf,
    },
    /// A file in a host tree is named like an OCI whiteout marker.
    #[error(
        "adding `{path}` to a layer: names starting with `.wh.` are whiteout markers and would \
         delete files from lower layers; rename or remove the file"
    )]
    Whiteout {
        /// The host path of the offending file.
        path: PathBuf,
    },
    /// Walking a host tree failed (permissions, a vanished directory).
    #[error("walking `{path}`")]
    Walk {
        /// The host path being walked.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading a host file, its metadata or its link target failed.
    #[error("reading `{path}`")]
    Read {
        /// The host path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A host file grew or shrank between being added and being fully read.
    #[error(
        "reading `{path}`: its size changed from {expected} to {actual} bytes while the layer \
         was being built; make sure nothing is still writing to it"
    )]
    SizeChanged {
        /// The host path.
        path: PathBuf,
        /// The size recorded when the file was added.
        expected: u64,
        /// The size seen while reading.
        actual: u64,
    },
    /// A host path that was a regular file when added is something else now.
    #[error(
        "reading `{path}`: it is no longer a regular file; make sure nothing is still \
         changing the directory while the layer is built"
    )]
    NotAFile {
        /// The host path.
        path: PathBuf,
    },
    /// A host file, or a directory above it, was replaced after being added: by a symlink
    /// (never followed), another file or a non-directory.
    #[error(
        "reading `{path}`: it or a directory above it was replaced (by a symlink or another \
         file) while the layer was being built; make sure nothing is still changing the \
         directory"
    )]
    Replaced {
        /// The host path.
        path: PathBuf,
    },
    /// An entry breaks a rule every layer kiln writes obeys (relative normalized paths, no
    /// duplicates, parents before children, hardlinks to earlier files). For
    /// [`crate::write_layer`] this is a bug in kiln.
    #[error("writing `{path}` into a layer: {rule}")]
    Unsound {
        /// The in-layer path of the entry (bytes that are not UTF-8 shown as U+FFFD).
        path: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A path of a layer cannot be placed on the run image through its symlinks.
    #[error("placing `{path}` on the run image: {reason}")]
    OnBase {
        /// The entry's path in the layer as built.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A layer read back for validation is not a readable tar.
    #[error("reading a layer's tar")]
    Unreadable {
        /// The underlying error.
        source: io::Error,
    },
    /// Reading the bytes of a streamed entry failed.
    #[error("reading the contents of `{path}` for a layer")]
    EntrySource {
        /// The in-layer path of the entry.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A streamed entry's reader ended before the size its header promised.
    #[error(
        "reading the contents of `{path}` for a layer: it ended after {actual} of the \
         {expected} bytes its entry promised"
    )]
    ShortEntry {
        /// The in-layer path of the entry.
        path: String,
        /// The size given for the entry.
        expected: u64,
        /// The bytes the reader gave before it ended.
        actual: u64,
    },
    /// A [`crate::LayerWriter`] was used again after one of its calls failed.
    #[error("writing a layer: an earlier entry failed, so the layer cannot be completed")]
    WriterFailed,
    /// Writing, compressing or committing a blob failed.
    #[error("writing a blob into `{path}`")]
    Write {
        /// The blob store directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Creating the blob store directories failed.
    #[error("opening blob store `{path}`")]
    Store {
        /// The blob store root.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A compression name other than `gzip` or `zstd`.
    #[error("unknown layer compression `{0}`: expected `gzip` or `zstd`")]
    UnknownCompression(String),
}

/// Something `add_tree` skipped instead of failing on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The host path that was skipped.
    pub path: PathBuf,
    /// What kind of file it was.
    pub kind: SkippedKind,
}

/// The kinds of host files that cannot go into a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkippedKind {
    /// A unix domain socket.
    Socket,
    /// A named pipe.
    Fifo,
    /// A block device node.
    BlockDevice,
    /// A character device node.
    CharDevice,
    /// Anything else the platform reports.
    Other,
}

impl fmt::Display for SkippedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Socket => "a socket",
            Self::Fifo => "a named pipe (FIFO)",
            Self::BlockDevice => "a block device",
            Self::CharDevice => "a character device",
            Self::Other => "not a regular file, directory or symlink",
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped `{}`: it is {} and cannot be stored in a layer",
            self.path.display(),
            self.kind
        )
    }
}
