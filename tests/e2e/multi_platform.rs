//! Multi-platform app images (`kiln build --platform linux/amd64,linux/arm64`): one index
//! over one image per platform, cross-built on this machine without an emulator, checked
//! with skopeo, podman and qemu-user-static, and by the ELF headers of what each image
//! ships.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kiln_e2e::{
    Registry, ensure_containers_conf, free_port, skopeo, skopeo_inspect_raw, wait_http,
};

use crate::common::{self, Kiln, manifest_layers, run_web, tar_files};
use crate::supply_chain::Verifier;

/// The ELF `e_machine` of each architecture.
const MACHINES: &[(&str, u16)] = &[("amd64", 62), ("arm64", 183)];

/// Where Debian's qemu-user-static puts the AArch64 emulator.
const QEMU_AARCH64: &str = "/usr/bin/qemu-aarch64-static";

/// Builds `app` for amd64 and arm64 with `extra` flags and returns the pinned reference,
/// the report and what kiln said on stderr.
fn build_both(
    kiln: &Kiln,
    image: &str,
    app: &Path,
    cache: &Path,
    extra: &[&str],
) -> (String, serde_json::Value, String) {
    let report = kiln.ws.join(format!("report-{}.json", extra.len()));
    let mut args = vec![
        "build",
        image,
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--platform",
        "linux/amd64,linux/arm64",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = kiln.run_with(&args, None, &[("KILN_KEY_PASSWORD", "pw")]);
    let pinned = run.ok();
    let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (pinned, report, run.stderr)
}

/// Returns each platform entry of the pushed index `reference` as (architecture, digest),
/// as skopeo reads it; panics unless it is an OCI index.
fn index_entries(reference: &str) -> Vec<(String, String)> {
    let raw = skopeo_inspect_raw(reference, false);
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let arch = m["platform"]["architecture"].as_str().unwrap().to_owned();
            (arch, m["digest"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Copies the `arch` image of the pushed index `reference` into an OCI layout with skopeo
/// (`--override-arch`, as a client on that architecture picks it) and returns the files of
/// its layers.
fn files_of(reference: &str, arch: &str, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let layout = dir.join(format!("oci-{arch}"));
    let dest = format!("oci:{}:app", layout.display());
    let src = format!("docker://{reference}");
    let out = skopeo(&[
        "--override-arch",
        arch,
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        &src,
        &dest,
    ]);
    assert!(
        out.status.success(),
        "skopeo --override-arch {arch} copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["architecture"], arch, "skopeo took another image");
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let bytes = blob(layer["digest"].as_str().unwrap());
        files.extend(tar_files(&bytes, layer["mediaType"].as_str().unwrap()));
    }
    files
}

/// Returns the ELF `e_machine` of each ELF file among `files`.
fn elf_machines(files: &[(String, Vec<u8>)]) -> Vec<(String, u16)> {
    files
        .iter()
        .filter(|(_, data)| data.len() > 20 && data[..4] == *b"\x7fELF")
        .map(|(path, d)| {
            let machine = match d[5] {
                1 => u16::from_le_bytes([d[18], d[19]]),
                _ => u16::from_be_bytes([d[18], d[19]]),
            };
            (path.clone(), machine)
        })
        .collect()
}

/// Asserts that the `arch` image holds ELF files, every one of them for `arch`.
fn assert_all_elf_for(files: &[(String, Vec<u8>)], arch: &str) {
    let want = MACHINES.iter().find(|(a, _)| *a == arch).unwrap().1;
    let elves = elf_machines(files);
    assert!(!elves.is_empty(), "the {arch} image holds no ELF file");
    let wrong: Vec<_> = elves.iter().filter(|(_, m)| *m != want).collect();
    assert!(
        wrong.is_empty(),
        "{arch} image ships ELF files of another machine: {wrong:?}"
    );
}

/// Runs the arm64 `binary` under qemu-aarch64-static, directly (no binfmt), and returns
/// what `GET /` answers; the process is stopped by its PID.
fn answer_under_qemu(binary: &[u8], dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path: PathBuf = dir.join("app-arm64");
    std::fs::write(&path, binary).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port().to_string();
    let mut child = Command::new(QEMU_AARCH64)
        .arg(&path)
        .current_dir(dir)
        .env("PORT", &port)
        .env("HOST", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting qemu-aarch64-static");
    let answer = wait_http(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(60),
    );
    let _ = child.kill();
    let _ = child.wait();
    answer
}

/// Asserts that each image of the pushed index `image` carries its own provenance (at
/// cosign's `.att` tag of its digest), whose subject is that image and whose base is that
/// platform's run image, as the `report` lists them.
fn assert_provenance_per_image(image: &str, report: &serde_json::Value) {
    use base64::Engine as _;
    let client = common::client(None, None);
    let repo = image.rsplit_once(':').unwrap().0;
    let attached = report["supply"]["image_provenance"].as_array().unwrap();
    let platforms = report["platforms"].as_array().unwrap();
    assert_eq!(attached.len(), platforms.len(), "{report}");
    for (a, p) in attached.iter().zip(platforms) {
        let digest = p["digest"].as_str().unwrap();
        let tag = format!("{repo}:{}.att", digest.replace(':', "-"));
        assert_eq!(
            a["attached"]["tag"],
            tag.rsplit_once(':').unwrap().1,
            "{report}"
        );
        let manifest = skopeo_inspect_raw(&tag, false);
        assert_eq!(manifest["subject"]["digest"], digest, "{manifest}");
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let reference: kiln_oci::Reference = repo.parse().unwrap();
        let envelope = common::runtime()
            .block_on(client.get_blob_bytes(&reference, &layer.parse().unwrap(), 1 << 20))
            .unwrap();
        let envelope: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let hex = digest.strip_prefix("sha256:").unwrap();
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"], hex,
            "{statement}"
        );
        let base = p["run_image"]
            .as_str()
            .unwrap()
            .rsplit_once("@sha256:")
            .unwrap()
            .1;
        let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
        assert!(deps.contains(base), "{p}: the base is not in {deps}");
    }
}

/// A Go app for amd64 and arm64: one OCI index whose images hold only their own
/// architecture's ELF files; skopeo picks each, podman runs the amd64 one, qemu runs the
/// arm64 binary; the index from another checkout has the same digest.
pub(crate) fn go_app_is_one_index_of_images_cross_compiled_for_each_platform() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let registry = Registry::anonymous();
    let cache = common::warm_cache(&kiln, "cache");
    let app = kiln.fixture("go-web", "one/go-web");
    let image = registry.reference("team/go-multi:1");
    let cache_image = registry.reference("team/go-multi-cache:1");
    let with_cache = ["--cache-image", cache_image.as_str()];
    let key = crate::sandbox::generate_key(&kiln);
    let mut extra = vec!["--publish", "--sign-key", key.to_str().unwrap()];
    extra.extend(with_cache);
    let (pinned, report, _) = build_both(&kiln, &image, &app, &cache, &extra);

    let entries = index_entries(&image);
    let archs: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    assert!(
        pinned.ends_with(report["digest"].as_str().unwrap()),
        "{pinned}"
    );
    let platforms = report["platforms"].as_array().unwrap();
    let named: Vec<&str> = platforms
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["linux/amd64", "linux/arm64/v8"], "{report}");
    for ((_, digest), p) in entries.iter().zip(platforms) {
        assert_eq!(
            p["digest"],
            digest.as_str(),
            "the report's digest of each image"
        );
    }

    assert_provenance_per_image(&image, &report);

    // The index and each image are signed; a client that requires kiln's key (the
    // containers/image policy podman pulls with) takes the index by its tag.
    let signed: Vec<&str> = report["supply"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    let index_digest = report["digest"].as_str().unwrap();
    let mut want: Vec<&str> = vec![index_digest];
    want.extend(entries.iter().map(|(_, d)| d.as_str()));
    assert_eq!(signed, want, "{report}");
    let verifying = Verifier::new(&kiln, &registry, &key.with_extension("pub"));
    let (ok, _, err) = verifying.pull(&image, "pulled-signed");
    assert!(ok, "the policy refused the signed index: {err}");
    let inspected = kiln
        .run(&["inspect", &image, "--format", "json"])
        .ok_output();
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let listed: Vec<(String, String)> = inspected["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let arch = p["platform"].as_str().unwrap().split('/').nth(1).unwrap();
            (arch.to_owned(), p["digest"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(listed, entries, "kiln inspect lists the index's platforms");

    let dir = kiln.ws.join("pulled");
    std::fs::create_dir_all(&dir).unwrap();
    let amd = files_of(&image, "amd64", &dir);
    let arm = files_of(&image, "arm64", &dir);
    assert_all_elf_for(&amd, "amd64");
    assert_all_elf_for(&arm, "arm64");

    // The amd64 image runs here; the arm64 binary runs under the emulator, no binfmt.
    assert!(run_web(&image, &[], &["/"]).0[0].contains("hello from kiln"));
    if Path::new(QEMU_AARCH64).exists() {
        let (_, binary) = elf_machines(&arm)
            .into_iter()
            .find(|(_, m)| *m == 183)
            .and_then(|(path, _)| arm.iter().find(|(p, _)| *p == path).cloned())
            .unwrap();
        let answer = answer_under_qemu(&binary, &dir);
        assert!(answer.contains("hello from kiln"), "{answer}");
    } else {
        eprintln!("{QEMU_AARCH64} is missing: the arm64 binary was checked by its ELF header only");
    }

    // Another checkout of the same source, in a fresh pod whose cache comes from the cache
    // image (both platforms' linked binaries): the same index, saved locally this time.
    let other = kiln.fixture("go-web", "two/elsewhere/go-web");
    let fresh = common::warm_cache(&kiln, "fresh-cache");
    let archive = kiln.ws.join("go-multi.tar");
    let mut extra = with_cache.to_vec();
    extra.extend(["--output", archive.to_str().unwrap()]);
    let (again, second, _) = build_both(&kiln, "team/go-multi:1", &other, &fresh, &extra);
    let raw = skopeo_inspect_raw(&format!("oci-archive:{}", archive.display()), false);
    assert_eq!(
        raw,
        skopeo_inspect_raw(&image, false),
        "the archive holds the same index"
    );
    let cache = &second["cache_image"];
    assert!(cache["restored"].to_string().contains("linked"), "{cache}");
    assert_eq!(cache["problems"], serde_json::json!([]), "{cache}");
    assert_eq!(
        again.rsplit_once('@').unwrap().1,
        report["digest"].as_str().unwrap(),
        "the same source gave another index from another checkout"
    );
}

/// Returns the digests of the app layers of each platform in a `--report`, by layer name.
fn layers_by_platform(report: &serde_json::Value) -> Vec<Vec<(String, String)>> {
    report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let name = l["name"].as_str().unwrap().to_owned();
                    (name, l["digest"].as_str().unwrap().to_owned())
                })
                .collect()
        })
        .collect()
}

/// Returns how many uploads of the blob `digest` the registry's access log shows (the
/// `PUT …?digest=` that completes each upload).
fn uploads_of(log: &str, digest: &str) -> usize {
    let hex = digest.strip_prefix("sha256:").unwrap();
    log.lines()
        .filter(|l| l.contains("\"PUT ") && l.contains("/blobs/uploads/") && l.contains(hex))
        .count()
}

/// Node apps for amd64 and arm64 on a base published for both: without native code the
/// layers are built once and the very same blobs (uploaded once) serve both images; with
/// prebuilt binaries in optional platform packages each image gets its platform's; an
/// addon node-gyp would have to compile for arm64 is refused, naming its package.
pub(crate) fn node_apps_share_their_layers_across_platforms_unless_they_hold_native_code() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let registry = Registry::builder().access_log().start();
    let both = "linux/amd64,linux/arm64";
    let base = common::publish_base(&registry, "node", both, false, "v1");
    let cache = common::warm_cache(&kiln, "cache");
    let run_image = ["--run-image", base.as_str(), "--publish"];

    let express = kiln.fixture("node-express", "express");
    let image = registry.reference("team/express:1");
    let (_, report, _) = build_both(&kiln, &image, &express, &cache, &run_image);
    let layers = layers_by_platform(&report);
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0], layers[1],
        "both platforms' app layers are the same blobs"
    );
    assert!(
        layers[0].iter().any(|(name, _)| name == "node_modules"),
        "{layers:?}"
    );
    let log = registry.log();
    for (name, digest) in &layers[0] {
        assert_eq!(
            uploads_of(&log, digest),
            1,
            "layer {name} ({digest}) uploads"
        );
    }
    assert_eq!(index_entries(&image).len(), 2);

    // The platform team's v2 base: `kiln rebase` moves each platform's image onto v2's
    // image of that platform, and the app layers stay the very same blobs.
    let v2 = common::publish_base(&registry, "node", both, true, "v2");
    let cache_dir = kiln.ws.join("rebase-cache");
    let rebased = kiln.run(&[
        "rebase",
        &image,
        "--publish",
        "--cache-dir",
        cache_dir.to_str().unwrap(),
    ]);
    assert_eq!(rebased.code, 0, "{}", rebased.stderr);
    let v2_images = index_entries(&v2);
    let app_layers: Vec<&str> = layers[0].iter().map(|(_, d)| d.as_str()).collect();
    for (arch, digest) in index_entries(&image) {
        let repo = image.rsplit_once(':').unwrap().0;
        let got = manifest_layers(&format!("{repo}@{digest}"));
        let (_, base_digest) = v2_images.iter().find(|(a, _)| *a == arch).unwrap();
        let v2_repo = v2.rsplit_once(':').unwrap().0;
        let base_layers = manifest_layers(&format!("{v2_repo}@{base_digest}"));
        assert_eq!(
            got[..base_layers.len()],
            base_layers[..],
            "{arch} is on v2's {arch}"
        );
        assert_eq!(
            got[base_layers.len()..],
            app_layers[..],
            "{arch} keeps the app layers"
        );
    }
    assert_eq!(run_web(&image, &[], &["/"]).0[0], "hello from express");

    let prebuilt = kiln.fixture("node-prebuilt", "prebuilt");
    let image = registry.reference("team/prebuilt:1");
    let (_, report, _) = build_both(&kiln, &image, &prebuilt, &cache, &run_image);
    let layers = layers_by_platform(&report);
    let modules = |i: usize| layers[i].iter().find(|(n, _)| n == "node_modules").cloned();
    assert_ne!(
        modules(0),
        modules(1),
        "each platform has its own node_modules"
    );
    let dir = kiln.ws.join("pulled");
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = "workspace/node_modules/@node-rs/";
    for (arch, own, other) in [
        ("amd64", "crc32-linux-x64-gnu", "crc32-linux-arm64-gnu"),
        ("arm64", "crc32-linux-arm64-gnu", "crc32-linux-x64-gnu"),
    ] {
        let files = files_of(&image, arch, &dir);
        assert!(
            files
                .iter()
                .any(|(p, _)| p.starts_with(&format!("{prefix}{own}/")) && p.ends_with(".node")),
            "the {arch} image lacks {own}"
        );
        assert!(
            !files
                .iter()
                .any(|(p, _)| p.starts_with(&format!("{prefix}{other}/"))),
            "the {arch} image ships {other}"
        );
        assert_all_elf_for(&files, arch);
    }
    assert_eq!(
        run_web(&image, &[], &["/"]).0[0],
        "crc32:3911661381 arch:x64"
    );

    let addon = kiln.fixture("node-addon", "addon");
    let refused = kiln.run(&[
        "build",
        "local/addon:1",
        "--path",
        addon.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--run-image",
        &base,
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for words in [
        "kiln-hello-addon",
        "is `arm64`",
        "prebuilt binaries for `arm64`",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
}

/// The JNI jar the Java test adds: native code for x86-64 only.
const EPOLL_JAR: &str = "netty-transport-native-epoll-4.2.18.Final-linux-x86_64.jar";

/// A Java app for amd64 and arm64 on a JRE base published for both: its layers are built
/// once and both images reference the very same blobs, uploaded once; the jar with JNI
/// libraries for x86-64 only is named for the arm64 image.
pub(crate) fn java_layers_are_built_once_and_shared_by_every_platform() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let registry = Registry::builder().access_log().start();
    let base = common::publish_base(&registry, "java17", "linux/amd64,linux/arm64", false, "1");
    let cache = common::warm_cache(&kiln, "cache");
    let app = kiln.fixture("java-multi", "java");
    let pom = app.join("server/pom.xml");
    let text = std::fs::read_to_string(&pom).unwrap();
    let epoll = "<dependencies>\n    <dependency>\n      <groupId>io.netty</groupId>\n      <artifactId>netty-transport-native-epoll</artifactId>\n      <version>4.2.18.Final</version>\n      <classifier>linux-x86_64</classifier>\n    </dependency>";
    let with = text.replacen("<dependencies>", epoll, 1);
    assert_ne!(with, text, "the fixture's pom moved; update this test");
    std::fs::write(&pom, with).unwrap();

    let image = registry.reference("team/java-multi:1");
    let extra = ["--run-image", base.as_str(), "--publish"];
    let (_, report, stderr) = build_both(&kiln, &image, &app, &cache, &extra);
    assert!(
        stderr.contains("one build serves all 2 platforms"),
        "{stderr}"
    );
    let layers = layers_by_platform(&report);
    assert_eq!(
        layers[0], layers[1],
        "both platforms' app layers are the same blobs"
    );
    let log = registry.log();
    for (name, digest) in &layers[0] {
        assert_eq!(
            uploads_of(&log, digest),
            1,
            "layer {name} ({digest}) uploads"
        );
    }
    let entries = index_entries(&image);
    assert_eq!(entries.len(), 2);
    assert_ne!(entries[0].1, entries[1].1, "each platform has its own JRE");
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(EPOLL_JAR) && l.contains("native libraries"))
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("linux/arm64") && warned[0].contains("amd64 only"),
        "{stderr}"
    );
    let dir = kiln.ws.join("pulled");
    std::fs::create_dir_all(&dir).unwrap();
    // The JRE's own ELF files are arm64's; the jar's x86-64 library stays inside its jar.
    assert_all_elf_for(&files_of(&image, "arm64", &dir), "arm64");
    assert_eq!(
        run_web(&image, &[], &["/"]).0[0],
        "hello Kiln from a kiln multi-module app"
    );
}
