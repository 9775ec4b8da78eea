//! W06: awkward names round-trip exactly through kiln's reader, Go's `archive/tar` and
//! GNU tar, and on tars built to make parsers disagree (pax `size` against the ustar size,
//! pax `path` against the ustar name) kiln's reader agrees with Go and GNU tar.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::common::*;
use kiln_layer::{
    BlobStore, Compression, LayerContents, LayerOrder, extract_layer, validate_tar, write_layer,
};
use kiln_oci::Digest;

/// Host names that are hard on tar: long, not UTF-8 (short and long), a newline, a
/// backslash, and link targets that are long or not UTF-8.
fn hostile_tree(root: &Path) -> Vec<Vec<u8>> {
    let mut long_latin1 = long_path(120).into_bytes();
    long_latin1.extend_from_slice(b"-caf\xe9");
    let names: Vec<Vec<u8>> = vec![
        long_path(150).into_bytes(),
        b"caf\xe9.txt".to_vec(),
        long_latin1,
        b"line\nbreak".to_vec(),
        b"back\\slash".to_vec(),
        b"tab\tand space".to_vec(),
    ];
    for (i, name) in names.iter().enumerate() {
        let p = root.join(OsStr::from_bytes(name));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("file {i}")).unwrap();
    }
    let long_target = format!("../{}", long_path(180));
    std::os::unix::fs::symlink(&long_target, root.join("long-link")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9.txt"), root.join("latin1-link"))
        .unwrap();
    names
}

fn layer_tar(c: &LayerContents) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path()).unwrap();
    let blob = write_layer(c, &policy(), Compression::Gzip, &store).unwrap();
    tar_bytes(&store, &blob)
}

/// The same entries, in the same order, with the same bytes, for kiln, Go and GNU tar.
fn assert_readers_agree(tar: &[u8]) -> Vec<Seen> {
    let ours = kiln_reader(tar).unwrap();
    match go_reader(tar) {
        Some(go) => assert_eq!(go.unwrap(), ours, "Go's archive/tar reads the same layer"),
        None => eprintln!("note: Go's reader not checked"),
    }
    if have_gnu_tar() {
        let gnu = gnu_list(tar).unwrap();
        let expected: Vec<(Vec<u8>, u64)> = ours.iter().map(|e| (e.name.clone(), e.size)).collect();
        assert_eq!(gnu, expected, "GNU tar lists the same names and sizes");
    }
    ours
}

#[test]
fn w06_long_non_utf8_newline_and_backslash_names_round_trip_through_three_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    let names = hostile_tree(&root);
    let mut c = LayerContents::new();
    c.add_tree(&root, "workspace").unwrap();
    let tar = layer_tar(&c);
    assert_eq!(
        validate_tar(tar.as_slice(), LayerOrder::Sorted).unwrap() as usize,
        c.len()
    );
    let seen = assert_readers_agree(&tar);
    for (i, name) in names.iter().enumerate() {
        let full = [b"workspace/".as_slice(), name].concat();
        let e = seen
            .iter()
            .find(|e| e.name == full)
            .unwrap_or_else(|| panic!("{:?} is in the layer", String::from_utf8_lossy(&full)));
        assert_eq!(e.sha, Digest::of(format!("file {i}").as_bytes()).hex());
    }
    let link = |n: &str| {
        let name = format!("workspace/{n}").into_bytes();
        seen.iter().find(|e| e.name == name).unwrap().link.clone()
    };
    assert_eq!(
        link("long-link"),
        format!("../{}", long_path(180)).into_bytes()
    );
    assert_eq!(link("latin1-link"), b"caf\xe9.txt");

    // pax carries what ustar cannot, as raw bytes when it is not UTF-8.
    let mut archive = tar::Archive::new(tar.as_slice());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path_bytes().into_owned();
        let keys: Vec<String> = e
            .pax_extensions()
            .unwrap()
            .map(|x| x.map(|r| r.unwrap().key().unwrap().to_string()).collect())
            .unwrap_or_default();
        let long = name.len() > 100;
        assert_eq!(keys.contains(&"path".to_string()), long, "{name:?}");
    }

    // GNU tar unpacks the exact host names again.
    if have_gnu_tar() {
        let out = tmp.path().join("gnu");
        gnu_extract(&tar, &out).unwrap();
        for (i, name) in names.iter().enumerate() {
            let p = out.join("workspace").join(OsStr::from_bytes(name));
            assert_eq!(std::fs::read(&p).unwrap(), format!("file {i}").into_bytes());
        }
        let l = std::fs::read_link(out.join("workspace/latin1-link")).unwrap();
        assert_eq!(l.as_os_str().as_bytes(), b"caf\xe9.txt");
    }

    // So does kiln's own unpacking, and writing the unpacked tree again gives the same tar.
    let dir = tmp.path().join("kiln");
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
    let file = std::fs::File::open(store.path(&blob.digest)).unwrap();
    extract_layer(file, Compression::Gzip, &blob.diff_id, &dir).unwrap();
    let mut again = LayerContents::new();
    again.add_tree(&dir.join("workspace"), "workspace").unwrap();
    assert_eq!(layer_tar(&again), tar, "the round trip is byte-identical");
}

