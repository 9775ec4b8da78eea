//! Multi-platform images: `FinalIndex`, and every sink and validator handed an index (OCI
//! layout, OCI archive read by `skopeo`, push to Debian's `docker-registry`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use kiln_e2e::{Registry, skopeo};
use kiln_image::{
    BlobOutcome, Blobs, ImageError, fetch_remote, push_image, read_layout, validate_layout,
    validate_layout_index, validate_remote, validate_remote_index, write_archive, write_layout,
};
use kiln_layer::{BlobStore, Compression};
use kiln_model::{FinalImage, FinalIndex, ModelError, Platform};
use kiln_oci::spec::Arch;
use kiln_oci::{Digest, canonical_json, media_types};
use serde_json::{Value, json};

use crate::common::{client, config, image, layer, noise, reference, store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An amd64 image and an arm64 (variant `v8`) image; both end with one shared layer, so
/// every sink has a blob to write only once.
fn platform_images(store: &BlobStore) -> (FinalImage, FinalImage) {
    let shared = layer(
        store,
        &[("usr/share/kiln/shared", noise(4 * 1024, 77))],
        Compression::Gzip,
    );
    let mut amd64 = image(store, 1);
    amd64.layers.push(shared.clone());
    let mut arm64 = image(store, 2);
    arm64.config = config(Arch::ARM64, "/workspace/bin/app");
    arm64.config.set_variant(Some("v8".to_string()));
    arm64.layers.push(shared);
    (amd64.finalize().unwrap(), arm64.finalize().unwrap())
}

fn platform(architecture: &str, variant: Option<&str>) -> Platform {
    Platform {
        os: "linux".to_string(),
        architecture: architecture.to_string(),
        variant: variant.map(str::to_string),
    }
}

/// Returns every blob a layout or archive of `index` must hold, each once.
fn expected_blobs(index: &FinalIndex) -> BTreeSet<String> {
    let mut want = BTreeSet::from([index.index_digest.hex().to_string()]);
    for (_, img) in &index.images {
        want.insert(img.manifest_digest.hex().to_string());
        want.insert(img.config_digest.hex().to_string());
        want.extend(img.layers.iter().map(|l| l.digest.hex().to_string()));
    }
    want
}

/// Returns `digests` as a JSON array of strings, as `skopeo inspect` lists them.
fn digests<'a>(digests: impl Iterator<Item = &'a Digest>) -> Value {
    json!(digests.map(Digest::to_string).collect::<Vec<_>>())
}

