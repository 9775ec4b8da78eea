//! W12: unpacking untrusted layers (cache restore) never writes outside the destination,
//! on fixtures in the style of containerd's `TestBreakouts`: writes through `..`, absolute
//! paths, symlinks to `/` or out of the root and writes through them, hardlinks out,
//! chmod through a symlink, a symlink then a directory of the same name, `sym -> ..` then
//! `sym/x/y`. Legitimate links (absolute, or with more `..` than they are deep, like the
//! `cacerts` link of JDK packages) are kept verbatim.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::*;
use kiln_layer::{Compression, ExtractError, extract_layer};
use kiln_oci::Digest;

/// Everything below `dir`, not following links: path → (kind, mode, content or target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        let (kind, body) = if meta.file_type().is_symlink() {
            let t = std::fs::read_link(e.path()).unwrap();
            ('l', t.into_os_string().into_encoded_bytes())
        } else if meta.is_dir() {
            ('d', Vec::new())
        } else {
            ('f', std::fs::read(e.path()).unwrap())
        };
        let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
        out.insert(rel, (kind, meta.mode() & 0o7777, body));
    }
    out
}

fn gz(tar: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(tar).unwrap();
    e.finish().unwrap()
}

/// A case's sandbox: `case/` holds `outside/` (a canary and a victim file) and the
/// destination `case/root`, which does not exist yet.
struct Sandbox {
    case: PathBuf,
    outside: PathBuf,
    root: PathBuf,
}

