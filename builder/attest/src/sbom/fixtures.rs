//! Layer tar streams built in memory for the catalogers' tests.

use tar::{EntryType, Header};

/// A layer under construction.
pub(crate) struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    pub(crate) fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    /// Appends a regular file, naming it exactly `name` (`./x` and `/x` included, which
    /// `Header::set_path` would tidy away).
    pub(crate) fn file(mut self, name: &str, body: &[u8]) -> Self {
        let mut h = header(name, EntryType::Regular);
        h.set_size(body.len() as u64);
        h.set_cksum();
        self.0.append(&h, body).unwrap();
        self
    }

    pub(crate) fn dir(mut self, name: &str) -> Self {
        let mut h = header(name, EntryType::Directory);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    pub(crate) fn link(mut self, kind: EntryType, name: &str, target: &str) -> Self {
        let mut h = header(name, kind);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn header(name: &str, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(0);
    h
}

/// A catalog with every ecosystem and every optional field in use.
pub(crate) fn catalog() -> crate::sbom::Catalog {
    use crate::sbom::{Catalog, Distro, Ecosystem, Package};
    let mut libc = Package::new(
        Ecosystem::Deb,
        None,
        "libc6",
        "2.36-9+deb12u4",
        "/var/lib/dpkg/status.d/libc6",
    );
    libc.arch = Some("amd64".into());
    libc.source = Some("glibc".into());
    libc.supplier = Some("GNU Libc Maintainers <debian-glibc@lists.debian.org>".into());
    let mut gcrypt = Package::new(
        Ecosystem::Deb,
        None,
        "libgcrypt20",
        "1:2.3+dfsg-1",
        "/var/lib/dpkg/status",
    );
    gcrypt.arch = Some("amd64".into());
    gcrypt.supplier = Some("Debian GnuTLS Maintainers".into());
    let mut types = Package::new(
        Ecosystem::Npm,
        Some("types".into()),
        "node",
        "20.1.0",
        "/workspace/node_modules/@types/node/package.json",
    );
    types.license = Some("mit".into());
    let mut express = Package::new(
        Ecosystem::Npm,
        None,
        "express",
        "4.21.2",
        "/workspace/node_modules/express/package.json",
    );
    express.license = Some("(MIT OR Apache-2.0)".into());
    let mut odd = Package::new(
        Ecosystem::Npm,
        None,
        "odd",
        "1.0.0",
        "/workspace/node_modules/odd/package.json",
    );
    odd.license = Some("Made-Up-1.0".into());
    let layer = crate::sbom::LayerCatalog {
        packages: vec![
            libc,
            gcrypt,
            Package::new(
                Ecosystem::Golang,
                None,
                "example.com/app",
                "(devel)",
                "/workspace/app",
            ),
            Package::new(
                Ecosystem::Golang,
                None,
                "github.com/google/uuid",
                "v1.6.0",
                "/workspace/app",
            ),
            Package::new(
                Ecosystem::Golang,
                None,
                "stdlib",
                "go1.26.8",
                "/workspace/app",
            ),
            Package::new(
                Ecosystem::Maven,
                Some("com.example".into()),
                "app",
                "1.0",
                "/workspace/app.jar",
            ),
            Package::new(
                Ecosystem::Maven,
                Some("org.slf4j".into()),
                "slf4j-api",
                "2.0.9",
                "/workspace/app.jar!BOOT-INF/lib/slf4j-api-2.0.9.jar",
            ),
            types,
            express.clone(),
            Package {
                location: "/workspace/node_modules/a/node_modules/express/package.json".into(),
                ..express
            },
            odd,
        ],
        distro: Some(Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
        }),
    };
    Catalog::merge([layer])
}
