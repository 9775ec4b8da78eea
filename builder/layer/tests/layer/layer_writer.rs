//! `LayerWriter`: layers written from a sequence of entries go through the same pipeline
//! and the same header normalization as `write_layer`.

use std::io::{self, Read};
use std::path::Path;

use crate::common::*;
use kiln_layer::{
    BlobStore, Compression, LayerContents, LayerError, LayerWriter, Ownership, write_layer,
};
use kiln_oci::Digest;

fn blob_names(store: &BlobStore) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn store_in(dir: &Path, name: &str) -> BlobStore {
    BlobStore::open(dir.join(name)).unwrap()
}

#[test]
fn writes_entries_in_order_with_normalized_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let root = Some(Ownership::new(0, 0));
    let mut w = LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();
    w.append_dir("./usr/", 0o755, root).unwrap();
    w.append_dir("usr/bin", 0o755, root).unwrap();
    w.append_file("./usr/bin/su", 0o104755, root, 5, &b"su-elf"[..])
        .unwrap();
    w.append_file(
        "usr/bin/mail",
        0o2755,
        Some(Ownership::new(0, 8)),
        0,
        io::empty(),
    )
    .unwrap();
    w.append_hardlink("usr/bin/su2", "./usr/bin/su", 0o4755, root)
        .unwrap();
    w.append_symlink("usr/bin/sh", "/bin/dash", None).unwrap();
    w.append_dir("tmp", 0o1777, root).unwrap();
    let blob = w.finish().unwrap();

    let tar = tar_bytes(&store, &blob);
    assert_eq!(blob.diff_id, Digest::of(&tar));
    assert_eq!(blob.digest, file_digest(&store.path(&blob.digest)));
    let es = entries(&tar);
    let paths: Vec<_> = es.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "usr/",
            "usr/bin/",
            "usr/bin/su",
            "usr/bin/mail",
            "usr/bin/su2",
            "usr/bin/sh",
            "tmp/"
        ],
        "caller's order, normalized paths"
    );
    for e in &es {
        assert_eq!(e.mtime, policy().mtime, "{}", e.path);
        assert!(e.uname.is_empty() && e.gname.is_empty(), "{}", e.path);
    }
    let su = find(&es, "usr/bin/su");
    assert_eq!((su.mode, su.uid, su.gid), (0o4755, 0, 0), "setuid kept");
    assert_eq!(su.data, b"su-el", "exactly `size` bytes are read");
    let mail = find(&es, "usr/bin/mail");
    assert_eq!((mail.mode, mail.gid), (0o2755, 8));
    let su2 = find(&es, "usr/bin/su2");
    assert_eq!(su2.kind, tar::EntryType::Link);
    assert_eq!(su2.link.as_deref(), Some("usr/bin/su"));
    let sh = find(&es, "usr/bin/sh");
    assert_eq!(sh.link.as_deref(), Some("/bin/dash"));
    assert_eq!(
        (sh.uid, sh.gid),
        (1000, 1000),
        "`None` is the policy's owner"
    );
    assert_eq!(find(&es, "tmp/").mode, 0o1777);
}

#[test]
fn same_entries_as_layer_contents_give_the_same_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "f".repeat(150);
    for compression in [Compression::Gzip, Compression::Zstd] {
        let mut c = LayerContents::new();
        c.add_dir("app", 0o755, None);
        c.add_file("app/run", b"#!/bin/sh\n".to_vec(), 0o755, None);
        c.add_file(&format!("app/{long}"), vec![7; 70_000], 0o644, None);
        c.add_symlink("app/sh", "/bin/sh");
        let store_a = store_in(tmp.path(), &format!("a-{compression}"));
        let a = write_layer(&c, &policy(), compression, &store_a).unwrap();

        let store_b = store_in(tmp.path(), &format!("b-{compression}"));
        let mut w = LayerWriter::new(&policy(), compression, &store_b).unwrap();
        // LayerContents' sorted order.
        w.append_dir("app", 0o755, None).unwrap();
        let big = vec![7; 70_000];
        w.append_file(&format!("app/{long}"), 0o644, None, 70_000, &big[..])
            .unwrap();
        w.append_file("app/run", 0o755, None, 10, &b"#!/bin/sh\n"[..])
            .unwrap();
        w.append_symlink("app/sh", "/bin/sh", None).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(a, b, "{compression}");
    }
}

