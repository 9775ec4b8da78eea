//! Cataloging one layer: a single streaming pass over its uncompressed tar, reading only
//! the bodies a cataloger needs.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::error::SbomError;
use super::package::{Distro, Package};
use super::{dpkg, gobuild, maven, npm, os_release};

const MAX_DPKG: u64 = 64 << 20;
const MAX_OS_RELEASE: u64 = 64 << 10;
/// Larger executables are skipped rather than scanned.
const MAX_EXECUTABLE: u64 = 512 << 20;
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// What one layer holds, on its own; [`super::Catalog::merge`] stacks layers.
///
/// Serializable so a caller can cache it by the layer's diffID: layers are shared between
/// images far more often than they change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCatalog {
    /// Packages in the order their files appear in the layer.
    pub packages: Vec<Package>,
    /// The distribution, when the layer holds a regular `os-release` file.
    pub distro: Option<Distro>,
}

/// Returns the packages and distribution found in one uncompressed layer tar stream.
///
/// Only regular files are read: a symlink's target is cataloged where it really lives.
/// Whiteouts are ignored, so a package whose file an upper layer deletes stays listed
/// unless that layer also rewrites the file. Files a cataloger cannot make sense of are
/// skipped; only a tar stream that cannot be read is an error.
pub fn catalog_layer(tar: impl Read) -> Result<LayerCatalog, SbomError> {
    let mut archive = tar::Archive::new(tar);
    let mut out = LayerCatalog::default();
    let mut usr_lib_distro = None;
    for entry in archive.entries().map_err(SbomError::Layer)? {
        let mut entry = entry.map_err(SbomError::Layer)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = normalize(&entry.path_bytes());
        if path.is_empty() {
            continue;
        }
        let location = format!("/{path}");
        let size = entry.size();
        let fail = |source| SbomError::Entry {
            path: location.clone(),
            source,
        };
        match kind(&path) {
            Kind::Dpkg { installed_only } => {
                if let Some(text) = read_capped(&mut entry, size, MAX_DPKG).map_err(fail)? {
                    let text = String::from_utf8_lossy(&text);
                    out.packages
                        .extend(dpkg::packages(&text, &location, installed_only));
                }
            }
            Kind::OsRelease { etc } => {
                if let Some(text) = read_capped(&mut entry, size, MAX_OS_RELEASE).map_err(fail)? {
                    let distro = os_release::parse(&String::from_utf8_lossy(&text));
                    // /etc/os-release is usually a symlink to ../usr/lib/os-release; when
                    // both are real files, /etc is the one tools read first.
                    if etc {
                        out.distro = distro.or(out.distro.take());
                    } else {
                        usr_lib_distro = distro;
                    }
                }
            }
            Kind::PackageJson => {
                let body = read_capped(&mut entry, size, npm::MAX_PACKAGE_JSON).map_err(fail)?;
                out.packages
                    .extend(body.and_then(|b| npm::package(&b, &location)));
            }
            Kind::JavaArchive => {
                if let Some(bytes) =
                    read_capped(&mut entry, size, maven::MAX_ARCHIVE).map_err(fail)?
                {
                    out.packages.extend(maven::packages(bytes, &location));
                }
            }
            Kind::Other if (ELF_MAGIC.len() as u64..=MAX_EXECUTABLE).contains(&size) => {
                let mut head = [0u8; 4];
                entry.read_exact(&mut head).map_err(fail)?;
                if &head == ELF_MAGIC {
                    let file = io::Cursor::new(head).chain(&mut entry);
                    if let Some(info) = gobuild::scan(file).map_err(fail)? {
                        out.packages.extend(gobuild::packages(&info, &location));
                    }
                }
            }
            Kind::Other => {}
        }
    }
    if out.distro.is_none() {
        out.distro = usr_lib_distro;
    }
    Ok(out)
}

enum Kind {
    /// dpkg's database; only `status` says which stanzas are still installed.
    Dpkg {
        installed_only: bool,
    },
    OsRelease {
        etc: bool,
    },
    PackageJson,
    JavaArchive,
    Other,
}

