//! JNI libraries (`*.so`) inside the app's jars: the one part of a Java app tied to a CPU.
//! A jar that carries them for some platforms only (netty's `linux-x86_64` classifier, say)
//! is named, with the architectures it has, so that an image for another platform can say
//! what it lacks.

use std::io::Read;
use std::path::Path;

use kiln_lifecycle::{LaunchLayer, NativeCode, elf_architecture, elf_file_architecture};
use walkdir::WalkDir;

/// Returns each jar (or loose `*.so`) of `layers` that holds native libraries, with the
/// architectures of those libraries, by its path in the image.
pub(crate) fn native_code(layers: &[LaunchLayer]) -> Vec<NativeCode> {
    let mut found = Vec::new();
    for layer in layers {
        for entry in WalkDir::new(&layer.dir).sort_by_file_name() {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name().to_string_lossy();
            let architectures = if name.ends_with(".jar") {
                jar_architectures(path)
            } else if is_shared_object(&name) {
                elf_file_architecture(path)
                    .map(|a| vec![a.to_owned()])
                    .unwrap_or_default()
            } else {
                continue;
            };
            if architectures.is_empty() {
                continue;
            }
            let rel = path.strip_prefix(&layer.dir).unwrap_or(path);
            let location = Path::new("/").join(&layer.prefix).join(rel);
            found.push(NativeCode {
                location: location.display().to_string(),
                architectures,
            });
        }
    }
    found
}

/// Whether a file name is a shared object's: `libx.so`, `libx.so.1`.
fn is_shared_object(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

/// Returns the architectures of the ELF shared objects inside the jar `path`, sorted and
/// once each; none for a jar without any (or one that cannot be read).
fn jar_architectures(path: &Path) -> Vec<String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut archive) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Vec::new();
    };
    let mut archs: Vec<String> = Vec::new();
    for i in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(i) else {
            continue;
        };
        let entry_name = entry
            .name()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if entry.is_dir() || !is_shared_object(&entry_name) {
            continue;
        }
        let mut head = [0u8; 20];
        if entry.read_exact(&mut head).is_err() {
            continue;
        }
        if let Some(arch) = elf_architecture(&head)
            && !archs.iter().any(|a| a == arch)
        {
            archs.push(arch.to_owned());
        }
    }
    archs.sort();
    archs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::zip_bytes;

    /// The first 20 bytes of a little-endian ELF file for `machine`.
    fn elf(machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF\x02\x01\x01".to_vec();
        h.resize(18, 0);
        h.extend(machine.to_le_bytes());
        h.extend([0; 12]);
        h
    }

    #[test]
    fn jars_with_jni_libraries_are_named_with_their_architectures() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("workspace/lib");
        std::fs::create_dir_all(&lib).unwrap();
        let x86 = elf(62);
        let arm = elf(183);
        std::fs::write(
            lib.join("epoll-linux-x86_64.jar"),
            zip_bytes(&[("META-INF/native/libnetty_epoll_x86_64.so", &x86[..])]),
        )
        .unwrap();
        std::fs::write(
            lib.join("sqlite.jar"),
            zip_bytes(&[
                ("org/sqlite/native/Linux/aarch64/libsqlitejdbc.so", &arm[..]),
                ("org/sqlite/native/Linux/x86_64/libsqlitejdbc.so", &x86[..]),
                (
                    "org/sqlite/native/Mac/aarch64/libsqlitejdbc.dylib",
                    b"mach-o",
                ),
            ]),
        )
        .unwrap();
        std::fs::write(
            lib.join("plain.jar"),
            zip_bytes(&[("a/B.class", b"\xca\xfe\xba\xbe")]),
        )
        .unwrap();
        std::fs::write(lib.join("libloose.so.1"), &arm).unwrap();
        let layers = [LaunchLayer {
            name: "dependencies".into(),
            dir: d.path().join("workspace"),
            prefix: "workspace".into(),
            ..Default::default()
        }];
        let found: Vec<(String, Vec<String>)> = native_code(&layers)
            .into_iter()
            .map(|n| (n.location, n.architectures))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/workspace/lib/epoll-linux-x86_64.jar".into(),
                    vec!["amd64".into()]
                ),
                ("/workspace/lib/libloose.so.1".into(), vec!["arm64".into()]),
                (
                    "/workspace/lib/sqlite.jar".into(),
                    vec!["amd64".into(), "arm64".into()]
                ),
            ]
        );
    }
}
