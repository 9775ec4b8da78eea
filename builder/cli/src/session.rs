//! What commands that talk to a registry set up first: the library's session (an async
//! runtime and a client) from the resolved settings, watched for interrupts.

use std::path::Path;

use anyhow::anyhow;
use kiln_oci::Reference;
use kiln_pipeline::{Session, Store};

use crate::args::RegistryArgs;
use crate::errors::session_failure;
use crate::failure::{Failure, exit};
use crate::settings::Environment;

/// Opens a session with the registry settings of `registry` and the environment; an
/// interrupt cancels its uploads.
pub fn open(env: &Environment, registry: &RegistryArgs) -> Result<Session, Failure> {
    let settings = env
        .registry_settings(registry)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let session = Session::open(settings).map_err(|e| session_failure(e, exit::FAILURE))?;
    crate::signals::watch(session.client(), []);
    Ok(session)
}

/// Opens kiln's local store under `cache_dir`; an interrupt sweeps its temp files.
/// `code` is the exit code of a failure.
pub fn store(session: &Session, cache_dir: &Path, code: u8) -> Result<Store, Failure> {
    let store = session
        .store(cache_dir)
        .map_err(|e| session_failure(e, code))?;
    crate::signals::watch(session.client(), store.temp_dirs());
    Ok(store)
}

/// Parses an image reference argument.
pub fn parse_image(image: &str) -> Result<Reference, Failure> {
    image.parse().map_err(|e| {
        Failure::new(exit::USAGE, anyhow!("{e}")).hint(Some(
            "name the image like `registry.example.com/team/app:tag`".into(),
        ))
    })
}
