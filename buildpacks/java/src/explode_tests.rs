//! Tests of [`crate::explode`]: hostile jars built in memory must be refused, naming the jar
//! and the entry, before anything is written; a layered Spring Boot jar lands layer by layer.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

use crate::explode::{DEFAULT_LAYER, ExplodedLayer, Limits, explode};
use crate::jar::JarError;
use crate::testzip::{jar_file, spring_boot_jar, write_jar, zip_bytes};

fn layer_dirs(root: &Path) -> impl Fn(&str) -> PathBuf + '_ {
    move |layer| root.join("layers").join(layer)
}

/// Explodes a jar of `entries` and returns the error, asserting nothing was written.
fn refused(entries: &[(&str, &[u8])], limits: &Limits) -> String {
    refused_bytes(&zip_bytes(entries), limits)
}

fn refused_bytes(bytes: &[u8], limits: &Limits) -> String {
    let dir = tempfile::tempdir().unwrap();
    let jar = write_jar(dir.path(), "app.jar", bytes);
    let err = explode(&jar, layer_dirs(dir.path()), limits).unwrap_err();
    assert!(matches!(err, JarError::Refused { .. }), "{err:?}");
    assert!(!dir.path().join("layers").exists(), "wrote before refusing");
    assert!(!dir.path().join("evil").exists());
    err.to_string()
}

