//! The `--report` JSON: what was built, what was reused, what was pushed, how long it took;
//! or, when the build failed, where and why. Both carry [`SCHEMA`] and `status`; README's
//! "The build report" documents the fields.

use std::path::Path;

use anyhow::Context;
use kiln_image::PushReport;
use kiln_lifecycle::Confinement;
use kiln_oci::Reference;
use kiln_pipeline::{CacheReport, Created, SupplyReport, Timings};
use serde::Serialize;

use crate::failure::Failure;

/// The report's schema and version: a field that changes meaning or goes away makes a new
/// version; new fields do not.
pub const SCHEMA: &str = "kiln.build-report/v1";

/// The report of a build that succeeded.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    schema: &'static str,
    /// `succeeded`.
    status: &'static str,
    image: String,
    digest: String,
    reference: String,
    /// The app layers of the first platform's image (of the only one, mostly).
    layers: Vec<LayerReport<'a>>,
    /// Each platform's image, in the index's order.
    platforms: Vec<PlatformReport<'a>>,
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

/// One platform's image.
#[derive(Debug, Serialize)]
struct PlatformReport<'a> {
    /// `linux/arm64/v8`.
    platform: String,
    /// Its manifest's digest.
    digest: String,
    /// The run image it sits on, pinned.
    run_image: String,
    layers: Vec<LayerReport<'a>>,
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
        Self {
            schema: SCHEMA,
            status: "succeeded",
            image: target.to_string(),
            digest: created.digest().to_string(),
            reference: created.pinned(target),
            layers: layer_reports(&created.images[0].layers),
            platforms: created
                .images
                .iter()
                .map(|i| PlatformReport {
                    platform: i.platform.to_string(),
                    digest: i.image.manifest_digest.to_string(),
                    run_image: format!("{}@{}", i.run_image.name, i.run_image.digest),
                    layers: layer_reports(&i.layers),
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
        write(self, path)
    }
}

fn layer_reports(layers: &[kiln_lifecycle::ExportedLayer]) -> Vec<LayerReport<'_>> {
    layers
        .iter()
        .map(|l| LayerReport {
            name: &l.name,
            digest: l.blob.digest.to_string(),
            diff_id: l.blob.diff_id.to_string(),
            size: l.blob.size,
            media_type: l.blob.media_type,
            reused: l.reused,
        })
        .collect()
}

/// The report of a build that failed: where, with which exit code, and why.
#[derive(Debug, Serialize)]
pub struct FailureReport<'a> {
    schema: &'static str,
    /// `failed`.
    status: &'static str,
    image: &'a str,
    /// The phase that failed: `setup`, `preflight`, `detect`, `run-image`, `build`,
    /// `export`, `attest` or `deliver`.
    phase: &'static str,
    exit_code: u8,
    /// The error, then each of its causes.
    error: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

impl<'a> FailureReport<'a> {
    /// Assembles the report of the build of `image` that failed in `phase` with `failure`.
    pub fn new(image: &'a str, phase: &'static str, failure: &'a Failure) -> Self {
        Self {
            schema: SCHEMA,
            status: "failed",
            image,
            phase,
            exit_code: failure.code,
            error: failure.error.chain().map(ToString::to_string).collect(),
            hint: failure.hint.as_deref(),
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        write(self, path)
    }
}

fn write(report: &impl Serialize, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(path, json).with_context(|| format!("writing the report `{}`", path.display()))
}
