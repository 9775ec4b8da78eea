//! A buildpack's cache as an image (`kiln build --cache-image REF`), for build pods without
//! a persistent disk: each entry of the buildpack's cache directory (Go's build and module
//! caches, the Maven repository, npm's cache, the `node_modules` trees keyed by lockfile…)
//! is one or more layers, cut by age (see [`parts`]): an unchanged entry is the same blobs
//! and is never uploaded again, and what a build added to an entry goes up alone. The
//! config's labels name the buildpack and list the entries' parts with their diffIDs.
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

mod parts;

/// The label naming the buildpack whose cache the image holds.
pub const CACHE_BUILDPACK_LABEL: &str = "io.kiln.cache.buildpack";
/// The label listing the entries, a JSON array of `{"path", "diff_id"}` in layer order; an
/// entry cut into parts is listed once per part, its parts one after the other.
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

/// Returns the reuse-index keys of the parts of entry `name` of `dir` as they were last
/// recorded (by [`restore_entry`], in layer order), each for its layer's compression: the
/// next pack then reuses the restored blobs instead of compressing unchanged parts again.
/// `None` if the record does not match the entry or the compressions.
pub fn restored_fingerprints(
    dir: &Path,
    name: &str,
    compressions: &[Compression],
) -> Option<Vec<Digest>> {
    let all = entry_contents(dir, name).ok()?;
    let parts = parts::recorded(dir, name, &all)?;
    if parts.len() != compressions.len() {
        return None;
    }
    parts
        .iter()
        .zip(compressions)
        .map(|(part, &c)| part.fingerprint(&POLICY, c).ok())
        .collect()
}

