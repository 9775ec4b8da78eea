use futures_util::{StreamExt, TryStreamExt, stream};
use kiln_layer::BlobCheck;
use kiln_oci::spec::{ImageConfiguration, ImageManifest};
use kiln_oci::{Digest, Reference, media_types};
use kiln_registry::{BlobPush, Client};

use kiln_model::{Artifact, FinalImage, Image, Layer, Origin, Platform, is_index, pick_platform};

use crate::layout::{entry_digest, layers_of};
use crate::{Blobs, ImageError};

/// Largest config blob kiln reads; real configs are a few KiB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Layers uploaded at once.
const PUSH_CONCURRENCY: usize = 3;

/// Reads `reference` from its registry: the manifest (for an index, the one for `os`/`arch`),
/// and the config. Layer blobs stay in the registry until something needs their bytes.
/// Returns the image and the digest of its (platform) manifest.
pub async fn fetch_remote(
    client: &Client,
    reference: &Reference,
    os: &str,
    arch: &str,
) -> Result<(Image, Digest), ImageError> {
    let mut pulled = client
        .get_manifest(reference, &reference.manifest_ref())
        .await?;
    if is_index(&pulled.media_type) {
        let (digest, _) = pick_platform(&pulled.bytes, os, arch, &reference.to_string())?;
        pulled = client.get_manifest(reference, &digest.to_string()).await?;
    }
    image_of(client, reference, pulled).await
}

/// Reads the image whose manifest `pulled` (of `reference`) is: its config, and its layers'
/// descriptors.
async fn image_of(
    client: &Client,
    reference: &Reference,
    pulled: kiln_registry::PulledManifest,
) -> Result<(Image, Digest), ImageError> {
    if !matches!(
        pulled.media_type.as_str(),
        media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST
    ) {
        return Err(ImageError::MediaType {
            what: format!("`{reference}`"),
            media_type: pulled.media_type,
            expected: "an image manifest kiln can use as a run image",
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(&pulled.bytes)
        .map_err(|e| ImageError::json(format!("parsing manifest of `{reference}`"), e))?;
    let config_digest = Digest::try_from(manifest.config().digest()).map_err(|source| {
        ImageError::InvalidDigest {
            what: format!("the config descriptor of the manifest of `{reference}`"),
            source,
        }
    })?;
    let config_bytes = client
        .get_blob_bytes(reference, &config_digest, MAX_CONFIG_BYTES)
        .await?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::json(format!("parsing config of `{reference}`"), e))?;
    let layers = layers_of(&manifest, &config, Origin::Remote(reference.clone()))?;
    Ok((Image { config, layers }, pulled.digest))
}

/// Reads every platform image of `reference`: the one image of a manifest, or each image an
/// index lists for a real platform (attestation entries, `unknown/unknown`, are left out).
/// Returns the images with their manifest digests, and whether `reference` is an index.
pub async fn fetch_remote_all(
    client: &Client,
    reference: &Reference,
) -> Result<(Vec<(Image, Digest)>, bool), ImageError> {
    let pulled = client
        .get_manifest(reference, &reference.manifest_ref())
        .await?;
    if !is_index(&pulled.media_type) {
        // The manifest in hand is the image's: no second request for it.
        let (image, digest) = image_of(client, reference, pulled).await?;
        return Ok((vec![(image, digest)], false));
    }
    let index: serde_json::Value = serde_json::from_slice(&pulled.bytes)
        .map_err(|e| ImageError::json(format!("parsing the index of `{reference}`"), e))?;
    let mut images = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let Some(platform) = Platform::of_entry(entry).filter(|p| p.os != "unknown") else {
            continue;
        };
        let digest = entry_digest(entry, reference)?;
        let (image, digest) = fetch_remote(
            client,
            &reference.with_digest(digest),
            &platform.os,
            &platform.architecture,
        )
        .await?;
        images.push((image, digest));
    }
    Ok((images, true))
}

/// How a blob reached the target repository.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum BlobOutcome {
    /// The registry already had it; nothing was sent.
    Existing,
    /// Mounted from another repository on the same registry; nothing was sent.
    Mounted,
    /// Uploaded, this many bytes.
    Uploaded {
        /// Bytes sent.
        bytes: u64,
    },
}

