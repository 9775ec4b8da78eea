//! `kiln base lock | update | build` against the machine's configured Debian mirror, a real
//! registry and podman: the `static` golden base, and a Go app running on it.

use std::path::Path;
use std::time::Duration;

use crate::common;
use crate::common::bases;
use crate::common::{Kiln, client, label_json, validate_pushed_index};
use kiln_e2e::{
    Registry, ensure_containers_conf, free_port, http_get, skopeo_inspect_config, wait_http,
};
use kiln_image::Validated;

/// Copies the definitions these tests build, with the keyrings, into `dir`.
fn definitions(kiln: &Kiln, dir: &str) -> std::path::PathBuf {
    kiln.golden_definitions(dir, &["static", "base", "node"])
}

pub(crate) fn static_golden_base_locks_builds_reproducibly_and_runs_a_go_app() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = common::warm_cache(&kiln, "cache");
    let cache = cache.to_str().unwrap();

    // Lock against the signed archive, then update: nothing changed in between.
    let defs = definitions(&kiln, "one/golden-base");
    let def = defs.join("static.toml");
    let lock = kiln.run(&["base", "lock", def.to_str().unwrap()]);
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let lockfile = std::fs::read_to_string(defs.join("static.lock")).unwrap();
    for pkg in [
        "name = \"ca-certificates\"",
        "name = \"tzdata\"",
        "name = \"netbase\"",
        "name = \"base-files\"",
    ] {
        assert!(
            lockfile.contains(pkg),
            "`{pkg}` missing from the lock:\n{lockfile}"
        );
    }
    assert!(
        !lockfile.contains("name = \"libc6\""),
        "static has no libc:\n{lockfile}"
    );
    let update = kiln.run(&["base", "update", def.to_str().unwrap()]);
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert!(
        update.stderr.contains("no package changed"),
        "{}",
        update.stderr
    );

    // Build twice from different directories: same digest. Publish the first.
    let image = registry.reference("golden/static:13");
    let pinned = kiln
        .run(&[
            "base",
            "build",
            def.to_str().unwrap(),
            "--publish",
            &image,
            "--cache-dir",
            cache,
        ])
        .ok();
    let other = definitions(&kiln, "two/elsewhere");
    std::fs::copy(defs.join("static.lock"), other.join("static.lock")).unwrap();
    let local = kiln
        .run(&[
            "base",
            "build",
            other.join("static.toml").to_str().unwrap(),
            "--cache-dir",
            kiln.ws.mkdir("cache2").to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        pinned.rsplit_once('@').unwrap().1,
        local.rsplit_once('@').unwrap().1,
        "same lock, same digest"
    );

    // The Go stack's default run image is the curated static base once it is in kiln's store.
    let cache2 = kiln.ws.join("cache2");
    let app_dir = kiln.fixture("go-multi", "stacked");
    kiln.run(&[
        "build",
        "local/stacked:1",
        "--path",
        app_dir.to_str().unwrap(),
        "--process",
        "api",
        "--cache-dir",
        cache2.to_str().unwrap(),
    ])
    .ok();
    let stacked = kiln_image::validate_layout(&cache2.join("oci"), "local/stacked:1").unwrap();
    let stacked = serde_json::to_value(&stacked.config).unwrap();
    let run_image = label_json(&stacked, "io.buildpacks.lifecycle.metadata")["runImage"].clone();
    assert_eq!(run_image["image"], "kiln-base/static");

    // The lock has amd64 and arm64, so the base is an index of both; the app runs on (and
    // records) the amd64 image.
    let client = client(None, None);
    let index = validate_pushed_index(&client, &pinned);
    let platforms: Vec<String> = index.images.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    let validated = index.images[0].1.clone();
    assert_eq!(
        run_image["reference"],
        validated.manifest_digest.to_string()
    );
    let arm64 = serde_json::to_value(&index.images[1].1.config).unwrap();
    assert_eq!(arm64["architecture"], "arm64");
    assert_eq!(arm64["variant"], "v8");
    let index_ref = pinned.clone();
    let pinned = format!(
        "{}@{}",
        pinned.rsplit_once('@').unwrap().0,
        validated.manifest_digest
    );
    let config = serde_json::to_value(&validated.config).unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["io.buildpacks.rebasable"], "true");
    assert_eq!(labels["io.buildpacks.base.distro.name"], "debian");
    let files: Vec<String> = common::layer_files(&client, &pinned)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for f in [
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/zoneinfo/Asia/Seoul",
        "etc/os-release",
        "etc/passwd",
        "var/lib/dpkg/status.d/tzdata",
        "var/lib/dpkg/status.d/ca-certificates",
    ] {
        assert!(
            files.iter().any(|p| p == f || p.ends_with(f)),
            "`{f}` missing: {files:?}"
        );
    }

    // A Go app on it: CA bundle and time zones work, and it runs as nonroot.
    let app = kiln.fixture("go-web", "app");
    let app_image = registry.reference("app-on-static:1");
    let app_pinned = kiln
        .run(&[
            "build",
            &app_image,
            "--path",
            app.to_str().unwrap(),
            "--run-image",
            &index_ref,
            "--publish",
            "--cache-dir",
            cache,
        ])
        .ok();
    let app_config = skopeo_inspect_config(&format!("docker://{app_pinned}"), false);
    let lifecycle = label_json(&app_config, "io.buildpacks.lifecycle.metadata");
    assert_eq!(
        lifecycle["runImage"]["reference"],
        pinned.rsplit_once('@').unwrap().1
    );
    let podman = common::suite::podman();
    podman.pull(&app_pinned, false);
    let port = free_port().to_string();
    let ctr = podman.run_detached(&app_pinned, &["-e", &format!("PORT={port}")]);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/"), Duration::from_secs(30));
    let certs: usize = http_get(&format!("{base}/certs"))
        .unwrap()
        .text()
        .trim()
        .parse()
        .unwrap();
    assert!(
        certs > 100,
        "the system pool should hold Debian's CA bundle, got {certs}"
    );
    assert_eq!(
        http_get(&format!("{base}/tz?name=Asia/Seoul"))
            .unwrap()
            .text()
            .trim(),
        "+0900"
    );
    assert_eq!(ctr.process_uid(), 65532);
}

