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

/// Panics when `canary` is in a layer file or the config (whose `Env`, labels and history
/// are checked to be there) of the pushed image `reference`; `what` names it in messages.
/// Returns the image's files, for further checks.
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
    for (path, bytes) in &files {
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "the canary `{canary}` is in {what} layer file `{path}`"
        );
    }
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
/// config), or when none was; returns that image's files.
pub fn assert_not_in_cache_image(
    client: &kiln_registry::Client,
    report: &serde_json::Value,
    canary: &str,
) -> Vec<(String, Vec<u8>)> {
    let pushed = report["cache_image"]["pushed"]
        .as_str()
        .unwrap_or_else(|| panic!("no cache image was pushed: {report}"));
    assert_not_in_image(client, pushed, canary, "cache image")
}
