//! Blob-level checks: digests and diffIDs recomputed from the stored bytes, and the
//! system `gzip` and `zstd` tools accept what kiln writes.

use std::process::Command;

use crate::common;
use crate::common::*;
use kiln_layer::{BlobStore, Compression, LayerBlob, LayerContents, write_layer};
use kiln_oci::Digest;

fn sample_blob(compression: Compression) -> (tempfile::TempDir, BlobStore, LayerBlob) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    sample_tree(&root);
    // Big enough for several parallel gzip blocks.
    let text: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    common::write(&root, "data/lines.txt", &text, 0o644);
    let mut c = LayerContents::new();
    c.add_tree(&root, "").unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = write_layer(&c, &policy(), compression, &store).unwrap();
    (tmp, store, blob)
}

#[test]
fn digest_size_and_diff_id_match_the_stored_blob() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let (_tmp, store, blob) = sample_blob(compression);
        let path = store.path(&blob.digest);
        assert_eq!(file_digest(&path), blob.digest, "{compression}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), blob.size);
        assert_eq!(
            Digest::of(&tar_bytes(&store, &blob)),
            blob.diff_id,
            "{compression}"
        );
        assert_eq!(blob.media_type, compression.media_type());
        assert_ne!(blob.digest, blob.diff_id);
        let json = serde_json::to_string(&blob).unwrap();
        assert_eq!(serde_json::from_str::<LayerBlob>(&json).unwrap(), blob);
    }
}

#[test]
fn system_gzip_accepts_the_blob() {
    if !have("gzip") {
        eprintln!("skipping: no `gzip` on PATH");
        return;
    }
    let (_tmp, store, blob) = sample_blob(Compression::Gzip);
    let path = store.path(&blob.digest);
    let test = Command::new("gzip").arg("-t").arg(&path).output().unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, tar_bytes(&store, &blob), "zcat | cmp");
    assert_eq!(Digest::of(&out.stdout), blob.diff_id);
}

#[test]
fn system_zstd_accepts_the_blob() {
    if !have("zstd") {
        eprintln!("skipping: no `zstd` on PATH (apt-get install zstd)");
        return;
    }
    let (_tmp, store, blob) = sample_blob(Compression::Zstd);
    let out = Command::new("zstd")
        .arg("-dc")
        .arg(store.path(&blob.digest))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Digest::of(&out.stdout), blob.diff_id);
}

#[test]
fn rewriting_a_layer_reuses_the_same_blob_path() {
    let (_tmp, store, blob) = sample_blob(Compression::Gzip);
    let names: Vec<_> = std::fs::read_dir(store.blob_dir()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the committed blob, no temp files");
    assert!(store.contains(&blob.digest));
}
