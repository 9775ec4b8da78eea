//! The build provenance of `kiln build`: an in-toto statement with a SLSA v1 predicate
//! (<https://slsa.dev/spec/v1.0/provenance>) of what was built, from what, by whom.

use std::time::Instant;

use kiln_lifecycle::{GitInfo, RunImage};
use kiln_oci::{Digest, Reference};

use crate::args::BuildArgs;
use crate::settings::Environment;

/// What the provenance of a build records.
pub struct BuildFacts<'a> {
    /// The build's flags.
    pub args: &'a BuildArgs,
    /// The environment (for `KILN_BUILDER_ID`).
    pub env: &'a Environment,
    /// The pushed reference.
    pub target: &'a Reference,
    /// The image manifest digest (the subject).
    pub digest: &'a Digest,
    /// The buildpack that built it.
    pub buildpack: &'a str,
    /// The run image it sits on.
    pub run: &'a RunImage,
    /// The source's git facts (remote without credentials, commit).
    pub git: &'a GitInfo,
    /// When the build started.
    pub started: Instant,
}

/// Returns the in-toto statement of this build. Parameters are the flags that shaped the
/// image; of `--env` only the names (values may be secrets).
pub fn provenance(p: &BuildFacts<'_>) -> Vec<u8> {
    let mut parameters = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        parameters.insert(k.to_owned(), v);
    };
    put("image", p.target.to_string().into());
    put("buildpack", p.buildpack.into());
    put("runImage", p.run.name.clone().into());
    if let Some(process) = &p.args.process {
        put("process", process.clone().into());
    }
    if !p.args.env.is_empty() {
        let names: Vec<String> = p
            .args
            .env
            .iter()
            .map(|kv| kv.split('=').next().unwrap_or_default().to_owned())
            .collect();
        put("envNames", names.into());
    }
    if let Some(cache) = &p.args.cache_image {
        put("cacheImage", cache.clone().into());
    }
    put(
        "compression",
        format!("{:?}", p.args.compression).to_lowercase().into(),
    );
    let now = chrono::Utc::now().timestamp();
    let buildpacks = [(p.buildpack.to_owned(), env!("CARGO_PKG_VERSION").to_owned())];
    kiln_attest::sign::provenance_statement(&kiln_attest::sign::ProvenanceInput {
        subject_name: &p.target.name(),
        subject_digest: p.digest,
        builder_id: &p.env.builder_id(),
        builder_version: env!("CARGO_PKG_VERSION"),
        build_type: "https://kiln.dev/build/v1",
        source_uri: p.git.remote.as_deref(),
        source_revision: p.git.revision.as_deref(),
        buildpacks: &buildpacks,
        base_image: Some((&p.run.name, &p.run.digest)),
        parameters: &parameters,
        invocation_id: None,
        started_on: Some(now - p.started.elapsed().as_secs() as i64),
        finished_on: Some(now),
    })
}
