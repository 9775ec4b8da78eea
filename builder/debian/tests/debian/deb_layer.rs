//! Good `.deb` files become layers: xz, zstd, gzip and uncompressed data members, merged-usr
//! remapping, owners and modes kept, `status.d` written, digests reproducible.

use std::path::Path;

use crate::deb_fixture::*;
use kiln_debian::deb::{
    DebError, PathTracker, merged_usr_links, read_control, write_merged_usr_layer,
    write_packages_layer,
};
use kiln_layer::{BlobStore, Compression};

const MD5SUMS: &str = "d41d8cd98f00b204e9800998ecf8427e  usr/bin/hello\n";

fn hello(data: Comp) -> Deb {
    let long = format!("./usr/share/doc/hello/{}/README", "deep".repeat(30));
    let mut su = item("./usr/bin/hello-su", Body::File(b"suid".to_vec()), 0o4755);
    su.gid = 0;
    let mut conf = file("./etc/hello.conf", b"greeting = hi\n");
    conf.uid = 0;
    conf.gid = 42;
    let mut deb = Deb::new(
        "hello",
        vec![
            dir("./"),
            dir("./bin/"),
            file("./bin/hello-static", b"\x7fELF static"),
            symlink("./bin/hi", "hello-static"),
            dir("./etc/"),
            conf,
            dir("./lib/"),
            dir("./lib/x86_64-linux-gnu/"),
            file("./lib/x86_64-linux-gnu/libhello.so.1.0", b"\x7fELF lib"),
            symlink("./lib/x86_64-linux-gnu/libhello.so.1", "libhello.so.1.0"),
            symlink("./sbin/hello-admin", "../usr/bin/hello"),
            dir("./usr/"),
            dir("./usr/bin/"),
            item(
                "./usr/bin/hello",
                Body::File(b"#!/bin/sh\necho hello\n".to_vec()),
                0o755,
            ),
            hardlink("./usr/bin/hello-again", "./usr/bin/hello"),
            su,
            dir("./usr/share/"),
            dir("./usr/share/doc/"),
            dir("./usr/share/doc/hello/"),
            file(&long, b"long names survive"),
        ],
    );
    deb.data = data;
    deb.md5sums = Some(MD5SUMS.to_string());
    deb
}

