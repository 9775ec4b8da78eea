//! `--cache-image` across fresh build pods: each pod starts without the buildpack's cache,
//! restores it from the registry, builds, and pushes the cache back.

use std::path::Path;

use crate::common::Kiln;
use crate::common::caches::share_downloads;
use kiln_e2e::Registry;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Go's build cache in a cache image, pod after pod: a one-line change uploads the few
/// build-cache files it added as a part of their own (plus the new binary the link cache
/// keeps), not the whole build cache; an unchanged build uploads no cache byte and pushes
/// the same cache image.
pub(crate) fn a_code_change_uploads_only_the_cache_entries_it_added() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = kiln.ws.mkdir("cache");
    let image = registry.reference("pods/app:1");
    let cache_image = registry.reference("pods/app-cache:main");
    let go = cache.join("buildpacks/kiln-go");
    // A fresh pod: no Go build cache (the module downloads stay shared, as links, which
    // no cache image holds).
    let pod = |report: &str| {
        let _ = std::fs::remove_dir_all(&go);
        share_downloads(&cache);
        std::fs::remove_file(go.join("go-build")).unwrap();
        let report = kiln.ws.join(report);
        kiln.run(&[
            "build",
            &image,
            "--path",
            app.to_str().unwrap(),
            "--publish",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--cache-image",
            &cache_image,
            "--report",
            report.to_str().unwrap(),
        ])
        .ok();
        json(&report)
    };
    let cache_layers = |report: &serde_json::Value| -> Vec<(String, u64)> {
        let pushed = report["cache_image"]["pushed"].as_str().unwrap();
        let manifest = kiln_e2e::skopeo_inspect_raw(pushed, false);
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().unwrap().to_owned();
                (digest, l["size"].as_u64().unwrap())
            })
            .collect()
    };

    let cold = pod("cold.json");
    let cold_layers = cache_layers(&cold);
    let cold_bytes = cold["cache_image"]["uploaded_bytes"].as_u64().unwrap();
    assert!(cold_bytes > 8 << 20, "Go's build cache was packed: {cold}");

    let main = app.join("main.go");
    let code = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        code.replace("hello from kiln", "hello from kiln, changed"),
    )
    .unwrap();
    let changed = pod("changed.json");
    assert!(
        changed["cache_image"]["restored"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "go-build"),
        "{changed}"
    );
    let changed_layers = cache_layers(&changed);
    let uploaded = changed["cache_image"]["uploaded_bytes"].as_u64().unwrap();
    let biggest = cold_layers.iter().max_by_key(|(_, size)| *size).unwrap();
    assert!(
        changed_layers.contains(biggest),
        "the cold build cache is still one unchanged layer: {changed_layers:?}\ncold: {cold_layers:?}"
    );
    assert!(
        uploaded * 2 < cold_bytes && uploaded < biggest.1 / 2,
        "a one-line change uploaded {uploaded} of {cold_bytes} cache bytes: {changed_layers:?}\ncold: {cold_layers:?}"
    );

    let unchanged = pod("unchanged.json");
    assert_eq!(unchanged["cache_image"]["uploaded_bytes"], 0, "{unchanged}");
    assert_eq!(
        unchanged["cache_image"]["pushed"], changed["cache_image"]["pushed"],
        "an unchanged build pushes the same cache image"
    );
    eprintln!("cache image: cold {cold_bytes} B; one-line change {uploaded} B; unchanged 0 B");
}
