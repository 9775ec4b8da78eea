//! `kiln rebase` against a real registry: Go, Java and Node apps built on golden bases v1
//! move to v2 (the same lock plus `/etc/kiln-base-v2`) with only configs and manifests
//! uploaded, and still run under podman; refusals keep the old tag; a multi-arch app is
//! rebased per platform; a rebase killed before its tag is pushed leaves the old image.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::{
    Kiln, client, manifest_layers, run_web, runtime, validate_pushed, validate_pushed_index,
};
use kiln_e2e::{Registry, StallProxy, ensure_containers_conf, kiln_bin, skopeo_inspect_raw};

/// Publishes golden base `base` (v1 or v2) as `bases/<base>:<tag>`: `static` and `node` as
/// indexes of amd64 and arm64 (as the curated bases are published), `java17` amd64 only.
fn publish_base(registry: &Registry, base: &str, v2: bool, tag: &str) -> String {
    let platform = match base {
        "java17" => "linux/amd64",
        _ => "linux/amd64,linux/arm64",
    };
    common::publish_base(registry, base, platform, v2, tag)
}

/// Returns `repo@digest` of the `arch` image of the index `reference`, or `reference` itself
/// when it is a single image.
fn platform_ref(reference: &str, arch: &str) -> String {
    let raw = skopeo_inspect_raw(reference, false);
    let Some(entries) = raw["manifests"].as_array() else {
        return reference.to_owned();
    };
    let digest = entries
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("`{reference}` has no {arch} image"))["digest"]
        .as_str()
        .unwrap();
    let repo = match reference.rsplit_once('@') {
        Some((repo, _)) => repo,
        None => reference.rsplit_once(':').map_or(reference, |(r, _)| r),
    };
    format!("{repo}@{digest}")
}

/// Builds fixture `fixture` on `run_image` and pushes it as `image`; returns the pinned name.
fn build_app(kiln: &Kiln, fixture: &str, image: &str, run_image: &str) -> String {
    let app = kiln.fixture(fixture, &format!("src/{fixture}"));
    let cache = common::warm_cache(kiln, &format!("cache-{fixture}"));
    kiln.run(&[
        "build",
        image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--run-image",
        run_image,
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .ok()
}

/// Returns the layer digests of `reference` (its amd64 image, for an index).
fn layers(reference: &str) -> Vec<String> {
    manifest_layers(&platform_ref(reference, "amd64"))
}

/// Returns the digest the registry's tag points to.
fn tag_digest(reference: &str) -> String {
    let raw = kiln_e2e::skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{reference}"),
    ]);
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    String::from_utf8_lossy(&raw.stdout).trim().to_owned()
}

/// Returns the blobs the registry stores (layers, configs and manifests alike): path → size.
fn stored_blobs(registry: &Registry) -> std::collections::BTreeMap<std::path::PathBuf, u64> {
    let mut blobs = std::collections::BTreeMap::new();
    let mut stack = vec![registry.data_dir().join("docker/registry/v2/blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() == "data" {
                blobs.insert(entry.path(), entry.metadata().unwrap().len());
            }
        }
    }
    blobs
}

fn rebase(kiln: &Kiln, args: &[&str]) -> common::Run {
    let mut all = vec!["rebase", "--cache-dir"];
    let cache = kiln.ws.join("rebase-cache");
    all.push(cache.to_str().unwrap());
    all.extend_from_slice(args);
    kiln.run(&all)
}

