//! Reuse of linked binaries between builds.
//!
//! kiln links with an empty build ID so the binary depends only on its inputs. The price is
//! that `go build` can no longer tell an existing output is up to date, and relinks every time
//! (about half a second for a web service). So kiln keeps each binary it linked under a key
//! made of everything the link reads: the build ID of every package in the binary (from
//! `go list -deps -export`, which compiles what changed and is cached otherwise; the standard
//! library's IDs change with the Go version), the build flags, and the tool's environment.
//! Same key, same bytes: the cached binary is used instead of linking again.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::toolchain::Go;

/// Linked binaries, `<cache>/linked/<import path hash>-<link key>`.
pub(crate) struct LinkCache {
    dir: PathBuf,
}

impl LinkCache {
    /// Returns the cache under the buildpack's cache directory.
    pub(crate) fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("linked"),
        }
    }

    /// Returns the link key of `import_path` built with `flags`, or `None` when `go list` cannot
    /// tell (the code does not compile, say); the caller then just builds.
    pub(crate) fn key(go: &Go<'_>, import_path: &str, flags: &[&str]) -> Option<String> {
        let mut args = vec!["list", "-deps", "-export"];
        args.extend_from_slice(flags);
        args.extend(["-f", "{{.ImportPath}} {{.BuildID}}", import_path]);
        let listed = go.run_quiet(&args)?;
        // `unsafe` and friends compile to nothing and have no build ID; the main package must.
        let main_id = listed
            .lines()
            .find_map(|l| l.strip_prefix(import_path)?.strip_prefix(' '));
        if main_id.is_none_or(|id| id.trim().is_empty()) {
            return None;
        }
        let mut h = Sha256::new();
        h.update(go.exe().as_os_str().as_encoded_bytes());
        for (k, v) in go.env() {
            h.update(format!("\0env {k}={v}"));
        }
        for f in flags {
            h.update(format!("\0flag {f}"));
        }
        h.update(format!("\0main {import_path}\0"));
        h.update(listed);
        Some(hex::encode(h.finalize()))
    }

    /// Copies the binary cached for `key` to `out`; returns whether there was one.
    pub(crate) fn restore(&self, import_path: &str, key: &str, out: &Path) -> bool {
        let cached = self.entry(import_path, key);
        if !cached.is_file() {
            return false;
        }
        let copied = out.parent().is_some_and(|p| fs::create_dir_all(p).is_ok())
            && fs::copy(&cached, out).is_ok();
        if !copied {
            let _ = fs::remove_file(out);
        }
        copied
    }

    /// Keeps a copy of the freshly linked `out` for `key`, replacing older links of the same
    /// package. Best effort: failing costs only a relink next time.
    pub(crate) fn store(&self, import_path: &str, key: &str, out: &Path) {
        let entry = self.entry(import_path, key);
        // A temp file of this process's own: builds sharing the cache may store at once.
        let tmp = entry.with_extension(format!("tmp-{}", std::process::id()));
        let stored = fs::create_dir_all(&self.dir).is_ok()
            && fs::copy(out, &tmp).is_ok()
            && fs::rename(&tmp, &entry).is_ok();
        if !stored {
            let _ = fs::remove_file(&tmp);
            return;
        }
        let prefix = format!("{}-", package_id(import_path));
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(&prefix) && e.path() != entry {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    fn entry(&self, import_path: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{}-{key}", package_id(import_path)))
    }
}

/// A short, file-name-safe id of an import path.
fn package_id(import_path: &str) -> String {
    hex::encode(&Sha256::digest(import_path.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keeps_one_link_per_package_and_restores_it() {
        let d = tempfile::tempdir().unwrap();
        let cache = LinkCache::new(d.path());
        let out = d.path().join("out/bin/app");
        fs::create_dir_all(out.parent().unwrap()).unwrap();
        fs::write(&out, b"v1").unwrap();
        cache.store("m/cmd/app", "k1", &out);
        fs::write(&out, b"v2").unwrap();
        cache.store("m/cmd/app", "k2", &out);
        cache.store("m/cmd/other", "k1", &out);
        assert_eq!(fs::read_dir(d.path().join("linked")).unwrap().count(), 2);
        fs::remove_file(&out).unwrap();
        assert!(!cache.restore("m/cmd/app", "k1", &out), "replaced by k2");
        assert!(cache.restore("m/cmd/app", "k2", &out));
        assert_eq!(fs::read(&out).unwrap(), b"v2");
    }
}
