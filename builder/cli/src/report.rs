//! The `--report` JSON: what was built, what was reused, what was pushed, how long it took.

use std::path::Path;

use anyhow::Context;
use kiln_image::PushReport;
use kiln_lifecycle::Confinement;
use kiln_oci::Reference;
use kiln_pipeline::{CacheReport, Created, SupplyReport, Timings};
use serde::Serialize;

/// The report.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    image: String,
    digest: String,
    reference: String,
    layers: Vec<LayerReport<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<&'a PushReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_image: Option<&'a CacheReport>,
    supply: &'a SupplyReport,
    sandbox: SandboxReport,
    timings: &'a Timings,
}

/// How the build steps were confined.
#[derive(Debug, Serialize)]
struct SandboxReport {
    /// `landlock` or `none`.
    confinement: &'static str,
    /// The kernel's Landlock ABI, when confined.
    #[serde(skip_serializing_if = "Option::is_none")]
    abi: Option<u8>,
    /// Why not, when unconfined.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Confinement> for SandboxReport {
    fn from(c: &Confinement) -> Self {
        match c {
            Confinement::Landlock { abi } => Self {
                confinement: "landlock",
                abi: Some(*abi),
                reason: None,
            },
            Confinement::None { reason } => Self {
                confinement: "none",
                abi: None,
                reason: Some(reason.clone()),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct LayerReport<'a> {
    name: &'a str,
    digest: String,
    diff_id: String,
    size: u64,
    media_type: &'a str,
    reused: bool,
}

impl<'a> Report<'a> {
    /// Assembles the report of the build `created` of `target`.
    pub fn new(target: &Reference, created: &'a Created) -> Self {
        let digest = &created.image.manifest_digest;
        Self {
            image: target.to_string(),
            digest: digest.to_string(),
            reference: created.pinned(target),
            layers: created
                .layers
                .iter()
                .map(|l| LayerReport {
                    name: &l.name,
                    digest: l.blob.digest.to_string(),
                    diff_id: l.blob.diff_id.to_string(),
                    size: l.blob.size,
                    media_type: l.blob.media_type,
                    reused: l.reused,
                })
                .collect(),
            push: created.delivered.push_report(),
            cache_image: created.cache.as_ref(),
            supply: &created.supply,
            sandbox: (&created.confinement).into(),
            timings: &created.timings,
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json)
            .with_context(|| format!("writing the report `{}`", path.display()))
    }
}
