//! The real `kiln` binary killed in the middle of a push (RELIABILITY.md R12 b): the
//! registry keeps the blobs that made it, never sees a manifest, and the tag still names
//! the image it named before; a rerun skips what is there and moves the tag.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_e2e::{Registry, StallProxy, kiln_bin};
use kiln_oci::{Digest, Reference, media_types};

use crate::common::{self, Kiln, client, runtime, validate_pushed};

/// Returns how many blobs (layers, configs, manifests) the registry stores.
pub(crate) fn stored_blobs(registry: &Registry) -> usize {
    let mut n = 0;
    let mut stack = vec![registry.data_dir().join("docker/registry/v2/blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() == "data" {
                n += 1;
            }
        }
    }
    n
}

/// Pushes a one-layer image as `reference` with the registry client; returns its digest.
pub(crate) fn push_placeholder(reference: &Reference, dir: &Path) -> Digest {
    let c = client(None, None);
    let layer = kiln_e2e::noise(1000, 1);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    runtime().block_on(async {
        for bytes in [&layer[..], &config[..]] {
            let path = dir.join(Digest::of(bytes).hex());
            std::fs::write(&path, bytes).unwrap();
            let d = Digest::of(bytes);
            c.push_blob(reference, &d, bytes.len() as u64, &path, None, &|_| {})
                .await
                .unwrap();
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {"mediaType": media_types::OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
            "layers": [{"mediaType": media_types::OCI_LAYER_GZIP, "digest": Digest::of(&layer).to_string(), "size": layer.len()}],
        }))
        .unwrap();
        c.push_manifest(reference, "1", media_types::OCI_MANIFEST, &manifest)
            .await
            .unwrap()
    })
}

/// Returns the digest the registry's tag `1` of `reference` names.
pub(crate) fn tag_digest(reference: &Reference) -> Digest {
    runtime()
        .block_on(client(None, None).manifest_digest(reference, "1"))
        .unwrap()
}

/// R12 (b): `kiln build --publish` is SIGKILLed while its second blob upload hangs; the
/// tag still names the old image and no manifest went out; the rerun, with the same cache,
/// uploads only the blobs that are missing and moves the tag to a valid image.
pub(crate) fn r12_b_a_killed_push_leaves_the_tag_and_a_rerun_completes() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = common::warm_cache(&kiln, "cache");
    let target: Reference = registry.reference("team/app:1").parse().unwrap();
    let old = push_placeholder(&target, &kiln.ws.mkdir("placeholder"));
    let before = stored_blobs(&registry);
    let via = |port: u16| {
        registry
            .reference("team/app:1")
            .replace(&format!(":{}/", registry.port()), &format!(":{port}/"))
    };
    let build = |image: &str, report: &str| {
        let mut args = vec!["build", image, "--path", app.to_str().unwrap(), "--publish"];
        args.extend([
            "--no-sbom",
            "--no-provenance",
            "--cache-dir",
            cache.to_str().unwrap(),
        ]);
        args.extend(["--report", report]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    let proxy = StallProxy::stall_after(registry.port(), "PUT /v2/team/app/blobs/uploads/", 1);
    let killed_report = kiln.ws.join("killed.json");
    let mut child = Command::new(kiln_bin())
        .args(build(&via(proxy.port()), killed_report.to_str().unwrap()))
        .envs(&kiln.env)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stalled = proxy.wait_stalled(Duration::from_secs(180));
    // The first upload may still be streaming on its own connection: let it land, so the
    // kill leaves exactly one blob of the new image behind.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stalled && stored_blobs(&registry) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        stalled,
        "kiln never reached its second blob upload: {:#?}",
        proxy.requests()
    );
    let lines = proxy.requests();
    // (The push asks first whether the tag already names the image: a `HEAD`.)
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("/manifests/") && !l.starts_with("HEAD ")),
        "a manifest went out: {lines:#?}"
    );
    assert_eq!(tag_digest(&target), old, "the killed push moved the tag");
    assert_eq!(
        stored_blobs(&registry),
        before + 1,
        "exactly the first blob landed"
    );
    assert!(!killed_report.exists());

    let recorder = StallProxy::recording(registry.port());
    let report_path = kiln.ws.join("rerun.json");
    let args = build(&via(recorder.port()), report_path.to_str().unwrap());
    let pinned = kiln
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let digest: Digest = report["digest"].as_str().unwrap().parse().unwrap();
    let manifest = runtime()
        .block_on(client(None, None).get_manifest(&target, &digest.to_string()))
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let blobs = manifest["layers"].as_array().unwrap().len() + 1;
    let uploads = recorder
        .requests()
        .iter()
        .filter(|l| l.starts_with("PUT /v2/team/app/blobs/uploads/"))
        .count();
    assert_eq!(
        uploads,
        blobs - 1,
        "{blobs} blobs, one of them there already"
    );
    assert!(pinned.ends_with(&digest.to_string()), "{pinned}");
    assert_eq!(tag_digest(&target), digest);
    validate_pushed(&client(None, None), &registry.reference("team/app:1"));
}
