//! Test helpers: jars built in memory with the `zip` writer, hostile ones included.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

/// Returns a deflated zip of `entries` (names ending in `/` become directories).
pub(crate) fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// Writes `bytes` as `dir/name` and returns its path.
pub(crate) fn write_jar(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes a jar of `entries` as `dir/name` and returns its path.
pub(crate) fn jar_file(dir: &Path, name: &str, entries: &[(&str, &[u8])]) -> PathBuf {
    write_jar(dir, name, &zip_bytes(entries))
}

/// Returns the entries of a small layered Spring Boot jar.
pub(crate) fn spring_boot_jar() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\r\n\
              Start-Class: com.example.DemoApplication\r\n\r\n",
        ),
        ("META-INF/", b""),
        ("org/springframework/boot/loader/launch/JarLauncher.class", b"\xca\xfe\xba\xbe"),
        ("BOOT-INF/", b""),
        ("BOOT-INF/lib/", b""),
        ("BOOT-INF/lib/spring-core-6.1.0.jar", b"core"),
        ("BOOT-INF/classes/com/example/DemoApplication.class", b"\xca\xfe"),
        ("BOOT-INF/classes/application.properties", b"server.port=8080\n"),
        (
            "BOOT-INF/layers.idx",
            b"- \"dependencies\":\n  - \"BOOT-INF/lib/\"\n- \"spring-boot-loader\":\n  - \"org/\"\n\
              - \"snapshot-dependencies\":\n- \"application\":\n  - \"BOOT-INF/classes/\"\n  - \"BOOT-INF/layers.idx\"\n  - \"META-INF/\"\n",
        ),
    ]
}