impl Sandbox {
    fn new(parent: &Path, name: &str) -> Self {
        let case = parent.join(name);
        let outside = case.join("outside");
        std::fs::create_dir_all(outside.join("etc")).unwrap();
        std::fs::write(outside.join("etc/passwd"), b"root:x:0:0:canary\n").unwrap();
        std::fs::set_permissions(
            outside.join("etc/passwd"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(outside.join("victim"), b"untouched").unwrap();
        std::fs::set_permissions(
            outside.join("victim"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        Self {
            root: case.join("root"),
            case,
            outside,
        }
    }
}

/// The breakout fixtures: each tries to create, change or link something outside the
/// destination. `{o}` stands for the absolute path of `outside`.
fn breakouts() -> Vec<(&'static str, Vec<Raw<'static>>)> {
    vec![
        ("dotdot file", vec![file("../outside/new", b"x")]),
        (
            "dotdot nested",
            vec![dir("a"), file("a/../../outside/new", b"x")],
        ),
        (
            "dotdot overwrite",
            vec![file("../outside/victim", b"owned")],
        ),
        ("absolute file", vec![file("{o}/new", b"x")]),
        ("absolute dir", vec![dir("{o}/newdir")]),
        (
            "symlink absolute then write through",
            vec![
                symlink("localetc", "{o}/etc"),
                file("localetc/unexpected", b"x"),
            ],
        ),
        (
            "symlink to root then write through",
            vec![symlink("rootfs", "/"), file("rootfs{o}/new", b"x")],
        ),
        (
            "symlink up and out then write through",
            vec![
                symlink(
                    "localetc",
                    "../../../../../../../../../../../../../../../../..{o}/etc",
                ),
                file("localetc/unexpected", b"x"),
            ],
        ),
        (
            "symlink relative out then write through",
            vec![symlink("out", "../outside"), file("out/new", b"x")],
        ),
        (
            "symlink chain then write through",
            vec![
                symlink("one", "two"),
                symlink("two", "../outside"),
                file("one/new", b"x"),
            ],
        ),
        (
            "symlink to dot then dotdot",
            vec![
                symlink("here", "."),
                symlink("up", "here/.."),
                file("up/outside/new", b"x"),
            ],
        ),
        (
            "symlink dotdot then nested write",
            vec![symlink("sym", ".."), file("sym/x/y", b"x")],
        ),
        (
            "symlink then same name dir",
            vec![symlink("d", "../outside"), dir("d"), file("d/new", b"x")],
        ),
        (
            "symlink replaced by file over victim",
            vec![symlink("v", "../outside/victim"), file("v", b"owned")],
        ),
        (
            "chmod through symlink (file entry)",
            vec![
                symlink("p", "../outside/etc/passwd"),
                Raw {
                    mode: 0o777,
                    ..file("p", b"")
                },
            ],
        ),
        (
            "chmod through symlink (dir entry)",
            vec![
                symlink("e", "../outside/etc"),
                Raw {
                    mode: 0o777,
                    ..dir("e")
                },
            ],
        ),
        (
            "hardlink relative out",
            vec![hardlink("localpasswd", "../outside/etc/passwd")],
        ),
        (
            "hardlink absolute",
            vec![hardlink("localpasswd", "{o}/etc/passwd")],
        ),
        (
            "hardlink down and out",
            vec![
                symlink("localetc", "../outside/etc"),
                hardlink("p", "localetc/passwd"),
            ],
        ),
        (
            "hardlink to a symlink out",
            vec![
                symlink("passwdlink", "../outside/etc/passwd"),
                hardlink("p", "passwdlink"),
            ],
        ),
        (
            "hardlink to a symlink out, then chmod",
            vec![
                symlink("passwdlink", "{o}/etc/passwd"),
                hardlink("p", "passwdlink"),
                Raw {
                    mode: 0o777,
                    ..file("p", b"")
                },
            ],
        ),
        (
            "hardlink then write through it",
            vec![file("f", b"x"), hardlink("h", "f"), file("h", b"owned")],
        ),
        ("whiteout of a parent", vec![file("../.wh.outside", b"")]),
        ("whiteout name", vec![dir("a"), file("a/.wh.b", b"")]),
        (
            "opaque whiteout",
            vec![dir("a"), file("a/.wh..wh..opq", b"")],
        ),
        (
            "whiteout through a symlink",
            vec![
                symlink("localetc", "../outside/etc"),
                file("localetc/.wh.passwd", b""),
            ],
        ),
        (
            "device node",
            vec![Raw {
                kind: b'3',
                ..file("null", b"")
            }],
        ),
        (
            "fifo",
            vec![Raw {
                kind: b'6',
                ..file("fifo", b"")
            }],
        ),
    ]
}

#[test]
fn w12_breakout_fixtures_write_nothing_outside_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    for (what, entries) in breakouts() {
        let sandbox = Sandbox::new(tmp.path(), &what.replace(' ', "-"));
        let o = sandbox.outside.display().to_string();
        let names: Vec<String> = entries.iter().map(|e| e.name.replace("{o}", &o)).collect();
        let links: Vec<String> = entries.iter().map(|e| e.link.replace("{o}", &o)).collect();
        let entries: Vec<Raw<'_>> = entries
            .iter()
            .zip(names.iter().zip(&links))
            .map(|(e, (name, link))| Raw {
                name,
                link,
                kind: e.kind,
                mode: e.mode,
                data: e.data,
            })
            .collect();
        let tar = raw_tar(&entries);
        let before = snapshot(&sandbox.case);
        let result = extract_layer(
            gz(&tar).as_slice(),
            Compression::Gzip,
            &Digest::of(&tar),
            &sandbox.root,
        );
        let err = result.expect_err(what);
        assert!(matches!(err, ExtractError::Refused { .. }), "{what}: {err}");
        let message = err.to_string();
        assert!(message.contains("refusing entry `"), "{what}: {message}");
        assert!(
            !sandbox.root.exists(),
            "{what}: the half-written root is removed"
        );
        assert_eq!(
            snapshot(&sandbox.case),
            before,
            "{what}: nothing outside changed"
        );
        let parent = sandbox.case.parent().unwrap();
        for stray in ["new", "x", "outside", "etc", "newdir"] {
            assert!(
                !parent.join(stray).exists(),
                "{what}: `{stray}` next to the case"
            );
        }
    }
}

#[test]
fn w12_legitimate_links_are_kept_verbatim_and_nothing_outside_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(tmp.path(), "legit");
    let cacerts = "usr/lib/jvm/java-17-amazon-corretto/lib/security/cacerts";
    let over_deep = "../../../../../../../../../../etc/pki/java/cacerts";
    let tar = raw_tar(&[
        dir("usr"),
        dir("usr/lib"),
        dir("usr/lib/jvm"),
        dir("usr/lib/jvm/java-17-amazon-corretto"),
        dir("usr/lib/jvm/java-17-amazon-corretto/lib"),
        dir("usr/lib/jvm/java-17-amazon-corretto/lib/security"),
        symlink(cacerts, over_deep),
        symlink("usr/lib/jvm/default", "java-17-amazon-corretto"),
        symlink("etc-link", "/etc"),
        symlink("self", "self"),
        file(
            "usr/lib/jvm/java-17-amazon-corretto/release",
            b"JAVA_VERSION=17\n",
        ),
        hardlink(
            "usr/lib/jvm/release-again",
            "usr/lib/jvm/java-17-amazon-corretto/release",
        ),
    ]);
    let before = snapshot(&sandbox.outside);
    extract_layer(
        gz(&tar).as_slice(),
        Compression::Gzip,
        &Digest::of(&tar),
        &sandbox.root,
    )
    .unwrap();
    let link = |p: &str| std::fs::read_link(sandbox.root.join(p)).unwrap();
    assert_eq!(link(cacerts), Path::new(over_deep));
    assert_eq!(
        link("usr/lib/jvm/default"),
        Path::new("java-17-amazon-corretto")
    );
    assert_eq!(link("etc-link"), Path::new("/etc"));
    assert_eq!(link("self"), Path::new("self"));
    let ino = |p: &str| std::fs::metadata(sandbox.root.join(p)).unwrap().ino();
    assert_eq!(
        ino("usr/lib/jvm/release-again"),
        ino("usr/lib/jvm/java-17-amazon-corretto/release")
    );
    assert_eq!(snapshot(&sandbox.outside), before);
}
