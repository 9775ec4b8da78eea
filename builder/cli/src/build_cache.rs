//! `kiln build --cache-image REF`: the buildpack's cache restored from an image before the
//! build and pushed as a new image after it, beside the app image, for build pods without
//! a persistent disk. Nothing here fails a build: a missing, foreign or corrupt cache image
//! only makes the build cold, and a failed cache push only costs the next build its cache.

use std::path::Path;

use kiln_image::{Blobs, PushReport, fetch_remote, push_image};
use kiln_layer::Compression;
use kiln_layer::LayerBlob;
use kiln_lifecycle::{
    LayerCache, Restored, cache_entries, entry_fingerprint, host_arch, pack_cache, restore_entry,
};
use kiln_model::FinalImage;
use kiln_oci::Reference;
use kiln_registry::Client;
use serde::Serialize;

use crate::output::{Ui, human_bytes};

/// What the cache image did for this build, for the report.
#[derive(Debug, Default, Serialize)]
pub struct CacheReport {
    /// Entries unpacked from the cache image.
    pub restored: Vec<String>,
    /// Entries the local cache already had.
    pub present: Vec<String>,
    /// Why the cache image (or an entry) could not be used, if so.
    pub problems: Vec<String>,
    /// The pushed cache image, `name@digest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// Layer bytes its push uploaded.
    pub uploaded_bytes: u64,
}

/// Restores the entries of `reference` that `dir` (the cache directory of `buildpack`)
/// lacks, recording their blobs in the layer reuse `index`; every problem is a warning,
/// and the entry it concerns is simply rebuilt.
pub async fn restore(
    client: &Client,
    blobs: &Blobs,
    reference: &Reference,
    buildpack: &str,
    dir: &Path,
    index: &mut LayerCache,
    ui: &Ui,
) -> CacheReport {
    let mut report = CacheReport::default();
    let problem = |report: &mut CacheReport, what: String| {
        ui.warn(&format!("{what}; building without it"));
        report.problems.push(what);
    };
    let image = match fetch_remote(client, reference, "linux", host_arch()).await {
        Ok((image, _)) => image,
        Err(kiln_image::ImageError::Registry(e)) if e.status() == Some(404) => {
            ui.info(&format!(
                "no cache image `{reference}` yet: this build is cold"
            ));
            return report;
        }
        Err(e) => {
            problem(
                &mut report,
                format!("reading the cache image `{reference}`: {e}"),
            );
            return report;
        }
    };
    let entries = match cache_entries(&image, buildpack) {
        Ok(entries) => entries,
        Err(e) => {
            problem(&mut report, format!("the cache image `{reference}`: {e}"));
            return report;
        }
    };
    for (entry, layer) in entries {
        if dir.join(&entry.path).exists() {
            report.present.push(entry.path);
            continue;
        }
        let blob = match blobs.local_path(layer).await {
            Ok(path) => path,
            Err(e) => {
                problem(&mut report, format!("cache entry `{}`: {e}", entry.path));
                continue;
            }
        };
        let (dir, layer) = (dir.to_path_buf(), layer.clone());
        let unpacked = tokio::task::spawn_blocking(move || {
            let got = restore_entry(&dir, &entry, &layer, &blob);
            // The blob stays in the store, known by the entry's fingerprint: packed again
            // unchanged after the build, the entry is not compressed a second time.
            let compression = Compression::from_media_type(&layer.media_type);
            let key = match (&got, compression) {
                (Ok(Restored::Unpacked { .. }), Some(c)) => {
                    entry_fingerprint(&dir, &entry.path, c).ok().map(|k| (k, c))
                }
                _ => None,
            };
            (entry, layer, got, key)
        })
        .await;
        match unpacked {
            Ok((entry, layer, Ok(Restored::Unpacked { files }), key)) => {
                ui.info(&format!(
                    "restored cache entry `{}` ({files} files)",
                    entry.path
                ));
                if let Some((key, compression)) = key {
                    let blob = LayerBlob {
                        digest: layer.digest,
                        diff_id: layer.diff_id,
                        size: layer.size,
                        media_type: compression.media_type(),
                    };
                    index.insert(&key, blob);
                }
                report.restored.push(entry.path);
            }
            Ok((entry, _, Ok(Restored::Present), _)) => report.present.push(entry.path),
            Ok((entry, _, Err(e), _)) => {
                problem(&mut report, format!("cache entry `{}`: {e}", entry.path))
            }
            Err(e) => problem(&mut report, format!("restoring the cache: {e}")),
        }
    }
    report
}

/// Returns the cache image of `dir`, the cache directory of `buildpack`, finalized; a
/// problem is a warning and `None`.
pub fn pack(
    dir: &Path,
    buildpack: &str,
    blobs: &Blobs,
    compression: Compression,
    index: &mut LayerCache,
    ui: &Ui,
) -> Option<FinalImage> {
    if !dir.is_dir() {
        return None;
    }
    match pack_cache(dir, buildpack, blobs.store(), compression, index)
        .map_err(|e| e.to_string())
        .and_then(|image| image.finalize().map_err(|e| e.to_string()))
    {
        Ok(image) => Some(image),
        Err(e) => {
            ui.warn(&format!(
                "packing the build cache: {e}; no cache image is pushed"
            ));
            None
        }
    }
}

/// Pushes the cache image; returns what to report.
pub async fn push(
    client: Client,
    blobs: Blobs,
    target: Reference,
    image: FinalImage,
) -> Result<PushReport, String> {
    push_image(&client, &target, &image, &blobs, &())
        .await
        .map_err(|e| format!("pushing the cache image `{target}`: {e}"))
}

/// Records a cache push's outcome and says it.
pub fn pushed(
    report: &mut CacheReport,
    target: &Reference,
    outcome: Result<PushReport, String>,
    ui: &Ui,
) {
    match outcome {
        Ok(push) => {
            let pinned = format!("{}@{}", target.name(), push.digest);
            ui.info(&format!(
                "cache image {pinned} (uploaded {} of layers)",
                human_bytes(push.uploaded_bytes)
            ));
            report.pushed = Some(pinned);
            report.uploaded_bytes = push.uploaded_bytes;
        }
        Err(e) => {
            ui.warn(&format!("{e}; the next build will be cold"));
            report.problems.push(e);
        }
    }
}