#[test]
fn the_same_entries_twice_give_the_same_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, compression| {
        let store = store_in(tmp.path(), name);
        let mut w = LayerWriter::new(&policy(), compression, &store).unwrap();
        w.append_dir("etc", 0o755, None).unwrap();
        w.append_file(
            "etc/data",
            0o600,
            None,
            300_000,
            io::repeat(3).take(300_000),
        )
        .unwrap();
        w.finish().unwrap()
    };
    for compression in [Compression::Gzip, Compression::Zstd] {
        let a = write(&format!("x-{compression}"), compression);
        let b = write(&format!("y-{compression}"), compression);
        assert_eq!(a, b);
    }
}

/// A reader that yields `len` bytes in small reads and counts what was asked of it, to
/// prove the body is streamed rather than buffered whole.
struct Counting {
    left: u64,
    max_read: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.max_read = self.max_read.max(buf.len());
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].fill(b'z');
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn file_bodies_are_streamed_in_bounded_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let size = 16 << 20;
    let mut reader = Counting {
        left: size,
        max_read: 0,
    };
    let mut w = LayerWriter::new(&policy(), Compression::Zstd, &store).unwrap();
    w.append_file("big", 0o644, None, size, &mut reader)
        .unwrap();
    let blob = w.finish().unwrap();
    assert_eq!(reader.left, 0);
    assert!(
        reader.max_read <= 1 << 20,
        "read in {} byte chunks",
        reader.max_read
    );
    let es = entries(&tar_bytes(&store, &blob));
    assert_eq!(es[0].data.len() as u64, size);
}

#[test]
fn a_short_reader_fails_and_leaves_no_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let mut w = LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();
    w.append_dir("d", 0o755, None).unwrap();
    let err = w
        .append_file("d/f", 0o644, None, 100, &[1u8; 40][..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            LayerError::ShortEntry {
                expected: 100,
                actual: 40,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`d/f`"), "{err}");
    let again = w.append_dir("e", 0o755, None).unwrap_err();
    assert!(matches!(again, LayerError::WriterFailed), "{again:?}");
    assert!(matches!(w.finish(), Err(LayerError::WriterFailed)));
    assert!(blob_names(&store).is_empty(), "{:?}", blob_names(&store));
}

#[test]
fn a_failing_reader_names_the_entry() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("corrupt xz stream"))
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let mut w = LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();
    let err = w
        .append_file("usr/lib/x.so", 0o644, None, 10, Broken)
        .unwrap_err();
    // The entry in the message, the reader's error as its source, said once.
    let msg = err.to_string();
    assert!(msg.contains("`usr/lib/x.so`"), "{msg}");
    assert!(!msg.contains("corrupt xz"), "{msg}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("corrupt xz stream"), "{err:?}");
    drop(w);
    assert!(blob_names(&store).is_empty());
}

#[test]
fn dropping_an_unfinished_writer_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let mut w = LayerWriter::new(&policy(), Compression::Zstd, &store).unwrap();
    w.append_file("f", 0o644, None, 1 << 20, io::repeat(1).take(1 << 20))
        .unwrap();
    drop(w);
    assert!(blob_names(&store).is_empty(), "{:?}", blob_names(&store));
}

/// W03 (whiteout names, a bare `.wh.` too) and W04 (escapes, the root, hardlinks to
/// nothing earlier) for layers written entry by entry.
#[test]
fn w03_w04_refuses_escapes_whiteouts_the_root_and_dangling_hardlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path(), "s");
    let fresh = || LayerWriter::new(&policy(), Compression::Gzip, &store).unwrap();

    let err = fresh()
        .append_dir("usr/../../etc", 0o755, None)
        .unwrap_err();
    assert!(matches!(err, LayerError::InvalidPath { .. }), "{err:?}");
    let err = fresh()
        .append_file("a/.wh.passwd", 0o644, None, 0, io::empty())
        .unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err:?}");
    let err = fresh().append_dir(".wh..wh..opq", 0o755, None).unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err:?}");
    let err = fresh().append_symlink("etc/.wh.", "x", None).unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err:?}");
    assert!(err.to_string().contains("whiteout"), "{err}");
    let err = fresh().append_dir("./", 0o755, None).unwrap_err();
    assert!(matches!(err, LayerError::InvalidPath { .. }), "{err:?}");
    let err = fresh()
        .append_hardlink("b", "never-written", 0o644, None)
        .unwrap_err();
    assert!(err.to_string().contains("hardlink"), "{err}");
    let mut w = fresh();
    w.append_dir("d", 0o755, None).unwrap();
    let err = w.append_hardlink("b", "d", 0o644, None).unwrap_err();
    assert!(
        err.to_string().contains("hardlink"),
        "a directory is no target: {err}"
    );
    let err = fresh().append_symlink("s", "", None).unwrap_err();
    assert!(matches!(err, LayerError::InvalidPath { .. }), "{err:?}");
    drop(w);
    assert!(blob_names(&store).is_empty());
}
