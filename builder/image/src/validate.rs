use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kiln_oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
use kiln_oci::{Digest, Reference, Sha256Writer, media_types};
use kiln_registry::Client;

use crate::layout::{REF_NAME, layers_of, verify_file};
use crate::{ImageError, Origin};

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
        .ok_or_else(|| {
            ImageError::Unsupported(format!(
                "no image named `{ref_name}` in `{}`",
                dir.display()
            ))
        })?;
    let digest =
        Digest::try_from(desc.digest()).map_err(|e| ImageError::Unsupported(e.to_string()))?;
    let blob_dir = dir.join("blobs/sha256");
    verify_file(&blob_dir.join(digest.hex()), &digest, desc.size())?;
    let manifest_bytes = std::fs::read(blob_dir.join(digest.hex()))
        .map_err(|e| ImageError::io("reading manifest", blob_dir.join(digest.hex()), e))?;
    validate_blobs(&manifest_bytes, digest, &|d| blob_dir.join(d.hex()))
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
        return Err(ImageError::Unsupported(format!(
            "`{reference}` is a `{}`; validate one image manifest",
            pulled.media_type
        )));
    }
    let manifest: ImageManifest = serde_json::from_slice(&pulled.bytes)
        .map_err(|e| ImageError::json(format!("parsing manifest of `{reference}`"), e))?;
    let tmp = tempfile::tempdir()
        .map_err(|e| ImageError::io("creating temp dir", std::env::temp_dir(), e))?;
    let mut blobs = vec![(manifest.config().digest().clone(), manifest.config().size())];
    blobs.extend(
        manifest
            .layers()
            .iter()
            .map(|l| (l.digest().clone(), l.size())),
    );
    for (d, size) in blobs {
        let d = Digest::try_from(&d).map_err(|e| ImageError::Unsupported(e.to_string()))?;
        let dest = tmp.path().join(d.hex());
        if !dest.exists() {
            client
                .get_blob_to_file(reference, &d, Some(size), &dest)
                .await?;
        }
    }
    let dir: PathBuf = tmp.path().to_path_buf();
    let digest = pulled.digest.clone();
    let bytes = pulled.bytes.clone();
    let result =
        tokio::task::spawn_blocking(move || validate_blobs(&bytes, digest, &|d| dir.join(d.hex())))
            .await
            .map_err(|e| ImageError::Unsupported(format!("validation task failed: {e}")))?;
    drop(tmp);
    result
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
    let config_digest = Digest::try_from(manifest.config().digest())
        .map_err(|e| ImageError::Unsupported(e.to_string()))?;
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
fn diff_id_of(path: &Path, media_type: &str) -> io::Result<Digest> {
    let file = io::BufReader::new(File::open(path)?);
    let mut reader: Box<dyn Read> = match media_type {
        media_types::OCI_LAYER_GZIP => Box::new(flate2::read::GzDecoder::new(file)),
        media_types::OCI_LAYER_ZSTD => Box::new(zstd::Decoder::with_buffer(file)?),
        _ => Box::new(file),
    };
    let mut w = Sha256Writer::new(io::sink());
    io::copy(&mut reader, &mut w)?;
    Ok(w.finish().0)
}
