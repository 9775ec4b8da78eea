//! Hostile `.deb` files: each is refused with an error naming the package or file and the
//! entry, and leaves no blob (and no temporary file) in the store.

use std::path::{Path, PathBuf};

use crate::deb_fixture::*;
use kiln_debian::deb::{DebError, DebInfo, PathTracker, write_packages_layer};
use kiln_layer::{BlobStore, Compression};

/// Writes `debs` into one layer of a fresh store and returns the error, after checking
/// that nothing was left in the store.
fn refuse(tmp: &Path, debs: &[(DebInfo, PathBuf)]) -> DebError {
    let store = BlobStore::open(tmp.join("store")).unwrap();
    let mut seen = PathTracker::new();
    let err = write_packages_layer(
        debs,
        &mut seen,
        &rules(),
        &policy(),
        Compression::Gzip,
        &store,
    )
    .expect_err("the layer must be refused");
    assert!(
        blob_dir_names(&store).is_empty(),
        "left behind: {:?}",
        blob_dir_names(&store)
    );
    assert!(seen.is_empty(), "a failed layer claims nothing");
    err
}

fn refuse_items(items: Vec<Item>) -> DebError {
    let tmp = tempfile::tempdir().unwrap();
    let deb = Deb::new("evil", items).write(tmp.path());
    refuse(tmp.path(), &[deb])
}

fn assert_unsafe(err: &DebError, path: &str, words: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, DebError::Unsafe { package, path: p, .. } if package == "evil" && p == path),
        "{err:?}"
    );
    assert!(msg.contains("`evil`") && msg.contains(".deb`"), "{msg}");
    assert!(msg.contains(words), "{msg}");
}

#[test]
fn dot_dot_paths_are_refused() {
    let err = refuse_items(vec![
        dir("./"),
        dir("./usr/"),
        file("./usr/../../etc/cron.d/x", b"* * * * * root sh\n"),
    ]);
    assert_unsafe(&err, "./usr/../../etc/cron.d/x", "`..`");
}

#[test]
fn absolute_paths_are_refused() {
    let err = refuse_items(vec![
        dir("./"),
        file("/etc/passwd", b"root::0:0::/:/bin/sh\n"),
    ]);
    assert_unsafe(&err, "/etc/passwd", "absolute");
}

#[test]
fn a_file_through_an_earlier_symlink_is_refused() {
    let err = refuse_items(vec![
        dir("./"),
        dir("./etc/"),
        symlink("./etc/alt", "/usr/lib"),
        file("./etc/alt/libc.so.6", b"trojan"),
    ]);
    let DebError::ThroughSymlink {
        package,
        path,
        link,
        link_owner,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (
            package.as_str(),
            path.as_str(),
            link.as_str(),
            link_owner.as_str()
        ),
        ("evil", "./etc/alt/libc.so.6", "etc/alt", "evil")
    );
    assert!(err.to_string().contains("symlink `/etc/alt`"), "{err}");
}

#[test]
fn whiteout_names_are_refused() {
    let err = refuse_items(vec![
        dir("./"),
        dir("./etc/"),
        file("./etc/.wh.shadow", b""),
    ]);
    assert_unsafe(&err, "./etc/.wh.shadow", "whiteout");
}

#[test]
fn device_nodes_are_refused() {
    let err = refuse_items(vec![
        dir("./"),
        dir("./dev/"),
        item("./dev/mem", Body::CharDevice, 0o666),
    ]);
    assert_unsafe(&err, "./dev/mem", "device node");
}

#[test]
fn fifos_are_refused() {
    let err = refuse_items(vec![dir("./"), item("./run-fifo", Body::Fifo, 0o644)]);
    assert_unsafe(&err, "./run-fifo", "FIFO");
}

