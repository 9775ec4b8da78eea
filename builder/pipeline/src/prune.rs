//! `kiln cache prune`: what the cache dir may lose, chosen by age and size, and never a blob
//! an image of kiln's store still needs.
//!
//! The cache dir holds the image store (named images and their blobs: never pruned; remove
//! a name with `kiln rm` and its blobs become garbage), and caches that only save time:
//! the layer-reuse index (`layers.json`, whose entries include packed cache-image layers)
//! with the blobs it names, each buildpack's toolchain caches, the `.deb` downloads, SBOM
//! catalogs and base-link files. Prune removes, in this order:
//!
//! 1. garbage, always: blobs nothing names, scratch copies, leftover temporary files, and
//!    unpacked curated bases of other kiln versions;
//! 2. cached items not used for `older_than`;
//! 3. the least recently used cached items, while the cache dir is larger than `max_size`.
//!
//! It holds the cache dir's lock exclusively ([`IN_USE_LOCK`]): it waits for the builds
//! using the dir to finish, and builds wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kiln_image::layout_entries;
use kiln_layer::{FileLock, TEMP_PREFIX};
use kiln_lifecycle::{layer_cache_entries, remove_layer_cache_entries};
use serde::Serialize;
use serde_json::Value;

use crate::Progress;
use crate::session::IN_USE_LOCK;

/// What to prune beyond garbage.
#[derive(Clone, Debug, Default)]
pub struct PrunePolicy {
    /// Remove cached items not used for this long.
    pub older_than: Option<Duration>,
    /// Then remove the least recently used cached items until the cache dir holds at most
    /// this many bytes.
    pub max_size: Option<u64>,
    /// Say what would go, and remove nothing.
    pub dry_run: bool,
}

/// Why an item was pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PruneReason {
    /// Nothing uses it.
    Garbage,
    /// Not used for longer than the age limit.
    Age,
    /// Among the least recently used while the cache dir was over its size limit.
    Size,
}

/// One thing prune removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Serialize)]
pub struct PrunedItem {
    /// What it was: `blob sha256:…`, `layer cache sha256:…`, a path in the cache dir.
    pub item: String,
    /// Bytes it held.
    pub bytes: u64,
    /// Why it went.
    pub reason: PruneReason,
}

/// What a prune did.
#[derive(Clone, Debug, Serialize)]
pub struct Pruned {
    /// Each item removed, in the order it went.
    pub removed: Vec<PrunedItem>,
    /// Bytes freed.
    pub freed: u64,
    /// Bytes the cache dir holds after it.
    pub remaining: u64,
    /// Bytes of those that the images of kiln's store hold (which prune never removes).
    pub images: u64,
    /// Whether nothing was removed because this was a dry run.
    pub dry_run: bool,
}

