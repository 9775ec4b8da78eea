//! The restore phase, and its other half after the build: a buildpack's cache restored from
//! a cache image before the build, and packed into a new one after it, pushed beside the
//! app image (for build pods without a persistent disk). Neither ever fails a build: a
//! missing, foreign or corrupt cache image only makes the build cold, and a failed cache
//! push only costs the next build its cache.

use std::path::Path;

use kiln_image::{Blobs, PushReport, fetch_remote, push_image};
use kiln_layer::{Compression, LayerBlob};
use kiln_lifecycle::{
    CacheEntry, LayerCache, Restored, cache_entries, entry_fingerprint, host_arch, pack_cache,
    restore_entry,
};
use kiln_model::{FinalImage, Layer};
use kiln_oci::Reference;
use kiln_registry::Client;
use serde::Serialize;

use crate::error::causes;
use crate::{Progress, human_bytes};

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

/// The restore phase's inputs.
pub struct Restore<'a> {
    /// Reads the cache image.
    pub client: &'a Client,
    /// Where its layers go.
    pub blobs: &'a Blobs,
    /// The cache image.
    pub image: &'a Reference,
    /// The buildpack whose cache it holds.
    pub buildpack: &'a str,
    /// The buildpack's cache directory.
    pub dir: &'a Path,
}

impl CacheReport {
    /// Records why a cache image or entry was not used, and says so.
    fn problem(&mut self, what: String, progress: &dyn Progress) {
        progress.warn(&format!("{what}; building without it"));
        self.problems.push(what);
    }
}

impl Restore<'_> {
    /// Restores the entries of the cache image that the cache directory lacks, recording
    /// their blobs in the layer reuse `index`; every problem is a warning, and the entry it
    /// concerns is simply rebuilt.
    pub async fn run(&self, index: &mut LayerCache, progress: &dyn Progress) -> CacheReport {
        let mut report = CacheReport::default();
        let reference = self.image;
        let image = match fetch_remote(self.client, reference, "linux", host_arch()).await {
            Ok((image, _)) => image,
            Err(kiln_image::ImageError::Registry(e)) if e.status() == Some(404) => {
                progress.info(&format!(
                    "no cache image `{reference}` yet: this build is cold"
                ));
                return report;
            }
            Err(e) => {
                let why = causes(&e);
                let what = format!("reading the cache image `{reference}`: {why}");
                report.problem(what, progress);
                return report;
            }
        };
        let entries = match cache_entries(&image, self.buildpack) {
            Ok(entries) => entries,
            Err(e) => {
                let why = causes(&e);
                let what = format!("the cache image `{reference}`: {why}");
                report.problem(what, progress);
                return report;
            }
        };
        for (entry, layer) in entries {
            if self.dir.join(&entry.path).exists() {
                report.present.push(entry.path);
                continue;
            }
            self.entry(entry, layer, index, &mut report, progress).await;
        }
        report
    }

    /// Unpacks one entry the cache directory lacks, and records its blob in `index`.
    async fn entry(
        &self,
        entry: CacheEntry,
        layer: &Layer,
        index: &mut LayerCache,
        report: &mut CacheReport,
        progress: &dyn Progress,
    ) {
        let blob = match self.blobs.local_path(layer).await {
            Ok(path) => path,
            Err(e) => {
                let why = causes(&e);
                report.problem(format!("cache entry `{}`: {why}", entry.path), progress);
                return;
            }
        };
        let (dir, layer) = (self.dir.to_path_buf(), layer.clone());
        let unpacked = tokio::task::spawn_blocking(move || {
            let got = restore_entry(&dir, &entry, &layer, &blob);
            // The blob stays in the store, known by the entry's fingerprint: packed again
            // unchanged after the build, the entry is not compressed again.
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
                progress.info(&format!(
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
                let why = causes(&e);
                report.problem(format!("cache entry `{}`: {why}", entry.path), progress);
            }
            Err(e) => report.problem(format!("restoring the cache: {e}"), progress),
        }
    }
}

/// Returns the cache image of `dir`, the cache directory of `buildpack`, finalized; a
/// problem is a warning and `None`.
pub fn pack(
    dir: &Path,
    buildpack: &str,
    blobs: &Blobs,
    compression: Compression,
    index: &mut LayerCache,
    progress: &dyn Progress,
) -> Option<FinalImage> {
    if !dir.is_dir() {
        return None;
    }
    let packed = pack_cache(dir, buildpack, blobs.store(), compression, index)
        .map_err(|e| causes(&e))
        .and_then(|image| image.finalize().map_err(|e| causes(&e)));
    match packed {
        Ok(image) => Some(image),
        Err(e) => {
            progress.warn(&format!(
                "packing the build cache: {e}; no cache image is pushed"
            ));
            None
        }
    }
}

/// Pushes the cache image; returns what to report, or why it failed, in words.
pub async fn push(
    client: Client,
    blobs: Blobs,
    target: Reference,
    image: FinalImage,
) -> Result<PushReport, String> {
    push_image(&client, &target, &image, &blobs, &())
        .await
        .map_err(|e| format!("pushing the cache image `{target}`: {}", causes(&e)))
}

/// Records a cache push's outcome in `report` and says it.
pub fn pushed(
    report: &mut CacheReport,
    target: &Reference,
    outcome: Result<PushReport, String>,
    progress: &dyn Progress,
) {
    match outcome {
        Ok(push) => {
            let pinned = format!("{}@{}", target.name(), push.digest);
            progress.info(&format!(
                "cache image {pinned} (uploaded {} of layers)",
                human_bytes(push.uploaded_bytes)
            ));
            report.pushed = Some(pinned);
            report.uploaded_bytes = push.uploaded_bytes;
        }
        Err(e) => {
            progress.warn(&format!("{e}; the next build will be cold"));
            report.problems.push(e);
        }
    }
}