fn diff_ids(img: &FinalImage) -> Value {
    digests(img.layers.iter().map(|l| &l.diff_id))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs `skopeo ARGS...`, panicking with its stderr unless it succeeds; returns its stdout.
fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn final_index_is_canonical_ordered_and_refuses_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let (amd64, arm64) = platform_images(&s);
    let idx = FinalIndex::new(vec![amd64.clone(), arm64.clone()]).unwrap();

    let parsed: Value = serde_json::from_slice(&idx.index_bytes).unwrap();
    assert_eq!(canonical_json(&parsed).unwrap(), idx.index_bytes);
    assert!(!idx.index_bytes.contains(&b'\n'));
    assert_eq!(idx.index_digest, Digest::of(&idx.index_bytes));
    assert_eq!(
        parsed,
        json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media_types::OCI_MANIFEST,
                    "digest": amd64.manifest_digest.to_string(),
                    "size": amd64.manifest_bytes.len(),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": media_types::OCI_MANIFEST,
                    "digest": arm64.manifest_digest.to_string(),
                    "size": arm64.manifest_bytes.len(),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
            ],
        })
    );
    let listed: Vec<_> = idx
        .images
        .iter()
        .map(|(p, i)| (p.clone(), i.manifest_digest.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (platform("amd64", None), amd64.manifest_digest.clone()),
            (platform("arm64", Some("v8")), arm64.manifest_digest.clone()),
        ]
    );
    assert_eq!(idx.images[1].0.to_string(), "linux/arm64/v8");

    // The given order is the index order, and it is part of the digest.
    let swapped = FinalIndex::new(vec![arm64.clone(), amd64.clone()]).unwrap();
    let v: Value = serde_json::from_slice(&swapped.index_bytes).unwrap();
    assert_eq!(
        v["manifests"][0]["digest"],
        arm64.manifest_digest.to_string()
    );
    assert_eq!(
        v["manifests"][1]["digest"],
        amd64.manifest_digest.to_string()
    );
    assert_ne!(swapped.index_digest, idx.index_digest);

    // Deterministic: the same images built in another store give the same bytes.
    let other = tempfile::tempdir().unwrap();
    let (a2, b2) = platform_images(&store(other.path()));
    let again = FinalIndex::new(vec![a2, b2]).unwrap();
    assert_eq!(again.index_bytes, idx.index_bytes);
    assert_eq!(again.index_digest, idx.index_digest);

    // Two images of one platform cannot share an index, even with different contents.
    let other_amd64 = image(&s, 3).finalize().unwrap();
    assert_ne!(other_amd64.manifest_digest, amd64.manifest_digest);
    let err = FinalIndex::new(vec![amd64.clone(), arm64.clone(), other_amd64]).unwrap_err();
    assert!(
        matches!(err, ModelError::DuplicatePlatform { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("`linux/amd64`"), "{err}");
    let err = FinalIndex::new(vec![arm64.clone(), arm64.clone()]).unwrap_err();
    assert!(err.to_string().contains("`linux/arm64/v8`"), "{err}");
    // `arm64` without a variant is `arm64/v8`: runtimes could not tell the two apart.
    let mut plain_arm64 = image(&s, 4);
    plain_arm64.config = config(Arch::ARM64, "/workspace/bin/app");
    let plain_arm64 = plain_arm64.finalize().unwrap();
    let err = FinalIndex::new(vec![arm64.clone(), plain_arm64]).unwrap_err();
    assert!(
        matches!(err, ModelError::DuplicatePlatform { .. }),
        "{err:?}"
    );

    let err = FinalIndex::new(Vec::new()).unwrap_err();
    assert!(matches!(err, ModelError::EmptyIndex), "{err:?}");

    // A config that names no platform cannot be listed.
    let mut bare = amd64.clone();
    bare.config_bytes = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let err = FinalIndex::new(vec![bare]).unwrap_err();
    assert!(matches!(err, ModelError::NoPlatform), "{err:?}");
    assert!(err.to_string().contains("`architecture`"), "{err}");
}

#[tokio::test]
async fn layout_of_an_index_validates_and_reads_back_per_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let (amd64, arm64) = platform_images(blobs.store());
    let idx = FinalIndex::new(vec![amd64.clone(), arm64.clone()]).unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &idx, "multi", &blobs).await.unwrap();

    let top = read_json(&dir.join("index.json"));
    assert_eq!(
        top,
        json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": [{
                "mediaType": media_types::OCI_INDEX,
                "digest": idx.index_digest.to_string(),
                "size": idx.index_bytes.len(),
                "annotations": {REF_NAME: "multi"},
            }],
        })
    );

    // Exactly the blobs of the index, each named by the sha256 of its bytes.
    let blob_dir = dir.join("blobs/sha256");
    let mut found = BTreeSet::new();
    for e in std::fs::read_dir(&blob_dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert_eq!(
            Digest::of(&std::fs::read(blob_dir.join(&name)).unwrap()).hex(),
            name
        );
        found.insert(name);
    }
    assert_eq!(found, expected_blobs(&idx));
    assert_eq!(
        found.len(),
        1 + 2 + 2 + 5,
        "the shared layer is stored once"
    );
    assert_eq!(
        std::fs::read(blob_dir.join(idx.index_digest.hex())).unwrap(),
        idx.index_bytes
    );

    let v = validate_layout_index(&dir, "multi").unwrap();
    assert_eq!(v.index_digest, idx.index_digest);
    let checked: Vec<_> = v
        .images
        .iter()
        .map(|(p, i)| (p.clone(), i.manifest_digest.clone(), i.layers))
        .collect();
    assert_eq!(
        checked,
        vec![
            (platform("amd64", None), amd64.manifest_digest.clone(), 3),
            (
                platform("arm64", Some("v8")),
                arm64.manifest_digest.clone(),
                3
            ),
        ]
    );

    // Reading picks the platform's image; its layers land in a fresh store.
    let fresh = Blobs::new(store(&tmp.path().join("fresh")), None);
    let (img, digest) = read_layout(&dir, Some("multi"), ("linux", "arm64"), &fresh).unwrap();
    assert_eq!(digest, arm64.manifest_digest);
    assert_eq!(img.config.architecture().to_string(), "arm64");
    assert_eq!(img.config.variant().as_deref(), Some("v8"));
    assert_eq!(img.layers, arm64.layers);
    for l in &img.layers {
        assert!(fresh.store().contains(&l.digest));
    }
    assert_eq!(
        img.finalize().unwrap().manifest_digest,
        arm64.manifest_digest
    );
    let (img, digest) = read_layout(&dir, None, ("linux", "amd64"), &fresh).unwrap();
    assert_eq!(digest, amd64.manifest_digest);
    assert_eq!(img.finalize().unwrap().config_bytes, amd64.config_bytes);

    let err = read_layout(&dir, Some("multi"), ("linux", "s390x"), &fresh).unwrap_err();
    assert!(
        matches!(err, ImageError::Model(ModelError::NoImageFor { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    for want in ["`linux/s390x`", "linux/amd64", "linux/arm64/v8"] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }

    // A real OCI tool resolves the index in the layout per platform.
    let target = format!("oci:{}:multi", dir.display());
    let raw: Value = serde_json::from_slice(&skopeo_ok(&["inspect", "--raw", &target])).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let cfg: Value = serde_json::from_slice(&skopeo_ok(&[
        "--override-arch",
        "arm64",
        "inspect",
        "--config",
        &target,
    ]))
    .unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["rootfs"]["diff_ids"], diff_ids(&arm64));

    // Same inputs, another directory: the same bytes.
    let dir2 = tmp.path().join("layout2");
    write_layout(&dir2, &idx, "multi", &blobs).await.unwrap();
    assert_eq!(
        std::fs::read(dir2.join("index.json")).unwrap(),
        std::fs::read(dir.join("index.json")).unwrap()
    );

    // A single image under another name joins the index; both stay valid.
    let single = image(blobs.store(), 5).finalize().unwrap();
    write_layout(&dir, &single, "single", &blobs).await.unwrap();
    let top = read_json(&dir.join("index.json"));
    let mut entries: Vec<String> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {} {}",
                m["annotations"][REF_NAME], m["mediaType"], m["digest"]
            )
        })
        .collect();
    entries.sort();
    let entry = |name: &str, media_type: &str, digest: &Digest| {
        format!("\"{name}\" \"{media_type}\" \"{digest}\"")
    };
    assert_eq!(
        entries,
        vec![
            entry("multi", media_types::OCI_INDEX, &idx.index_digest),
            entry("single", media_types::OCI_MANIFEST, &single.manifest_digest),
        ]
    );
    assert_eq!(
        validate_layout_index(&dir, "multi").unwrap().index_digest,
        idx.index_digest
    );
    assert_eq!(
        validate_layout(&dir, "single").unwrap().manifest_digest,
        single.manifest_digest
    );
    assert_eq!(
        read_layout(&dir, Some("multi"), ("linux", "arm64"), &fresh)
            .unwrap()
            .1,
        arm64.manifest_digest
    );
    assert_eq!(
        read_layout(&dir, Some("single"), ("linux", "amd64"), &fresh)
            .unwrap()
            .1,
        single.manifest_digest
    );
    // A single image is not an index.
    let err = validate_layout_index(&dir, "single").unwrap_err();
    assert!(
        matches!(&err, ImageError::MediaType { media_type, expected: "an image index", .. }
            if media_type == media_types::OCI_MANIFEST),
        "{err:?}"
    );
}

