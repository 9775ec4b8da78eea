use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use kiln_oci::{Digest, canonical_json, media_types};
use serde_json::json;

use crate::layout::REF_NAME;
use kiln_model::Artifact;

use crate::{Blobs, ImageError};

/// Writes `artifact` (an image or a multi-platform index) as an OCI archive: a tar of an OCI
/// image layout holding just it, named `ref_name`, as `podman load` and `skopeo copy
/// oci-archive:` read it.
///
/// Written to a temp file beside `path` and renamed, so a failed export never leaves a
/// truncated archive under the requested name.
pub async fn write_archive<'a>(
    path: &Path,
    artifact: impl Into<Artifact<'a>>,
    ref_name: &str,
    blobs: &Blobs,
) -> Result<(), ImageError> {
    let artifact = artifact.into();
    let mut layer_paths = Vec::new();
    for layer in artifact.unique_layers() {
        layer_paths.push((layer.digest.clone(), blobs.local_path(layer).await?));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{
            "mediaType": artifact.media_type(),
            "digest": artifact.digest().to_string(),
            "size": artifact.bytes().len(),
            "annotations": { REF_NAME: ref_name },
        }],
    });
    let index = canonical_json(&index).map_err(|source| ImageError::SerializeIndex {
        what: "OCI archive",
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("kiln-tmp");
    let file = File::create(&tmp).map_err(|e| ImageError::io("creating archive", &tmp, e))?;
    let io = |e| ImageError::io("writing archive", path, e);
    let mut tar = tar::Builder::new(BufWriter::new(file));
    append_dir(&mut tar, "blobs/").map_err(io)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(io)?;
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    append_bytes(&mut tar, "index.json", &index).map_err(io)?;
    append_bytes(&mut tar, &blob_name(artifact.digest()), artifact.bytes()).map_err(io)?;
    let mut written = std::collections::BTreeSet::from([artifact.digest()]);
    for (digest, bytes) in artifact.json_blobs() {
        if written.insert(digest) {
            append_bytes(&mut tar, &blob_name(digest), bytes).map_err(io)?;
        }
    }
    for (digest, src) in layer_paths {
        let mut f = File::open(&src).map_err(|e| ImageError::io("opening blob", &src, e))?;
        let len = f
            .metadata()
            .map_err(|e| ImageError::io("reading blob", &src, e))?
            .len();
        let mut header = header(tar::EntryType::Regular, len);
        tar.append_data(&mut header, blob_name(&digest), &mut f)
            .map_err(io)?;
    }
    let mut out = tar.into_inner().map_err(io)?;
    out.flush().map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| ImageError::io("renaming archive to", path, e))
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0);
    tar.append_data(&mut h, name, std::io::empty())
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Regular, bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
}