#[test]
fn spring_boot_jar_lands_layer_by_layer() {
    let dir = tempfile::tempdir().unwrap();
    let jar = jar_file(dir.path(), "demo.jar", &spring_boot_jar());
    let got = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap();
    let layers = dir.path().join("layers");
    let names: Vec<_> = got.iter().map(|l| l.name.as_str()).collect();
    // Index order; the empty `snapshot-dependencies` layer received nothing.
    assert_eq!(names, ["dependencies", "spring-boot-loader", "application"]);
    assert_eq!(
        got[0],
        ExplodedLayer {
            name: "dependencies".into(),
            dir: layers.join("dependencies")
        }
    );
    let read = |p: &str| std::fs::read(layers.join(p)).unwrap();
    assert_eq!(
        read("dependencies/BOOT-INF/lib/spring-core-6.1.0.jar"),
        b"core"
    );
    assert_eq!(
        read("spring-boot-loader/org/springframework/boot/loader/launch/JarLauncher.class"),
        b"\xca\xfe\xba\xbe"
    );
    assert_eq!(
        read("application/BOOT-INF/classes/application.properties"),
        b"server.port=8080\n"
    );
    assert!(layers.join("application/META-INF/MANIFEST.MF").is_file());
    assert!(layers.join("application/BOOT-INF/layers.idx").is_file());
    assert!(!layers.join("application/BOOT-INF/lib").exists());
    assert!(!layers.join("dependencies/BOOT-INF/classes").exists());
    let mode = |p: &str| {
        std::fs::metadata(layers.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(
        mode("dependencies/BOOT-INF/lib/spring-core-6.1.0.jar"),
        0o644
    );
    assert_eq!(mode("dependencies/BOOT-INF/lib"), 0o755);
    assert_eq!(mode("application/BOOT-INF/classes/com"), 0o755);
}

#[test]
fn jar_without_index_goes_to_the_default_layer_with_fixed_modes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let exec = SimpleFileOptions::default().unix_permissions(0o777);
    w.start_file("bin/run.sh", exec).unwrap();
    w.write_all(b"#!/bin/sh\n").unwrap();
    let jar = write_jar(dir.path(), "plain.jar", &w.finish().unwrap().into_inner());
    let got = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name, DEFAULT_LAYER);
    let meta = std::fs::metadata(got[0].dir.join("bin/run.sh")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
}

#[test]
fn b05_zip_slip_and_absolute_names_are_refused() {
    let err = refused(
        &[("ok.txt", b"x"), ("../evil", b"pwned")],
        &Limits::default(),
    );
    assert!(
        err.contains("app.jar") && err.contains("`../evil`") && err.contains(".."),
        "{err}"
    );
    let err = refused(&[("a/../../evil", b"x")], &Limits::default());
    assert!(err.contains("a/../../evil"), "{err}");
    let err = refused(&[("/abs/evil", b"x")], &Limits::default());
    assert!(
        err.contains("`/abs/evil`") && err.contains("absolute"),
        "{err}"
    );
    let err = refused(&[("C:/evil", b"x")], &Limits::default());
    assert!(err.contains("drive letter"), "{err}");
    let err = refused(&[("a\\..\\evil", b"x")], &Limits::default());
    assert!(err.contains("backslash"), "{err}");
    let err = refused(&[("a//b", b"x")], &Limits::default());
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn b05_symlink_entries_are_refused() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink("lib/link", "/etc", SimpleFileOptions::default())
        .unwrap();
    let err = refused_bytes(&w.finish().unwrap().into_inner(), &Limits::default());
    assert!(
        err.contains("`lib/link`") && err.contains("not a file or directory"),
        "{err}"
    );
}

#[test]
fn b05_duplicate_names_are_refused() {
    // The zip writer refuses duplicates, so rename `b.txt` to `a.txt` in the raw bytes.
    let mut bytes = zip_bytes(&[("a.txt", b"one"), ("b.txt", b"two")]);
    for i in 0..bytes.len() - 5 {
        if &bytes[i..i + 5] == b"b.txt" {
            bytes[i] = b'a';
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let jar = write_jar(dir.path(), "dup.jar", &bytes);
    let err = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JarError::Refused { .. }), "{err:?}");
    assert!(
        text.contains("dup.jar") && text.contains("`a.txt`") && text.contains("twice"),
        "{text}"
    );
    assert!(!dir.path().join("layers").exists());
}

#[test]
fn b05_zip_bomb_is_refused_by_ratio_and_by_total() {
    let zeros = vec![0u8; 50 << 20];
    let bomb = zip_bytes(&[("bomb.bin", &zeros)]);
    assert!(
        zeros.len() >= 1000 * bomb.len(),
        "a 42.zip-style ratio of at least 1000:1"
    );
    let err = refused_bytes(&bomb, &Limits::default());
    assert!(err.contains("`bomb.bin`") && err.contains("ratio"), "{err}");
    let no_ratio = Limits {
        max_ratio: u64::MAX,
        max_total_bytes: 10 << 20,
        ..Limits::default()
    };
    let err = refused_bytes(&bomb, &no_ratio);
    assert!(
        err.contains("`bomb.bin`") && err.contains("more than the limit"),
        "{err}"
    );
}

#[test]
fn b05_too_many_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let jar = jar_file(
        dir.path(),
        "many.jar",
        &[("a", b"1"), ("b", b"2"), ("c", b"3")],
    );
    let limits = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    let err = explode(&jar, layer_dirs(dir.path()), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            JarError::TooManyEntries {
                count: 3,
                max: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("many.jar"));
}

#[test]
fn entries_missing_from_the_index_are_refused() {
    let mut entries = spring_boot_jar();
    entries.push(("stray/file.txt", b"?"));
    let err = refused(&entries, &Limits::default());
    assert!(
        err.contains("`stray/file.txt`") && err.contains("layers.idx"),
        "{err}"
    );
}

#[test]
fn b05_existing_symlinks_at_the_destination_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = dir.path().join("layers").join(DEFAULT_LAYER);
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("conf")).unwrap();
    std::os::unix::fs::symlink(outside.join("x"), root.join("top.txt")).unwrap();
    let jar = jar_file(dir.path(), "app.jar", &[("conf/app.yml", b"a: 1")]);
    let err = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap_err();
    assert!(matches!(err, JarError::Write { .. }), "{err:?}");
    let jar = jar_file(dir.path(), "top.jar", &[("top.txt", b"t")]);
    let err = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("`top.txt`"), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// Sets the uncompressed size every local and central header of `bytes` records to `size`.
fn lie_about_sizes(bytes: &mut [u8], size: u32) {
    for i in 0..bytes.len().saturating_sub(30) {
        let at = match bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => i + 22,
            [0x50, 0x4b, 0x01, 0x02] => i + 24,
            _ => continue,
        };
        bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
    }
}

