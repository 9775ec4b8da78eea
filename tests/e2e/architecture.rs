//! The dependency direction of DESIGN.md §2, enforced from `cargo metadata`:
//! `oci` ← `layer`, `model`, `registry` ← `image`; `model`, `layer` ← `lifecycle`;
//! buildpacks depend on the lifecycle's Buildpack API only, and nothing of theirs reaches
//! the network stack; nothing depends on `cli`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Kiln crates each crate may depend on (normal dependencies).
fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut m = BTreeMap::new();
    let mut put = |k: &'static str, v: &[&'static str]| {
        m.insert(k, v.iter().copied().collect::<BTreeSet<_>>());
    };
    put("kiln-oci", &[]);
    put("kiln-layer", &["kiln-oci"]);
    put("kiln-model", &["kiln-oci"]);
    put("kiln-registry", &["kiln-oci"]);
    put(
        "kiln-image",
        &["kiln-oci", "kiln-layer", "kiln-model", "kiln-registry"],
    );
    put("kiln-lifecycle", &["kiln-oci", "kiln-layer", "kiln-model"]);
    put(
        "kiln-debian",
        &["kiln-oci", "kiln-layer", "kiln-model", "kiln-image"],
    );
    put("kiln-attest", &["kiln-oci"]);
    put("kiln-buildpack-go", &["kiln-lifecycle"]);
    put("kiln-buildpack-java", &["kiln-lifecycle"]);
    put("kiln-buildpack-node", &["kiln-lifecycle"]);
    put(
        "kiln-cli",
        &[
            "kiln-oci",
            "kiln-layer",
            "kiln-model",
            "kiln-registry",
            "kiln-image",
            "kiln-lifecycle",
            "kiln-debian",
            "kiln-attest",
            "kiln-buildpack-go",
            "kiln-buildpack-java",
            "kiln-buildpack-node",
        ],
    );
    m
}

pub(crate) fn crates_depend_only_in_the_designed_direction() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(kiln_e2e::workspace_root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let allowed = allowed();
    let mut seen = BTreeSet::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        if name == "kiln-e2e" {
            continue;
        }
        seen.insert(name.to_string());
        let rules = allowed.get(name).unwrap_or_else(|| {
            panic!("crate `{name}` has no place in the dependency rules; add it")
        });
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let normal = dep["kind"].is_null();
            if dep_name.starts_with("kiln-") && normal {
                assert!(
                    rules.contains(dep_name),
                    "`{name}` depends on `{dep_name}`, against DESIGN.md's dependency direction"
                );
            }
            assert_ne!(
                dep_name, "kiln-cli",
                "nothing may depend on `kiln-cli` (`{name}` does)"
            );
        }
    }
    assert_eq!(seen.len(), allowed.len(), "workspace crates: {seen:?}");
}

/// Crates a buildpack may never reach: the network stack and its async runtime.
const NETWORK_CRATES: &[&str] = &["reqwest", "hyper", "hyper-util", "tokio", "rustls", "h2"];

/// The buildpack API is network-free: no buildpack crate reaches reqwest, hyper, tokio or
/// rustls, through its normal dependencies nor its dev-dependencies, however indirectly.
pub(crate) fn buildpacks_reach_no_network_crate() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(kiln_e2e::workspace_root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    // Edges per node: (dependency id, whether any of its kinds is normal or dev).
    let mut edges: BTreeMap<&str, Vec<(&str, bool, bool)>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"].as_array().unwrap();
        let list = deps
            .iter()
            .map(|d| {
                let kinds = d["dep_kinds"].as_array().unwrap();
                let kind = |k: &str| {
                    kinds.iter().any(|x| match x["kind"].as_str() {
                        None => k == "normal",
                        Some(s) => s == k,
                    })
                };
                (d["pkg"].as_str().unwrap(), kind("normal"), kind("dev"))
            })
            .collect();
        edges.insert(node["id"].as_str().unwrap(), list);
    }
    for buildpack in [
        "kiln-buildpack-go",
        "kiln-buildpack-java",
        "kiln-buildpack-node",
    ] {
        let root = name_of
            .iter()
            .find(|(_, n)| **n == buildpack)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("no package `{buildpack}`"));
        // The buildpack's own normal and dev dependencies, then theirs (normal) transitively.
        let mut path: BTreeMap<&str, &str> = BTreeMap::new();
        let mut todo: Vec<&str> = edges[root]
            .iter()
            .filter(|(_, normal, dev)| *normal || *dev)
            .map(|(id, _, _)| *id)
            .collect();
        for id in &todo {
            path.insert(id, buildpack);
        }
        while let Some(id) = todo.pop() {
            let name = name_of[id];
            assert!(
                !NETWORK_CRATES.contains(&name),
                "`{buildpack}` reaches `{name}` (through `{}`): the buildpack API must stay network-free",
                path[id]
            );
            for (dep, normal, _) in &edges[id] {
                if *normal && !path.contains_key(dep) {
                    path.insert(dep, name);
                    todo.push(dep);
                }
            }
        }
    }
}

/// Libraries never print and never read environment variables: the CLI resolves settings
/// and renders output (DESIGN.md §2).
pub(crate) fn libraries_neither_print_nor_read_the_environment() {
    let root = kiln_e2e::workspace_root();
    let forbidden = [
        "env::var",
        "env::vars",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "dbg!(",
    ];
    let mut offenders = Vec::new();
    for dir in [
        "builder/oci",
        "builder/layer",
        "builder/model",
        "builder/registry",
        "builder/image",
        "builder/lifecycle",
        "builder/debian",
        "builder/attest",
        "buildpacks/go",
        "buildpacks/java",
        "buildpacks/node",
    ] {
        let mut files = Vec::new();
        let mut stack = vec![root.join(dir).join("src")];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        let test_only = test_only_modules(&files);
        for path in files.iter().filter(|p| !test_only.contains(*p)) {
            let text = std::fs::read_to_string(path).unwrap();
            // Unit tests at the bottom of a file may use anything.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if forbidden.iter().any(|f| line.contains(f))
                    && !line.trim_start().starts_with("//")
                {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library code that prints or reads env:\n{}",
        offenders.join("\n")
    );
}

/// Returns the files of `files` that are modules declared `#[cfg(test)] mod name;` (unit
/// test code kept in a file of its own).
fn test_only_modules(files: &[std::path::PathBuf]) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        let dir = match path.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => path.parent().unwrap().to_path_buf(),
            _ => path.with_extension(""),
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]"
                && let Some(name) = pair[1]
                    .strip_prefix("mod ")
                    .and_then(|m| m.strip_suffix(';'))
            {
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    out
}
