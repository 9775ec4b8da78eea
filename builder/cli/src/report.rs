//! The `--report` JSON: what was built, what was reused, what was pushed, how long it took.

use std::path::Path;

use anyhow::Context;
use kiln_image::PushReport;
use kiln_lifecycle::{Confinement, ExportedLayer};
use kiln_model::FinalImage;
use kiln_oci::Reference;

use crate::build_cache::CacheReport;
use crate::supply::SupplyReport;
use serde::Serialize;

/// Phase durations in milliseconds.
#[derive(Debug, Serialize)]
pub struct Timings {
    /// Detect phase, and reading the run image.
    pub detect_ms: u128,
    /// Build phase (copy + toolchain).
    pub build_ms: u128,
    /// Export phase (layers, config, manifest).
    pub export_ms: u128,
    /// Push or save.
    pub push_ms: u128,
    /// Whole command.
    pub total_ms: u128,
}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<SandboxReport>,
    timings: Timings,
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
    /// Assembles the report.
    pub fn new(
        target: &Reference,
        image: &FinalImage,
        layers: &'a [ExportedLayer],
        push: Option<&'a PushReport>,
        cache_image: Option<&'a CacheReport>,
        supply: &'a SupplyReport,
        timings: Timings,
    ) -> Self {
        Self {
            image: target.to_string(),
            digest: image.manifest_digest.to_string(),
            reference: format!("{}@{}", target.name(), image.manifest_digest),
            layers: layers
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
            push,
            cache_image,
            supply,
            sandbox: None,
            timings,
        }
    }

    /// Records how the build's steps were confined.
    pub fn sandbox(mut self, confinement: &Confinement) -> Self {
        self.sandbox = Some(confinement.into());
        self
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json)
            .with_context(|| format!("writing the report `{}`", path.display()))
    }
}
