//! W04: every layer kiln writes is checked against the layer rules while it is written
//! (relative normalized paths, no duplicates, parents first, sorted for `write_layer`), so
//! a layer breaking them cannot be produced; real layers pass kiln's validator and a
//! go-containerregistry-style check ("duplicate file path") in Go's `archive/tar`.

use std::io;

use crate::common::*;
use kiln_layer::{
    BlobStore, Compression, LayerContents, LayerError, LayerOrder, LayerWriter, Ownership,
    validate_tar, write_layer,
};

fn blob_names(store: &BlobStore) -> Vec<String> {
    std::fs::read_dir(store.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn w04_a_layer_with_a_duplicate_path_or_a_late_parent_cannot_be_produced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let fresh = || LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();
    let root = Some(Ownership::new(0, 0));

    let mut w = fresh();
    w.append_dir("etc", 0o755, root).unwrap();
    w.append_file("etc/passwd", 0o644, root, 1, &b"a"[..])
        .unwrap();
    let err = w
        .append_file("./etc//passwd", 0o644, root, 1, &b"b"[..])
        .unwrap_err();
    assert!(matches!(err, LayerError::Unsound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("`etc/passwd`") && message.contains("duplicate"),
        "{message}"
    );
    assert!(matches!(w.finish(), Err(LayerError::WriterFailed)));

    {
        let mut w = fresh();
        w.append_dir("usr/bin", 0o755, root).unwrap();
        w.append_symlink("usr/bin/sh", "dash", root).unwrap();
        let err = w.append_dir("usr/bin", 0o755, root).unwrap_err();
        assert!(
            err.to_string().contains("duplicate"),
            "a directory twice: {err}"
        );
    }
    {
        let mut w = fresh();
        w.append_file("opt/app/run", 0o755, root, 0, io::empty())
            .unwrap();
        let err = w.append_dir("opt", 0o755, root).unwrap_err();
        assert!(err.to_string().contains("`opt`"), "{err}");
        assert!(err.to_string().contains("parents go first"), "{err}");
    }
    {
        let mut w = fresh();
        w.append_symlink("lib", "usr/lib", root).unwrap();
        let err = w
            .append_file("lib/libc.so.6", 0o755, root, 0, io::empty())
            .unwrap_err();
        assert!(
            err.to_string().contains("not a directory"),
            "through a symlink: {err}"
        );
    }
    assert!(
        blob_names(&store).is_empty(),
        "no blob from a refused layer"
    );

    // `LayerContents` keeps one entry per path: adding twice replaces.
    let mut c = LayerContents::new();
    c.add_file("etc/passwd", b"one".to_vec(), 0o644, None);
    c.add_file("etc/passwd", b"two".to_vec(), 0o644, None);
    let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
    let es = entries(&tar_bytes(&store, &blob));
    let paths: Vec<&str> = es.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["etc/", "etc/passwd"]);
    assert_eq!(find(&es, "etc/passwd").data, b"two");
}

/// A tar with the same path twice, as a buggy writer would make it.
fn duplicate_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "etc/", io::empty()).unwrap();
    for data in [&b"one"[..], b"two"] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/passwd", data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn w04_real_layers_pass_the_validators_and_a_duplicate_is_caught_by_both() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    sample_tree(&root);
    let mut c = LayerContents::new();
    c.add_tree(&root, "workspace").unwrap();
    c.add_dir("tmp", 0o1777, Some(Ownership::new(0, 0)));
    c.add_file(
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\n".to_vec(),
        0o644,
        None,
    );
    let mut tars = Vec::new();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let store = BlobStore::open(tmp.path().join(format!("s-{compression}"))).unwrap();
        let blob = write_layer(&c, &policy(), compression, &store).unwrap();
        tars.push((LayerOrder::Sorted, tar_bytes(&store, &blob)));
    }
    let store = BlobStore::open(tmp.path().join("writer")).unwrap();
    let mut w = LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();
    w.append_dir("usr", 0o755, None).unwrap();
    w.append_dir("usr/bin", 0o755, None).unwrap();
    w.append_file("usr/bin/su", 0o4755, None, 2, &b"su"[..])
        .unwrap();
    w.append_hardlink("usr/bin/su2", "usr/bin/su", 0o4755, None)
        .unwrap();
    w.append_file("var/lib/dpkg/status.d/x", 0o644, None, 1, &b"x"[..])
        .unwrap();
    w.append_dir("etc", 0o755, None).unwrap();
    let blob = w.finish().unwrap();
    tars.push((LayerOrder::Given, tar_bytes(&store, &blob)));

    for (order, tar) in &tars {
        let count = validate_tar(tar.as_slice(), *order).unwrap();
        assert_eq!(count as usize, kiln_reader(tar).unwrap().len());
        if let Some(go) = go_reader(tar) {
            go.unwrap();
        }
        if have_gnu_tar() {
            gnu_list(tar).unwrap();
        }
    }
    // write_layer's output is sorted, `LayerWriter`'s is not and does not claim to be.
    assert!(validate_tar(tars[2].1.as_slice(), LayerOrder::Sorted).is_err());

    let dup = duplicate_tar();
    for order in [LayerOrder::Sorted, LayerOrder::Given] {
        let err = validate_tar(dup.as_slice(), order).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        assert!(err.to_string().contains("`etc/passwd`"), "{err}");
    }
    if let Some(go) = go_reader(&dup) {
        let err = go.unwrap_err();
        assert!(err.contains("duplicate file path: etc/passwd"), "{err}");
    }
    let mut trailing = tars[0].1.clone();
    trailing.extend_from_slice(&[b'x'; 512]);
    assert!(validate_tar(trailing.as_slice(), LayerOrder::Sorted).is_err());
}
