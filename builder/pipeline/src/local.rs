//! The images in kiln's local store, and what the cache dir holds: `kiln images`, `kiln rm`
//! and `kiln cache du`.

use std::path::Path;

use kiln_image::{ImageError, layout_entries, remove_from_layout};
use kiln_oci::Digest;
use serde::Serialize;
use serde_json::Value;

use crate::Store;
use crate::prune::disk_usage;

/// One named image (or index) in kiln's store.
#[derive(Clone, Debug, Serialize)]
pub struct LocalImage {
    /// Its name in the store (`docker.io/team/app:1`, `kiln-base/node`).
    pub name: String,
    /// The manifest's (or index's) digest.
    pub digest: Digest,
    /// Compressed bytes of its configs and layers (each blob counted once).
    pub size: u64,
    /// The config's creation time (the first platform's, for an index).
    pub created: Option<String>,
    /// `os/arch` of each platform.
    pub platforms: Vec<String>,
}

/// Returns the images of `store`, sorted by name; an image whose blobs are missing or
/// unreadable is listed with what could be read.
pub fn local_images(store: &Store) -> Result<Vec<LocalImage>, ImageError> {
    let blob = |d: &Digest| -> Option<Value> {
        let bytes = std::fs::read(store.dir().join("blobs/sha256").join(d.hex())).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let mut images: Vec<LocalImage> = layout_entries(store.dir())?
        .into_iter()
        .map(|entry| {
            let top = blob(&entry.digest).unwrap_or(Value::Null);
            let manifests: Vec<Value> = match top["manifests"].as_array() {
                Some(list) => list
                    .iter()
                    .filter_map(|m| blob(&m["digest"].as_str()?.parse().ok()?))
                    .collect(),
                None => vec![top],
            };
            let mut seen = std::collections::BTreeMap::new();
            let mut created = None;
            let mut platforms = Vec::new();
            for m in &manifests {
                let descriptors = std::iter::once(&m["config"])
                    .chain(m["layers"].as_array().into_iter().flatten());
                for d in descriptors {
                    if let (Some(digest), Some(size)) = (d["digest"].as_str(), d["size"].as_u64()) {
                        seen.insert(digest.to_owned(), size);
                    }
                }
                let config = m["config"]["digest"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .and_then(|d| blob(&d))
                    .unwrap_or(Value::Null);
                created = created.or_else(|| config["created"].as_str().map(str::to_owned));
                if let (Some(os), Some(arch)) =
                    (config["os"].as_str(), config["architecture"].as_str())
                {
                    platforms.push(format!("{os}/{arch}"));
                }
            }
            LocalImage {
                name: entry.name,
                digest: entry.digest,
                size: seen.values().sum(),
                created,
                platforms,
            }
        })
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(images)
}

/// Removes the name `name` from the store; its blobs stay (other images may share them).
/// Returns whether the store had it.
pub fn remove_local(store: &Store, name: &str) -> Result<bool, ImageError> {
    remove_from_layout(store.dir(), name)
}

/// Bytes each top-level part of the cache dir holds, largest first: the image store
/// (`oci`), each buildpack's toolchain cache (`buildpacks/kiln-go`, ...), the scratch
/// copies (`work`), the `.deb` cache (`debian`), ...
pub fn cache_usage(cache_dir: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(cache_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && name == "buildpacks" {
            for bp in std::fs::read_dir(entry.path())? {
                let bp = bp?;
                let name = format!("buildpacks/{}", bp.file_name().to_string_lossy());
                parts.push((name, disk_usage(&bp.path())));
            }
        } else {
            parts.push((name, disk_usage(&entry.path())));
        }
    }
    parts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(parts)
}
