use std::fs;
use std::path::Path;

use kiln_oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
use kiln_oci::{Digest, canonical_json, media_types};
use serde_json::{Value, json};

use kiln_model::{Artifact, Image, Layer, Origin, is_index, oci_layer_type, pick_platform};

use crate::{Blobs, ImageError};

/// The annotation that names an image inside an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes `artifact` (an image or a multi-platform index) into the OCI image layout at `dir`
/// under `ref_name`, replacing any entry of the same name in `index.json` and keeping the
/// others. Blobs are hard-linked from the store when possible, copied otherwise.
pub async fn write_layout<'a>(
    dir: &Path,
    artifact: impl Into<Artifact<'a>>,
    ref_name: &str,
    blobs: &Blobs,
) -> Result<(), ImageError> {
    let artifact = artifact.into();
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(|e| ImageError::io("creating layout", &blob_dir, e))?;
    for layer in artifact.unique_layers() {
        let src = blobs.local_path(layer).await?;
        place_blob(&src, &blob_dir.join(layer.digest.hex()))?;
    }
    for (digest, bytes) in artifact.json_blobs() {
        write_blob(&blob_dir, digest, bytes)?;
    }
    write_blob(&blob_dir, artifact.digest(), artifact.bytes())?;
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    update_index(dir, |manifests| {
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(ref_name));
        manifests.push(json!({
            "mediaType": artifact.media_type(),
            "digest": artifact.digest().to_string(),
            "size": artifact.bytes().len(),
            "annotations": { REF_NAME: ref_name },
        }));
    })
}

/// Drops the name `ref_name` from the OCI layout at `dir` (its blobs stay; other names may
/// share them). Returns whether the layout had it.
pub fn remove_from_layout(dir: &Path, ref_name: &str) -> Result<bool, ImageError> {
    let mut had = false;
    update_index(dir, |manifests| {
        let before = manifests.len();
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(ref_name));
        had = manifests.len() != before;
    })?;
    Ok(had)
}

/// One named entry of an OCI layout's `index.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    /// Its `org.opencontainers.image.ref.name`.
    pub name: String,
    /// The manifest's or index's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
}