/// A bomb whose headers claim 1000 bytes (under every cap) for 50 MiB of zeros: extraction
/// stops one byte past the declared size, naming the entry, instead of writing 50 MiB.
#[test]
fn b05_a_bomb_with_lying_headers_stops_at_its_declared_size() {
    let zeros = vec![0u8; 50 << 20];
    let mut bomb = zip_bytes(&[("BOOT-INF/lib/x.jar", &zeros)]);
    lie_about_sizes(&mut bomb, 1000);
    let dir = tempfile::tempdir().unwrap();
    let jar = write_jar(dir.path(), "liar.jar", &bomb);
    let err = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JarError::Refused { .. }), "{err:?}");
    assert!(
        text.contains("liar.jar")
            && text.contains("`BOOT-INF/lib/x.jar`")
            && text.contains("more than the 1000 bytes its header declares"),
        "{text}"
    );
    let written = dir
        .path()
        .join("layers")
        .join(DEFAULT_LAYER)
        .join("BOOT-INF/lib/x.jar");
    let len = std::fs::metadata(&written).map_or(0, |m| m.len());
    assert!(len <= 1001, "{len} bytes written for a 1000-byte entry");
}

/// A layered Spring Boot jar smuggling `BOOT-INF/lib/../../../x` (which its index would
/// place in the `dependencies` layer) is refused before anything is written, naming it.
#[test]
fn b05_a_dot_dot_entry_under_boot_inf_lib_is_refused() {
    let mut entries = spring_boot_jar();
    entries.push(("BOOT-INF/lib/../../../x", b"owned"));
    let err = refused(&entries, &Limits::default());
    assert!(
        err.contains("`BOOT-INF/lib/../../../x`") && err.contains("`..` in the path"),
        "{err}"
    );
}

/// `layers.idx` naming a layer `../../x` or `/abs` is refused with its line; an index entry
/// `../../x` does not make the jar entry of that name acceptable.
#[test]
fn b05_hostile_layer_index_names_are_refused() {
    let manifest: &[u8] = b"Manifest-Version: 1.0\r\n";
    for (idx, line) in [
        ("- \"../../x\":\n  - \"BOOT-INF/\"\n", 1),
        (
            "- \"application\":\n  - \"BOOT-INF/\"\n- \"/abs\":\n  - \"x\"\n",
            3,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let jar = jar_file(
            dir.path(),
            "idx.jar",
            &[
                ("META-INF/MANIFEST.MF", manifest),
                ("BOOT-INF/layers.idx", idx.as_bytes()),
                ("BOOT-INF/classes/A.class", b"\xca\xfe"),
            ],
        );
        let err = explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, JarError::LayersIdx { line: l, .. } if l == line),
            "{err:?}"
        );
        assert!(err.to_string().contains("not a layer name"), "{err}");
        assert!(!dir.path().join("layers").exists());
    }
    let idx: &[u8] = b"- \"application\":\n  - \"../../x\"\n  - \"META-INF/\"\n  - \"BOOT-INF/\"\n";
    let err = refused(
        &[
            ("META-INF/MANIFEST.MF", manifest),
            ("BOOT-INF/layers.idx", idx),
            ("../../x", b"owned"),
        ],
        &Limits::default(),
    );
    assert!(err.contains("`../../x`"), "{err}");
}

/// A symlink entry (unix mode `S_IFLNK`) inside a layered jar's `BOOT-INF/lib` is refused
/// by name, before any file is written.
#[test]
fn b05_a_symlink_entry_in_a_layered_jar_is_refused() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    for (name, data) in spring_boot_jar() {
        if name.ends_with('/') {
            w.add_directory(name, opts).unwrap();
        } else {
            w.start_file(name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.add_symlink("BOOT-INF/lib/evil.jar", "/etc/shadow", opts)
        .unwrap();
    let err = refused_bytes(&w.finish().unwrap().into_inner(), &Limits::default());
    assert!(
        err.contains("`BOOT-INF/lib/evil.jar`") && err.contains("mode 120"),
        "{err}"
    );
}

/// A nested jar is copied as the bytes it is, never unpacked: a bomb inside
/// `BOOT-INF/lib/inner.jar` (42.zip's trick) lands compressed, at its own size.
#[test]
fn b05_nested_jars_are_not_unpacked() {
    let zeros = vec![0u8; 20 << 20];
    let inner = zip_bytes(&[("zeros.bin", &zeros)]);
    let mut entries = spring_boot_jar();
    entries.push(("BOOT-INF/lib/inner.jar", &inner));
    let dir = tempfile::tempdir().unwrap();
    let jar = jar_file(dir.path(), "outer.jar", &entries);
    explode(&jar, layer_dirs(dir.path()), &Limits::default()).unwrap();
    let landed = dir
        .path()
        .join("layers/dependencies/BOOT-INF/lib/inner.jar");
    assert_eq!(std::fs::read(landed).unwrap(), inner);
}
