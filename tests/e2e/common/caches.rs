//! Warm download caches: the toolchains' own caches (Go's module and build caches, npm's
//! cache, pnpm's store, the Maven repository) shared by every build of the suite, and by
//! later runs on this machine, from `<machine cache>/downloads`.
//!
//! Each test still gets a kiln cache dir of its own (layer index, image store, reuse state,
//! `node_modules` trees); only these entries of it are links into the shared ones. Each
//! is keyed by content and made for concurrent use by its own tool: Go's caches, npm's
//! cacache, pnpm's content-addressed store, and Maven's resolver (which writes through
//! temporary files under file locks). Yarn's cache is not shared: Yarn 1 documents
//! concurrent installs into one cache as unsafe (`--mutex`).
//!
//! What must be cold is cold on purpose: the builds inside the build pod (`pod_build`) start
//! from an empty `/kiln` for Go, Maven and npm alike, as a fresh Kubernetes pod does.

use std::path::{Path, PathBuf};

use super::Kiln;

/// `(entry of a kiln cache dir, name under <machine cache>/downloads)`.
const SHARED: &[(&str, &str)] = &[
    ("buildpacks/kiln-go/go-build", "go-build"),
    ("buildpacks/kiln-go/go-mod", "go-mod"),
    ("buildpacks/kiln-node/npm", "npm"),
    ("buildpacks/kiln-node/pnpm-store", "pnpm-store"),
    ("buildpacks/kiln-java/repository", "maven-repository"),
];

/// Points the toolchain download caches of kiln cache dir `cache` at the shared ones
/// (entries it already has are left alone).
pub fn share_downloads(cache: &Path) {
    for (entry, name) in SHARED {
        let link = cache.join(entry);
        if std::fs::symlink_metadata(&link).is_ok() {
            continue;
        }
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(kiln_e2e::download_cache(name), &link).unwrap();
    }
}

/// Returns a new kiln cache dir `name` in `kiln`'s workspace with the shared download
/// caches ([`share_downloads`]).
pub fn warm_cache(kiln: &Kiln, name: &str) -> PathBuf {
    let cache = kiln.ws.mkdir(name);
    share_downloads(&cache);
    cache
}