/// Returns the named entries of the OCI layout at `dir` (none when it has no `index.json`).
pub fn layout_entries(dir: &Path) -> Result<Vec<LayoutEntry>, ImageError> {
    let index_path = dir.join("index.json");
    let bytes = match fs::read(&index_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io("reading", &index_path, e)),
    };
    let index: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::json(format!("reading `{}`", index_path.display()), e))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter_map(|m| Some((m, m["annotations"][REF_NAME].as_str()?)))
        .map(|(m, name)| {
            let digest = m["digest"].as_str().unwrap_or_default();
            Ok(LayoutEntry {
                name: name.to_owned(),
                digest: digest.parse().map_err(|source| ImageError::InvalidDigest {
                    what: format!("the entry `{name}` of `{}`", index_path.display()),
                    source,
                })?,
                media_type: m["mediaType"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// Reads, changes (with `change`) and replaces `index.json` of the layout at `dir` under a
/// lock: builds sharing a store must not drop each other's names (RELIABILITY.md W10).
fn update_index(dir: &Path, change: impl FnOnce(&mut Vec<Value>)) -> Result<(), ImageError> {
    let index_path = dir.join("index.json");
    let lock_path = dir.join("index.json.lock");
    let _held = kiln_layer::FileLock::exclusive(&lock_path)
        .map_err(|e| ImageError::io("locking", &lock_path, e))?;
    let mut manifests: Vec<Value> = match fs::read(&index_path) {
        Ok(bytes) => {
            let index: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::json(format!("reading `{}`", index_path.display()), e))?;
            index["manifests"].as_array().cloned().unwrap_or_default()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ImageError::io("reading", &index_path, e)),
    };
    change(&mut manifests);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = canonical_json(&index).map_err(|source| ImageError::SerializeIndex {
        what: "OCI layout",
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(&index_path, &bytes)
}

/// Returns whether the OCI layout at `dir` names an image `ref_name` in its `index.json`.
pub fn layout_has(dir: &Path, ref_name: &str) -> bool {
    let Ok(bytes) = fs::read(dir.join("index.json")) else {
        return false;
    };
    let Ok(index) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    index["manifests"].as_array().is_some_and(|m| {
        m.iter()
            .any(|d| d["annotations"][REF_NAME].as_str() == Some(ref_name))
    })
}

/// Reads the image named `ref_name` (or the only image, if `None`) from the OCI layout at
/// `dir`, importing its layer blobs into the store; when the name is an index, the image for
/// `os`/`arch`. Returns the image and its manifest digest.
pub fn read_layout(
    dir: &Path,
    ref_name: Option<&str>,
    (os, arch): (&str, &str),
    blobs: &Blobs,
) -> Result<(Image, Digest), ImageError> {
    let index_path = dir.join("index.json");
    let index_bytes = fs::read(&index_path)
        .map_err(|e| ImageError::io("reading OCI layout index", &index_path, e))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|e| ImageError::json(format!("parsing `{}`", index_path.display()), e))?;
    let candidates: Vec<_> = index
        .manifests()
        .iter()
        .filter(|m| match ref_name {
            Some(name) => m
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| n == name),
            None => true,
        })
        .collect();
    let desc = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(ImageError::NotInLayout {
                layout: dir.to_path_buf(),
                name: ref_name.map(str::to_owned),
            });
        }
        _ => {
            return Err(ImageError::SeveralInLayout {
                layout: dir.to_path_buf(),
            });
        }
    };
    let mut manifest_digest =
        Digest::try_from(desc.digest()).map_err(|source| ImageError::InvalidDigest {
            what: match ref_name {
                Some(name) => format!("the entry `{name}` of `{}`", index_path.display()),
                None => format!("the only entry of `{}`", index_path.display()),
            },
            source,
        })?;
    let mut manifest_bytes = read_blob(dir, &manifest_digest, Some(desc.size()))?;
    if is_index(desc.media_type().as_ref()) {
        let what = format!("oci:{}:{}", dir.display(), ref_name.unwrap_or_default());
        let (digest, size) = pick_platform(&manifest_bytes, os, arch, &what)?;
        manifest_bytes = read_blob(dir, &digest, Some(size))?;
        manifest_digest = digest;
    }
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| ImageError::json(format!("parsing manifest `{manifest_digest}`"), e))?;
    let config_digest = Digest::try_from(manifest.config().digest()).map_err(|source| {
        ImageError::InvalidDigest {
            what: format!("the config descriptor of manifest `{manifest_digest}`"),
            source,
        }
    })?;
    let config_bytes = read_blob(dir, &config_digest, Some(manifest.config().size()))?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::json(format!("parsing config `{config_digest}`"), e))?;
    let layers = layers_of(&manifest, &config, Origin::Local)?;
    // kiln's store is itself a layout: reading an image from it, the store's copy is the
    // only one, and a rotten one cannot be healed from anywhere.
    let same_dir = match (dir.canonicalize(), blobs.store().root().canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    for layer in &layers {
        let src = dir.join("blobs/sha256").join(layer.digest.hex());
        // A layer already in the store was hashed when it came in: only hashed again if its
        // file was touched since (its bytes are hashed once more wherever they leave kiln).
        let found = if same_dir {
            blobs.store().check_stamped(&layer.digest)?
        } else {
            blobs.store().check(&layer.digest)?
        };
        match found {
            kiln_layer::BlobCheck::Verified => {}
            kiln_layer::BlobCheck::Discarded if same_dir => {
                return Err(ImageError::CorruptBlob(layer.digest.clone()));
            }
            kiln_layer::BlobCheck::Missing if same_dir => {
                return Err(ImageError::MissingBlob(layer.digest.clone()));
            }
            _ => {
                verify_file(&src, &layer.digest, layer.size)?;
                place_blob(&src, &blobs.store().path(&layer.digest))?;
            }
        }
    }
    Ok((Image { config, layers }, manifest_digest))
}

/// Returns the layers of `manifest`, paired with the config's diffIDs.
pub fn layers_of(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    origin: Origin,
) -> Result<Vec<Layer>, ImageError> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Mismatch {
            what: "layer count of the config",
            expected: manifest.layers().len().to_string(),
            found: diff_ids.len().to_string(),
        });
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(i, (d, diff_id))| {
            Ok(Layer {
                media_type: oci_layer_type(d.media_type().as_ref())?,
                digest: Digest::try_from(d.digest()).map_err(|source| {
                    ImageError::InvalidDigest {
                        what: format!("the descriptor of layer {i} of the manifest"),
                        source,
                    }
                })?,
                size: d.size(),
                diff_id: diff_id
                    .parse()
                    .map_err(|source| ImageError::InvalidDigest {
                        what: format!("diffID {i} of the config"),
                        source,
                    })?,
                origin: origin.clone(),
            })
        })
        .collect()
}

