//! Golden-base helpers of the tests whose subject is a base: copy definitions and locks,
//! lock (against the live mirror) and build, and hold what was built against syft and the
//! lock.

use std::path::{Path, PathBuf};

use kiln_e2e::{copy_dir, workspace_root};

use super::{Kiln, sbom_components};

impl Kiln {
    /// Copies `golden-base/<name>.toml` for each of `names`, and the pinned keyrings, into
    /// `<workspace>/<dir>`; returns that directory.
    pub fn golden_definitions(&self, dir: &str, names: &[&str]) -> PathBuf {
        let dst = self.ws.mkdir(dir);
        copy_dir(
            &workspace_root().join("golden-base/keyrings"),
            &dst.join("keyrings"),
        )
        .expect("copying keyrings");
        for name in names {
            std::fs::copy(
                workspace_root().join(format!("golden-base/{name}.toml")),
                dst.join(format!("{name}.toml")),
            )
            .expect("copying a definition");
        }
        dst
    }

    /// Copies the committed `golden-base/<name>.lock` of each of `names` into `dir` (for the
    /// includes whose locks a build reads, without re-locking them).
    pub fn committed_locks(&self, dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::copy(
                workspace_root().join(format!("golden-base/{name}.lock")),
                dir.join(format!("{name}.lock")),
            )
            .expect("copying a lock");
        }
    }

    /// Runs `kiln base build DEF --platform linux/amd64 --cache-dir CACHE --output
    /// <workspace>/<name>.tar`, validates the image saved as `kiln-base/<name>` in the cache's
    /// store, and returns the archive and the image's diffIDs. (The curated locks also hold
    /// arm64; golden_base.rs builds that.)
    pub fn build_base(&self, def: &Path, cache: &Path) -> (PathBuf, Vec<String>) {
        let name = def.file_stem().unwrap().to_str().unwrap();
        let archive = self.ws.join(format!("{name}.tar"));
        self.run(&[
            "base",
            "build",
            def.to_str().unwrap(),
            "--platform",
            "linux/amd64",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--output",
            archive.to_str().unwrap(),
            "--sbom-dir",
            self.ws.join(format!("sbom-{name}")).to_str().unwrap(),
        ])
        .ok();
        let v = kiln_image::validate_layout(&cache.join("oci"), &format!("kiln-base/{name}"))
            .unwrap_or_else(|e| panic!("validating `kiln-base/{name}`: {e}"));
        (archive, v.config.rootfs().diff_ids().clone())
    }
}

/// Returns the `(name, version)` pairs of the `[[packages.amd64]]` entries of the lockfile
/// at `lock`; panics when there are none.
pub fn locked_amd64_packages(lock: &Path) -> std::collections::BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lock)
        .unwrap_or_else(|e| panic!("reading `{}`: {e}", lock.display()));
    let lockfile: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("parsing `{}`: {e}", lock.display()));
    let locked: std::collections::BTreeSet<_> = lockfile["packages"]["amd64"]
        .as_array()
        .unwrap_or_else(|| panic!("`{}` has no amd64 packages", lock.display()))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!locked.is_empty(), "`{}` locks no package", lock.display());
    locked
}

impl Kiln {
    /// Scans the OCI archive `archive` with syft, a real SBOM tool, and panics unless the
    /// `deb` packages it lists (read from `/var/lib/dpkg/status.d/`) are exactly the amd64
    /// packages and versions of the lockfile `lock`, and its distro is Debian (from
    /// `/etc/os-release`). Other artifact types (jars, npm and Go modules) are not compared.
    /// kiln's own SBOMs of the base, in `sbom_dir` (its `--sbom-dir`), must validate with the
    /// formats' reference tools and list the same packages.
    pub fn assert_syft_matches_lock(&self, archive: &Path, lock: &Path, sbom_dir: &Path) {
        let locked = locked_amd64_packages(lock);
        let name = archive.file_stem().unwrap().to_str().unwrap();
        let sbom = kiln_e2e::syft_scan(
            &format!("oci-archive:{}", archive.display()),
            &self.ws.mkdir(format!("syft-{name}")),
        );
        let seen: std::collections::BTreeSet<(String, String)> = sbom["artifacts"]
            .as_array()
            .expect("syft's SBOM has artifacts")
            .iter()
            .filter(|a| a["type"] == "deb")
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            locked,
            "syft's deb packages in `{}` (left) differ from `{}`'s (right)\n\
             only syft: {:?}\nonly lock: {:?}",
            archive.display(),
            lock.display(),
            seen.difference(&locked).collect::<Vec<_>>(),
            locked.difference(&seen).collect::<Vec<_>>()
        );
        assert_eq!(
            kiln_e2e::validate_spdx(&sbom_dir.join("sbom.spdx.json")),
            ""
        );
        assert_eq!(
            kiln_e2e::validate_cyclonedx(&sbom_dir.join("sbom.cdx.json")),
            ""
        );
        let cdx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sbom_dir.join("sbom.cdx.json")).unwrap())
                .unwrap();
        assert_eq!(
            sbom_components(&cdx, "deb"),
            locked,
            "kiln's SBOM of `{name}` vs the lock"
        );
        assert_eq!(
            sbom["distro"]["id"], "debian",
            "syft reads /etc/os-release: {}",
            sbom["distro"]
        );
    }
}
