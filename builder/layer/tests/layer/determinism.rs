//! Determinism is the point of the crate: the same tree from different copies, umasks,
//! mtimes and thread counts must give byte-identical layers and equal fingerprints.

use std::path::Path;

use crate::common;
use crate::common::*;
use kiln_layer::{
    BlobStore, Compression, LayerBlob, LayerContents, WriteOptions, write_layer, write_layer_with,
};

fn contents_of(root: &Path) -> LayerContents {
    let mut c = LayerContents::new();
    c.add_tree(root, "workspace").unwrap();
    c.add_dir("tmp", 0o1777, None);
    c
}

fn export(root: &Path, store: &BlobStore, compression: Compression) -> LayerBlob {
    write_layer(&contents_of(root), &policy(), compression, store).unwrap()
}

#[test]
fn copies_with_different_umask_mtimes_and_paths_give_identical_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    sample_tree(&original);
    set_mtimes(&original, 1_000_000);
    let copy = tmp.path().join("elsewhere/deeper/copy");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    copy_with_umask(&original, &copy, "077");
    set_mtimes(&copy, 1_600_000_000);
    // Permission noise a umask cannot express: group-writable, other-readable.
    common::write(&copy, "etc/app.conf", b"key = value\n", 0o666);

    for compression in [Compression::Gzip, Compression::Zstd] {
        let store_a = BlobStore::open(tmp.path().join(format!("a-{compression}"))).unwrap();
        let store_b = BlobStore::open(tmp.path().join(format!("b-{compression}"))).unwrap();
        let a = export(&original, &store_a, compression);
        let b = export(&copy, &store_b, compression);
        assert_eq!(a, b, "{compression}");
        assert_eq!(
            std::fs::read(store_a.path(&a.digest)).unwrap(),
            std::fs::read(store_b.path(&b.digest)).unwrap()
        );
        let fa = contents_of(&original)
            .fingerprint(&policy(), compression)
            .unwrap();
        let fb = contents_of(&copy)
            .fingerprint(&policy(), compression)
            .unwrap();
        assert_eq!(
            fa, fb,
            "fingerprint is stable across copies ({compression})"
        );
    }
}

#[test]
fn fingerprint_follows_content_policy_and_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    sample_tree(&root);
    let base = contents_of(&root)
        .fingerprint(&policy(), Compression::Gzip)
        .unwrap();
    assert_eq!(
        base,
        contents_of(&root)
            .fingerprint(&policy(), Compression::Gzip)
            .unwrap()
    );
    assert_ne!(
        base,
        contents_of(&root)
            .fingerprint(&policy(), Compression::Zstd)
            .unwrap()
    );
    let mut later = policy();
    later.mtime += 1;
    assert_ne!(
        base,
        contents_of(&root)
            .fingerprint(&later, Compression::Gzip)
            .unwrap()
    );

    // Same size, different bytes, and the mtime put back: only content hashing sees it.
    let conf = root.join("etc/app.conf");
    let mtime = std::fs::metadata(&conf).unwrap().modified().unwrap();
    common::write(&root, "etc/app.conf", b"key = VALUE\n", 0o600);
    std::fs::File::open(&conf)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let changed = contents_of(&root)
        .fingerprint(&policy(), Compression::Gzip)
        .unwrap();
    assert_ne!(base, changed);

    // A mode change that survives normalization (exec bit) changes it too.
    common::write(&root, "etc/app.conf", b"key = VALUE\n", 0o700);
    assert_ne!(
        changed,
        contents_of(&root)
            .fingerprint(&policy(), Compression::Gzip)
            .unwrap()
    );
}

#[test]
fn thread_count_does_not_change_the_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    sample_tree(&root);
    // Enough data for many gzip blocks and several zstd multi-threading jobs.
    let mut x: u64 = 42;
    for i in 0..6 {
        let data: Vec<u8> = (0..4_500_000u32)
            .map(|j| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (j / 8192) % 2 == 0 {
                    (x >> 59) as u8 + b'a'
                } else {
                    (x >> 33) as u8
                }
            })
            .collect();
        common::write(&root, &format!("data/blob-{i}.bin"), &data, 0o644);
    }
    // Many small text files: zero-padded headers next to text, the shape of real layers.
    for i in 0..400u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let line = format!("entry {i} value {} ", x >> 40);
        let body = line.repeat(1 + (x >> 58) as usize * 20);
        common::write(
            &root,
            &format!("docs/d{}/note-{i}.txt", i / 50),
            body.as_bytes(),
            0o644,
        );
    }
    let contents = contents_of(&root);
    for compression in [Compression::Gzip, Compression::Zstd] {
        let blobs: Vec<LayerBlob> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                let store =
                    BlobStore::open(tmp.path().join(format!("{compression}-{threads}"))).unwrap();
                write_layer_with(
                    &contents,
                    &policy(),
                    compression,
                    &store,
                    WriteOptions { threads },
                )
                .unwrap()
            })
            .collect();
        assert_eq!(blobs[0], blobs[1], "{compression}: 1 vs 2 threads");
        assert_eq!(blobs[0], blobs[2], "{compression}: 1 vs 3 threads");
    }
}

#[test]
fn the_uncompressed_tar_is_the_one_a_layer_compresses() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    sample_tree(&root);
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = export(&root, &store, Compression::Gzip);
    let mut tar = Vec::new();
    kiln_layer::write_tar(
        &contents_of(&root),
        &policy(),
        &mut tar,
        Path::new("memory"),
    )
    .unwrap();
    assert_eq!(kiln_oci::Digest::of(&tar), blob.diff_id);
}