/// The headline: three apps, three bases, one call. Each app's tag moves to an image whose
/// layers are v2's, then the app's own (same digests); the registry stores two blobs more
/// per app, a config and a manifest (R17 (d): v2's layers are mounted from `bases/*`, no
/// layer byte is uploaded); each runs and sees v2's file. A second call finds them up to date.
pub(crate) fn r17_d_go_java_and_node_apps_move_to_base_v2_uploading_only_configs_and_manifests() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let apps = [
        ("static", "go-web"),
        ("java17", "java-plain"),
        ("node", "node-express"),
    ];
    let mut images = Vec::new();
    for (base, fixture) in apps {
        let v1 = publish_base(&registry, base, false, "v1");
        publish_base(&registry, base, true, "v2");
        let image = registry.reference(&format!("team/{fixture}:1"));
        build_app(&kiln, fixture, &image, &v1);
        images.push(image);
    }
    let before: Vec<Vec<String>> = images.iter().map(|i| layers(i)).collect();
    let blobs = stored_blobs(&registry);

    // A dry run says what would change and writes nothing.
    let mut dry: Vec<&str> = images.iter().map(String::as_str).collect();
    dry.extend(["--publish", "--dry-run"]);
    let run = rebase(&kiln, &dry);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("would rebase").count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(stored_blobs(&registry), blobs);
    assert_eq!(images.iter().map(|i| layers(i)).collect::<Vec<_>>(), before);

    let report = kiln.ws.join("rebase.json");
    let mut args: Vec<&str> = images.iter().map(String::as_str).collect();
    args.extend(["--publish", "--report", report.to_str().unwrap()]);
    let run = rebase(&kiln, &args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for header in ["IMAGE", "OLD BASE", "NEW BASE", "RESULT"] {
        assert!(run.stdout.contains(header), "{}", run.stdout);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for (entry, (base, _)) in report.as_array().unwrap().iter().zip(apps) {
        assert_eq!(entry["result"], "rebased", "{entry}");
        assert_eq!(entry["uploaded_bytes"], 0, "{entry}");
        assert!(
            entry["new_base"]
                .as_str()
                .unwrap()
                .contains(&format!("bases/{base}:v2")),
            "{entry}"
        );
    }
    let after = stored_blobs(&registry);
    let new: Vec<u64> = after
        .iter()
        .filter(|(path, _)| !blobs.contains_key(*path))
        .map(|(_, size)| *size)
        .collect();
    assert_eq!(new.len(), 6, "one config and one manifest per app: {new:?}");
    assert!(
        new.iter().all(|size| *size < 64 * 1024),
        "no layer among them: {new:?}"
    );

    let client = client(None, None);
    let podman = common::suite::podman();
    for ((image, old), (base, fixture)) in images.iter().zip(&before).zip(apps) {
        validate_pushed(&client, image);
        let v1_layers = layers(&registry.reference(&format!("bases/{base}:v1")));
        let mut want = layers(&registry.reference(&format!("bases/{base}:v2")));
        want.extend(old[v1_layers.len()..].iter().cloned());
        assert_eq!(
            layers(image),
            want,
            "{fixture}: v2's layers, then the app's, unchanged"
        );
        podman.pull(image, false);
        assert_eq!(
            podman.read_file(image, "/etc/kiln-base-v2"),
            b"v2\n",
            "{fixture}"
        );
        match fixture {
            "java-plain" => {
                let out = podman.run_once(image, &[]);
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "plain ok Kiln");
            }
            "go-web" => assert!(run_web(image, &[], &["/"]).0[0].contains("hello from kiln")),
            _ => assert_eq!(run_web(image, &[], &["/"]).0[0], "hello from express"),
        }
    }

    let again = rebase(&kiln, &[&images[0], &images[1], &images[2], "--publish"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout.matches("up to date").count(),
        3,
        "{}",
        again.stdout
    );
}

/// Pushes a copy of `pinned` whose config is changed by `edit`, as `target` (configs pass
/// through the blob store at `store`).
fn push_edited(
    store: &Path,
    pinned: &str,
    target: &str,
    edit: impl FnOnce(&mut kiln_model::Image),
) {
    let client = client(None, None);
    runtime().block_on(async {
        let from: kiln_oci::Reference = pinned.parse().unwrap();
        let (mut image, _) = kiln_image::fetch_remote(&client, &from, "linux", "amd64")
            .await
            .unwrap();
        edit(&mut image);
        let fin = image.finalize().unwrap();
        let blobs = blobs(store, &client);
        kiln_image::push_image(&client, &target.parse().unwrap(), &fin, &blobs, &())
            .await
            .unwrap();
    });
}

fn blobs(store: &Path, client: &kiln_registry::Client) -> kiln_image::Blobs {
    let store = kiln_layer::BlobStore::open(store).unwrap();
    kiln_image::Blobs::new(store, Some(client.clone()))
}

fn set_label(image: &mut kiln_model::Image, key: &str, value: String) {
    let mut exec = image.config.config().clone().unwrap();
    let mut labels = exec.labels().clone().unwrap_or_default();
    labels.insert(key.to_owned(), value);
    exec.set_labels(Some(labels));
    image.config.set_config(Some(exec));
}

/// R17: each refusal is exit 72 with its reason, and the app's tag stays where it was:
/// another base id (allowed with `--force`), another architecture (c), an image marked
/// unrebasable, one whose recorded base is not its layers' prefix or not its old run image
/// (a), and a crafted base whose history names more layers than it has (b).
pub(crate) fn r17_refusals_name_their_reason_and_leave_the_tag() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let static_v1 = publish_base(&registry, "static", false, "v1");
    let node_v1 = publish_base(&registry, "node", false, "v1");
    let arm = platform_ref(&static_v1, "arm64");
    let image = registry.reference("team/go:1");
    let pinned = build_app(&kiln, "go-web", &image, &static_v1);
    let digest = tag_digest(&image);
    let refused = |args: &[&str], reason: &str| {
        let mut all = vec![image.as_str(), "--publish"];
        all.extend_from_slice(args);
        let run = rebase(&kiln, &all);
        assert_eq!(run.code, 72, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(reason),
            "`{reason}` missing:\n{}",
            run.stderr
        );
        assert_eq!(tag_digest(&image), digest, "a refusal moved the tag");
        run
    };
    let other = refused(
        &["--run-image", &node_v1],
        "base id is `kiln/node`, the app's `kiln/static`",
    );
    assert!(other.stderr.contains("--force"), "{}", other.stderr);
    refused(&["--run-image", &arm], "architecture is `arm64");

    let crafted = |name: &str, edit: &dyn Fn(&mut kiln_model::Image)| {
        let target = registry.reference(&format!("team/{name}:1"));
        push_edited(&kiln.ws.join("store"), &pinned, &target, edit);
        target
    };
    let unrebasable = crafted("unrebasable", &|i| {
        set_label(i, "io.buildpacks.rebasable", "false".into())
    });
    let run = rebase(
        &kiln,
        &[
            &unrebasable,
            "--publish",
            "--force",
            "--run-image",
            &static_v1,
        ],
    );
    assert_eq!(run.code, 72, "{}", run.stderr);
    assert!(run.stderr.contains("rebasable=false"), "{}", run.stderr);
    let not_prefix = crafted("not-prefix", &|i| {
        let foreign = "sha256:".to_owned() + &"ab".repeat(32);
        set_label(
            i,
            "io.buildpacks.lifecycle.metadata",
            format!("{{\"runImage\":{{\"topLayer\":\"{foreign}\"}}}}"),
        )
    });
    let run = rebase(
        &kiln,
        &[
            &not_prefix,
            "--publish",
            "--force",
            "--run-image",
            &static_v1,
        ],
    );
    assert_eq!(run.code, 72, "{}", run.stderr);
    assert!(run.stderr.contains("not a prefix"), "{}", run.stderr);
    // R17 (a): the run image it records (here the node base's digest), read again, is not its
    // bottom: refused naming the first mismatching layer, even forced, the tag unmoved.
    let node_digest = tag_digest(&node_v1);
    let not_based = crafted("not-based", &|i| {
        let labels = i.config.config().clone().unwrap().labels().clone().unwrap();
        let mut meta: serde_json::Value =
            serde_json::from_str(&labels["io.buildpacks.lifecycle.metadata"]).unwrap();
        meta["runImage"]["reference"] = node_digest.clone().into();
        meta["runImage"]["image"] = node_v1.clone().into();
        set_label(i, "io.buildpacks.lifecycle.metadata", meta.to_string())
    });
    let before = tag_digest(&not_based);
    let run = rebase(
        &kiln,
        &[
            &not_based,
            "--publish",
            "--force",
            "--run-image",
            &static_v1,
        ],
    );
    assert_eq!(run.code, 72, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the image is not based on its old run image (layer "),
        "{}",
        run.stderr
    );
    assert_eq!(tag_digest(&not_based), before);

    let ghost = registry.reference("bases/static:ghost");
    push_edited(&kiln.ws.join("store"), &static_v1, &ghost, |i| {
        let mut history = i.config.history().clone().unwrap();
        history.push(history[0].clone());
        i.config.set_history(Some(history));
    });
    refused(&["--run-image", &ghost], "its history describes");

    // Several images at once: the bad one fails, the good one is rebased, exit 72.
    publish_base(&registry, "static", true, "v2");
    let run = rebase(&kiln, &[&image, &unrebasable, "--publish"]);
    assert_eq!(run.code, 72, "{}", run.stderr);
    assert!(run.stdout.contains("rebased"), "{}", run.stdout);
    assert!(run.stderr.contains("1 of 2 images"), "{}", run.stderr);
    assert!(
        run.stdout.contains("rebasable=false"),
        "the table says why: {}",
        run.stdout
    );
    assert_ne!(tag_digest(&image), digest);

    // --force puts the Go app on the node base; the static binary still runs there.
    let forced = rebase(
        &kiln,
        &[&image, "--publish", "--force", "--run-image", &node_v1],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(run_web(&image, &[], &["/"]).0[0].contains("hello from kiln"));
}

/// An app index (the Node app on the amd64 and the arm64 node base, v1) is rebased platform
/// by platform onto v2's index; the new index keeps both platforms.
pub(crate) fn a_multi_arch_app_is_rebased_per_platform() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let v1 = publish_base(&registry, "node", false, "v1");
    let v2 = publish_base(&registry, "node", true, "v2");
    let amd = build_app(
        &kiln,
        "node-express",
        &registry.reference("team/web-amd64:1"),
        &platform_ref(&v1, "amd64"),
    );
    let arm = build_app(
        &kiln,
        "node-yarn-classic",
        &registry.reference("team/web-arm64:1"),
        &platform_ref(&v1, "arm64"),
    );
    let app = registry.reference("team/web:1");
    let client = client(None, None);
    runtime().block_on(async {
        let mut images = Vec::new();
        for pinned in [&amd, &arm] {
            let r: kiln_oci::Reference = pinned.parse().unwrap();
            let (image, _) = kiln_image::fetch_remote(&client, &r, "linux", "amd64")
                .await
                .unwrap();
            images.push(image.finalize().unwrap());
        }
        let index = kiln_model::FinalIndex::new(images).unwrap();
        let blobs = blobs(&kiln.ws.join("store"), &client);
        kiln_image::push_image(&client, &app.parse().unwrap(), &index, &blobs, &())
            .await
            .unwrap();
    });
    let run = rebase(&kiln, &[&app, "--publish"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let validated = validate_pushed_index(&client, &app);
    assert_eq!(validated.images.len(), 2);
    for arch in ["amd64", "arm64"] {
        let got = manifest_layers(&platform_ref(&app, arch));
        let base = manifest_layers(&platform_ref(&v2, arch));
        assert_eq!(got[..base.len()], base[..], "{arch}: on v2's {arch} image");
    }
    assert_eq!(run_web(&app, &[], &["/"]).0[0], "hello from express");
}

/// R17 (e): a rebase killed while its tag push hangs: the config and the platform's layers
/// were in place, the tag was not moved, and the old image still runs.
pub(crate) fn r17_e_a_killed_rebase_leaves_the_old_tag() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let v1 = publish_base(&registry, "node", false, "v1");
    let v2 = publish_base(&registry, "node", true, "v2");
    let image = registry.reference("team/express:1");
    build_app(&kiln, "node-express", &image, &v1);
    let digest = tag_digest(&image);

    let proxy = StallProxy::start(registry.port(), "PUT /v2/team/express/manifests/1 ");
    let via = |r: &str| {
        r.replace(
            &format!(":{}/", registry.port()),
            &format!(":{}/", proxy.port()),
        )
    };
    let mut child = Command::new(kiln_bin())
        .args([
            "rebase",
            &via(&image),
            "--publish",
            "--run-image",
            &via(&v2),
            "--cache-dir",
        ])
        .arg(kiln.ws.join("rebase-cache"))
        .envs(&kiln.env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stalled = proxy.wait_stalled(Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        stalled,
        "kiln never pushed the tag; requests: {:?}",
        proxy.requests()
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT") && r.contains("/blobs/uploads/")),
        "the config was uploaded before the tag: {:?}",
        proxy.requests()
    );
    assert_eq!(
        tag_digest(&image),
        digest,
        "the killed rebase moved the tag"
    );
    assert_eq!(run_web(&image, &[], &["/"]).0[0], "hello from express");
}
