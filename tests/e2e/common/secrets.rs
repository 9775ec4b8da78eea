//! Build-time secrets (RELIABILITY.md B02): a canary a test hands the build (a token in
//! `.npmrc`, a password in Maven's `settings.xml`, credentials in `--env`) must appear in
//! nothing kiln produced: no layer, no config (`Env`, labels, history), no SBOM, no cache
//! image, no output or report.

/// Panics naming the place when `canary` is in any of `texts` (`(what, text)`).
pub fn assert_absent(canary: &str, texts: &[(&str, &str)]) {
    for (what, text) in texts {
        assert!(
            !text.contains(canary),
            "the canary `{canary}` is in the {what}"
        );
    }
}

/// Returns whether `bytes` hold the ASCII `canary`. (Through `str::contains` on the valid
/// UTF-8 runs, std code shipped optimized: a byte-window search compiled in debug takes
/// seconds over a JDK.)
pub fn contains(bytes: &[u8], canary: &str) -> bool {
    debug_assert!(canary.is_ascii());
    // An ASCII match never spans an invalid byte.
    bytes.utf8_chunks().any(|c| c.valid().contains(canary))
}

/// Panics naming the file when `canary` is in one of `files` (path → bytes) of the `what`.
pub fn assert_not_in_files(files: &[(String, Vec<u8>)], canary: &str, what: &str) {
    for (path, bytes) in files {
        assert!(
            !contains(bytes, canary),
            "the canary `{canary}` is in {what} layer file `{path}`"
        );
    }
}

/// Panics when `canary` is in a layer file or the config (whose `Env`, labels and, when it
/// has layers, history are checked to be there) of the pushed image `reference`; `what`
/// names it in messages. Returns the image's files, for further checks.
pub fn assert_not_in_image(
    client: &kiln_registry::Client,
    reference: &str,
    canary: &str,
    what: &str,
) -> Vec<(String, Vec<u8>)> {
    let config = kiln_e2e::skopeo_inspect_config(&format!("docker://{reference}"), false);
    let layers = config["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
    assert!(
        config["config"]["Labels"].is_object() && (layers == 0 || config["history"].is_array()),
        "the {what}'s config has no labels or history: {config}"
    );
    assert_absent(
        canary,
        &[(&format!("{what}'s config"), &config.to_string())],
    );
    let files = super::layer_files(client, reference);
    assert_not_in_files(&files, canary, what);
    files
}

/// Panics when `canary` is in the SPDX or CycloneDX SBOM kiln attached to `pinned`.
pub fn assert_not_in_sboms(client: &kiln_registry::Client, pinned: &str, canary: &str) {
    for media_type in ["application/spdx+json", "application/vnd.cyclonedx+json"] {
        let sbom = super::attached_sbom(client, pinned, media_type);
        assert_absent(canary, &[(media_type, &String::from_utf8_lossy(&sbom))]);
    }
}

/// Panics when `canary` is in the cache image a `--report` says was pushed (its layers and
/// config), or when none was; validates that image and returns its files.
pub fn assert_not_in_cache_image(
    client: &kiln_registry::Client,
    report: &serde_json::Value,
    canary: &str,
) -> Vec<(String, Vec<u8>)> {
    let pushed = report["cache_image"]["pushed"]
        .as_str()
        .unwrap_or_else(|| panic!("no cache image was pushed: {report}"));
    super::validate_pushed(client, pushed);
    assert_not_in_image(client, pushed, canary, "cache image")
}
