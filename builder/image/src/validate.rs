use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kiln_layer::Compression;
use kiln_oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
use kiln_oci::{Digest, Reference, Sha256Writer, media_types};
use kiln_registry::Client;

use crate::layout::{REF_NAME, entry_digest, layers_of, open_blob, verify_file};
use kiln_model::{Origin, Platform};

use crate::ImageError;

/// What a validation checked.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The image config.
    pub config: ImageConfiguration,
    /// Number of layers whose digest, size and diffID were recomputed.
    pub layers: usize,
}

/// Recomputes every digest, size and diffID of the image named `ref_name` in the OCI layout
/// at `dir`: the manifest against its index descriptor, the config and every layer against
/// their manifest descriptors, and each decompressed layer against the config's diffIDs.
pub fn validate_layout(dir: &Path, ref_name: &str) -> Result<Validated, ImageError> {
    let (digest, _) = layout_entry(dir, ref_name)?;
    let blob_dir = dir.join("blobs/sha256");
    let manifest_bytes = std::fs::read(blob_dir.join(digest.hex()))
        .map_err(|e| ImageError::io("reading manifest", blob_dir.join(digest.hex()), e))?;
    validate_blobs(&manifest_bytes, digest, &|d| blob_dir.join(d.hex()))
}

/// What validating a multi-platform index checked.
#[derive(Clone, Debug)]
pub struct ValidatedIndex {
    /// The index digest.
    pub index_digest: Digest,
    /// Each platform's image, in index order.
    pub images: Vec<(Platform, Validated)>,
}

/// Validates the index named `ref_name` in the OCI layout at `dir`: the index against its
/// `index.json` descriptor, then each platform's image like [`validate_layout`], and that
/// each image's config names the platform its index entry claims.
pub fn validate_layout_index(dir: &Path, ref_name: &str) -> Result<ValidatedIndex, ImageError> {
    let (digest, media_type) = layout_entry(dir, ref_name)?;
    if media_type != media_types::OCI_INDEX {
        return Err(ImageError::MediaType {
            what: format!("`{ref_name}` in `{}`", dir.display()),
            media_type,
            expected: "an image index",
        });
    }
    let blob_dir = dir.join("blobs/sha256");
    let path = |d: &Digest| blob_dir.join(d.hex());
    let bytes = std::fs::read(path(&digest))
        .map_err(|e| ImageError::io("reading index", path(&digest), e))?;
    let manifests = |d: &Digest| {
        std::fs::read(path(d)).map_err(|e| ImageError::io("reading manifest", path(d), e))
    };
    validate_index(&bytes, digest, &manifests, &path)
}

/// Returns the digest and media type of the `index.json` entry named `ref_name`, after
/// checking the blob it points to against the entry's size and digest.
fn layout_entry(dir: &Path, ref_name: &str) -> Result<(Digest, String), ImageError> {
    let index_path = dir.join("index.json");
    let bytes =
        std::fs::read(&index_path).map_err(|e| ImageError::io("reading", &index_path, e))?;
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::json(format!("parsing `{}`", index_path.display()), e))?;
    let desc = index
        .manifests()
        .iter()
        .find(|m| {
            m.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| n == ref_name)
        })
        .ok_or_else(|| ImageError::NotInLayout {
            layout: dir.to_path_buf(),
            name: Some(ref_name.to_owned()),
        })?;
    let digest = Digest::try_from(desc.digest()).map_err(|source| ImageError::InvalidDigest {
        what: format!("the entry `{ref_name}` of `{}`", index_path.display()),
        source,
    })?;
    verify_file(
        &dir.join("blobs/sha256").join(digest.hex()),
        &digest,
        desc.size(),
    )?;
    Ok((digest, desc.media_type().to_string()))
}

