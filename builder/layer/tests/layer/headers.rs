//! Every header is normalized, read back with the `tar` crate: times, owners, names,
//! modes, link handling and long names.

use crate::common;
use crate::common::*;
use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, write_layer};
use tar::EntryType;

fn layer_entries(contents: &LayerContents) -> (Vec<u8>, Vec<ReadEntry>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path()).unwrap();
    let blob = write_layer(contents, &policy(), Compression::Gzip, &store).unwrap();
    let tar = tar_bytes(&store, &blob);
    let entries = entries(&tar);
    (tar, entries)
}

fn sample_layer() -> (Vec<u8>, Vec<ReadEntry>) {
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
        Some(Ownership::new(0, 0)),
    );
    layer_entries(&c)
}

#[test]
fn headers_are_normalized() {
    let (_, entries) = sample_layer();
    for e in &entries {
        assert_eq!(e.mtime, 1_700_000_000, "{}", e.path);
        assert!(e.uname.is_empty() && e.gname.is_empty(), "{}", e.path);
        assert!(
            e.devmajor.iter().all(|&b| b == b'0' || b == 0),
            "{}",
            e.path
        );
        for key in &e.pax_keys {
            assert!(
                ["path", "linkpath"].contains(&key.as_str()),
                "{}: pax {key}",
                e.path
            );
        }
    }
    let owner = |p: &str| {
        let e = find(&entries, p);
        (e.uid, e.gid)
    };
    assert_eq!(
        owner("workspace/bin/app"),
        (1000, 1000),
        "policy owner, not the host's"
    );
    assert_eq!(owner("workspace/"), (1000, 1000));
    assert_eq!(owner("tmp/"), (0, 0), "explicit owner");
    assert_eq!(owner("etc/passwd"), (0, 0));
    assert_eq!(
        owner("etc/"),
        (1000, 1000),
        "implicit parents get the policy owner"
    );

    let mode = |p: &str| find(&entries, p).mode;
    assert_eq!(mode("workspace/bin/app"), 0o755);
    assert_eq!(mode("workspace/bin/helper"), 0o755, "setuid stripped");
    assert_eq!(mode("workspace/etc/app.conf"), 0o644, "0600 on the host");
    assert_eq!(
        mode("workspace/share/doc/README"),
        0o644,
        "0664 on the host"
    );
    assert_eq!(mode("workspace/var/empty-dir/"), 0o755);
    assert_eq!(mode("tmp/"), 0o1777, "explicit modes are kept");
    assert_eq!(
        find(&entries, "workspace/bin/app").data,
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        find(&entries, "workspace/etc/empty").kind,
        EntryType::Regular
    );
}

#[test]
fn entries_are_sorted_with_parents_first_and_end_with_two_zero_blocks() {
    let (tar, entries) = sample_layer();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e.path.trim_end_matches('/'))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for p in &paths {
        if let Some((parent, _)) = p.rsplit_once('/') {
            let at = |x: &str| paths.iter().position(|q| *q == x).unwrap();
            assert!(at(parent) < at(p), "`{parent}` before `{p}`");
        }
    }
    assert_eq!(
        paths.len(),
        paths.iter().collect::<std::collections::HashSet<_>>().len()
    );
    assert_eq!(tar.len() % 512, 0);
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));
    assert!(
        tar[tar.len() - 1536..tar.len() - 1024]
            .iter()
            .any(|&b| b != 0),
        "exactly two"
    );
}

#[test]
fn symlinks_are_verbatim_and_not_followed() {
    let (_, entries) = sample_layer();
    let outside = find(&entries, "workspace/shadow");
    assert_eq!(outside.kind, EntryType::Symlink);
    assert_eq!(outside.link.as_deref(), Some("/etc/shadow"));
    assert!(
        outside.data.is_empty(),
        "the host's /etc/shadow was not read"
    );
    let relative = find(&entries, "workspace/bin/conf");
    assert_eq!(relative.kind, EntryType::Symlink);
    assert_eq!(relative.link.as_deref(), Some("../etc/app.conf"));
}

#[test]
fn w05_hardlinks_are_kept_as_links_to_the_first_path() {
    let (_, entries) = sample_layer();
    let first = find(&entries, "workspace/bin/app");
    assert_eq!(first.kind, EntryType::Regular);
    let link = find(&entries, "workspace/bin/app-again");
    assert_eq!(link.kind, EntryType::Link);
    assert_eq!(link.link.as_deref(), Some("workspace/bin/app"));
    assert!(link.data.is_empty());
}

#[test]
fn w05_hardlinks_point_backwards_in_layer_order() {
    // The walk visits `a/z` before `a-b`; the tar lists `a-b` first, so it must carry
    // the bytes.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    common::write(&root, "a/z", b"shared", 0o644);
    std::fs::hard_link(root.join("a/z"), root.join("a-b")).unwrap();
    let mut c = LayerContents::new();
    c.add_tree(&root, "").unwrap();
    let (_, entries) = layer_entries(&c);
    assert_eq!(find(&entries, "a-b").kind, EntryType::Regular);
    assert_eq!(find(&entries, "a-b").data, b"shared");
    assert_eq!(find(&entries, "a/z").link.as_deref(), Some("a-b"));
}

#[test]
fn long_names_and_link_targets_round_trip() {
    let (_, entries) = sample_layer();
    for len in [150, 300] {
        let path = format!("workspace/{}", long_path(len));
        assert!(path.len() > len);
        let e = find(&entries, &path);
        assert_eq!(e.pax_keys, ["path"]);
    }
    let target = long_path(200);
    let mut c = LayerContents::new();
    c.add_symlink("l", &target);
    c.add_file(&long_path(101), b"x".to_vec(), 0o644, None);
    let (_, entries) = layer_entries(&c);
    assert_eq!(find(&entries, "l").link.as_deref(), Some(target.as_str()));
    assert_eq!(find(&entries, &long_path(101)).data, b"x");
}
