//! kiln-lifecycle's integration tests, in one binary: the export and rebase phases, and
//! app layers placed through the run image's symlinks (W08).

mod base_links;
mod export;
mod rebase;