/// Validates the index `index_bytes`: its digest, then every entry's manifest (read with
/// `manifest`, which must check it against its digest) and blobs (at `blob_path`), and that
/// each config names the entry's platform.
fn validate_index(
    index_bytes: &[u8],
    index_digest: Digest,
    manifest: &dyn Fn(&Digest) -> Result<Vec<u8>, ImageError>,
    blob_path: &dyn Fn(&Digest) -> PathBuf,
) -> Result<ValidatedIndex, ImageError> {
    if Digest::of(index_bytes) != index_digest {
        return Err(ImageError::Mismatch {
            what: "index",
            expected: index_digest.to_string(),
            found: Digest::of(index_bytes).to_string(),
        });
    }
    let index: serde_json::Value = serde_json::from_slice(index_bytes)
        .map_err(|e| ImageError::json(format!("parsing index `{index_digest}`"), e))?;
    let mut images = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let claimed =
            Platform::of_entry(entry).ok_or_else(|| ImageError::EntryWithoutPlatform {
                index: index_digest.clone(),
            })?;
        let digest = entry_digest(entry, &index_digest)?;
        if entry["mediaType"] != media_types::OCI_MANIFEST {
            let media_type = &entry["mediaType"];
            return Err(ImageError::MediaType {
                what: format!("entry `{digest}` of index `{index_digest}`"),
                // A JSON string without its quotes; anything else (`null`) as JSON.
                media_type: media_type
                    .as_str()
                    .map_or_else(|| media_type.to_string(), str::to_owned),
                expected: "an OCI image manifest",
            });
        }
        let bytes = manifest(&digest)?;
        if Some(bytes.len() as u64) != entry["size"].as_u64() {
            return Err(ImageError::Mismatch {
                what: "index entry size",
                expected: entry["size"].to_string(),
                found: bytes.len().to_string(),
            });
        }
        let validated = validate_blobs(&bytes, digest, blob_path)?;
        let config = serde_json::to_vec(&validated.config)
            .map_err(|e| ImageError::json("re-reading a config", e))?;
        let actual = Platform::of_config(&config)?;
        if actual != claimed {
            return Err(ImageError::Mismatch {
                what: "index entry platform",
                expected: claimed.to_string(),
                found: actual.to_string(),
            });
        }
        images.push((claimed, validated));
    }
    if images.is_empty() {
        return Err(ImageError::EmptyIndex {
            index: index_digest,
        });
    }
    Ok(ValidatedIndex {
        index_digest,
        images,
    })
}

/// Pulls `reference` (manifest, config, every layer) into a temporary directory and validates
/// it like [`validate_layout`]. The client verifies digests as it pulls; this recomputes them
/// independently and checks the diffIDs too.
pub async fn validate_remote(
    client: &Client,
    reference: &Reference,
) -> Result<Validated, ImageError> {
    let pulled = client
        .get_manifest(reference, &reference.manifest_ref())
        .await?;
    if pulled.media_type != media_types::OCI_MANIFEST
        && pulled.media_type != media_types::DOCKER_MANIFEST
    {
        return Err(ImageError::MediaType {
            what: format!("`{reference}`"),
            media_type: pulled.media_type,
            expected: "one image manifest",
        });
    }
    let tmp = tempfile::tempdir()
        .map_err(|e| ImageError::io("creating temp dir", std::env::temp_dir(), e))?;
    pull_blobs(client, reference, &pulled.bytes, tmp.path()).await?;
    let dir: PathBuf = tmp.path().to_path_buf();
    let (digest, bytes) = (pulled.digest, pulled.bytes);
    let doing = format!("validating `{reference}`");
    blocking(doing, move || {
        validate_blobs(&bytes, digest, &|d| dir.join(d.hex()))
    })
    .await
}

/// Pulls the index `reference` points to, each platform's manifest, config and layers into a
/// temporary directory, and validates them like [`validate_layout_index`].
pub async fn validate_remote_index(
    client: &Client,
    reference: &Reference,
) -> Result<ValidatedIndex, ImageError> {
    let pulled = client
        .get_manifest(reference, &reference.manifest_ref())
        .await?;
    if pulled.media_type != media_types::OCI_INDEX {
        return Err(ImageError::MediaType {
            what: format!("`{reference}`"),
            media_type: pulled.media_type,
            expected: "an image index",
        });
    }
    let index: serde_json::Value = serde_json::from_slice(&pulled.bytes)
        .map_err(|e| ImageError::json(format!("parsing index of `{reference}`"), e))?;
    let tmp = tempfile::tempdir()
        .map_err(|e| ImageError::io("creating temp dir", std::env::temp_dir(), e))?;
    let mut manifests = std::collections::BTreeMap::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let Some(digest) = entry["digest"].as_str() else {
            continue;
        };
        let m = client.get_manifest(reference, digest).await?;
        pull_blobs(client, reference, &m.bytes, tmp.path()).await?;
        manifests.insert(m.digest, m.bytes);
    }
    let dir: PathBuf = tmp.path().to_path_buf();
    let (digest, bytes) = (pulled.digest, pulled.bytes);
    let doing = format!("validating the index `{reference}`");
    blocking(doing, move || {
        let manifest = |d: &Digest| {
            manifests
                .get(d)
                .cloned()
                .ok_or_else(|| ImageError::MissingBlob(d.clone()))
        };
        validate_index(&bytes, digest, &manifest, &|d| dir.join(d.hex()))
    })
    .await
}