#[test]
fn hardlinks_to_unseen_targets_are_refused() {
    let err = refuse_items(vec![
        dir("./"),
        dir("./usr/"),
        hardlink("./usr/shadow", "./etc/shadow"),
    ]);
    let DebError::Hardlink { path, target, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (path.as_str(), target.as_str()),
        ("./usr/shadow", "./etc/shadow")
    );
}

#[test]
fn a_truncated_ar_member_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (info, path) = Deb::new("cut", vec![dir("./"), file("./f", &[7; 5000])]).write(tmp.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    let err = refuse(tmp.path(), &[(info, path.clone())]);
    let DebError::Truncated { file, member, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((file, member.as_str()), (&path, "data.tar.xz"));
    assert!(err.to_string().contains("cut_1.0-1_amd64.deb"), "{err}");
}

#[test]
fn a_bad_ar_magic_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (info, path) = Deb::new("html", vec![dir("./")]).write(tmp.path());
    std::fs::write(&path, b"<html>404 Not Found</html>\n").unwrap();
    let err = refuse(tmp.path(), &[(info, path.clone())]);
    assert!(
        matches!(&err, DebError::BadMagic { file } if file == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("html_1.0-1_amd64.deb"), "{err}");
}

#[test]
fn an_expansion_bomb_is_refused_before_it_is_decompressed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut deb = Deb::new(
        "bomb",
        vec![dir("./"), item("./zeros", Body::Zeros(10_000_000), 0o644)],
    );
    deb.installed_size = 1;
    let (info, path) = deb.write(tmp.path());
    assert!(
        std::fs::metadata(&path).unwrap().len() < 100_000,
        "small on disk"
    );
    let err = refuse(tmp.path(), &[(info, path)]);
    let DebError::ExpansionBomb {
        package,
        installed_size,
        limit,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((package.as_str(), *installed_size), ("bomb", 1));
    assert!(*limit < 10_000_000);
    assert!(err.to_string().contains("Installed-Size"), "{err}");
}

#[test]
fn many_small_entries_count_against_installed_size_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = vec![dir("./"), dir("./d/")];
    items.extend((0..3000).map(|i| file(&format!("./d/{i}"), b"")));
    let mut deb = Deb::new("headers", items);
    deb.installed_size = 1;
    let err = refuse(tmp.path(), &[deb.write(tmp.path())]);
    assert!(matches!(err, DebError::ExpansionBomb { .. }), "{err:?}");
}

#[test]
fn two_packages_shipping_one_file_conflict_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Deb::new(
        "alpha",
        vec![
            dir("./"),
            dir("./usr/"),
            dir("./usr/bin/"),
            file("./usr/bin/tool", b"a"),
        ],
    );
    // `beta` ships it as `./bin/tool`: merged-usr makes it the same path.
    let b = Deb::new(
        "beta",
        vec![dir("./"), dir("./bin/"), file("./bin/tool", b"b")],
    );
    let debs = [a.write(tmp.path()), b.write(tmp.path())];
    let err = refuse(tmp.path(), &debs);
    let DebError::Conflict {
        path,
        first,
        second,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (path.as_str(), first.as_str(), second.as_str()),
        ("usr/bin/tool", "alpha", "beta")
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`alpha`") && msg.contains("`beta`") && msg.contains("/usr/bin/tool"),
        "{msg}"
    );
}

#[test]
fn a_package_that_is_not_the_locked_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut info, path) = Deb::new("curl", vec![dir("./")]).write(tmp.path());
    info.version = "9.9-9".into();
    let err = refuse(tmp.path(), &[(info, path)]);
    assert!(matches!(err, DebError::WrongPackage { .. }), "{err:?}");
    assert!(err.to_string().contains("curl 9.9-9"), "{err}");
}

#[test]
fn an_oversized_long_name_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("./{}", "a/".repeat(40_000));
    let deb = Deb::new("longname", vec![dir("./"), file(&name, b"x")]);
    let err = refuse(tmp.path(), &[deb.write(tmp.path())]);
    assert!(err.to_string().contains("metadata record"), "{err}");
}
