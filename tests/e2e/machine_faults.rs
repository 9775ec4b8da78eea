//! RELIABILITY.md C06: what the machine does to a run. An interrupt mid-push cancels the
//! upload sessions at the registry, leaves the tag and exits 130; a disk that fills up in
//! the middle of a layer, and a read-only cache dir, fail with exit 52 naming the cause,
//! leaving no partial file under a final name, and a rerun on a sound disk succeeds.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_e2e::{Registry, StallProxy, http_get, kiln_bin};
use kiln_oci::Reference;

use crate::common::{self, Kiln};
use crate::faults_push::{push_placeholder, tag_digest};

/// C06: `kiln build --publish` gets SIGINT while its blob uploads hang: it exits 130, sends
/// a `DELETE` for each open upload session (the registry then no longer knows them), pushes
/// no manifest, and the tag still names the image it named before.
pub(crate) fn c06_an_interrupted_push_cancels_its_upload_sessions_and_leaves_the_tag() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = common::warm_cache(&kiln, "cache");
    let target: Reference = registry.reference("team/app:1").parse().unwrap();
    let old = push_placeholder(&target, &kiln.ws.mkdir("placeholder"));
    let proxy = StallProxy::stall_after(registry.port(), "PUT /v2/team/app/blobs/uploads/", 1);
    let image = registry.reference("team/app:1").replace(
        &format!(":{}/", registry.port()),
        &format!(":{}/", proxy.port()),
    );
    let child = Command::new(kiln_bin())
        .args([
            "build",
            &image,
            "--path",
            app.to_str().unwrap(),
            "--publish",
        ])
        .args([
            "--no-sbom",
            "--no-provenance",
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .envs(&kiln.env)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stalled = proxy.wait_stalled(Duration::from_secs(180));
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stalled,
        "kiln never reached its second blob upload: {stderr}"
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the interrupt took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("interrupted"), "{stderr}");

    let lines = proxy.requests();
    let cancelled: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("DELETE /v2/team/app/blobs/uploads/"))
        .collect();
    // The uploads run side by side: each one the proxy holds has its session cancelled.
    assert!(
        !cancelled.is_empty(),
        "no upload session was cancelled: {lines:#?}"
    );
    for line in cancelled {
        let session = line.split_whitespace().nth(1).unwrap();
        let after = http_get(&format!("http://{}{session}", registry.host())).unwrap();
        assert_eq!(after.status, 404, "the registry still knows {session}");
    }
    // (The push asks first whether the tag already names the image: a `HEAD`.)
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("/manifests/") && !l.starts_with("HEAD ")),
        "a manifest went out: {lines:#?}"
    );
    assert_eq!(
        tag_digest(&target),
        old,
        "the interrupted push moved the tag"
    );
    assert_no_temp_files(&cache.join("oci/blobs/sha256"));
}

/// C06: the store's file system fills up while the app layer is written, then the cache
/// dir is read-only: each build fails with exit 52, the cause named, a hint, no file left
/// half-written under a final name; the same build on a sound cache dir then succeeds.
/// The small and the read-only file systems are tmpfs mounts in a user and mount namespace
/// of the test's own (`unshare`), so nothing outside the test changes.
pub(crate) fn c06_a_full_disk_mid_layer_and_a_read_only_cache_fail_cleanly() {
    let kiln = Kiln::new();
    let app = kiln.fixture("go-web", "src/app");
    let cache = common::warm_cache(&kiln, "cache");
    let build = format!(
        "{} build local/app:1 --path {} --cache-dir {} --no-sbom",
        kiln_bin().display(),
        app.display(),
        cache.display()
    );
    // The app layer is several MiB: a 1 MiB store fills up in the middle of it.
    let script = format!(
        "set -u
         mkdir -p {cache}/oci
         mount -t tmpfs -o size=1m tmpfs {cache}/oci || exit 99
         {build} 2>&1; echo \"full-rc=$?\"
         echo \"left: $(ls -A {cache}/oci/blobs/sha256 | tr '\\n' ' ')\"
         umount {cache}/oci
         mount -t tmpfs -o ro tmpfs {cache} || exit 99
         {build} 2>&1; echo \"ro-rc=$?\"",
        cache = cache.display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .envs(&kiln.env)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(
        out.status.code(),
        Some(99),
        "no tmpfs in a user namespace here: {text}"
    );
    assert!(text.contains("full-rc=52"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("hint: the disk is full"), "{text}");
    let left = text
        .lines()
        .find_map(|l| l.strip_prefix("left: "))
        .unwrap_or_default();
    for name in left.split_whitespace() {
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "`{name}` was left in the full store: {text}"
        );
    }
    assert!(text.contains("ro-rc=52"), "{text}");
    assert!(
        text.contains("--cache-dir"),
        "the hint names the cache dir: {text}"
    );

    // Outside the namespace the cache dir is the sound one it was: the build succeeds.
    let run = kiln.run(&[
        "build",
        "local/app:1",
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--no-sbom",
    ]);
    run.ok();
}

/// Asserts that `dir` holds no temp file of kiln's.
fn assert_no_temp_files(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(kiln_layer::TEMP_PREFIX),
            "`{name}` is left in `{}`",
            dir.display()
        );
    }
}
