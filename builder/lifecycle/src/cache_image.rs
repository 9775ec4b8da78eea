//! A buildpack's cache as an image (`kiln build --cache-image REF`), for build pods without
//! a persistent disk: each entry of the buildpack's cache directory (Go's build and module
//! caches, the Maven repository, npm's cache, the `node_modules` trees keyed by lockfile…)
//! is one layer, so an unchanged entry is the same blob and is never uploaded again. The
//! config's labels name the buildpack and list the entries with their diffIDs.
//!
//! Restoring only ever fills entries the local cache lacks, unpacks each layer confined to
//! its entry (see [`kiln_layer::extract_layer`]) after checking its diffID, and gives up on
//! an entry rather than the build: a bad cache makes a build cold, never failed.

use std::path::{Path, PathBuf};

use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::Digest;
use kiln_oci::spec::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};
use serde::{Deserialize, Serialize};

use crate::{LayerCache, host_arch};

/// The label naming the buildpack whose cache the image holds.
pub const CACHE_BUILDPACK_LABEL: &str = "io.kiln.cache.buildpack";
/// The label listing the entries, a JSON array of `{"path", "diff_id"}` in layer order.
pub const CACHE_ENTRIES_LABEL: &str = "io.kiln.cache.entries";

/// Why a cache could not be packed or restored.
#[derive(Debug, thiserror::Error)]
pub enum CacheImageError {
    /// Reading the cache directory failed.
    #[error("reading the cache `{}`", dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    /// The image is not a kiln cache of this buildpack.
    #[error("the cache image is not one of `{buildpack}`: {why}")]
    NotACache {
        /// The buildpack asked for.
        buildpack: String,
        /// What is wrong.
        why: String,
    },
}

/// One entry of a cache image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The entry's directory, relative to the buildpack's cache directory (one component).
    pub path: String,
    /// The diffID of its layer.
    pub diff_id: Digest,
}

/// The tar policy of cache layers: what the files are, not when or by whom they were made.
const POLICY: TarPolicy = TarPolicy {
    mtime: 0,
    owner: Ownership { uid: 0, gid: 0 },
};

fn entry_contents(dir: &Path, name: &str) -> Result<LayerContents, CacheImageError> {
    let mut contents = LayerContents::new();
    contents.add_tree(&dir.join(name), name)?;
    Ok(contents)
}

/// Returns the reuse-index key [`pack_cache`] uses for entry `name` of `dir`: recorded for
/// an entry just restored, it lets the next pack reuse the restored blob instead of
/// compressing the unchanged entry again.
pub fn entry_fingerprint(
    dir: &Path,
    name: &str,
    compression: Compression,
) -> Result<Digest, CacheImageError> {
    Ok(entry_contents(dir, name)?.fingerprint(&POLICY, compression)?)
}

/// Returns the cache image of `dir`, the cache directory of `buildpack`: one layer per
/// entry (directory) in name order, written to `store` or reused through `index`.
pub fn pack_cache(
    dir: &Path,
    buildpack: &str,
    store: &BlobStore,
    compression: Compression,
    index: &mut LayerCache,
) -> Result<Image, CacheImageError> {
    let io = |source| CacheImageError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        // Half-done work (`.tmp-…`) is no cache.
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut layers = Vec::new();
    let mut entries = Vec::new();
    for name in names {
        let contents = entry_contents(dir, &name)?;
        let fingerprint = contents.fingerprint(&POLICY, compression)?;
        // A rotten stored blob (W09) is removed by the lookup and written again here.
        let blob = match index.get(&fingerprint, store).hit() {
            Some(blob) => blob,
            None => {
                let blob = kiln_layer::write_layer(&contents, &POLICY, compression, store)?;
                index.insert(&fingerprint, blob.clone());
                blob
            }
        };
        entries.push(CacheEntry {
            path: name,
            diff_id: blob.diff_id.clone(),
        });
        layers.push(Layer {
            media_type: blob.media_type.to_string(),
            digest: blob.digest,
            size: blob.size,
            diff_id: blob.diff_id,
            origin: Origin::Local,
        });
    }
    let labels = [
        (CACHE_BUILDPACK_LABEL.to_owned(), buildpack.to_owned()),
        (
            CACHE_ENTRIES_LABEL.to_owned(),
            serde_json::to_string(&entries).expect("entries serialize"),
        ),
    ];
    let history: Vec<_> = entries
        .iter()
        .map(|e| {
            HistoryBuilder::default()
                .created_by(format!("kiln cache: {buildpack} {}", e.path))
                .build()
                .expect("history fields are valid")
        })
        .collect();
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::from(host_arch()))
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .labels(
                    labels
                        .into_iter()
                        .collect::<std::collections::HashMap<_, _>>(),
                )
                .build()
                .expect("config fields are valid"),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()
                .expect("rootfs fields are valid"),
        )
        .history(history)
        .build()
        .expect("image config fields are valid");
    Ok(Image { config, layers })
}

