//! kiln-lifecycle's integration tests, in one binary: the export and rebase phases, and a
//! rebase published to real registries.

mod export;
mod rebase;
mod rebase_push;