#[test]
fn every_data_compression_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for (i, comp) in [Comp::Xz, Comp::Zst, Comp::Gz, Comp::None]
        .into_iter()
        .enumerate()
    {
        let dir = tmp.path().join(format!("{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut deb = hello(comp);
        deb.control = [Comp::Xz, Comp::Zst, Comp::Gz, Comp::None][i];
        let store = BlobStore::open(dir.join("store")).unwrap();
        let mut seen = PathTracker::new();
        let blob = write_packages_layer(
            &[deb.write(&dir)],
            &mut seen,
            &rules_keeping(&["usr/bin/hello-su"]),
            &policy(),
            Compression::Gzip,
            &store,
        )
        .unwrap()
        .blob;
        check_hello_layer(&read_layer(&store, &blob), &deb);
        assert_eq!(seen.owner("usr/bin/hello"), Some("hello"));
        assert_eq!(
            seen.owner("var/lib/dpkg/status.d/hello"),
            Some("hello (status.d)")
        );
        digests.push(blob.digest);
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "the member compression does not change the layer: {digests:?}"
    );
}

fn check_hello_layer(es: &[LayerEntry], deb: &Deb) {
    let paths: Vec<&str> = es.iter().map(|e| e.path.as_str()).collect();
    for e in es {
        assert_eq!(e.mtime, policy().mtime, "{}", e.path);
        assert!(e.uname.is_empty(), "{}", e.path);
        assert!(
            !e.path.starts_with("./") && !e.path.starts_with('/'),
            "{}",
            e.path
        );
        for alias in ["bin/", "sbin/", "lib/"] {
            assert!(!e.path.starts_with(alias), "not remapped: {}", e.path);
        }
    }
    // Merged-usr: `./bin/...` lands in `usr/bin`, parents are written before children.
    let at = |p: &str| {
        paths
            .iter()
            .position(|x| *x == p)
            .unwrap_or_else(|| panic!("{p} in {paths:?}"))
    };
    assert!(at("usr/") < at("usr/bin/") && at("usr/bin/") < at("usr/bin/hello-static"));
    assert_eq!(find(es, "usr/bin/hello-static").data, b"\x7fELF static");
    assert_eq!(find(es, "usr/bin/hi").link.as_deref(), Some("hello-static"));
    assert_eq!(
        find(es, "usr/lib/x86_64-linux-gnu/libhello.so.1")
            .link
            .as_deref(),
        Some("libhello.so.1.0")
    );
    assert_eq!(
        find(es, "usr/sbin/hello-admin").link.as_deref(),
        Some("/usr/bin/hello"),
        "a relative target leaving /sbin is made absolute"
    );
    let hello = find(es, "usr/bin/hello");
    assert_eq!((hello.mode, hello.uid, hello.gid), (0o755, 0, 0));
    let again = find(es, "usr/bin/hello-again");
    assert_eq!(again.kind, tar::EntryType::Link);
    assert_eq!(again.link.as_deref(), Some("usr/bin/hello"));
    assert_eq!(find(es, "usr/bin/hello-su").mode, 0o4755, "setuid kept");
    let conf = find(es, "etc/hello.conf");
    assert_eq!(
        (conf.uid, conf.gid, conf.mode),
        (0, 42, 0o644),
        "owner from the package"
    );
    let long = format!("usr/share/doc/hello/{}/README", "deep".repeat(30));
    assert_eq!(find(es, &long).data, b"long names survive");

    let status = String::from_utf8(find(es, "var/lib/dpkg/status.d/hello").data.clone()).unwrap();
    assert!(
        status.starts_with("Package: hello\nStatus: install ok installed\nSource: hello-src\n"),
        "{status}"
    );
    for field in [
        "Version: 1.0-1\n",
        "Architecture: amd64\n",
        "Installed-Size: 64\n",
        "Depends: libc6 (>= 2.36)\n",
        "Maintainer: Test",
    ] {
        assert!(status.contains(field), "{field} in {status}");
    }
    assert!(status.ends_with(" Second paragraph.\n"), "{status}");
    assert_eq!(status.matches("Status:").count(), 1);
    assert_eq!(
        find(es, "var/lib/dpkg/status.d/hello.md5sums").data,
        MD5SUMS.as_bytes()
    );
    assert_eq!(find(es, "var/lib/dpkg/status.d/").mode, 0o755);
    assert!(deb.md5sums.is_some());
    assert!(
        !paths.iter().any(|p| p.contains("postinst")),
        "maintainer scripts never ship"
    );
}

fn build_twice(root: &Path, compression: Compression) -> kiln_layer::LayerBlob {
    std::fs::create_dir_all(root).unwrap();
    let store = BlobStore::open(root.join("store")).unwrap();
    let debs = [
        hello(Comp::Xz).write(root),
        Deb::new(
            "other",
            vec![
                dir("./"),
                dir("./usr/"),
                dir("./usr/bin/"),
                file("./usr/bin/other", b"o"),
            ],
        )
        .write(root),
    ];
    let mut seen = PathTracker::new();
    write_packages_layer(&debs, &mut seen, &rules(), &policy(), compression, &store)
        .unwrap()
        .blob
}

#[test]
fn the_same_packages_give_the_same_digest() {
    let tmp = tempfile::tempdir().unwrap();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let a = build_twice(&tmp.path().join(format!("a-{compression}")), compression);
        let b = build_twice(
            &tmp.path().join(format!("elsewhere/b-{compression}")),
            compression,
        );
        assert_eq!(a, b, "{compression}");
    }
}

