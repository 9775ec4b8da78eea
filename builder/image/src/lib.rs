//! Images as kiln handles them: a config plus an ordered list of layer blobs that live either
//! in the local blob store or in a registry repository; the sources that read run images
//! (registry, OCI layout) and the sinks that write finished images (registry, OCI layout,
//! OCI archive); and a validator that recomputes every digest, size and diffID.
//!
//! Specs: OCI image-spec manifest, config and image layout
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>).
//!
//! Async where the registry is involved (tokio); local file work is synchronous and short,
//! except layer hashing in the validator, which runs on blocking threads.

mod archive;
mod blobs;
mod error;
mod layout;
mod remote;
mod sink;
mod validate;

pub use archive::write_archive;
pub use blobs::Blobs;
pub use error::ImageError;
/// The step that reads a pulled manifest's layers, for the fuzzers (`fuzz/`).
#[doc(hidden)]
pub use layout::layers_of;
pub use layout::{
    LayoutEntry, layout_entries, layout_has, read_layout, remove_from_layout, write_layout,
};
pub use remote::{
    BlobOutcome, PushObserver, PushReport, already_tagged, fetch_remote, fetch_remote_all,
    push_image,
};
pub use sink::{ArchiveSink, Destination, LayoutSink, RegistrySink, Sink, Written};
pub use validate::{
    Validated, ValidatedIndex, validate_layout, validate_layout_index, validate_remote,
    validate_remote_index,
};