/// Replaces the index blob named `multi` in the layout at `dir` with `index` (canonical),
/// and points `index.json` at it, as a hand edit of the layout would.
fn rewrite_index(dir: &Path, index: &Value) {
    let bytes = canonical_json(index).unwrap();
    let digest = Digest::of(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    let mut top = read_json(&dir.join("index.json"));
    let entry = &mut top["manifests"][0];
    assert_eq!(entry["annotations"][REF_NAME], "multi");
    entry["digest"] = json!(digest.to_string());
    entry["size"] = json!(bytes.len());
    std::fs::write(dir.join("index.json"), canonical_json(&top).unwrap()).unwrap();
}

#[tokio::test]
async fn validate_layout_index_catches_a_false_platform_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let (amd64, arm64) = platform_images(blobs.store());
    let idx = FinalIndex::new(vec![amd64, arm64]).unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &idx, "multi", &blobs).await.unwrap();
    validate_layout_index(&dir, "multi").unwrap();
    let original: Value = serde_json::from_slice(&idx.index_bytes).unwrap();

    // The arm64 image claimed as s390x.
    let mut index = original.clone();
    index["manifests"][1]["platform"] = json!({"os": "linux", "architecture": "s390x"});
    rewrite_index(&dir, &index);
    match validate_layout_index(&dir, "multi") {
        Err(ImageError::Mismatch {
            what,
            expected,
            found,
        }) => {
            assert_eq!(what, "index entry platform");
            assert_eq!(expected, "linux/s390x");
            assert_eq!(found, "linux/arm64/v8");
        }
        other => panic!("expected a platform mismatch, got {other:?}"),
    }

    // The two platform claims swapped: each entry still points at a valid image.
    let mut index = original.clone();
    let p0 = index["manifests"][0]["platform"].clone();
    index["manifests"][0]["platform"] = index["manifests"][1]["platform"].clone();
    index["manifests"][1]["platform"] = p0;
    rewrite_index(&dir, &index);
    match validate_layout_index(&dir, "multi") {
        Err(ImageError::Mismatch {
            what,
            expected,
            found,
        }) => {
            assert_eq!(what, "index entry platform");
            assert_eq!(expected, "linux/arm64/v8");
            assert_eq!(found, "linux/amd64");
        }
        other => panic!("expected a platform mismatch, got {other:?}"),
    }

    // An entry whose size disagrees with its manifest.
    let mut index = original.clone();
    index["manifests"][0]["size"] = json!(index["manifests"][0]["size"].as_u64().unwrap() + 1);
    rewrite_index(&dir, &index);
    assert!(matches!(
        validate_layout_index(&dir, "multi"),
        Err(ImageError::Mismatch {
            what: "index entry size",
            ..
        })
    ));

    // Restored by hand, it validates again; then a flipped byte in the index blob itself.
    rewrite_index(&dir, &original);
    validate_layout_index(&dir, "multi").unwrap();
    crate::common::flip_byte(&dir.join("blobs/sha256").join(idx.index_digest.hex()));
    assert!(matches!(
        validate_layout_index(&dir, "multi"),
        Err(ImageError::Mismatch { what: "blob", .. })
    ));
}

