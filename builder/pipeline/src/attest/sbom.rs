//! SBOMs of the images kiln builds: every layer is cataloged once (the result is kept under
//! the cache dir by the layer's digest, so a rebuild catalogs only the layers it changed),
//! then the image's packages are written as SPDX 2.3 and CycloneDX 1.5.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use kiln_attest::sbom::{
    Catalog, Ecosystem, LayerCatalog, Package, SbomInput, Subject, catalog_layer,
};
use kiln_image::Blobs;
use kiln_layer::{Compression, LayerBlob, LayerContents, TarPolicy};
use kiln_lifecycle::DeclaredPackage;
use kiln_model::Layer;
use kiln_oci::Digest;

use super::AttestError;

/// Bumped whenever cataloging changes what it finds, so older cached results are not used.
const CATALOG_CACHE: &str = "sbom-v1";
/// Layers cataloged at once.
const PARALLEL: usize = 4;

/// An image's SBOM in both formats.
pub struct Sboms {
    /// What was found.
    pub catalog: Catalog,
    /// The SPDX 2.3 JSON document.
    pub spdx: Vec<u8>,
    /// The CycloneDX 1.5 JSON document.
    pub cyclonedx: Vec<u8>,
}

/// Returns the packages in `layers` (bottom first), and those the buildpack `declared`
/// where a layer's files do not name them. Layers only in a registry are fetched into the
/// blob store first.
pub async fn catalog(
    layers: &[Layer],
    declared: &[DeclaredPackage],
    blobs: &Blobs,
    cache_dir: &Path,
) -> Result<Catalog, AttestError> {
    let dir = cache_dir.join(CATALOG_CACHE);
    std::fs::create_dir_all(&dir).map_err(|source| AttestError::Io {
        doing: "creating the SBOM cache",
        path: dir.clone(),
        source,
    })?;
    // Below every layer, so a package read from the file itself replaces the declared one
    // (the merge keeps the upper finding for the same file).
    let mut found: Vec<LayerCatalog> = vec![LayerCatalog {
        packages: declared.iter().filter_map(to_package).collect(),
        distro: None,
    }];
    for chunk in layers.chunks(PARALLEL) {
        let jobs = chunk.iter().map(|layer| catalog_cached(layer, blobs, &dir));
        for result in futures_util::future::join_all(jobs).await {
            found.push(result?);
        }
    }
    Ok(Catalog::merge(found))
}

/// Returns the SBOM documents of the image `name@digest` holding `catalog`.
pub fn documents(name: &str, digest: &Digest, catalog: Catalog, created: i64) -> Sboms {
    let input = SbomInput {
        subject: Subject { name, digest },
        catalog: &catalog,
        created,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let spdx = kiln_attest::sbom::spdx_json(&input);
    let cyclonedx = kiln_attest::sbom::cyclonedx_json(&input);
    Sboms {
        catalog,
        spdx,
        cyclonedx,
    }
}

/// Writes `sboms` into `dir` as `<stem>.spdx.json` and `<stem>.cdx.json`; returns the paths.
pub fn write(dir: &Path, stem: &str, sboms: &Sboms) -> Result<Vec<PathBuf>, AttestError> {
    std::fs::create_dir_all(dir).map_err(|source| AttestError::Io {
        doing: "creating the SBOM directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (ext, bytes) in [("spdx.json", &sboms.spdx), ("cdx.json", &sboms.cyclonedx)] {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, bytes).map_err(|source| AttestError::Io {
            doing: "writing the SBOM",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Returns a one-line summary: `412 packages (deb 310, golang 12, …)`.
pub fn summary(catalog: &Catalog) -> String {
    let counts: Vec<String> = catalog
        .counts()
        .iter()
        .map(|(eco, n)| format!("{} {n}", ecosystem_name(*eco)))
        .collect();
    format!(
        "{} packages ({})",
        catalog.packages.len(),
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    )
}

/// Returns the name kiln shows for an ecosystem (the purl type).
pub fn ecosystem_name(eco: Ecosystem) -> &'static str {
    match eco {
        Ecosystem::Deb => "deb",
        Ecosystem::Golang => "golang",
        Ecosystem::Maven => "maven",
        Ecosystem::Npm => "npm",
    }
}

async fn catalog_cached(
    layer: &Layer,
    blobs: &Blobs,
    dir: &Path,
) -> Result<LayerCatalog, AttestError> {
    let cached = dir.join(format!("{}.json", layer.digest.hex()));
    if let Ok(bytes) = std::fs::read(&cached)
        && let Ok(found) = serde_json::from_slice::<LayerCatalog>(&bytes)
    {
        return Ok(found);
    }
    let blob = blobs
        .local_path(layer)
        .await
        .map_err(|source| AttestError::Layer {
            digest: layer.digest.clone(),
            source: Box::new(source),
        })?;
    let compression = layer_compression(&layer.media_type);
    let digest = layer.digest.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<LayerCatalog, AttestError> {
        let io = |source| AttestError::Io {
            doing: "reading layer blob",
            path: blob.clone(),
            source,
        };
        let file = std::fs::File::open(&blob).map_err(io)?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let tar: Box<dyn std::io::Read> = match compression {
            Some(c) => c.decoder(reader).map_err(io)?,
            None => Box::new(reader),
        };
        catalog_layer(tar).map_err(|source| AttestError::Catalog { digest, source })
    })
    .await
    .map_err(AttestError::Panicked)??;
    keep(&cached, &found);
    Ok(found)
}

/// Keeps a layer's catalog at `cached`. The cache is an optimization: a failed write only
/// means cataloging again next time.
fn keep(cached: &Path, found: &LayerCatalog) {
    if let Ok(json) = serde_json::to_vec(found) {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, cached);
        }
    }
}