/// `base` = `static` + glibc and libssl: it reuses `static`'s layers byte for byte, and its
/// dynamic loader resolves libssl's dependencies inside the image. syft lists exactly the
/// locked Debian packages of both. (Built from the committed locks: locking is the static
/// test's subject.)
pub(crate) fn base_golden_base_shares_static_layers_and_runs_glibc() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let stat = bases::diff_ids("static", "amd64");
    let base = bases::diff_ids("base", "amd64");
    assert_eq!(
        base.len(),
        stat.len() + 1,
        "base adds one package layer: {base:?}"
    );
    assert_eq!(
        &base[..2],
        &stat[..2],
        "merged-usr and static's packages are shared"
    );
    assert_eq!(base.last(), stat.last(), "the generated layer is shared");
    for name in ["static", "base"] {
        bases::assert_syft_matches_lock(&kiln, name);
    }

    let podman = common::suite::podman();
    // podman names an OCI archive's image after its ref.name (`oci:DIR` would derive a name
    // from the directory, which podman refuses when it has capitals, as temp dirs do).
    podman.load(&bases::archive("base"));
    let image = "localhost/kiln-base/base".to_string();
    let out = podman.run_once(
        &image,
        &[
            "/lib64/ld-linux-x86-64.so.2",
            "--list",
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("libc.so.6 =>") && stdout.contains("libcrypto.so.3 =>"),
        "{stdout}"
    );
}