#[test]
fn layers_do_not_depend_on_earlier_layers_but_conflicts_span_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let base = Deb::new(
        "base",
        vec![
            dir("./"),
            dir("./usr/"),
            dir("./usr/bin/"),
            file("./usr/bin/x", b"x"),
        ],
    );
    let top = Deb::new(
        "top",
        vec![
            dir("./"),
            dir("./usr/"),
            dir("./usr/bin/"),
            file("./usr/bin/y", b"y"),
        ],
    );
    let clash = Deb::new(
        "clash",
        vec![dir("./"), dir("./bin/"), file("./bin/x", b"!")],
    );
    let (base, top, clash) = (
        base.write(tmp.path()),
        top.write(tmp.path()),
        clash.write(tmp.path()),
    );

    let mut alone = PathTracker::new();
    let top_alone = write_packages_layer(
        std::slice::from_ref(&top),
        &mut alone,
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .unwrap()
    .blob;

    let mut image = PathTracker::new();
    let links =
        write_merged_usr_layer("amd64", &mut image, &policy(), Compression::Gzip, &store).unwrap();
    write_packages_layer(
        &[base],
        &mut image,
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .unwrap();
    let top_stacked = write_packages_layer(
        &[top],
        &mut image,
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .unwrap()
    .blob;
    assert_eq!(
        top_alone, top_stacked,
        "a package group gives the same layer in every image"
    );
    let es = read_layer(&store, &top_stacked);
    assert!(
        es.iter().any(|e| e.path == "usr/bin/"),
        "directories are repeated per layer"
    );

    let before = image.len();
    let err = write_packages_layer(
        &[clash],
        &mut image,
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DebError::Conflict { path, first, second } if path == "usr/bin/x" && first == "base" && second == "clash"),
        "{err:?}"
    );
    assert_eq!(image.len(), before, "a failed layer claims nothing");

    let es = read_layer(&store, &links);
    for l in merged_usr_links("amd64") {
        let e = find(&es, l.path);
        assert_eq!(e.kind, tar::EntryType::Symlink);
        assert_eq!(e.link.as_deref(), Some(l.target));
        assert_eq!(image.owner(l.path), Some("merged-usr"));
    }
    assert!(es.iter().any(|e| e.path == "usr/lib64/"));
}

#[test]
fn shipped_root_links_are_left_to_the_merged_usr_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let base_files = Deb::new(
        "base-files",
        vec![
            dir("./"),
            symlink("./bin", "usr/bin"),
            symlink("./lib64", "usr/lib64"),
            dir("./usr/"),
            dir("./usr/bin/"),
        ],
    );
    let mut image = PathTracker::new();
    write_merged_usr_layer("amd64", &mut image, &policy(), Compression::Zstd, &store).unwrap();
    let blob = write_packages_layer(
        &[base_files.write(tmp.path())],
        &mut image,
        &rules(),
        &policy(),
        Compression::Zstd,
        &store,
    )
    .unwrap()
    .blob;
    let es = read_layer(&store, &blob);
    assert!(
        !es.iter().any(|e| e.kind == tar::EntryType::Symlink),
        "{es:?}"
    );
}

#[test]
fn read_control_returns_the_stanza() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, path) = hello(Comp::Zst).write(tmp.path());
    let c = read_control(&path).unwrap();
    assert_eq!((c.package.as_str(), c.version.as_str()), ("hello", "1.0-1"));
    assert_eq!(c.installed_size, Some(64));
    assert_eq!(c.md5sums.as_deref(), Some(MD5SUMS.as_bytes()));
}

/// A real package from the apt cache, when the machine has one.
#[test]
fn a_real_deb_from_the_apt_cache_becomes_a_layer() {
    let Ok(dir) = std::fs::read_dir("/var/cache/apt/archives") else {
        return;
    };
    let mut debs: Vec<_> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).map_or(u64::MAX, |m| m.len()));
    let Some(path) = debs.first() else {
        return;
    };
    let c = read_control(path).unwrap();
    let info = kiln_debian::deb::DebInfo {
        name: c.package.clone(),
        version: c.version.clone(),
        installed_size: c.installed_size.unwrap(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path()).unwrap();
    let blob = write_packages_layer(
        &[(info, path.clone())],
        &mut PathTracker::new(),
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .unwrap()
    .blob;
    let es = read_layer(&store, &blob);
    find(&es, &format!("var/lib/dpkg/status.d/{}", c.package));
}
