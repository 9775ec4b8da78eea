//! kiln-layer's integration tests, in one binary (one link, one run): blob store, layer
//! determinism, tar headers, host trees, the tar→tar layer writer, and the hostile and
//! faulty situations of RELIABILITY.md (W01–W12), each test named after its ID.

mod common;

mod blobs;
mod crash;
mod determinism;
mod extract;
mod headers;
mod host_tree;
mod layer_writer;
mod metadata;
mod names;
mod scale;
mod self_check;
mod symlinks;
