//! kiln-lifecycle's integration tests, in one binary: the export and rebase phases, a
//! rebase published to real registries, and app layers placed through the run image's
//! symlinks (W08).

mod base_links;
mod export;
mod rebase;
mod rebase_push;