#[test]
fn w06_components_over_255_bytes_and_paths_over_4k_are_pax_paths() {
    // No host file system holds these, but `add_file` and `LayerWriter` can be given them.
    let component = "c".repeat(300);
    let deep = (0..300)
        .map(|i| format!("d{i:03}"))
        .collect::<Vec<_>>()
        .join("/");
    let mut c = LayerContents::new();
    c.add_file(&format!("opt/{component}/file"), b"x".to_vec(), 0o644, None);
    c.add_file(&format!("{deep}/leaf"), b"y".to_vec(), 0o644, None);
    c.add_symlink("opt/link", &format!("{component}/file"));
    let tar = layer_tar(&c);
    validate_tar(tar.as_slice(), LayerOrder::Sorted).unwrap();
    let seen = assert_readers_agree(&tar);
    let names: Vec<Vec<u8>> = seen.iter().map(|e| e.name.clone()).collect();
    assert!(names.contains(&format!("opt/{component}/file").into_bytes()));
    assert!(names.contains(&format!("{deep}/leaf").into_bytes()));
    let link = seen.iter().find(|e| e.name == b"opt/link").unwrap();
    assert_eq!(link.link, format!("{component}/file").into_bytes());
}

/// Tars whose pax and ustar headers disagree, as in CVE-2025-62518 (pax `size` ignored
/// when the ustar size is 0) and its mirror image.
/// A fixture: its name, the tar, and the entries (name, size) Go and GNU tar see in it.
type Fixture = (&'static str, Vec<u8>, Vec<(&'static str, u64)>);

fn differential_fixtures() -> Vec<Fixture> {
    // 1. pax size 1024, ustar size 0: the content is a whole smuggled entry, which a
    //    reader that trusts the ustar size would list as a file of its own.
    let mut smuggled = ustar(b"smuggled.txt", b'0', 5, b"", 0o644).to_vec();
    smuggled.extend(block(b"evil!"));
    let mut one = pax(&[("path", &b"pax-wins.txt"[..]), ("size", &b"1024"[..])]);
    one.extend_from_slice(&ustar(b"ustar-name.txt", b'0', 0, b"", 0o644));
    one.extend_from_slice(&smuggled);
    one.extend_from_slice(&ustar(b"after.txt", b'0', 3, b"", 0o644));
    one.extend(block(b"abc"));
    one.extend_from_slice(&[0u8; 1024]);

    // 2. pax size 0, ustar size 1024: a reader that trusts the ustar size skips the next
    //    entry as if it were content.
    let mut two = pax(&[("size", &b"0"[..])]);
    two.extend_from_slice(&ustar(b"empty.txt", b'0', 1024, b"", 0o644));
    two.extend_from_slice(&ustar(b"hidden.txt", b'0', 3, b"", 0o644));
    two.extend(block(b"abc"));
    two.extend_from_slice(&ustar(b"last.txt", b'0', 2, b"", 0o644));
    two.extend(block(b"ok"));
    two.extend_from_slice(&[0u8; 1024]);

    vec![
        (
            "pax size over ustar 0",
            one,
            vec![("pax-wins.txt", 1024), ("after.txt", 3)],
        ),
        (
            "pax size 0 under ustar 1024",
            two,
            vec![("empty.txt", 0), ("hidden.txt", 3), ("last.txt", 2)],
        ),
    ]
}

#[test]
fn w06_on_pax_and_ustar_disagreeing_kiln_reads_what_go_and_gnu_tar_read() {
    let tmp = tempfile::tempdir().unwrap();
    for (what, tar, expected) in differential_fixtures() {
        let expected: Vec<(Vec<u8>, u64)> = expected
            .into_iter()
            .map(|(n, s)| (n.as_bytes().to_vec(), s))
            .collect();
        let ours: Vec<(Vec<u8>, u64)> = kiln_reader(&tar)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.size))
            .collect();
        assert_eq!(ours, expected, "{what}: kiln's reader");
        match go_reader(&tar) {
            Some(go) => {
                let go: Vec<(Vec<u8>, u64)> =
                    go.unwrap().into_iter().map(|e| (e.name, e.size)).collect();
                assert_eq!(go, expected, "{what}: Go's reader");
            }
            None => eprintln!("note: Go's reader not checked"),
        }
        if have_gnu_tar() {
            assert_eq!(gnu_list(&tar).unwrap(), expected, "{what}: GNU tar");
        }
        // Unpacking (cache restore) reads the tar the same way.
        let dir = tmp.path().join(what.replace(' ', "-"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let blob = gz.finish().unwrap();
        extract_layer(blob.as_slice(), Compression::Gzip, &Digest::of(&tar), &dir).unwrap();
        let mut unpacked: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        unpacked.sort();
        let mut names: Vec<String> = expected
            .iter()
            .map(|(n, _)| String::from_utf8(n.clone()).unwrap())
            .collect();
        names.sort();
        assert_eq!(unpacked, names, "{what}: unpacked");
        assert!(!dir.join("smuggled.txt").exists() && !dir.join("ustar-name.txt").exists());
    }
}