/// Returns the entries of a cache image of `buildpack` with their layers, checked: the
/// label lists as many entries as there are layers, with their diffIDs, each a plain name.
pub fn cache_entries<'a>(
    image: &'a Image,
    buildpack: &str,
) -> Result<Vec<(CacheEntry, &'a Layer)>, CacheImageError> {
    let not = |why: String| CacheImageError::NotACache {
        buildpack: buildpack.to_owned(),
        why,
    };
    let labels = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    match labels.get(CACHE_BUILDPACK_LABEL) {
        Some(b) if b == buildpack => {}
        Some(b) => return Err(not(format!("it holds the cache of `{b}`"))),
        None => return Err(not(format!("it has no `{CACHE_BUILDPACK_LABEL}` label"))),
    }
    let entries: Vec<CacheEntry> = labels
        .get(CACHE_ENTRIES_LABEL)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            not(format!(
                "its `{CACHE_ENTRIES_LABEL}` label is missing or not JSON"
            ))
        })?;
    if entries.len() != image.layers.len() {
        return Err(not(format!(
            "it lists {} entries for {} layers",
            entries.len(),
            image.layers.len()
        )));
    }
    entries
        .into_iter()
        .zip(&image.layers)
        .map(|(e, l)| {
            let plain = !e.path.is_empty()
                && !e.path.starts_with('.')
                && !e.path.contains('/')
                && e.path != "..";
            match (plain, e.diff_id == l.diff_id) {
                (false, _) => Err(not(format!("the entry `{}` is not a plain name", e.path))),
                (_, false) => Err(not(format!(
                    "the entry `{}` does not match its layer",
                    e.path
                ))),
                _ => Ok((e, l)),
            }
        })
        .collect()
}

/// What restoring did with one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Unpacked into the cache.
    Unpacked {
        /// Files written.
        files: u64,
    },
    /// The local cache already had the entry.
    Present,
}