fn kind(path: &str) -> Kind {
    match path {
        "var/lib/dpkg/status" => {
            return Kind::Dpkg {
                installed_only: true,
            };
        }
        "etc/os-release" => return Kind::OsRelease { etc: true },
        "usr/lib/os-release" => return Kind::OsRelease { etc: false },
        _ => {}
    }
    // distroless keeps one stanza per package here, next to `<name>.md5sums`; package
    // names may contain dots (`python3.11`), so only the md5sums suffix is excluded.
    if let Some(name) = path.strip_prefix("var/lib/dpkg/status.d/") {
        let stanza = !name.is_empty()
            && !name.contains('/')
            && !name.starts_with('.')
            && !name.ends_with(".md5sums");
        return if stanza {
            Kind::Dpkg {
                installed_only: false,
            }
        } else {
            Kind::Other
        };
    }
    if npm::is_package_json(path) {
        Kind::PackageJson
    } else if maven::is_archive(path) {
        Kind::JavaArchive
    } else {
        Kind::Other
    }
}

/// Strips the `./` and `/` prefixes different tar writers put on layer paths.
fn normalize(raw: &[u8]) -> String {
    let path = String::from_utf8_lossy(raw);
    let mut rest: &str = &path;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('/') {
            rest = r;
        } else {
            break;
        }
    }
    rest.trim_end_matches('/').to_string()
}