/// Receives push progress; implemented by the CLI's progress display.
pub trait PushObserver: Sync {
    /// A layer upload begins.
    fn started(&self, _digest: &Digest, _size: u64) {}
    /// `sent` bytes of the layer have been sent so far.
    fn progress(&self, _digest: &Digest, _sent: u64) {}
    /// The layer is in the target repository.
    fn finished(&self, _digest: &Digest, _outcome: &BlobOutcome) {}
    /// Every layer and config is in the target repository; the manifests go next.
    fn blobs_pushed(&self) {}
}

impl PushObserver for () {}

/// What a push did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    /// The pushed manifest's (or index's) digest.
    pub digest: Digest,
    /// Per layer, bottom first: digest and how it got there.
    pub layers: Vec<(Digest, BlobOutcome)>,
    /// Layer bytes uploaded in total.
    pub uploaded_bytes: u64,
}

/// Pushes `artifact` to `target`: layers (skipping what the registry has, mounting what lives
/// in another repository of the same registry) and, beside them, configs; then, for an
/// index, each platform's manifest by digest, and last the manifest or index under
/// `target`'s tag (or `latest`), so the tag never names something incomplete.
pub async fn push_image<'a>(
    client: &Client,
    target: &Reference,
    artifact: impl Into<Artifact<'a>>,
    blobs: &Blobs,
    observer: &dyn PushObserver,
) -> Result<PushReport, ImageError> {
    let artifact = artifact.into();
    check_push(target, &artifact)?;
    let unique = artifact.unique_layers();
    let images = artifact.images();
    let layers = stream::iter(unique.iter().copied())
        .map(|layer| push_layer(client, target, layer, blobs, observer))
        .buffered(PUSH_CONCURRENCY)
        .try_collect::<Vec<(Digest, BlobOutcome)>>();
    // A config does not wait for the layers: the registry takes blobs in any order.
    let configs = stream::iter(images.iter())
        .map(|image| push_config(client, target, image, blobs))
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<()>>();
    let (outcomes, _) = futures_util::try_join!(layers, configs)?;
    observer.blobs_pushed();
    if let Artifact::Index(_) = artifact {
        // Each platform's manifest by digest, side by side: the index names them all.
        let manifests = images.iter().map(|image| async move {
            let by_digest = image.manifest_digest.to_string();
            client
                .push_manifest(
                    target,
                    &by_digest,
                    media_types::OCI_MANIFEST,
                    &image.manifest_bytes,
                )
                .await
        });
        futures_util::future::try_join_all(manifests).await?;
    }
    let tag = target.tag().unwrap_or("latest");
    let digest = client
        .push_manifest(target, tag, artifact.media_type(), artifact.bytes())
        .await?;
    if digest != *artifact.digest() {
        return Err(ImageError::Mismatch {
            what: "pushed manifest",
            expected: artifact.digest().to_string(),
            found: digest.to_string(),
        });
    }
    let uploaded_bytes = outcomes
        .iter()
        .map(|(_, o)| match o {
            BlobOutcome::Uploaded { bytes } => *bytes,
            _ => 0,
        })
        .sum();
    let listed: Vec<&Layer> = match artifact {
        Artifact::Image(image) => image.layers.iter().collect(),
        Artifact::Index(_) => unique,
    };
    let layers = listed
        .into_iter()
        .map(|l| {
            let outcome = outcomes
                .iter()
                .find(|(d, _)| *d == l.digest)
                .map(|(_, o)| o.clone());
            (l.digest.clone(), outcome.unwrap_or(BlobOutcome::Existing))
        })
        .collect();
    Ok(PushReport {
        digest,
        layers,
        uploaded_bytes,
    })
}

/// Returns the report of a push that has nothing to do, when `target`'s tag already names
/// `artifact` (one `HEAD`): the registry checked every blob when the manifest was put, so a
/// no-op rebuild sends nothing. `None` when the tag is missing, names something else, or
/// cannot be read.
pub async fn already_tagged(
    client: &Client,
    target: &Reference,
    artifact: impl Into<Artifact<'_>>,
) -> Option<PushReport> {
    let artifact = artifact.into();
    let tag = target.tag().unwrap_or("latest");
    let digest = client.manifest_digest(target, tag).await.ok()?;
    if digest != *artifact.digest() {
        return None;
    }
    let layers = match artifact {
        Artifact::Image(image) => image.layers.iter().collect(),
        Artifact::Index(_) => artifact.unique_layers(),
    };
    Some(PushReport {
        digest,
        layers: layers
            .into_iter()
            .map(|l| (l.digest.clone(), BlobOutcome::Existing))
            .collect(),
        uploaded_bytes: 0,
    })
}