/// Downloads the config and layers of the manifest `manifest_bytes` into `dir`, by hex digest.
async fn pull_blobs(
    client: &Client,
    reference: &Reference,
    manifest_bytes: &[u8],
    dir: &Path,
) -> Result<(), ImageError> {
    let manifest: ImageManifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ImageError::json(format!("parsing manifest of `{reference}`"), e))?;
    let mut blobs = vec![(manifest.config().digest().clone(), manifest.config().size())];
    blobs.extend(
        manifest
            .layers()
            .iter()
            .map(|l| (l.digest().clone(), l.size())),
    );
    for (d, size) in blobs {
        let d = Digest::try_from(&d).map_err(|source| ImageError::InvalidDigest {
            what: format!("a blob descriptor of the manifest of `{reference}`"),
            source,
        })?;
        let dest = dir.join(d.hex());
        if !dest.exists() {
            client
                .get_blob_to_file(reference, &d, Some(size), &dest)
                .await?;
        }
    }
    Ok(())
}

/// Runs the CPU-bound `f` (hashing, decompressing; `doing` says what for its error) on a
/// blocking thread.
async fn blocking<T: Send + 'static>(
    doing: String,
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| ImageError::TaskFailed { doing, source })?
}

fn validate_blobs(
    manifest_bytes: &[u8],
    manifest_digest: Digest,
    blob_path: &dyn Fn(&Digest) -> PathBuf,
) -> Result<Validated, ImageError> {
    if Digest::of(manifest_bytes) != manifest_digest {
        return Err(ImageError::Mismatch {
            what: "manifest",
            expected: manifest_digest.to_string(),
            found: Digest::of(manifest_bytes).to_string(),
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ImageError::json(format!("parsing manifest `{manifest_digest}`"), e))?;
    let config_digest = Digest::try_from(manifest.config().digest()).map_err(|source| {
        ImageError::InvalidDigest {
            what: format!("the config descriptor of manifest `{manifest_digest}`"),
            source,
        }
    })?;
    let config_path = blob_path(&config_digest);
    verify_file(&config_path, &config_digest, manifest.config().size())?;
    let config_bytes = std::fs::read(&config_path)
        .map_err(|e| ImageError::io("reading config", &config_path, e))?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::json(format!("parsing config `{config_digest}`"), e))?;
    let layers = layers_of(&manifest, &config, Origin::Local)?;
    for layer in &layers {
        let path = blob_path(&layer.digest);
        verify_file(&path, &layer.digest, layer.size)?;
        let found = diff_id_of(&path, &layer.media_type)
            .map_err(|e| ImageError::io("decompressing layer", &path, e))?;
        if found != layer.diff_id {
            return Err(ImageError::Mismatch {
                what: "layer diffID",
                expected: layer.diff_id.to_string(),
                found: found.to_string(),
            });
        }
    }
    Ok(Validated {
        manifest_digest,
        config,
        layers: layers.len(),
    })
}

/// Returns the sha256 of the decompressed layer at `path`.
///
/// The whole stream is read to its end, every gzip member and whatever follows the tar's
/// end-of-archive blocks included: bytes smuggled after the tar still count, so they show
/// as a diffID mismatch (RELIABILITY.md R14 e).
fn diff_id_of(path: &Path, media_type: &str) -> io::Result<Digest> {
    let file = io::BufReader::new(open_blob(path)?);
    let mut reader: Box<dyn Read> = match Compression::from_media_type(media_type) {
        Some(c) => c.decoder(file)?,
        None => Box::new(file),
    };
    let mut w = Sha256Writer::new(io::sink());
    io::copy(&mut reader, &mut w)?;
    Ok(w.finish().0)
}