/// Reads the entry whole, or returns `None` without reading when it is larger than `cap`.
fn read_capped(entry: &mut impl Read, size: u64, cap: u64) -> io::Result<Option<Vec<u8>>> {
    if size > cap {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry.take(cap).read_to_end(&mut buf)?;
    // The tar reader reports a stream that ends inside a body as a short read, not an
    // error; cataloging half a file would silently drop packages.
    if (buf.len() as u64) < size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ends {} bytes into a {size}-byte file",
                buf.len()
            ),
        ));
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use tar::EntryType;

    use super::*;
    use crate::sbom::fixtures::Layer;
    use crate::sbom::{gobuild, maven};

    fn bookworm() -> Distro {
        Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
        }
    }

    fn purls(catalog: &LayerCatalog) -> Vec<(String, String)> {
        let mut v: Vec<_> = catalog
            .packages
            .iter()
            .map(|p| (p.purl(catalog.distro.as_ref()), p.location.clone()))
            .collect();
        v.sort();
        v
    }

    const OS_RELEASE: &[u8] =
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
        VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

    #[test]
    fn distroless_status_d_and_os_release_give_deb_purls() {
        let tar = Layer::new()
            .dir("./var/lib/dpkg/status.d/")
            .file(
                "./var/lib/dpkg/status.d/libc6",
                b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n\
                  Source: glibc (2.36-9)\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\
                  Description: GNU C Library\n Shared libraries.\n",
            )
            // A digest list, not a stanza: were it read, `bogus` would show up.
            .file(
                "./var/lib/dpkg/status.d/libc6.md5sums",
                b"Package: bogus\nVersion: 1\n",
            )
            .file(
                "/var/lib/dpkg/status.d/libgcrypt20",
                b"Package: libgcrypt20\nVersion: 1:2.3+dfsg-1\nArchitecture: amd64\nSource: gcrypt (1:2.3+dfsg-0)\n",
            )
            .file(
                "var/lib/dpkg/status.d/python3.11-minimal",
                b"Package: python3.11-minimal\nVersion: 3.11.2-6\nArchitecture: amd64\nSource: python3.11\n",
            )
            .link(EntryType::Link, "var/lib/dpkg/status.d/copy", "var/lib/dpkg/status.d/libc6")
            .link(EntryType::Symlink, "./etc/os-release", "../usr/lib/os-release")
            .file("./usr/lib/os-release", OS_RELEASE)
            .finish();
        let catalog = catalog_layer(tar.as_slice()).unwrap();
        assert_eq!(catalog.distro, Some(bookworm()));
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            purls(&catalog),
            [
                s(
                    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
                    "/var/lib/dpkg/status.d/libc6"
                ),
                s(
                    "pkg:deb/debian/libgcrypt20@1%3A2.3%2Bdfsg-1?arch=amd64&distro=debian-12&upstream=gcrypt",
                    "/var/lib/dpkg/status.d/libgcrypt20"
                ),
                s(
                    "pkg:deb/debian/python3.11-minimal@3.11.2-6?arch=amd64&distro=debian-12&upstream=python3.11",
                    "/var/lib/dpkg/status.d/python3.11-minimal"
                ),
            ]
        );
        let libc6 = &catalog.packages[0];
        assert_eq!(
            libc6.supplier.as_deref(),
            Some("GNU Libc Maintainers <debian-glibc@lists.debian.org>")
        );
    }

    #[test]
    fn dpkg_status_and_etc_os_release_win() {
        let tar = Layer::new()
            .file("usr/lib/os-release", b"ID=ubuntu\nVERSION_ID=\"24.04\"\n")
            .file("etc/os-release", OS_RELEASE)
            .file(
                "var/lib/dpkg/status",
                b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n\
                  Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n",
            )
            .finish();
        let catalog = catalog_layer(tar.as_slice()).unwrap();
        assert_eq!(catalog.distro, Some(bookworm()));
        assert_eq!(
            purls(&catalog),
            [(
                "pkg:deb/debian/a@1?arch=all&distro=debian-12".to_string(),
                "/var/lib/dpkg/status".to_string()
            )]
        );
    }

    #[test]
    fn application_layer_gives_go_maven_and_npm_packages() {
        let go = gobuild::tests::binary(4096, 0x2, gobuild::tests::MODINFO);
        let mut c_binary = b"\x7fELF\x02\x01\x01".to_vec();
        c_binary.resize(10_000, 0x90);
        let inner = maven::tests::zip(&[(
            "META-INF/maven/org.slf4j/slf4j-api/pom.properties",
            &maven::tests::pom("org.slf4j", "slf4j-api", "2.0.9"),
        )]);
        let jar = maven::tests::zip(&[
            (
                "META-INF/maven/com.example/app/pom.properties",
                &maven::tests::pom("com.example", "app", "1.0"),
            ),
            ("BOOT-INF/lib/x.jar", &inner),
        ]);
        let pkg = |name: &str, version: &str| {
            format!(r#"{{"name": "{name}", "version": "{version}", "license": "MIT"}}"#)
                .into_bytes()
        };
        let tar = Layer::new()
            .file("./workspace/app", &go)
            .file("./usr/bin/true", &c_binary)
            .file("./workspace/tiny", b"ab")
            .file("./workspace/app.jar", &jar)
            .file("./workspace/bad.jar", b"PK\x03\x04 truncated")
            .file("./workspace/package.json", &pkg("my-app", "0.0.1"))
            .file(
                "./workspace/node_modules/express/package.json",
                &pkg("express", "4.21.2"),
            )
            .file(
                "./workspace/node_modules/express/lib/package.json",
                &pkg("nope", "1"),
            )
            .file(
                "./workspace/node_modules/@types/node/package.json",
                &pkg("@types/node", "20.1.0"),
            )
            .file(
                "./workspace/node_modules/express/node_modules/debug/package.json",
                &pkg("debug", "2.6.9"),
            )
            .link(
                EntryType::Symlink,
                "./workspace/node_modules/x",
                ".pnpm/x@1.0.0/node_modules/x",
            )
            .file(
                "./workspace/node_modules/.pnpm/x@1.0.0/node_modules/x/package.json",
                &pkg("x", "1.0.0"),
            )
            .finish();
        let catalog = catalog_layer(tar.as_slice()).unwrap();
        assert_eq!(catalog.distro, None);
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            purls(&catalog),
            [
                s("pkg:golang/example.com/app@%28devel%29", "/workspace/app"),
                s("pkg:golang/example.com/bare@%28devel%29", "/workspace/app"),
                s("pkg:golang/example.com/local@%28devel%29", "/workspace/app"),
                s("pkg:golang/github.com/fork/text@v0.14.0", "/workspace/app"),
                s("pkg:golang/github.com/google/uuid@v1.6.0", "/workspace/app"),
                s("pkg:golang/stdlib@go1.26.8", "/workspace/app"),
                s("pkg:maven/com.example/app@1.0", "/workspace/app.jar"),
                s(
                    "pkg:maven/org.slf4j/slf4j-api@2.0.9",
                    "/workspace/app.jar!BOOT-INF/lib/x.jar"
                ),
                s(
                    "pkg:npm/%40types/node@20.1.0",
                    "/workspace/node_modules/@types/node/package.json"
                ),
                s(
                    "pkg:npm/debug@2.6.9",
                    "/workspace/node_modules/express/node_modules/debug/package.json"
                ),
                s(
                    "pkg:npm/express@4.21.2",
                    "/workspace/node_modules/express/package.json"
                ),
                s(
                    "pkg:npm/x@1.0.0",
                    "/workspace/node_modules/.pnpm/x@1.0.0/node_modules/x/package.json"
                ),
            ]
        );
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let body = vec![b'x'; 4000];
        let mut tar = Layer::new().file("var/lib/dpkg/status", &body).finish();
        tar.truncate(2000);
        let err = catalog_layer(tar.as_slice()).unwrap_err();
        assert!(err.to_string().contains("`/var/lib/dpkg/status`"), "{err}");
        assert!(catalog_layer(&[][..]).unwrap().packages.is_empty());
    }
}