/// Returns the digest of the index entry `entry` of `index` (its reference or digest).
pub(crate) fn entry_digest(
    entry: &Value,
    index: &dyn std::fmt::Display,
) -> Result<Digest, ImageError> {
    let invalid = |source| ImageError::EntryWithoutDigest {
        index: index.to_string(),
        source,
    };
    let digest = entry["digest"].as_str().ok_or_else(|| invalid(None))?;
    digest.parse().map_err(|e| invalid(Some(e)))
}

fn read_blob(dir: &Path, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>, ImageError> {
    let path = dir.join("blobs/sha256").join(digest.hex());
    let mut bytes = Vec::new();
    open_blob(&path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .map_err(|e| ImageError::io("reading blob", &path, e))?;
    if size.is_some_and(|s| s != bytes.len() as u64) || Digest::of(&bytes) != *digest {
        return Err(ImageError::Mismatch {
            what: "blob",
            expected: digest.to_string(),
            found: Digest::of(&bytes).to_string(),
        });
    }
    Ok(bytes)
}

/// Checks that the file at `path` has `size` bytes hashing to `digest`.
pub(crate) fn verify_file(path: &Path, digest: &Digest, size: u64) -> Result<(), ImageError> {
    let mut file = open_blob(path).map_err(|e| ImageError::io("opening blob", path, e))?;
    let mut w = kiln_oci::Sha256Writer::new(std::io::sink());
    std::io::copy(&mut file, &mut w).map_err(|e| ImageError::io("reading blob", path, e))?;
    let (found, n, _) = w.finish();
    if found != *digest || n != size {
        return Err(ImageError::Mismatch {
            what: "blob",
            expected: format!("{digest} ({size} bytes)"),
            found: format!("{found} ({n} bytes)"),
        });
    }
    Ok(())
}

/// Opens the layout blob at `path` for reading, refusing a symlink (a layout from elsewhere
/// could point one at any file of this machine) and anything but a regular file (a FIFO
/// would hang the read) (RELIABILITY.md C05).
pub(crate) fn open_blob(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a blob in an OCI layout must be a file, not a symlink",
            ),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a blob in an OCI layout must be a regular file",
        ));
    }
    Ok(file)
}

/// Returns whether `path` is a regular file (not a symlink to one).
fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

fn place_blob(src: &Path, dst: &Path) -> Result<(), ImageError> {
    if src == dst {
        return Ok(());
    }
    // A hard link to a symlink would be a symlink: only regular files are placed.
    if !is_plain_file(src) {
        return Err(ImageError::io(
            "placing blob",
            src,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a blob in an OCI layout must be a file, not a symlink",
            ),
        ));
    }
    if is_plain_file(dst) {
        return Ok(());
    }
    remove_link(dst)?;
    match fs::hard_link(src, dst) {
        Ok(()) => return Ok(()),
        // Another writer put it there first: blobs are named by their content.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(_) => {}
    }
    // A copy (another file system), through a temp file of its own.
    let dir = dst.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&kiln_layer::temp_prefix())
        .tempfile_in(dir)
        .map_err(|e| ImageError::io("creating a temp file in", dir, e))?;
    let mut from = fs::File::open(src).map_err(|e| ImageError::io("opening blob", src, e))?;
    std::io::copy(&mut from, &mut tmp).map_err(|e| ImageError::io("copying blob to", dst, e))?;
    tmp.persist(dst)
        .map(drop)
        .map_err(|e| ImageError::io("renaming blob to", dst, e.error))
}

fn write_blob(blob_dir: &Path, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let path = blob_dir.join(digest.hex());
    if is_plain_file(&path) {
        return Ok(());
    }
    remove_link(&path)?;
    write_file(&path, bytes)
}

/// Removes a symlink at `path` (a layout's blob names are files kiln writes itself).
fn remove_link(path: &Path) -> Result<(), ImageError> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(path).map_err(|e| ImageError::io("replacing a symlinked blob", path, e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temp file of its own and a rename, so readers never
/// see a partial file and concurrent writers never share a temp file.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    kiln_layer::write_atomic(path, bytes).map_err(|e| ImageError::io("writing", path, e))
}
