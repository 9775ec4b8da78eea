//! Native addons (`*.node`, ELF shared objects built by node-gyp or shipped prebuilt), and
//! the prebuilt ELF programs and libraries some packages ship: they only load on the
//! architecture they were built for, and addons only in the Node.js ABI they were built
//! against.

use std::path::Path;

use kiln_lifecycle::BuildpackError;
use serde::{Deserialize, Serialize};

/// A native addon in the dependency tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    /// Its path, relative to the tree.
    pub path: String,
    /// The OCI architecture its ELF header names (`amd64`, `arm64`), or `unknown`.
    pub architecture: String,
}

/// Returns the native addons under `dir`, sorted by path; none when `dir` does not exist
/// (an app without dependencies has no `node_modules` to move into its layer).
pub fn addons(dir: &Path) -> std::io::Result<Vec<Addon>> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            let path = entry.path();
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                let addon = path.extension().is_some_and(|e| e == "node");
                // Prebuilt programs (esbuild's, say) are tied to a CPU as addons are.
                if !addon && !is_program(&entry) {
                    continue;
                }
                let architecture = match kiln_lifecycle::elf_file_architecture(&path) {
                    Some(arch) => arch,
                    None if addon => "unknown",
                    None => continue,
                };
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                found.push(Addon {
                    path: rel,
                    architecture: architecture.to_owned(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Whether a file is executable or a shared object (`*.so`, `*.so.1`): the kinds of file a
/// prebuilt binary is.
fn is_program(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let name = entry.file_name();
    let name = name.to_string_lossy();
    name.ends_with(".so")
        || name.contains(".so.")
        || entry
            .metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Fails when an addon cannot load on the run image: built for another architecture, or
/// against another Node.js major version (each major has its own addon ABI).
pub fn check(
    addons: &[Addon],
    run_arch: Option<&str>,
    host_major: u64,
    run_major: Option<u64>,
    run_name: &str,
) -> Result<(), BuildpackError> {
    if addons.is_empty() {
        return Ok(());
    }
    if let Some(arch) = run_arch {
        // Packages with prebuilt binaries often ship one per platform and load the one
        // that fits: a package is fine when any of its addons is for the run image.
        let unfit = addons.iter().find(|a| {
            addons
                .iter()
                .filter(|b| package_of(&b.path) == package_of(&a.path))
                .all(|b| b.architecture != arch)
        });
        if let Some(a) = unfit {
            let package = package_of(&a.path);
            return Err(BuildpackError::Usage {
                message: format!(
                    "the native addon `{}` of the package `{package}` is built for `{}`, but the run image `{run_name}` is `{arch}`: it would not load",
                    a.path, a.architecture
                ),
                hint: Some(format!(
                    "kiln does not compile native code for another platform (node-gyp builds for the build machine): use a version of `{package}` that ships prebuilt binaries for `{arch}` (optional platform packages), build on a `{arch}` machine, or leave `{arch}` out of the build's platforms"
                )),
            });
        }
    }
    // Only addons (`*.node`) load into Node.js, and so depend on its ABI.
    let first = addons.iter().find(|a| a.path.ends_with(".node"));
    match (run_major, first) {
        (Some(run), Some(first)) if run != host_major => Err(BuildpackError::Usage {
            message: format!(
                "the native addon `{}` is built against the host's Node.js {host_major}, but the run image `{run_name}` has Node.js {run}: addons only load in the major version they were built for",
                first.path
            ),
            hint: Some(format!(
                "build with Node.js {run} first on PATH, or use a run image with Node.js {host_major}"
            )),
        }),
        _ => Ok(()),
    }
}

/// Returns the package an addon belongs to: the path up to its package directory, the
/// first (or first two, for a `@scope/`) component after the last `node_modules/`.
fn package_of(path: &str) -> &str {
    let start = path
        .rfind("node_modules/")
        .map_or(0, |i| i + "node_modules/".len());
    let rest = &path[start..];
    let parts = if rest.starts_with('@') { 2 } else { 1 };
    let len: usize = rest
        .split('/')
        .take(parts)
        .map(|p| p.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    &path[..start + len.min(rest.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn a_tree_that_does_not_exist_has_no_addons() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(addons(&tmp.path().join("workspace")).unwrap().is_empty());
    }

    #[test]
    fn finds_addons_and_reads_their_architecture() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("a/build/Release")).unwrap();
        std::fs::create_dir_all(d.join("b/prebuilds/linux-arm64")).unwrap();
        std::fs::write(d.join("a/build/Release/a.node"), elf(62)).unwrap();
        std::fs::write(d.join("b/prebuilds/linux-arm64/b.node"), elf(183)).unwrap();
        std::fs::write(d.join("b/not-elf.node"), b"text").unwrap();
        std::fs::write(d.join("b/index.js"), elf(62)).unwrap();
        let got = addons(d).unwrap();
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|a| (a.path.as_str(), a.architecture.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a/build/Release/a.node", "amd64"),
                ("b/not-elf.node", "unknown"),
                ("b/prebuilds/linux-arm64/b.node", "arm64"),
            ]
        );
    }

    #[test]
    fn finds_prebuilt_programs_and_libraries_but_not_scripts() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("@esbuild/linux-x64/bin")).unwrap();
        std::fs::create_dir_all(d.join("c/lib")).unwrap();
        let exe = d.join("@esbuild/linux-x64/bin/esbuild");
        std::fs::write(&exe, elf(62)).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("c/lib/libc.so.1"), elf(183)).unwrap();
        let script = d.join("c/cli.js");
        std::fs::write(&script, b"#!/usr/bin/env node\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let got = addons(d).unwrap();
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|a| (a.path.as_str(), a.architecture.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("@esbuild/linux-x64/bin/esbuild", "amd64"),
                ("c/lib/libc.so.1", "arm64")
            ]
        );
        // A prebuilt program for another CPU is refused, naming its package.
        let e = check(&got[..1], Some("arm64"), 20, None, "r").unwrap_err();
        assert!(e.to_string().contains("@esbuild/linux-x64"), "{e}");
    }

    #[test]
    fn refuses_other_architectures_and_other_node_majors() {
        let amd = vec![Addon {
            path: "x/build/Release/x.node".into(),
            architecture: "amd64".into(),
        }];
        assert!(check(&amd, Some("amd64"), 20, Some(20), "b").is_ok());
        assert!(
            check(&[], Some("arm64"), 22, Some(20), "b").is_ok(),
            "no addons, no limits"
        );
        let err = check(&amd, Some("arm64"), 20, Some(20), "kiln-base/node").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("built for `amd64`") && text.contains("is `arm64`"),
            "{text}"
        );
        let prebuilt: Vec<Addon> = [("linux-x64", "amd64"), ("linux-arm64", "arm64")]
            .iter()
            .map(|(dir, arch)| Addon {
                path: format!("node_modules/@s/p/prebuilds/{dir}/p.node"),
                architecture: (*arch).into(),
            })
            .collect();
        assert!(
            check(&prebuilt, Some("arm64"), 20, None, "b").is_ok(),
            "one fits"
        );
        assert_eq!(
            package_of("node_modules/@s/p/prebuilds/x.node"),
            "node_modules/@s/p"
        );
        assert_eq!(
            package_of("node_modules/a/node_modules/b/b.node"),
            "node_modules/a/node_modules/b"
        );
        let err = check(&amd, Some("amd64"), 22, Some(20), "kiln-base/node").unwrap_err();
        assert!(err.to_string().contains("Node.js 22") && err.to_string().contains("Node.js 20"));
    }
}
