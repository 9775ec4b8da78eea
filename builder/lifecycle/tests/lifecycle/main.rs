//! kiln-lifecycle's integration tests, in one binary: the export and rebase phases, a
//! rebase published to real registries, and app layers placed through the run image's
//! symlinks (W08).

mod base_links;
mod export;
mod rebase;
mod rebase_push;

/// No settings of the user's on the image config.
pub static NO_SETTINGS: kiln_lifecycle::ImageSettings = kiln_lifecycle::ImageSettings {
    labels: std::collections::BTreeMap::new(),
    env: std::collections::BTreeMap::new(),
    exposed_ports: Vec::new(),
    user: None,
    working_dir: None,
};
