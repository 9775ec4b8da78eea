//! How `add_tree` treats awkward host files: special files, whiteout names, and files
//! that change between being added and being written.

use std::io::Write;
use std::process::Command;

use crate::common;
use crate::common::*;
use kiln_layer::{BlobStore, Compression, LayerContents, LayerError, SkippedKind, write_layer};

fn blob_names(store: &BlobStore) -> Vec<String> {
    std::fs::read_dir(store.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn fifos_and_sockets_are_skipped_with_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    common::write(&root, "keep.txt", b"kept", 0o644);
    let fifo = root.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let sock = root.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut c = LayerContents::new();
    c.add_tree(&root, "").unwrap();
    let kinds: Vec<_> = c
        .warnings()
        .iter()
        .map(|w| (w.path.clone(), w.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (fifo.clone(), SkippedKind::Fifo),
            (sock, SkippedKind::Socket)
        ]
    );
    let message = c.warnings()[0].to_string();
    assert!(
        message.contains(&format!("`{}`", fifo.display())),
        "{message}"
    );
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
    let paths: Vec<String> = entries(&tar_bytes(&store, &blob))
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["keep.txt"]);
}

#[test]
fn whiteout_names_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    common::write(&root, "lib/.wh.foo", b"", 0o644);
    let err = LayerContents::new().add_tree(&root, "").unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("lib/.wh.foo`"), "{message}");
}

#[test]
fn a_file_that_grows_or_shrinks_after_being_added_fails_the_write() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    common::write(&root, "app.log", b"line 1\n", 0o644);
    common::write(&root, "other", b"fine", 0o644);
    let store = BlobStore::open(tmp.path().join("store")).unwrap();

    let mut grown = LayerContents::new();
    grown.add_tree(&root, "").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("app.log"))
        .unwrap();
    f.write_all(b"line 2\n").unwrap();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let err = write_layer(&grown, &policy(), compression, &store).unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::SizeChanged {
                    expected: 7,
                    actual: 14,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("app.log`"), "{err}");
        assert!(
            blob_names(&store).is_empty(),
            "no blob, not even a temp file"
        );
    }
    let err = grown.fingerprint(&policy(), Compression::Gzip).unwrap_err();
    assert!(matches!(err, LayerError::SizeChanged { .. }), "{err:?}");

    let mut shrunk = LayerContents::new();
    shrunk.add_tree(&root, "").unwrap();
    std::fs::write(root.join("app.log"), b"").unwrap();
    let err = write_layer(&shrunk, &policy(), Compression::Gzip, &store).unwrap_err();
    assert!(
        matches!(err, LayerError::SizeChanged { actual: 0, .. }),
        "{err:?}"
    );
    assert!(blob_names(&store).is_empty());
}

#[test]
fn bad_roots_and_paths_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    common::write(tmp.path(), "file", b"", 0o644);
    let err = LayerContents::new()
        .add_tree(&tmp.path().join("file"), "")
        .unwrap_err();
    assert!(matches!(err, LayerError::NotADirectory { .. }), "{err:?}");
    let err = LayerContents::new()
        .add_tree(tmp.path(), "../up")
        .unwrap_err();
    assert!(err.to_string().contains("`../up`"), "{err}");

    let mut c = LayerContents::new();
    c.add_file("a/../../etc/passwd", Vec::new(), 0o644, None);
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let err = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap_err();
    assert!(err.to_string().contains("`a/../../etc/passwd`"), "{err}");
    assert!(c.fingerprint(&policy(), Compression::Gzip).is_err());
}

#[test]
fn tree_dirs_do_not_replace_existing_dirs_but_files_replace_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    common::write(&root, "bin/tool", b"from tree", 0o755);
    let mut c = LayerContents::new();
    c.add_dir(
        "workspace/bin",
        0o750,
        Some(kiln_layer::Ownership::new(5, 5)),
    );
    c.add_file("workspace/bin/tool", b"explicit".to_vec(), 0o700, None);
    c.add_tree(&root, "workspace").unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
    let entries = entries(&tar_bytes(&store, &blob));
    let bin = find(&entries, "workspace/bin/");
    assert_eq!((bin.mode, bin.uid), (0o750, 5));
    assert_eq!(find(&entries, "workspace/bin/tool").data, b"from tree");
}