/// Returns the cache image of `dir`, the cache directory of `buildpack`: each entry
/// (directory) in name order, as one layer per part (see [`parts`]), written to `store` or
/// reused through `index`.
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
        let all = entry_contents(dir, &name)?;
        let parts = parts::split(dir, &name, &all);
        for contents in &parts {
            let fingerprint = contents.fingerprint(&POLICY, compression)?;
            // A rotten stored blob (W09) is removed by the lookup and written again here.
            let blob = match index.get(&fingerprint, store).hit() {
                Some(blob) => blob,
                None => {
                    let blob = kiln_layer::write_layer(contents, &POLICY, compression, store)?;
                    index.insert(&fingerprint, blob.clone());
                    blob
                }
            };
            entries.push(CacheEntry {
                path: name.clone(),
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
        parts::record(dir, &name, &parts);
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

/// Unpacks the entry `name` from the blobs of its parts (each compressed as its layer's
/// media type says) into `dir/<name>`, unless `dir` already has it: into a temporary
/// sibling first, renamed into place only when complete and verified, and records how it
/// was cut so that the next pack cuts it the same way.
pub fn restore_entry(
    dir: &Path,
    name: &str,
    parts: &[(&Layer, &Path)],
) -> Result<Restored, RestoreError> {
    let target = dir.join(name);
    if target.exists() {
        return Ok(Restored::Present);
    }
    let io = |source| RestoreError::Io {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".restore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let unpacked = unpack_parts(&tmp, parts);
    // The layers hold `<name>/…`: their one top directory becomes the entry.
    let inner = tmp.join("all").join(name);
    let result = unpacked.and_then(|(files, lists)| {
        let moved = if inner.is_dir() {
            std::fs::rename(&inner, &target)
        } else {
            std::fs::create_dir_all(&target)
        };
        match moved {
            Ok(()) => {
                parts::record_lists(dir, name, lists);
                Ok(Restored::Unpacked { files })
            }
            // Another build sharing the cache dir restored it first.
            Err(_) if target.is_dir() => Ok(Restored::Present),
            Err(e) => Err(io(e)),
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Unpacks each part into `tmp/<i>`, lists its paths, and merges it into `tmp/all`;
/// returns the files written and each part's paths.
fn unpack_parts(
    tmp: &Path,
    parts: &[(&Layer, &Path)],
) -> Result<(u64, Vec<Vec<String>>), RestoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { path, source }
    };
    let all = tmp.join("all");
    std::fs::create_dir_all(&all).map_err(io(&all))?;
    let mut files = 0;
    let mut lists = Vec::new();
    for (i, (layer, blob)) in parts.iter().enumerate() {
        let compression = if layer.media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::Gzip
        };
        let part = tmp.join(i.to_string());
        let file = std::fs::File::open(blob).map_err(io(blob))?;
        let stats = kiln_layer::extract_layer(
            std::io::BufReader::new(file),
            compression,
            &layer.diff_id,
            &part,
        )?;
        files += stats.files;
        lists.push(parts::list(&part).map_err(io(&part))?);
        parts::merge_tree(&part, &all).map_err(io(&part))?;
    }
    Ok((files, lists))
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
            let got = restore_entry(&fresh, &entry.path, &[(layer, &blob)]).unwrap();
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
                .starts_with(".restore-")),
            "no half-done restore is left behind"
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
        assert!(restore_entry(&fresh, &entry.path, &[(layer, &bad)]).is_err());
        assert!(!fresh.join("go-build").exists());
    }

    fn digests(image: &Image) -> Vec<String> {
        image.layers.iter().map(|l| l.digest.to_string()).collect()
    }

    #[test]
    fn what_a_build_adds_goes_up_alone_and_a_restored_cache_is_cut_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut index = LayerCache::open(&tmp.path().join("index.json"));
        let cache = tmp.path().join("c");
        let big = "x".repeat(10_000);
        write(
            &cache,
            &[("go-build/aa/one", big.as_str()), ("go-build/bb/two", &big)],
        );
        let pack = |index: &mut LayerCache, dir: &Path| {
            pack_cache(dir, "kiln/go", &store, Compression::Gzip, index).unwrap()
        };
        let first = pack(&mut index, &cache);
        assert_eq!(first.layers.len(), 1);

        // A build adds a file beside the others: the old part is the same blob, the new
        // file is a part of its own.
        write(&cache, &[("go-build/aa/three", "new")]);
        let second = pack(&mut index, &cache);
        assert_eq!(second.layers.len(), 2);
        assert_eq!(second.layers[0].digest, first.layers[0].digest);
        let blob = std::fs::read(store.path(&second.layers[1].digest)).unwrap();
        let tar = flate2::read::GzDecoder::new(blob.as_slice());
        let names: Vec<String> = tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["go-build/", "go-build/aa/", "go-build/aa/three"]);
        assert_eq!(digests(&pack(&mut index, &cache)), digests(&second));

        // A part grown to half of the one before it is merged into it.
        write(&cache, &[("go-build/cc/four", &"y".repeat(9_000))]);
        let third = pack(&mut index, &cache);
        assert_eq!(third.layers.len(), 2, "{:?}", digests(&third));
        assert_eq!(third.layers[0].digest, first.layers[0].digest);

        // A removed file breaks its part up: its other files join the new part.
        std::fs::remove_file(cache.join("go-build/bb/two")).unwrap();
        let fourth = pack(&mut index, &cache);
        assert_eq!(fourth.layers.len(), 1, "{:?}", digests(&fourth));

        // Restored in a fresh cache directory, the entry packs into the very same layers,
        // reused by fingerprint without compressing them again.
        write(&cache, &[("go-build/dd/five", "five")]);
        let before = pack(&mut index, &cache);
        assert_eq!(before.layers.len(), 2);
        let fresh = tmp.path().join("fresh");
        let entries = cache_entries(&before, "kiln/go").unwrap();
        let blobs: Vec<_> = entries.iter().map(|(_, l)| store.path(&l.digest)).collect();
        let parts: Vec<(&Layer, &Path)> = entries
            .iter()
            .zip(&blobs)
            .map(|((_, l), b)| (*l, b.as_path()))
            .collect();
        let got = restore_entry(&fresh, "go-build", &parts).unwrap();
        assert_eq!(got, Restored::Unpacked { files: 4 });
        let keys = restored_fingerprints(&fresh, "go-build", &[Compression::Gzip; 2]).unwrap();
        let mut fresh_index = LayerCache::open(&tmp.path().join("fresh-index.json"));
        for (key, layer) in keys.iter().zip(&before.layers) {
            let blob = kiln_layer::LayerBlob {
                digest: layer.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.size,
                media_type: Compression::Gzip.media_type(),
            };
            fresh_index.insert(key, blob);
        }
        assert_eq!(digests(&pack(&mut fresh_index, &fresh)), digests(&before));
    }
}
