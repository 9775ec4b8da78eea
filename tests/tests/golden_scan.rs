//! Scanner check: syft, a real SBOM tool, reads each golden base's
//! `/var/lib/dpkg/status.d/` and lists exactly the Debian packages and versions of the
//! base's lockfile.

mod common;

use std::collections::BTreeSet;

use common::Kiln;
use kiln_e2e::{syft_bin, syft_scan};

/// Locks and builds `golden-base/<name>.toml` (definitions and keyrings copied to a temp
/// dir) into an OCI archive, scans it with syft and compares its `deb` packages with the
/// lock's amd64 packages.
fn scan_matches_lock(name: &str) {
    // Build syft first (minutes, once per target dir) so its failure is not a base's.
    syft_bin();
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("golden-base", &["static", "base"]);
    // `base` includes `static`, whose lock its build reads: lock `static` first.
    let mut to_lock = vec!["static"];
    if name != "static" {
        to_lock.push(name);
    }
    for def in to_lock {
        kiln.lock_base(&defs.join(format!("{def}.toml")));
    }
    let (archive, _) = kiln.build_base(&defs.join(format!("{name}.toml")), &kiln.ws.mkdir("cache"));

    let lockfile = std::fs::read_to_string(defs.join(format!("{name}.lock"))).unwrap();
    let lockfile: toml::Value = toml::from_str(&lockfile).unwrap();
    let locked: BTreeSet<(String, String)> = lockfile["packages"]["amd64"]
        .as_array()
        .expect("the lock has amd64 packages")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!locked.is_empty(), "empty lock: {lockfile}");

    let sbom = syft_scan(
        &format!("oci-archive:{}", archive.display()),
        &kiln.ws.mkdir("scan"),
    );
    let seen: BTreeSet<(String, String)> = sbom["artifacts"]
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
        "syft's deb packages (left) differ from `{name}.lock`'s (right)\n\
         only syft: {:?}\nonly lock: {:?}",
        seen.difference(&locked).collect::<Vec<_>>(),
        locked.difference(&seen).collect::<Vec<_>>()
    );
    assert_eq!(
        sbom["distro"]["id"], "debian",
        "syft reads /etc/os-release: {}",
        sbom["distro"]
    );
}

#[test]
fn syft_lists_the_static_lock() {
    scan_matches_lock("static");
}

#[test]
fn syft_lists_the_base_lock() {
    scan_matches_lock("base");
}
