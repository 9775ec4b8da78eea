//! Labels that make a kiln image readable by CNB tooling (`pack inspect`, rebase) and by
//! OCI-aware tools: `io.buildpacks.build.metadata`, `io.buildpacks.lifecycle.metadata`
//! (<https://github.com/buildpacks/spec/blob/main/platform.md#iobuildpackslifecyclemetadata-json>)
//! and the `org.opencontainers.image.*` annotations-as-labels.

use std::collections::BTreeMap;

use kiln_oci::Digest;
use serde_json::{Value, json};

use crate::Process;

/// Facts the labels are made of.
pub struct LabelInputs<'a> {
    /// Buildpack id and version.
    pub buildpack: (&'a str, &'a str),
    /// The processes, in order.
    pub processes: &'a [Process],
    /// Per launch layer: name and diffID.
    pub app_layers: &'a [(String, Digest)],
    /// The run image as the user named it.
    pub run_image: &'a str,
    /// The run image's manifest digest.
    pub run_image_digest: &'a Digest,
    /// The diffID of the run image's top layer.
    pub run_image_top_layer: &'a Digest,
    /// Source repository URL, if known.
    pub source: Option<&'a str>,
    /// Source revision, if known.
    pub revision: Option<&'a str>,
    /// RFC 3339 build time.
    pub created: &'a str,
}

/// Returns the image labels.
pub fn labels(i: &LabelInputs<'_>) -> BTreeMap<String, String> {
    let (bp_id, bp_version) = i.buildpack;
    let processes: Vec<Value> = i
        .processes
        .iter()
        .map(|p| {
            json!({
                "type": p.name,
                "command": p.command,
                "args": [],
                "direct": true,
                "default": p.default,
                "buildpackID": bp_id,
            })
        })
        .collect();
    let build = json!({
        "buildpacks": [{ "id": bp_id, "version": bp_version }],
        "processes": processes,
        "launcher": { "version": "", "source": {} },
    });
    let layers: serde_json::Map<String, Value> = i
        .app_layers
        .iter()
        .map(|(name, diff_id)| {
            (
                name.clone(),
                json!({ "sha": diff_id.to_string(), "launch": true, "data": {} }),
            )
        })
        .collect();
    let lifecycle = json!({
        "app": i.app_layers.iter().map(|(_, d)| json!({ "sha": d.to_string() })).collect::<Vec<_>>(),
        "buildpacks": [{ "key": bp_id, "version": bp_version, "layers": layers }],
        "runImage": {
            "topLayer": i.run_image_top_layer.to_string(),
            "reference": i.run_image_digest.to_string(),
            "image": i.run_image,
        },
        "stack": { "runImage": { "image": i.run_image } },
    });
    let mut out = BTreeMap::new();
    out.insert("io.buildpacks.build.metadata".into(), build.to_string());
    out.insert(
        "io.buildpacks.lifecycle.metadata".into(),
        lifecycle.to_string(),
    );
    out.insert(
        "org.opencontainers.image.created".into(),
        i.created.to_string(),
    );
    if let Some(s) = i.source {
        out.insert("org.opencontainers.image.source".into(), s.to_string());
    }
    if let Some(r) = i.revision {
        out.insert("org.opencontainers.image.revision".into(), r.to_string());
    }
    out
}
