//! Helpers of the Node.js end-to-end tests: reading `/dev` answers and reports.

/// Returns the paths of the files of a `/dev` answer (`name=path,…`) that lie in the app's
/// own tree: devDependencies the image ships (Debian's `nodejs` has some modules of its own
/// under `/usr/share/nodejs`, which are the base's, not the app's).
pub fn shipped_dev_dependencies(answer: &str) -> Vec<String> {
    answer
        .split(',')
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(_, p)| p.starts_with("/workspace"))
        })
        .map(str::to_owned)
        .collect()
}

/// Returns the layer bytes the push of a `--report` uploaded.
pub fn uploads(report: &serde_json::Value) -> u64 {
    report["push"]["uploaded_bytes"]
        .as_u64()
        .expect("a push report")
}

/// Returns the compressed size of layer `name` from a `--report`.
pub fn layer_size(report: &serde_json::Value, name: &str) -> u64 {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .and_then(|l| l["size"].as_u64())
        .unwrap_or_else(|| panic!("no layer `{name}` in {report}"))
}
