//! The build provenance: an in-toto statement with a SLSA v1 predicate
//! (<https://slsa.dev/spec/v1.0/provenance>) of what was built, from what, by whom.

use std::time::Instant;

use kiln_layer::Compression;
use kiln_lifecycle::{GitInfo, RunImage};
use kiln_oci::{Digest, Reference};

/// The build type kiln's provenance names.
pub const BUILD_TYPE: &str = "https://kiln.dev/build/v1";

/// What the provenance of a build records.
pub struct BuildProvenance<'a> {
    /// Who built it: a URI naming the CI system or machine.
    pub builder_id: &'a str,
    /// The pushed reference.
    pub target: &'a Reference,
    /// The image (or index) manifest digest: the subject.
    pub digest: &'a Digest,
    /// The buildpack that built it.
    pub buildpack: &'a str,
    /// The run image it sits on, as the user named it.
    pub run_image: &'a str,
    /// The run image's manifest it sits on, when it is one image (an index's images sit on
    /// one each, and their own provenance names it).
    pub base: Option<&'a RunImage>,
    /// The source's git facts (remote without credentials, commit).
    pub git: &'a GitInfo,
    /// The default process asked for, if any.
    pub process: Option<&'a str>,
    /// The names of the variables the user set for the build (never their values: they may
    /// be secrets).
    pub env_names: &'a [String],
    /// The cache image, if any.
    pub cache_image: Option<&'a Reference>,
    /// The layers' compression.
    pub compression: Compression,
    /// When the build started, to record the build's wall-clock times; `None` leaves them
    /// out (SLSA makes them optional), so that an unchanged rebuild attests the same bytes.
    pub started: Option<Instant>,
}

/// Returns the in-toto statement of the build `p`. Its parameters are what shaped the image.
pub fn provenance_statement(p: &BuildProvenance<'_>) -> Vec<u8> {
    let mut parameters = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        parameters.insert(k.to_owned(), v);
    };
    put("image", p.target.to_string().into());
    put("buildpack", p.buildpack.into());
    put("runImage", p.run_image.into());
    if let Some(process) = p.process {
        put("process", process.into());
    }
    if !p.env_names.is_empty() {
        put("envNames", p.env_names.to_vec().into());
    }
    if let Some(cache) = p.cache_image {
        put("cacheImage", cache.to_string().into());
    }
    put("compression", p.compression.as_str().into());
    let now = chrono::Utc::now().timestamp();
    let buildpacks = [(p.buildpack.to_owned(), env!("CARGO_PKG_VERSION").to_owned())];
    kiln_attest::sign::provenance_statement(&kiln_attest::sign::ProvenanceInput {
        subject_name: &p.target.name(),
        subject_digest: p.digest,
        builder_id: p.builder_id,
        builder_version: env!("CARGO_PKG_VERSION"),
        build_type: BUILD_TYPE,
        source_uri: p.git.remote.as_deref(),
        source_revision: p.git.revision.as_deref(),
        buildpacks: &buildpacks,
        base_image: p.base.map(|run| (run.name.as_str(), &run.digest)),
        parameters: &parameters,
        invocation_id: None,
        started_on: p
            .started
            .map(|started| now - started.elapsed().as_secs() as i64),
        finished_on: p.started.map(|_| now),
    })
}