/// Why the cache dir could not be pruned.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The cache dir's lock could not be taken.
    #[error("locking the cache dir `{}`", dir.display())]
    Lock {
        /// The cache dir.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The image store's index could not be read: without it, no blob is known to be
    /// garbage, so nothing is removed.
    #[error("reading kiln's store in `{}`", dir.display())]
    Store {
        /// The store.
        dir: PathBuf,
        /// Why (boxed: an image error is large).
        #[source]
        source: Box<kiln_image::ImageError>,
    },
    /// Something could not be removed.
    #[error("removing `{}`", path.display())]
    Remove {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A cached item prune may remove.
struct Candidate {
    item: String,
    bytes: u64,
    last_used: SystemTime,
    removal: Removal,
}

/// How a candidate is removed.
enum Removal {
    /// A file or directory tree.
    Path(PathBuf),
    /// A `layers.json` entry (its blob goes as garbage when nothing else names it).
    LayerEntry(String),
}

/// Prunes the cache dir `cache_dir` by `policy`, at time `now`.
pub fn prune(
    cache_dir: &Path,
    policy: &PrunePolicy,
    now: SystemTime,
    progress: &dyn Progress,
) -> Result<Pruned, PruneError> {
    let lock_path = cache_dir.join(IN_USE_LOCK);
    let lock_failed = |source| PruneError::Lock {
        dir: cache_dir.to_path_buf(),
        source,
    };
    let _held = match FileLock::try_exclusive(&lock_path).map_err(lock_failed)? {
        Some(held) => held,
        None => {
            progress.info("waiting for the builds using this cache dir to finish");
            FileLock::exclusive(&lock_path).map_err(lock_failed)?
        }
    };
    let store = cache_dir.join("oci");
    let blob_dir = store.join("blobs/sha256");
    let image_blobs = image_blobs(&store)?;
    let layers = cache_dir.join("layers.json");
    let entries = layer_cache_entries(&layers);
    let named = |dropped: &BTreeSet<String>| -> BTreeSet<String> {
        let mut named = image_blobs.clone();
        named.extend(
            entries
                .iter()
                .filter(|(key, _)| !dropped.contains(*key))
                .map(|(_, blob)| blob.digest.hex().to_owned()),
        );
        named
    };

    // What the size policy weighs: the cache dir without its garbage.
    let garbage = garbage(cache_dir, &blob_dir, &named(&BTreeSet::new()));
    let garbage_bytes: u64 = garbage.iter().map(|g| g.bytes).sum();
    let mut total = disk_usage(cache_dir).saturating_sub(garbage_bytes);
    let mut candidates = candidates(cache_dir, &entries, &image_blobs);
    // Oldest first: every item past the age limit comes before the rest, and the size
    // policy then removes the least recently used.
    candidates.sort_by_key(|c| c.last_used);
    let mut chosen = Vec::new();
    for candidate in candidates {
        let age = now.duration_since(candidate.last_used).unwrap_or_default();
        let reason = if policy.older_than.is_some_and(|limit| age > limit) {
            PruneReason::Age
        } else if policy.max_size.is_some_and(|max| total > max) {
            PruneReason::Size
        } else {
            continue;
        };
        total = total.saturating_sub(candidate.bytes);
        chosen.push((candidate, reason));
    }
    let mut report = Vec::new();
    let mut dropped = BTreeSet::new();
    for (candidate, reason) in chosen {
        match &candidate.removal {
            Removal::Path(path) if !policy.dry_run => remove(path)?,
            Removal::Path(_) => {}
            Removal::LayerEntry(key) => {
                dropped.insert(key.clone());
            }
        }
        report.push(PrunedItem {
            item: candidate.item,
            bytes: candidate.bytes,
            reason,
        });
    }
    if !dropped.is_empty() && !policy.dry_run {
        remove_layer_cache_entries(&layers, &dropped).map_err(|source| PruneError::Remove {
            path: layers.clone(),
            source,
        })?;
    }
    for g in garbage {
        if !policy.dry_run {
            remove(&g.path)?;
        }
        report.push(PrunedItem {
            item: g.item,
            bytes: g.bytes,
            reason: PruneReason::Garbage,
        });
    }
    // The blobs of dropped entries that nothing else names go too, reported with their
    // entries.
    if !policy.dry_run {
        let still_named = named(&dropped);
        for key in &dropped {
            let hex = entries[key].digest.hex();
            if !still_named.contains(hex) {
                remove(&blob_dir.join(hex))?;
            }
        }
    }
    let freed = report.iter().map(|i| i.bytes).sum();
    let images = image_blobs
        .iter()
        .map(|hex| file_size(&blob_dir.join(hex)))
        .sum();
    let remaining = if policy.dry_run {
        disk_usage(cache_dir).saturating_sub(freed)
    } else {
        disk_usage(cache_dir)
    };
    Ok(Pruned {
        removed: report,
        freed,
        remaining,
        images,
        dry_run: policy.dry_run,
    })
}

/// Returns the hex digests of every blob the named images of the store at `store` need:
/// their indexes, manifests, configs and layers (what the store lacks is skipped).
fn image_blobs(store: &Path) -> Result<BTreeSet<String>, PruneError> {
    let entries = layout_entries(store).map_err(|source| PruneError::Store {
        dir: store.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut seen = BTreeSet::new();
    let mut pending: Vec<String> = entries.iter().map(|e| e.digest.hex().to_owned()).collect();
    while let Some(hex) = pending.pop() {
        if !seen.insert(hex.clone()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(store.join("blobs/sha256").join(&hex)) else {
            continue;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let descriptors = doc["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(doc["layers"].as_array().into_iter().flatten())
            .chain([&doc["config"], &doc["subject"]]);
        for d in descriptors {
            if let Some(hex) = d["digest"].as_str().and_then(|d| d.strip_prefix("sha256:")) {
                pending.push(hex.to_owned());
            }
        }
    }
    Ok(seen)
}

/// Returns the cached items of `cache_dir`: layer-cache entries whose blob no image needs,
/// each buildpack cache entry, each `.deb`, SBOM catalog and base-link file.
fn candidates(
    cache_dir: &Path,
    entries: &BTreeMap<String, kiln_layer::LayerBlob>,
    image_blobs: &BTreeSet<String>,
) -> Vec<Candidate> {
    let blob_dir = cache_dir.join("oci/blobs/sha256");
    let mut out = Vec::new();
    for (key, blob) in entries {
        let hex = blob.digest.hex();
        let path = blob_dir.join(hex);
        // An entry whose blob an image needs costs nothing; one whose blob is gone is
        // removed for nothing.
        if image_blobs.contains(hex) {
            continue;
        }
        let (bytes, last_used) = usage(&path);
        out.push(Candidate {
            item: format!("layer cache {}", blob.digest),
            bytes,
            last_used,
            removal: Removal::LayerEntry(key.clone()),
        });
    }
    let dirs = [
        ("buildpacks", true),
        ("debian", false),
        ("sbom-v1", false),
        ("oci/kiln-base-links", false),
    ];
    for (dir, nested) in dirs {
        for path in children(&cache_dir.join(dir)) {
            let paths = if nested { children(&path) } else { vec![path] };
            for path in paths {
                let item = path
                    .strip_prefix(cache_dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let (bytes, last_used) = usage(&path);
                out.push(Candidate {
                    item,
                    bytes,
                    last_used,
                    removal: Removal::Path(path),
                });
            }
        }
    }
    out
}

/// A piece of garbage.
struct Garbage {
    path: PathBuf,
    bytes: u64,
    item: String,
}

/// Returns the garbage in `cache_dir`: blobs not `named`, scratch copies, temporary files,
/// and curated bases unpacked by other kiln versions.
fn garbage(cache_dir: &Path, blob_dir: &Path, named: &BTreeSet<String>) -> Vec<Garbage> {
    let mut out = Vec::new();
    let relative = |p: &Path| p.strip_prefix(cache_dir).unwrap_or(p).display().to_string();
    let mut other = |path: PathBuf| {
        out.push(Garbage {
            bytes: disk_usage(&path),
            item: relative(&path),
            path,
        })
    };
    let mut blobs = Vec::new();
    for path in children(blob_dir) {
        let name = file_name(&path);
        if name.starts_with(TEMP_PREFIX) {
            other(path);
        } else if !named.contains(&name) {
            blobs.push(Garbage {
                bytes: file_size(&path),
                item: format!("blob sha256:{name}"),
                path,
            });
        }
    }
    for dir in [cache_dir.to_path_buf(), cache_dir.join("oci")] {
        for path in children(&dir) {
            if file_name(&path).starts_with(TEMP_PREFIX) {
                other(path);
            }
        }
    }
    // No build runs while prune holds the lock: every scratch copy is a leftover.
    for path in children(&cache_dir.join("work")) {
        other(path);
    }
    let current = crate::curated::unpacked_dir(cache_dir);
    for path in children(&cache_dir.join("golden-base")) {
        if path != current {
            other(path);
        }
    }
    out.extend(blobs);
    out
}

/// Returns the entries of `dir`, sorted (none if it is missing or a symlink: a link into a
/// shared cache is not this cache dir's to prune).
fn children(dir: &Path) -> Vec<PathBuf> {
    let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Vec::new();
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn file_size(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |m| if m.is_file() { m.len() } else { 0 })
}

/// Returns the bytes of the regular files under `path` and the newest modification time
/// there, in one walk (links not followed).
fn usage(path: &Path) -> (u64, SystemTime) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return (0, SystemTime::UNIX_EPOCH);
    };
    let own = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if !meta.is_dir() {
        return (if meta.is_file() { meta.len() } else { 0 }, own);
    }
    children(path)
        .iter()
        .map(|child| usage(child))
        .fold((0, own), |(bytes, newest), (b, t)| {
            (bytes + b, newest.max(t))
        })
}

/// Returns the bytes of the regular files under `path`, links not followed.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    usage(path).0
}

/// Removes a file or a directory tree (read-only trees included: Go's module cache).
fn remove(path: &Path) -> Result<(), PruneError> {
    let failed = |source| PruneError::Remove {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(failed);
    }
    make_writable(path);
    std::fs::remove_dir_all(path).map_err(failed)
}

/// Gives the owner write permission on every directory under `path` (Go makes its module
/// cache read-only), so that the tree can be removed.
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_dir()
    {
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o700);
        let _ = std::fs::set_permissions(path, perms);
        for child in children(path) {
            make_writable(&child);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;
    use crate::{Quiet, Store};

    /// W10: a prune waits for every process that has the cache dir's store open (a build
    /// in the middle of writing blobs it has not yet named), and removes the scratch copy
    /// only after.
    #[test]
    fn w10_prune_waits_for_the_builds_using_the_cache_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        let scratch = dir.path().join("work/abc-0");
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(scratch.join("main.go"), "package main").unwrap();
        let (done, finished) = mpsc::channel();
        let cache_dir = dir.path().to_path_buf();
        let pruning = std::thread::spawn(move || {
            let pruned = prune(
                &cache_dir,
                &PrunePolicy::default(),
                SystemTime::now(),
                &Quiet,
            );
            done.send(Instant::now()).unwrap();
            pruned
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(finished.try_recv().is_err(), "prune ran beside a build");
        assert!(scratch.is_dir());
        let released = Instant::now();
        drop(store);
        assert!(finished.recv().unwrap() >= released);
        let pruned = pruning.join().unwrap().unwrap();
        assert!(!scratch.exists());
        assert_eq!(pruned.removed[0].reason, PruneReason::Garbage);
    }

    #[test]
    fn ages_count_from_the_newest_file_of_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("go-build");
        std::fs::create_dir_all(tree.join("ab")).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for (path, time) in [
            (tree.join("ab/x"), old),
            (tree.join("ab/y"), SystemTime::now()),
        ] {
            std::fs::write(&path, "x").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(time)
                .unwrap();
        }
        let (bytes, newest) = usage(&tree);
        assert!(newest > old);
        assert_eq!(bytes, 2);
    }
}