/// Catalogs the layer `blob` just written from what it holds (`contents`, streamed as its
/// uncompressed tar) and keeps the result where [`catalog`] looks first under `cache_dir`:
/// cheaper than decompressing the blob again. Any failure leaves that to [`catalog`].
pub fn catalog_written(
    cache_dir: &Path,
    blob: &LayerBlob,
    contents: &LayerContents,
    policy: &TarPolicy,
) {
    let dir = cache_dir.join(CATALOG_CACHE);
    let cached = dir.join(format!("{}.json", blob.digest.hex()));
    if cached.is_file() || std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok((mut reader, writer)) = std::io::pipe() else {
        return;
    };
    let found = std::thread::scope(|scope| {
        let tar = scope.spawn(move || {
            let out = std::io::BufWriter::with_capacity(1 << 16, writer);
            kiln_layer::write_tar(contents, policy, out, Path::new("the SBOM cataloger")).is_ok()
        });
        let found = catalog_layer(BufReader::with_capacity(1 << 16, &mut reader));
        // The tar's last zero blocks are left after the end the cataloger reads to.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        let whole = tar.join().unwrap_or(false);
        found.ok().filter(|_| whole)
    });
    if let Some(found) = found {
        keep(&cached, &found);
    }
}

/// Returns a declared package as the SBOM lists it; `None` for a type it does not know.
fn to_package(d: &DeclaredPackage) -> Option<Package> {
    let ecosystem = match d.purl_type.as_str() {
        "maven" => Ecosystem::Maven,
        "npm" => Ecosystem::Npm,
        "golang" => Ecosystem::Golang,
        "deb" => Ecosystem::Deb,
        _ => return None,
    };
    Some(Package::new(
        ecosystem,
        d.namespace.clone(),
        d.name.clone(),
        d.version.clone(),
        d.location.clone(),
    ))
}

/// Returns how a layer of `media_type` is compressed (`None`: a plain tar). Docker's media
/// types name gzip and zstd the same way OCI's do.
fn layer_compression(media_type: &str) -> Option<Compression> {
    if media_type.contains("zstd") {
        Some(Compression::Zstd)
    } else if media_type.ends_with("tar") {
        None
    } else {
        Some(Compression::Gzip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_layer_is_cataloged_from_its_files_as_from_its_blob() {
        let tmp = tempfile::tempdir().unwrap();
        let store = kiln_layer::BlobStore::open(tmp.path().join("store")).unwrap();
        let mut contents = LayerContents::new();
        let pkg = br#"{"name":"left-pad","version":"1.3.0"}"#.to_vec();
        contents.add_file(
            "workspace/node_modules/left-pad/package.json",
            pkg,
            0o644,
            None,
        );
        contents.add_file("workspace/big.bin", vec![7; 300_000], 0o644, None);
        let policy = TarPolicy {
            mtime: 0,
            owner: kiln_layer::Ownership { uid: 0, gid: 0 },
        };
        let blob = kiln_layer::write_layer(&contents, &policy, Compression::Gzip, &store).unwrap();
        catalog_written(tmp.path(), &blob, &contents, &policy);
        let cached = tmp
            .path()
            .join(CATALOG_CACHE)
            .join(format!("{}.json", blob.digest.hex()));
        let written: LayerCatalog =
            serde_json::from_slice(&std::fs::read(cached).unwrap()).unwrap();
        let file = std::fs::File::open(store.path(&blob.digest)).unwrap();
        let decoded = Compression::Gzip.decoder(BufReader::new(file)).unwrap();
        let from_blob = catalog_layer(decoded).unwrap();
        assert_eq!(written, from_blob);
        assert_eq!(written.packages.len(), 1, "{written:?}");
    }

    #[test]
    fn layer_media_types_map_to_their_compression() {
        for (media_type, want) in [
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.layer.v1.tar", None),
        ] {
            assert_eq!(layer_compression(media_type), want, "{media_type}");
        }
    }
}