/// Unpacks the entry `entry` from the blob at `blob` (compressed as its media type says)
/// into `dir/<path>`, unless `dir` already has it: into a temporary sibling first, renamed
/// into place only when complete and verified.
pub fn restore_entry(
    dir: &Path,
    entry: &CacheEntry,
    layer: &Layer,
    blob: &Path,
) -> Result<Restored, RestoreError> {
    let target = dir.join(&entry.path);
    if target.exists() {
        return Ok(Restored::Present);
    }
    let io = |source| RestoreError::Io {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".restore-{}-{}", entry.path, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let compression = if layer.media_type.ends_with("zstd") {
        Compression::Zstd
    } else {
        Compression::Gzip
    };
    let file = std::fs::File::open(blob).map_err(io)?;
    let stats = kiln_layer::extract_layer(
        std::io::BufReader::new(file),
        compression,
        &layer.diff_id,
        &tmp,
    )?;
    // The layer holds `<path>/…`: its one top directory becomes the entry.
    let inner = tmp.join(&entry.path);
    let result = if inner.is_dir() {
        std::fs::rename(&inner, &target)
    } else {
        std::fs::create_dir_all(&target)
    };
    let _ = std::fs::remove_dir_all(&tmp);
    match result {
        Ok(()) => Ok(Restored::Unpacked { files: stats.files }),
        // Another build sharing the cache dir restored it first.
        Err(_) if target.is_dir() => Ok(Restored::Present),
        Err(e) => Err(io(e)),
    }
}

/// Why an entry could not be restored (the build then goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The layer was refused or is not what the image says.
    #[error(transparent)]
    Extract(#[from] kiln_layer::ExtractError),
    /// Moving it into place failed.
    #[error("restoring `{}`", path.display())]
    Io {
        /// The entry's directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (p, text) in files {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn packs_one_layer_per_entry_and_restores_the_missing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut index = LayerCache::open(&tmp.path().join("index.json"));
        let cache = tmp.path().join("kiln-node");
        write(
            &cache,
            &[
                ("npm/_cacache/content/x", "tarball"),
                ("modules/abc/layer/workspace/node_modules/ms/index.js", "ms"),
                (".tmp-123/partial", "junk"),
            ],
        );
        let image = pack_cache(&cache, "kiln/node", &store, Compression::Gzip, &mut index).unwrap();
        assert_eq!(image.layers.len(), 2);
        let again = pack_cache(&cache, "kiln/node", &store, Compression::Gzip, &mut index).unwrap();
        assert_eq!(
            image.finalize().unwrap().manifest_digest,
            again.finalize().unwrap().manifest_digest,
            "an unchanged cache is the same image"
        );
        let entries = cache_entries(&image, "kiln/node").unwrap();
        assert_eq!(entries[0].0.path, "modules");
        assert_eq!(entries[1].0.path, "npm");

        let fresh = tmp.path().join("fresh");
        std::fs::create_dir_all(fresh.join("npm")).unwrap();
        for (entry, layer) in &entries {
            let blob = store.path(&layer.digest);
            let got = restore_entry(&fresh, entry, layer, &blob).unwrap();
            match entry.path.as_str() {
                "npm" => assert_eq!(got, Restored::Present, "the local entry stays"),
                _ => assert_eq!(got, Restored::Unpacked { files: 1 }),
            }
        }
        assert_eq!(
            std::fs::read_to_string(
                fresh.join("modules/abc/layer/workspace/node_modules/ms/index.js")
            )
            .unwrap(),
            "ms"
        );
        assert!(!fresh.join("npm/_cacache").exists());
        assert!(
            std::fs::read_dir(&fresh).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
        );
    }

    #[test]
    fn foreign_or_inconsistent_images_are_not_caches() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut index = LayerCache::open(&tmp.path().join("index.json"));
        let cache = tmp.path().join("c");
        write(&cache, &[("go-mod/x", "x")]);
        let image = pack_cache(&cache, "kiln/go", &store, Compression::Gzip, &mut index).unwrap();
        assert!(matches!(
            cache_entries(&image, "kiln/node"),
            Err(CacheImageError::NotACache { .. })
        ));
        let mut tampered = image.clone();
        let mut exec = tampered.config.config().clone().unwrap();
        let mut labels = exec.labels().clone().unwrap();
        labels.insert(
            CACHE_ENTRIES_LABEL.into(),
            format!(
                "[{{\"path\":\"../../etc\",\"diff_id\":\"{}\"}}]",
                image.layers[0].diff_id
            ),
        );
        exec.set_labels(Some(labels));
        tampered.config.set_config(Some(exec));
        let err = cache_entries(&tampered, "kiln/go").unwrap_err();
        assert!(err.to_string().contains("not a plain name"), "{err}");
    }

    #[test]
    fn a_corrupt_blob_restores_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut index = LayerCache::open(&tmp.path().join("index.json"));
        let cache = tmp.path().join("c");
        write(&cache, &[("go-build/aa/x", "x")]);
        let image = pack_cache(&cache, "kiln/go", &store, Compression::Gzip, &mut index).unwrap();
        let entries = cache_entries(&image, "kiln/go").unwrap();
        let (entry, layer) = &entries[0];
        let bad = tmp.path().join("bad.blob");
        let mut bytes = std::fs::read(store.path(&layer.digest)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&bad, bytes).unwrap();
        let fresh = tmp.path().join("fresh");
        assert!(restore_entry(&fresh, entry, layer, &bad).is_err());
        assert!(!fresh.join("go-build").exists());
    }
}
