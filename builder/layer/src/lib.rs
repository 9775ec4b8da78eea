//! Deterministic layer writing for kiln: a layer's contents become one normalized tar,
//! streamed once through sha256 (diffID), gzip or zstd, and sha256 (digest) into a
//! content-addressed [`BlobStore`].
//!
//! Determinism: entries are sorted by path, every header is normalized by a
//! [`TarPolicy`] (fixed mtime, numeric owner, no user/group names, fixed modes, no device
//! numbers, pax records only for what does not fit ustar), and compression output does
//! not depend on the number of threads. The same contents from any checkout path, umask
//! or file times give byte-identical blobs.
//!
//! [`LayerWriter`] is the same pipeline for tar→tar transforms: entries come one at a
//! time from the caller (e.g. a Debian `data.tar`), in the caller's order, with file
//! bodies streamed from readers.
//!
//! Every entry written is checked against the rules every layer obeys ([`validate_tar`]).
//! [`BaseLinks`] places a layer's paths behind the symlinks of the image it goes on.
//! [`extract_layer`] unpacks kiln's cache layers, confined to their directory.
//!
//! Everything here is synchronous CPU and file work; async callers run it on blocking
//! threads. Nothing prints: skipped files come back as [`Warning`]s.
//!
//! Specs: OCI image-spec layers
//! (<https://github.com/opencontainers/image-spec/blob/main/layer.md>) and image layout
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>); POSIX pax
//! (<https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html>).

mod base_links;
mod blob_stamps;
mod blob_store;
mod compression;
mod contents;
mod error;
mod extract;
mod file_stamp;
mod files;
mod fingerprint;
mod hash_cache;
mod header;
mod layer_writer;
mod pargz;
mod plan;
mod policy;
mod source;
mod subset;
mod tar_stream;
mod tree;
mod validate;
mod walk;
mod write;

pub use base_links::{BaseLinks, USUAL_BASE_LINKS};
pub use blob_store::{BlobCheck, BlobStore, BlobWriter};
pub use compression::{Compression, GZIP_LEVEL, ZSTD_JOB_SIZE, ZSTD_LEVEL, ZSTD_OVERLAP_LOG};
pub use contents::LayerContents;
pub use error::{LayerError, SkippedKind, Warning};
pub use extract::{ExtractError, ExtractStats, extract_layer};
pub use file_stamp::{FileStamp, RACY_SECS as FILE_STAMP_RACY_SECS};
pub use files::{FileLock, TEMP_PREFIX, remove_own_temp_files, temp_prefix, write_atomic};
pub use hash_cache::HashCache;
pub use layer_writer::LayerWriter;
pub use pargz::{BLOCK_SIZE as GZIP_BLOCK_SIZE, ParallelGzEncoder};
pub use policy::{Ownership, TarPolicy};
pub use validate::{LayerOrder, validate_tar};
pub use write::{LayerBlob, WriteOptions, write_layer, write_layer_with, write_tar};
