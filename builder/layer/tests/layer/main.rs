//! kiln-layer's integration tests, in one binary (one link, one run): blob store, layer
//! determinism, tar headers, host trees and the tar→tar layer writer.

mod common;

mod blobs;
mod determinism;
mod headers;
mod host_tree;
mod layer_writer;