#[tokio::test]
async fn skopeo_reads_an_index_archive_per_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let (amd64, arm64) = platform_images(blobs.store());
    let idx = FinalIndex::new(vec![amd64.clone(), arm64.clone()]).unwrap();
    let path = tmp.path().join("multi.tar");
    write_archive(&path, &idx, "multi", &blobs).await.unwrap();

    // Each member once; exactly the index's blobs, named by their sha256.
    let mut members = BTreeMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&path).unwrap());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        assert!(
            members.insert(name.clone(), bytes).is_none(),
            "{name} twice"
        );
    }
    let mut found = BTreeSet::new();
    for (name, bytes) in &members {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::of(bytes).hex(), hex);
            found.insert(hex.to_string());
        }
    }
    assert_eq!(found, expected_blobs(&idx));
    let top: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    assert_eq!(
        top["manifests"],
        json!([{
            "mediaType": media_types::OCI_INDEX,
            "digest": idx.index_digest.to_string(),
            "size": idx.index_bytes.len(),
            "annotations": {REF_NAME: "multi"},
        }])
    );

    let target = format!("oci-archive:{}", path.display());
    let raw = skopeo_ok(&["inspect", "--raw", &target]);
    let raw: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        raw,
        serde_json::from_slice::<Value>(&idx.index_bytes).unwrap()
    );

    let cfg: Value = serde_json::from_slice(&skopeo_ok(&[
        "inspect",
        "--override-arch",
        "arm64",
        "--config",
        &target,
    ]))
    .unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["variant"], "v8");
    assert_eq!(cfg["rootfs"]["diff_ids"], diff_ids(&arm64));

    for (arch, img) in [("amd64", &amd64), ("arm64", &arm64)] {
        let v: Value = serde_json::from_slice(&skopeo_ok(&[
            "inspect",
            "--override-arch",
            arch,
            &format!("{target}:multi"),
        ]))
        .unwrap();
        assert_eq!(v["Architecture"], arch);
        assert_eq!(v["Layers"], digests(img.layers.iter().map(|l| &l.digest)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_an_index_fetch_each_platform_and_push_again() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let blobs = Blobs::new(store(&tmp.path().join("store")), Some(c.clone()));
    let (amd64, arm64) = platform_images(blobs.store());
    let idx = FinalIndex::new(vec![amd64.clone(), arm64.clone()]).unwrap();
    let target = reference(&reg, "team/multi:v1");

    let report = push_image(&c, &target, &idx, &blobs, &()).await.unwrap();
    assert_eq!(report.digest, idx.index_digest);
    // Every layer once (the shared one too), each uploaded whole.
    let mut unique: Vec<_> = amd64.layers.clone();
    unique.extend(arm64.layers.iter().take(2).cloned());
    assert_eq!(
        report.layers,
        unique
            .iter()
            .map(|l| (l.digest.clone(), BlobOutcome::Uploaded { bytes: l.size }))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        report.uploaded_bytes,
        unique.iter().map(|l| l.size).sum::<u64>()
    );

    // The tag resolves to the index, byte for byte; each platform manifest by digest.
    let top = c.get_manifest(&target, "v1").await.unwrap();
    assert_eq!(top.media_type, media_types::OCI_INDEX);
    assert_eq!(top.digest, idx.index_digest);
    assert_eq!(top.bytes, idx.index_bytes);
    for img in [&amd64, &arm64] {
        let m = c
            .get_manifest(&target, &img.manifest_digest.to_string())
            .await
            .unwrap();
        assert_eq!(m.media_type, media_types::OCI_MANIFEST);
        assert_eq!(m.bytes, img.manifest_bytes);
    }

    for r in [target.clone(), target.with_digest(idx.index_digest.clone())] {
        let v = validate_remote_index(&c, &r).await.unwrap();
        assert_eq!(v.index_digest, idx.index_digest);
        let checked: Vec<_> = v
            .images
            .iter()
            .map(|(p, i)| (p.clone(), i.manifest_digest.clone(), i.layers))
            .collect();
        assert_eq!(
            checked,
            vec![
                (platform("amd64", None), amd64.manifest_digest.clone(), 3),
                (
                    platform("arm64", Some("v8")),
                    arm64.manifest_digest.clone(),
                    3
                ),
            ]
        );
    }
    // One image's validator refuses the index rather than guessing a platform.
    let err = validate_remote(&c, &target).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::MediaType { media_type, .. } if media_type == media_types::OCI_INDEX),
        "{err:?}"
    );

    let (img, digest) = fetch_remote(&c, &target, "linux", "arm64").await.unwrap();
    assert_eq!(digest, arm64.manifest_digest);
    assert_eq!(img.config.variant().as_deref(), Some("v8"));
    assert_eq!(
        img.finalize().unwrap().manifest_digest,
        arm64.manifest_digest
    );
    let (_, digest) = fetch_remote(&c, &target, "linux", "amd64").await.unwrap();
    assert_eq!(digest, amd64.manifest_digest);
    let err = fetch_remote(&c, &target, "linux", "s390x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("linux/arm64/v8"), "{err}");

    // A real client resolves the pushed index per platform.
    let cfg: Value = serde_json::from_slice(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        "--config",
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["rootfs"]["diff_ids"], diff_ids(&arm64));

    let again = push_image(&c, &target, &idx, &blobs, &()).await.unwrap();
    assert_eq!(again.digest, idx.index_digest);
    assert_eq!(again.uploaded_bytes, 0);
    assert!(
        again
            .layers
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Existing),
        "{:?}",
        again.layers
    );
}