/// Refuses, before anything is sent, a target pinned to a digest (a push moves a tag) and
/// manifests larger than registries must accept (RELIABILITY.md C05, R13).
fn check_push(target: &Reference, artifact: &Artifact<'_>) -> Result<(), ImageError> {
    if let Some(digest) = target.digest() {
        return Err(ImageError::PushToDigest {
            target: target.clone(),
            digest: digest.clone(),
        });
    }
    let mut manifests = vec![("manifest", artifact.digest(), artifact.bytes())];
    if let Artifact::Index(_) = artifact {
        manifests[0].0 = "index";
        for image in artifact.images() {
            manifests.push(("manifest", &image.manifest_digest, &image.manifest_bytes));
        }
    }
    for (what, digest, bytes) in manifests {
        if bytes.len() as u64 > kiln_registry::MAX_MANIFEST_BYTES {
            return Err(ImageError::ManifestTooLarge {
                what,
                digest: digest.clone(),
                size: bytes.len() as u64,
                max: kiln_registry::MAX_MANIFEST_BYTES,
            });
        }
    }
    Ok(())
}

/// Puts `image`'s config into `target`'s repository (skipped when it is there).
async fn push_config(
    client: &Client,
    target: &Reference,
    image: &FinalImage,
    blobs: &Blobs,
) -> Result<(), ImageError> {
    // The bytes are in hand: a missing or rotten stored copy is written again.
    if blobs.store().check(&image.config_digest)? != BlobCheck::Verified {
        blobs.put(&image.config_bytes)?;
    }
    let config_path = blobs.store().path(&image.config_digest);
    client
        .push_blob(
            target,
            &image.config_digest,
            image.config_bytes.len() as u64,
            &config_path,
            None,
            &|_| {},
        )
        .await?;
    Ok(())
}

async fn push_layer(
    client: &Client,
    target: &Reference,
    layer: &Layer,
    blobs: &Blobs,
    observer: &dyn PushObserver,
) -> Result<(Digest, BlobOutcome), ImageError> {
    observer.started(&layer.digest, layer.size);
    let outcome = push_layer_inner(client, target, layer, blobs, observer).await?;
    observer.finished(&layer.digest, &outcome);
    Ok((layer.digest.clone(), outcome))
}

async fn push_layer_inner(
    client: &Client,
    target: &Reference,
    layer: &Layer,
    blobs: &Blobs,
    observer: &dyn PushObserver,
) -> Result<BlobOutcome, ImageError> {
    let mount_from = match &layer.origin {
        // Read from a manifest of this very repository (a rebase's app layers): there.
        Origin::Remote(src)
            if src.registry() == target.registry() && src.repository() == target.repository() =>
        {
            return Ok(BlobOutcome::Existing);
        }
        Origin::Remote(src) if src.registry() == target.registry() => Some(src.repository()),
        _ => None,
    };
    let stored = blobs.store().contains(&layer.digest);
    if !stored {
        // Before fetching the bytes: the registry may have them, or mount them. A failed
        // check only means "unknown" (R10), a failed mount "upload instead" (R09).
        match client.blob_exists(target, &layer.digest).await {
            Ok(Some(_)) => return Ok(BlobOutcome::Existing),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "blob existence unknown"),
        }
        if let Some(from) = mount_from
            && client.mount_blob(target, &layer.digest, from).await?
        {
            return Ok(BlobOutcome::Mounted);
        }
    } else if client.has_blob_for_push(target, &layer.digest).await {
        // Before hashing the stored bytes (W09): none of them leave kiln.
        return Ok(BlobOutcome::Existing);
    }
    let path = blobs.local_path(layer).await?;
    let digest = layer.digest.clone();
    let progress = |sent| observer.progress(&digest, sent);
    let (size, from) = (layer.size, mount_from);
    let pushed = match stored {
        true => {
            client
                .push_probed_blob(target, &digest, size, &path, from, &progress)
                .await?
        }
        false => {
            client
                .push_blob(target, &digest, size, &path, from, &progress)
                .await?
        }
    };
    Ok(match pushed {
        BlobPush::Existing => BlobOutcome::Existing,
        BlobPush::Mounted => BlobOutcome::Mounted,
        BlobPush::Uploaded { bytes } => BlobOutcome::Uploaded { bytes },
    })
}