/// `node` = `base` + Debian's Node.js: `node -e` runs as nonroot, with OpenSSL's crypto, on
/// `base`'s layers; syft lists exactly its locked Debian packages.
pub(crate) fn node_golden_base_runs_node() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let base = bases::diff_ids("base", "amd64");
    let node = bases::diff_ids("node", "amd64");
    assert_eq!(node.len(), base.len() + 1);
    assert_eq!(&node[..3], &base[..3], "node sits on base's layers");
    let lock = std::fs::read_to_string(bases::committed_lock("node")).unwrap();
    assert!(
        lock.contains("name = \"nodejs\"") && !lock.contains("name = \"npm\""),
        "{lock}"
    );
    bases::assert_syft_matches_lock(&kiln, "node");

    let podman = common::suite::podman();
    podman.load(&bases::archive("node"));
    let script = "console.log(process.getuid(), require('crypto').createHash('sha256').update('kiln').digest('hex'))";
    let out = podman.run_once("localhost/kiln-base/node", &["/usr/bin/node", "-e", script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("65532 {}", kiln_oci::Digest::of(b"kiln").hex());
    assert_eq!(stdout.trim(), expected);
}

/// `--platform` picks architectures of the lock: `base` for arm64 alone (and for amd64 alone)
/// is byte for byte the arm64 (amd64) entry of the amd64+arm64 index, its glibc is AArch64
/// code under the arm64 multiarch path, and `java17` resolves `{arch}` to arm64 paths in its
/// links and environment.
pub(crate) fn arm64_bases_build_from_the_same_locks() {
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("golden-base", &["static", "base"]);
    kiln.committed_locks(&defs, &["static", "base"]);
    let multi = kiln.ws.mkdir("multi");
    bases::share_deb_cache(&multi);
    let both = kiln
        .run(&[
            "base",
            "build",
            defs.join("base.toml").to_str().unwrap(),
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-dir",
            multi.to_str().unwrap(),
        ])
        .ok();
    let index = kiln_image::validate_layout_index(&multi.join("oci"), "kiln-base/base")
        .expect("a valid index");
    assert_eq!(
        index.index_digest.to_string(),
        both.rsplit_once('@').unwrap().1
    );
    // The suite's per-platform builds of the same lock (`--platform linux/<arch>` each).
    for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
        assert_eq!(
            index.images[i].1.manifest_digest,
            bases::image(&bases::store("base", arch), "base").manifest_digest,
            "the {arch} image does not depend on which other platforms are built"
        );
    }

    let store = bases::store("base", "arm64");
    let arm = bases::image(&store, "base");
    let config = serde_json::to_value(&arm.config).unwrap();
    assert_eq!(config["architecture"], "arm64");
    let files = store_files(&store, &arm);
    let libc = files
        .iter()
        .find(|(p, _)| p == "usr/lib/aarch64-linux-gnu/libc.so.6")
        .unwrap_or_else(|| panic!("no arm64 libc in {:?}", names(&files)));
    // ELF e_machine (little endian, offset 18): 183 is EM_AARCH64.
    assert_eq!(&libc.1[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([libc.1[18], libc.1[19]]), 183);
    assert!(
        !files.iter().any(|(p, _)| p.contains("x86_64")),
        "amd64 files in the arm64 image: {:?}",
        names(&files)
    );

    let store = bases::store("java17", "arm64");
    let java = bases::image(&store, "java17");
    let config = serde_json::to_value(&java.config).unwrap();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"JAVA_HOME=/usr/lib/jvm/java-17-openjdk-arm64"),
        "{env:?}"
    );
    let links = store_symlinks(&store, &java);
    let target = &links
        .iter()
        .find(|(p, _)| p == "usr/bin/java")
        .expect("a /usr/bin/java link")
        .1;
    assert_eq!(target, "/usr/lib/jvm/java-17-openjdk-arm64/bin/java");
    let files = store_files(&store, &java);
    assert!(
        files
            .iter()
            .any(|(p, _)| p == "usr/lib/jvm/java-17-openjdk-arm64/bin/java"),
        "the link's target is in the image"
    );
}

/// Returns the regular files of every layer (from kiln's store) of the image `validated`.
fn store_files(store: &Path, validated: &Validated) -> Vec<(String, Vec<u8>)> {
    layer_blobs(store, validated)
        .iter()
        .flat_map(|blob| common::tar_files(blob, "gzip"))
        .collect()
}

/// Returns the symlinks (path, target) of every layer of the image `validated`.
fn store_symlinks(store: &Path, validated: &Validated) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for blob in layer_blobs(store, validated) {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.header().entry_type().is_symlink() {
                let path = entry.path().unwrap().display().to_string();
                let target = entry.link_name().unwrap().unwrap().display().to_string();
                out.push((path, target));
            }
        }
    }
    out
}

/// Returns the compressed layer blobs of the image `validated`, read from the layout `store`.
fn layer_blobs(store: &Path, validated: &Validated) -> Vec<Vec<u8>> {
    let blob = |hex: &str| std::fs::read(store.join("blobs/sha256").join(hex)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(validated.manifest_digest.hex())).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(&l["digest"].as_str().unwrap()["sha256:".len()..]))
        .collect()
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(p, _)| p.as_str()).collect()
}

/// A lock remembers what its definition asked for: adding a package to the definition without
/// relocking stops `kiln base build` before it downloads anything, with the command to run.
pub(crate) fn a_stale_lock_is_refused() {
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("golden-base", &["static"]);
    kiln.committed_locks(&defs, &["static"]);
    let def = defs.join("static.toml");
    let text = std::fs::read_to_string(&def).unwrap();
    let edited = text.replace("\"tzdata\"]", "\"tzdata\", \"libc6\"]");
    assert_ne!(edited, text, "the package list moved; update this test");
    std::fs::write(&def, edited).unwrap();
    let cache = kiln.ws.mkdir("cache");
    let out = kiln.run(&[
        "base",
        "build",
        def.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("static.lock` is stale"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("kiln base update"),
        "the hint names the fix: {}",
        out.stderr
    );
    assert!(
        !cache.join("debian").exists(),
        "nothing was downloaded before the refusal"
    );
}
