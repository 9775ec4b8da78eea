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

/// W03: a workspace file named like an OCI whiteout (`.wh.foo`, the opaque marker
/// `.wh..wh..opq`, a bare `.wh.`), anywhere in the tree or given to `add_*`, is a hard
/// error naming it and saying why; no blob is written.
#[test]
fn w03_whiteout_names_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    for (i, name) in [
        "lib/.wh.foo",
        ".wh..wh..opq",
        "deep/er/.wh.",
        ".wh.dir/inside",
    ]
    .iter()
    .enumerate()
    {
        let root = tmp.path().join(format!("t{i}"));
        common::write(&root, "a-first", b"", 0o644);
        common::write(&root, name, b"", 0o644);
        let mut c = LayerContents::new();
        let err = c.add_tree(&root, "workspace").unwrap_err();
        assert!(
            matches!(err, LayerError::Whiteout { .. }),
            "{name}: {err:?}"
        );
        let message = err.to_string();
        let shown = name.split_once("/inside").map_or(*name, |(d, _)| d);
        assert!(message.contains(&format!("{shown}`")), "{message}");
        assert!(message.contains("whiteout"), "{message}");

        let mut given = LayerContents::new();
        given.add_file(&format!("workspace/{name}"), Vec::new(), 0o644, None);
        let err = write_layer(&given, &policy(), Compression::Gzip, &store).unwrap_err();
        assert!(
            matches!(err, LayerError::Whiteout { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(given.fingerprint(&policy(), Compression::Gzip).is_err());
    }
    let mut dirs_and_links = LayerContents::new();
    dirs_and_links.add_dir("opt/.wh..wh..opq", 0o755, None);
    dirs_and_links.add_symlink("opt/.wh.", "/etc");
    let err = write_layer(&dirs_and_links, &policy(), Compression::Gzip, &store).unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err:?}");
    assert!(blob_names(&store).is_empty());
}

/// W02: a file that grows or shrinks between being added and being read fails the write
/// naming it, and leaves no blob (not even a temp file): never a header whose size
/// differs from the data.
#[test]
fn w02_a_file_that_grows_or_shrinks_after_being_added_fails_the_write() {
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

/// W02: a file, or a directory above it, swapped after being added for a symlink (to a
/// host secret of the same size), a directory, a FIFO or another file: the write fails
/// naming the path, the link is never followed (no secret byte is read), a FIFO does not
/// block, and no blob is left.
#[test]
fn w02_a_file_or_parent_swapped_for_a_symlink_dir_fifo_or_other_file_fails_the_write() {
    const SECRET: &[u8] = b"KILN-CANARY-W02";
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    common::write(&outside, "secret", SECRET, 0o600);
    common::write(&outside, "dir/app.conf", SECRET, 0o600);
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    type Swap<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    let swaps: Vec<(&str, &str, Swap<'_>)> = vec![
        (
            "a symlink to a secret",
            "app.conf",
            Box::new(|root| {
                std::fs::remove_file(root.join("app.conf")).unwrap();
                std::os::unix::fs::symlink(
                    tmp.path().join("outside/secret"),
                    root.join("app.conf"),
                )
                .unwrap();
            }),
        ),
        (
            "a parent dir swapped for a symlink",
            "dir/app.conf",
            Box::new(|root| {
                std::fs::remove_dir_all(root.join("dir")).unwrap();
                std::os::unix::fs::symlink(tmp.path().join("outside/dir"), root.join("dir"))
                    .unwrap();
            }),
        ),
        (
            "a directory",
            "app.conf",
            Box::new(|root| {
                std::fs::remove_file(root.join("app.conf")).unwrap();
                std::fs::create_dir(root.join("app.conf")).unwrap();
            }),
        ),
        (
            "a fifo",
            "app.conf",
            Box::new(|root| {
                std::fs::remove_file(root.join("app.conf")).unwrap();
                let status = Command::new("mkfifo").arg(root.join("app.conf")).status();
                assert!(status.unwrap().success());
            }),
        ),
        (
            "another file of the same size",
            "app.conf",
            Box::new(|root| {
                common::write(root, "new", SECRET, 0o644);
                std::fs::rename(root.join("new"), root.join("app.conf")).unwrap();
            }),
        ),
    ];
    for (i, (what, victim, swap)) in swaps.iter().enumerate() {
        let root = tmp.path().join(format!("t{i}"));
        common::write(&root, victim, b"original-bytes!", 0o644);
        assert_eq!(b"original-bytes!".len(), SECRET.len());
        common::write(&root, "z-last", b"z", 0o644);
        let mut c = LayerContents::new();
        c.add_tree(&root, "").unwrap();
        swap(&root);
        let err = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::Replaced { .. } | LayerError::NotAFile { .. }
            ),
            "{what}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{victim}`")),
            "{what}: {err}"
        );
        assert!(blob_names(&store).is_empty(), "{what}: no blob");
        let err = c.fingerprint(&policy(), Compression::Gzip).unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::Replaced { .. } | LayerError::NotAFile { .. }
            ),
            "{what}: {err:?}"
        );
    }
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

