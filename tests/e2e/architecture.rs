//! The dependency direction of DESIGN.md §2, enforced from `cargo metadata`:
//! `oci` ← `layer`, `registry` ← `image` ← `lifecycle` ← `cli`; buildpacks depend on the
//! lifecycle's Buildpack API only; nothing depends on `cli`.

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
    put("kiln-registry", &["kiln-oci"]);
    put("kiln-image", &["kiln-oci", "kiln-layer", "kiln-registry"]);
    put("kiln-lifecycle", &["kiln-oci", "kiln-layer", "kiln-image"]);
    put("kiln-debian", &["kiln-oci", "kiln-layer", "kiln-image"]);
    put("kiln-attest", &["kiln-oci"]);
    put("kiln-buildpack-go", &["kiln-lifecycle"]);
    put("kiln-buildpack-java", &["kiln-lifecycle"]);
    put("kiln-buildpack-node", &["kiln-lifecycle"]);
    put(
        "kiln-cli",
        &[
            "kiln-oci",
            "kiln-layer",
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
        "builder/registry",
        "builder/image",
        "builder/lifecycle",
        "builder/debian",
        "buildpacks/go",
        "buildpacks/java",
        "buildpacks/node",
    ] {
        let mut stack = vec![root.join(dir).join("src")];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
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
    }
    assert!(
        offenders.is_empty(),
        "library code that prints or reads env:\n{}",
        offenders.join("\n")
    );
}
