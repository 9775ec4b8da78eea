//! What commands that talk to a registry set up first: an async runtime and a client.

use anyhow::{Context as _, anyhow};
use kiln_oci::Reference;
use kiln_registry::Client;
use tokio::runtime::Runtime;

use crate::args::RegistryArgs;
use crate::failure::{Failure, exit};
use crate::settings::Environment;

/// A runtime and a registry client.
pub struct Session {
    /// The async runtime.
    pub runtime: Runtime,
    /// The registry client.
    pub client: Client,
}

impl Session {
    /// Opens a session.
    pub fn open(env: &Environment, registry: &RegistryArgs) -> Result<Self, Failure> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let settings = env
            .registry_settings(registry)
            .map_err(|e| Failure::new(exit::USAGE, e))?;
        let client = Client::new(settings).map_err(|e| {
            let hint = e.hint();
            Failure::new(exit::FAILURE, e).hint(hint)
        })?;
        crate::signals::watch(&client, []);
        Ok(Self { runtime, client })
    }
}

/// Parses an image reference argument.
pub fn parse_image(image: &str) -> Result<Reference, Failure> {
    image.parse().map_err(|e| {
        Failure::new(exit::USAGE, anyhow!("{e}")).hint(Some(
            "name the image like `registry.example.com/team/app:tag`".into(),
        ))
    })
}
