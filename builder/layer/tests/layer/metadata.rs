//! W07: hostile host metadata (far-future and pre-1970 times, huge owner ids, setuid,
//! setgid and sticky bits, extended attributes such as `security.capability`) never
//! reaches a layer; special files are skipped with a warning; the same files with
//! ordinary metadata give the same digest.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use crate::common;
use crate::common::*;
use kiln_layer::{
    BlobStore, Compression, LayerBlob, LayerContents, Ownership, SkippedKind, TarPolicy,
    write_layer,
};

/// `vfs_cap_data` revision 2 granting `cap_net_bind_service`, effective.
const CAP_NET_BIND_SERVICE: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn set_time(p: &Path, t: std::time::SystemTime) {
    let f = std::fs::File::open(p).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// Sets what xattrs this process may set on `p`; returns the names set.
fn set_xattrs(p: &Path) -> Vec<&'static str> {
    let mut set = Vec::new();
    let attempts: [(&str, &[u8]); 2] = [
        ("security.capability", &CAP_NET_BIND_SERVICE),
        ("user.kiln.canary", b"KILN-CANARY-W07-xattr"),
    ];
    for (name, value) in attempts {
        match rustix::fs::setxattr(p, name, value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => set.push(name),
            Err(e) => eprintln!("note: cannot set `{name}` here ({e}); not checked"),
        }
    }
    set
}

fn tree(root: &Path) {
    common::write(root, "bin/app", b"\x7fELF app", 0o755);
    common::write(root, "bin/sudo-like", b"\x7fELF root me", 0o755);
    common::write(root, "etc/app.conf", b"key = value\n", 0o644);
    std::fs::create_dir_all(root.join("shared-tmp")).unwrap();
    common::write(root, "shared-tmp/keep", b"", 0o644);
}

fn layer(root: &Path, store: &BlobStore) -> (LayerContents, LayerBlob) {
    let mut c = LayerContents::new();
    c.add_tree(root, "workspace").unwrap();
    let blob = write_layer(&c, &policy(), Compression::Gzip, store).unwrap();
    (c, blob)
}

#[test]
fn w07_hostile_host_metadata_is_normalized_and_special_files_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    tree(&plain);
    let hostile = tmp.path().join("hostile");
    tree(&hostile);
    let perms = |p: &str, mode: u32| {
        std::fs::set_permissions(hostile.join(p), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    perms("bin/sudo-like", 0o6755);
    perms("etc/app.conf", 0o4600);
    perms("shared-tmp", 0o1777);
    set_time(
        &hostile.join("bin/app"),
        UNIX_EPOCH + Duration::from_secs(13_569_465_600),
    );
    set_time(
        &hostile.join("etc/app.conf"),
        UNIX_EPOCH - Duration::from_secs(1_000_000_000),
    );
    set_time(
        &hostile.join("shared-tmp"),
        UNIX_EPOCH - Duration::from_secs(1),
    );
    let xattrs = set_xattrs(&hostile.join("bin/sudo-like"));
    let is_root = rustix::process::geteuid().is_root();
    if is_root {
        // 4294967295 is chown's "leave unchanged"; the largest settable id is one less.
        let owner = Some(rustix::process::Uid::from_raw(4_294_967_294));
        let group = Some(rustix::process::Gid::from_raw(4_294_967_294));
        rustix::fs::chown(hostile.join("bin/app"), owner, group).unwrap();
    } else {
        eprintln!("note: not root: host owner ids not varied");
    }
    // Special files: skipped with a warning each.
    let fifo = hostile.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let sock = hostile.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let dev = hostile.join("null-dev");
    let has_dev = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_dev {
        eprintln!("note: cannot mknod here: device nodes not checked");
    }

    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let (c, blob) = layer(&hostile, &store);
    let (_, plain_blob) = layer(&plain, &store);
    assert_eq!(
        blob, plain_blob,
        "hostile metadata changes nothing in the layer"
    );
    let (_, again) = layer(&hostile, &store);
    assert_eq!(blob, again, "two builds, one digest");

    let mut expected = vec![(fifo, SkippedKind::Fifo)];
    if has_dev {
        expected.insert(0, (dev, SkippedKind::CharDevice));
    }
    expected.push((sock, SkippedKind::Socket));
    let skipped: Vec<_> = c
        .warnings()
        .iter()
        .map(|w| (w.path.clone(), w.kind))
        .collect();
    assert_eq!(skipped, expected);
    for w in c.warnings() {
        let message = w.to_string();
        assert!(
            message.contains(&format!("`{}`", w.path.display())),
            "{message}"
        );
    }

    let tar = tar_bytes(&store, &blob);
    let es = entries(&tar);
    for e in &es {
        assert_eq!(e.mtime, policy().mtime, "{}", e.path);
        assert_eq!((e.uid, e.gid), (1000, 1000), "{}", e.path);
        assert_eq!(
            e.mode & 0o7000,
            0,
            "{}: no setuid, setgid or sticky bit",
            e.path
        );
        assert!(
            e.pax_keys.iter().all(|k| k == "path"),
            "{}: {:?}",
            e.path,
            e.pax_keys
        );
    }
    assert_eq!(find(&es, "workspace/bin/sudo-like").mode, 0o755);
    assert_eq!(find(&es, "workspace/etc/app.conf").mode, 0o644);
    assert_eq!(find(&es, "workspace/shared-tmp/").mode, 0o755);
    for name in &xattrs {
        assert!(
            !tar.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name}"
        );
    }
    assert!(
        !tar.windows(9).any(|w| w == b"SCHILY.xa"),
        "no xattr records"
    );
    let paths: Vec<&str> = es.iter().map(|e| e.path.as_str()).collect();
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("pipe") || p.contains("sock") || p.contains("dev"))
    );
}

/// W07: ids and times that do not fit ustar, given by policy or explicitly (uid
/// 4294967295, times past 2242 in octal), go into pax records every reader agrees on.
#[test]
fn w07_huge_ids_and_times_round_trip_through_three_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path()).unwrap();
    let policy = TarPolicy {
        mtime: 9_000_000_000,
        owner: Ownership::new(4_294_967_295, 4_294_967_295),
    };
    let mut c = LayerContents::new();
    c.add_file("etc/a", b"a".to_vec(), 0o644, None);
    c.add_file(
        "etc/b",
        b"b".to_vec(),
        0o644,
        Some(Ownership::new(2_097_152, 7)),
    );
    let blob = write_layer(&c, &policy, Compression::Gzip, &store).unwrap();
    let tar = tar_bytes(&store, &blob);
    let ours = kiln_reader(&tar).unwrap();
    let ids: Vec<(u64, u64, i64)> = ours.iter().map(|e| (e.uid, e.gid, e.mtime)).collect();
    let big = 4_294_967_295;
    assert_eq!(
        ids,
        [
            (big, big, 9_000_000_000),
            (big, big, 9_000_000_000),
            (2_097_152, 7, 9_000_000_000)
        ]
    );
    if let Some(go) = go_reader(&tar) {
        assert_eq!(go.unwrap(), ours);
    }
    if have_gnu_tar() {
        gnu_list(&tar).unwrap();
    }
}
