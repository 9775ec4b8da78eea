//! kiln-lifecycle's integration tests, in one binary: the export and rebase phases.

mod export;
mod rebase;