/// W05: files linked several times inside the layer are stored once, later paths being
/// `TypeLink` entries to the first one in layer order; a file whose other links are
/// outside the layer (not added, or left out like an ignored file) is a plain file with
/// its bytes. Go's reader and GNU tar see every link point to an earlier regular file.
#[test]
fn w05_hardlinks_point_to_an_earlier_file_of_the_layer_or_are_plain_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let excluded = tmp.path().join("excluded");
    common::write(&ws, "b/shared", b"shared bytes", 0o644);
    std::fs::hard_link(ws.join("b/shared"), ws.join("a-first")).unwrap();
    std::fs::create_dir_all(ws.join("c")).unwrap();
    std::fs::hard_link(ws.join("b/shared"), ws.join("c/third")).unwrap();
    common::write(&ws, "lonely", b"my peer is ignored", 0o644);
    common::write(&excluded, "x", b"", 0o644);
    std::fs::hard_link(ws.join("lonely"), excluded.join("secret-peer")).unwrap();
    // A second tree in the same layer whose file links to one of the first tree.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::hard_link(ws.join("b/shared"), other.join("again")).unwrap();

    let mut c = LayerContents::new();
    c.add_tree(&ws, "workspace").unwrap();
    c.add_tree(&other, "aaa").unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
    let tar = tar_bytes(&store, &blob);
    let es = entries(&tar);
    let first = find(&es, "aaa/again");
    assert_eq!(first.kind, tar::EntryType::Regular, "first in layer order");
    assert_eq!(first.data, b"shared bytes");
    for later in [
        "workspace/a-first",
        "workspace/b/shared",
        "workspace/c/third",
    ] {
        let e = find(&es, later);
        assert_eq!(e.kind, tar::EntryType::Link, "{later}");
        assert_eq!(e.link.as_deref(), Some("aaa/again"), "{later}");
        assert!(e.data.is_empty());
    }
    let lonely = find(&es, "workspace/lonely");
    assert_eq!(
        lonely.kind,
        tar::EntryType::Regular,
        "its only link in the layer"
    );
    assert_eq!(lonely.data, b"my peer is ignored");

    kiln_layer::validate_tar(tar.as_slice(), kiln_layer::LayerOrder::Sorted).unwrap();
    let ours = kiln_reader(&tar).unwrap();
    let others = [go_reader(&tar).map(Result::unwrap)];
    for seen in others.into_iter().flatten().chain([ours]) {
        for (i, e) in seen.iter().enumerate().filter(|(_, e)| e.kind == b'1') {
            let target = seen[..i].iter().find(|t| t.name == e.link);
            assert_eq!(target.map(|t| t.kind), Some(b'0'), "{:?}", e.name);
        }
    }
    if have_gnu_tar() {
        let out = tmp.path().join("gnu");
        gnu_extract(&tar, &out).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| std::fs::metadata(out.join(p)).unwrap().ino();
        assert_eq!(ino("aaa/again"), ino("workspace/c/third"));
        assert_eq!(
            std::fs::read(out.join("workspace/lonely")).unwrap(),
            b"my peer is ignored"
        );
    }
}
