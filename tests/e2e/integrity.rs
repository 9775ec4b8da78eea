//! kiln's local store never ships a bad byte (RELIABILITY.md W09): a blob that rotted in
//! the cache between builds is found out before it is reused, written out or pushed.

use std::path::Path;

use crate::common;
use crate::common::{Kiln, client, reuse, validate_pushed};
use kiln_e2e::{Registry, skopeo_copy};

/// Flips one byte in the middle of blob `digest` (`sha256:…`) of the store `layout`. The
/// file is replaced, not written through: it may be a hardlink into the suite's bases.
fn flip_a_byte(layout: &Path, digest: &str) {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

/// Returns the digest of layer `name` from a `--report`.
fn layer_digest(report: &serde_json::Value, name: &str) -> String {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .and_then(|l| l["digest"].as_str())
        .unwrap_or_else(|| panic!("no layer `{name}` in {report}"))
        .to_owned()
}

/// W09: one flipped byte in a cached app layer: the next local build notices, removes the
/// blob, writes the layer again (same digest: the build is reproducible) and says so; the
/// OCI layout and the `--output` archive it writes copy cleanly with skopeo (which checks
/// every digest), and a publish after another flip pushes good bytes. One flipped byte in a
/// base layer kiln cannot rebuild stops the build, naming the blob, writing nothing out.
pub(crate) fn w09_a_rotten_blob_in_the_store_is_never_shipped() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = common::cache_with_base(&kiln, "cache", "static");
    let layout = cache.join("oci");
    let app = kiln.fixture("go-web", "src/go-web");
    let build = |report: &str, extra: &[&str]| {
        let report = kiln.ws.join(report);
        let mut args = vec![
            "build",
            "local/w09:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = kiln.run(&args);
        let report = std::fs::read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        (run, report)
    };
    let (first, r1) = build("r1.json", &[]);
    let digest = first.digest();
    let r1 = r1.unwrap();
    let app_layer = layer_digest(&r1, "app");

    flip_a_byte(&layout, &app_layer);
    let archive = kiln.ws.join("w09.tar");
    let (second, r2) = build("r2.json", &["--output", archive.to_str().unwrap()]);
    assert_eq!(
        second.digest(),
        digest,
        "the layer was written again, the same"
    );
    assert!(
        second.stderr.contains(&format!(
            "the stored blob `{app_layer}` of layer `app` no longer matched its digest"
        )),
        "{}",
        second.stderr
    );
    let r2 = r2.unwrap();
    assert_eq!(
        reuse(&r2),
        [("workspace".to_owned(), true), ("app".to_owned(), false)]
    );
    for source in [
        format!("oci:{}:local/w09:1", layout.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        // skopeo checks every digest as it copies, and panics with its words if one is off.
        let dest = kiln.ws.join(format!("copy-{}", source.len()));
        skopeo_copy(&source, &format!("dir:{}", dest.display()));
    }

    flip_a_byte(&layout, &app_layer);
    let image = registry.reference("team/w09:1");
    let published = kiln.run(&[
        "build",
        &image,
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--publish",
    ]);
    let pinned = published.ok();
    assert_eq!(pinned.rsplit_once('@').unwrap().1, digest);
    assert!(
        published.stderr.contains("no longer matched its digest"),
        "{}",
        published.stderr
    );
    validate_pushed(&client(None, None), &pinned);

    // A base layer (the static base in the store, which an app build cannot rebuild).
    let base = common::bases::image(&layout, "static");
    let base_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(base.manifest_digest.hex())).unwrap(),
    )
    .unwrap();
    let base_layer = base_manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    flip_a_byte(&layout, &base_layer);
    let (refused, _) = build("r4.json", &[]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&base_layer) && refused.stderr.contains("did not match its digest"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    assert!(
        !layout
            .join("blobs/sha256")
            .join(base_layer.trim_start_matches("sha256:"))
            .exists(),
        "the rotten blob is still in the store"
    );
}
