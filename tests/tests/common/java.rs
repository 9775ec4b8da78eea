//! Helpers of the Java end-to-end tests.

use std::path::{Path, PathBuf};

use super::Kiln;

/// Builds the committed lock of golden base `base` (`java17`, `java21`) into the store of a
/// new cache dir `name` (as `kiln-base/<base>`, what the Java stack runs on) and returns it.
pub fn cache_with_base(kiln: &Kiln, name: &str, base: &str) -> PathBuf {
    // The definitions a base builds on (`java21` = `base` + OpenJDK, `base` = `static` + ...).
    let chain: &[&str] = match base {
        "java21" => &["static", "base", "java21"],
        other => &[other],
    };
    let defs = kiln.golden_definitions(&format!("{name}-defs"), chain);
    kiln.committed_locks(&defs, chain);
    let cache = kiln.ws.mkdir(name);
    kiln.run(&[
        "base",
        "build",
        defs.join(format!("{base}.toml")).to_str().unwrap(),
        "--platform",
        "linux/amd64",
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .ok();
    cache
}

/// Runs `kiln build IMAGE --path APP --publish --cache-dir CACHE --report DIR/REPORT` and
/// returns the pinned reference and the report.
pub fn publish(
    kiln: &Kiln,
    image: &str,
    app: &Path,
    cache: &Path,
    report: &str,
) -> (String, serde_json::Value) {
    let path = kiln.ws.join(report);
    let run = kiln.run(&[
        "build",
        image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--report",
        path.to_str().unwrap(),
    ]);
    let pinned = run.ok();
    let report = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (pinned, report)
}

/// Layer name → reused, from a `--report`.
pub fn reuse(report: &serde_json::Value) -> Vec<(String, bool)> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["reused"].as_bool().unwrap(),
            )
        })
        .collect()
}
