//! The restore phase, and its other half after the build: a buildpack's cache restored from
//! a cache image before the build, and packed into a new one after it, pushed beside the
//! app image (for build pods without a persistent disk). Neither ever fails a build: a
//! missing, foreign or corrupt cache image only makes the build cold, and a failed cache
//! push only costs the next build its cache.

use std::path::Path;

use kiln_image::{Blobs, PushReport, fetch_remote, push_image};
use kiln_layer::{Compression, LayerBlob};
use kiln_lifecycle::{
    LayerCache, Restored, cache_entries, host_arch, pack_cache, restore_entry,
    restored_fingerprints,
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
        // An entry's parts are listed one after the other.
        let mut grouped: Vec<(String, Vec<&Layer>)> = Vec::new();
        for (entry, layer) in entries {
            match grouped.last_mut() {
                Some((name, layers)) if *name == entry.path => layers.push(layer),
                _ => grouped.push((entry.path, vec![layer])),
            }
        }
        for (name, layers) in grouped {
            if self.dir.join(&name).exists() {
                report.present.push(name);
                continue;
            }
            self.entry(name, layers, index, &mut report, progress).await;
        }
        report
    }

    /// Unpacks one entry the cache directory lacks from its parts' layers, and records
    /// their blobs in `index`.
    async fn entry(
        &self,
        name: String,
        layers: Vec<&Layer>,
        index: &mut LayerCache,
        report: &mut CacheReport,
        progress: &dyn Progress,
    ) {
        let mut blobs = Vec::new();
        for layer in &layers {
            match self.blobs.local_path(layer).await {
                Ok(path) => blobs.push(path),
                Err(e) => {
                    let why = causes(&e);
                    report.problem(format!("cache entry `{name}`: {why}"), progress);
                    return;
                }
            }
        }
        let dir = self.dir.to_path_buf();
        let layers: Vec<Layer> = layers.into_iter().cloned().collect();
        let unpacked = tokio::task::spawn_blocking(move || {
            let parts: Vec<(&Layer, &Path)> = layers
                .iter()
                .zip(blobs.iter().map(|b| b.as_path()))
                .collect();
            let got = restore_entry(&dir, &name, &parts);
            // The blobs stay in the store, known by the parts' fingerprints: packed again
            // unchanged after the build, the entry is not compressed again.
            let compressions: Option<Vec<Compression>> = layers
                .iter()
                .map(|l| Compression::from_media_type(&l.media_type))
                .collect();
            let keys = match (&got, compressions) {
                (Ok(Restored::Unpacked { .. }), Some(c)) => restored_fingerprints(&dir, &name, &c)
                    .map(|keys| keys.into_iter().zip(c).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (name, layers, got, keys)
        })
        .await;
        match unpacked {
            Ok((name, layers, Ok(Restored::Unpacked { files }), keys)) => {
                let parts = match layers.len() {
                    1 => String::new(),
                    n => format!(" in {n} parts"),
                };
                progress.info(&format!(
                    "restored cache entry `{name}` ({files} files{parts})"
                ));
                for ((key, compression), layer) in keys.into_iter().zip(layers) {
                    let blob = LayerBlob {
                        digest: layer.digest,
                        diff_id: layer.diff_id,
                        size: layer.size,
                        media_type: compression.media_type(),
                    };
                    index.insert(&key, blob);
                }
                report.restored.push(name);
            }
            Ok((name, _, Ok(Restored::Present), _)) => report.present.push(name),
            Ok((name, _, Err(e), _)) => {
                let why = causes(&e);
                report.problem(format!("cache entry `{name}`: {why}"), progress);
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
