//! Pushes and pulls that meet faults, against Debian's `docker-registry` (behind a
//! `StallProxy` where the fault is the network's): manifest-last and the atomic tag
//! (RELIABILITY.md R12), size checks before a push (R13), smuggled bytes in a layer (R14 e),
//! Docker layer types in an OCI manifest (R15 e), and references and layout blobs refused
//! before use (C05).

use std::io::Write as _;

use kiln_e2e::{Registry, StallProxy};
use kiln_image::{
    BlobOutcome, Blobs, ImageError, fetch_remote, push_image, read_layout, validate_layout,
    validate_remote, write_layout,
};
use kiln_layer::{Compression, extract_layer};
use kiln_model::{FinalImage, FinalIndex};
use kiln_oci::spec::Arch;
use kiln_oci::{Digest, Reference, media_types};
use kiln_registry::Client;

use crate::common::{chain, client, config, image, layer, noise, reference, store};

/// `reference` with its registry port swapped for `port` (to go through a proxy).
fn via(reference: &Reference, port: u16) -> Reference {
    let host = reference.registry().rsplit_once(':').unwrap().0;
    let tag = reference.tag().map(|t| format!(":{t}")).unwrap_or_default();
    format!("{host}:{port}/{}{tag}", reference.repository())
        .parse()
        .unwrap()
}

/// Returns the digests of `fin`'s blobs: layers, then config.
fn blobs_of(fin: &FinalImage) -> Vec<Digest> {
    let mut all: Vec<Digest> = fin.layers.iter().map(|l| l.digest.clone()).collect();
    all.push(fin.config_digest.clone());
    all
}

/// R12 (a): the connection breaks for good after 2 of 5 blobs: the push fails naming a
/// blob, no manifest was sent, the tag still names the old image; a rerun finds the 2
/// blobs with HEAD, uploads only the 3 others, and moves the tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_a_a_push_cut_after_k_of_n_blobs_leaves_the_tag_and_a_rerun_completes() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let blobs = Blobs::new(store(&tmp.path().join("store")), Some(c.clone()));
    let target = reference(&reg, "team/app:1");
    let old = image(blobs.store(), 100).finalize().unwrap();
    push_image(&c, &target, &old, &blobs, &()).await.unwrap();

    let mut new = image(blobs.store(), 1);
    for seed in [2, 3] {
        let extra = layer(
            blobs.store(),
            &[("extra", noise(32 * 1024, seed))],
            Compression::Gzip,
        );
        new.layers.push(extra);
    }
    let new = new.finalize().unwrap();
    let proxy = StallProxy::close_after(reg.port(), "PUT /v2/team/app/blobs/uploads/", 2);
    let err = push_image(&c, &via(&target, proxy.port()), &new, &blobs, &())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        blobs_of(&new)
            .iter()
            .any(|d| text.contains(&format!("pushing blob `{d}`"))),
        "the error names a blob: {text}"
    );
    let lines = proxy.requests();
    assert!(
        !lines.iter().any(|l| l.contains("/manifests/")),
        "a manifest went out: {lines:#?}"
    );
    assert_eq!(
        c.manifest_digest(&target, "1").await.unwrap(),
        old.manifest_digest,
        "the tag moved"
    );
    // The two blobs that got through may still be landing when the push gives up.
    let mut present = Vec::new();
    for _ in 0..50 {
        present.clear();
        for d in blobs_of(&new) {
            if c.blob_exists(&target, &d).await.unwrap().is_some() {
                present.push(d);
            }
        }
        if present.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(present.len(), 2, "{present:?}");
    for l in &new.layers {
        assert!(blobs.store().contains(&l.digest), "the store lost a layer");
    }

    let recorder = StallProxy::recording(reg.port());
    let report = push_image(&c, &via(&target, recorder.port()), &new, &blobs, &())
        .await
        .unwrap();
    assert_eq!(report.digest, new.manifest_digest);
    let uploads = recorder
        .requests()
        .iter()
        .filter(|l| l.starts_with("PUT /v2/team/app/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 3, "{:#?}", recorder.requests());
    for (d, outcome) in &report.layers {
        let expected = present.contains(d);
        assert_eq!(
            *outcome == BlobOutcome::Existing,
            expected,
            "{d}: {outcome:?}"
        );
    }
    assert_eq!(
        c.manifest_digest(&target, "1").await.unwrap(),
        new.manifest_digest
    );
    validate_remote(&c, &target).await.unwrap();
}

/// R12 (c): an index push, as the registry sees it: every blob, then each platform's
/// manifest by digest, then the index under the tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_c_an_index_goes_after_its_manifests_and_they_after_their_blobs() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let blobs = Blobs::new(store(&tmp.path().join("store")), Some(c.clone()));
    let amd64 = image(blobs.store(), 5).finalize().unwrap();
    let mut arm = image(blobs.store(), 6);
    arm.config = config(Arch::ARM64, "/workspace/bin/app");
    let arm64 = arm.finalize().unwrap();
    let index = FinalIndex::new(vec![amd64.clone(), arm64.clone()]).unwrap();
    let recorder = StallProxy::recording(reg.port());
    let target = reference(&reg, "team/multi:v1");
    push_image(&c, &via(&target, recorder.port()), &index, &blobs, &())
        .await
        .unwrap();
    let lines = recorder.requests();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {lines:#?}"))
    };
    let tag = at("PUT /v2/team/multi/manifests/v1 ");
    let children = [&amd64, &arm64].map(|i| {
        at(&format!(
            "PUT /v2/team/multi/manifests/{} ",
            i.manifest_digest
        ))
    });
    let last_blob = lines
        .iter()
        .rposition(|l| l.starts_with("PUT /v2/team/multi/blobs/uploads/"))
        .unwrap();
    assert!(
        children.iter().all(|&i| last_blob < i && i < tag),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("PUT /v2/team/multi/blobs/uploads/"))
            .count(),
        6,
        "four layers and two configs"
    );
    assert_eq!(
        kiln_image::validate_remote_index(&c, &target)
            .await
            .unwrap()
            .index_digest,
        index.index_digest
    );
}

/// R13 and C05: a manifest over 4 MiB, and a target pinned to a digest, are refused before
/// any connection is made (the listener sees none).
#[tokio::test]
async fn r13_c05_oversized_manifests_and_digest_targets_are_refused_before_any_upload() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let host = listener.local_addr().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(tmp.path()), Some(client()));
    let mut fin = image(blobs.store(), 9).finalize().unwrap();
    let target: Reference = format!("{host}/app:v1").parse().unwrap();

    let pinned = target.with_digest(fin.manifest_digest.clone());
    let err = push_image(&client(), &pinned, &fin, &blobs, &())
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::PushToDigest { .. }), "{err}");
    assert!(err.to_string().contains("a push moves a tag"), "{err}");

    fin.manifest_bytes =
        format!(r#"{{"annotations":{{"x":"{}"}}}}"#, "a".repeat(4 << 20)).into_bytes();
    fin.manifest_digest = Digest::of(&fin.manifest_bytes);
    let err = push_image(&client(), &target, &fin, &blobs, &())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImageError::ManifestTooLarge { .. }), "{text}");
    assert!(
        text.contains(&format!("manifest `{}`", fin.manifest_digest)),
        "{text}"
    );
    assert!(
        text.contains("more than the 4194304 bytes (4 MiB)") && text.contains("nothing was pushed"),
        "{text}"
    );
    assert!(err.hint().is_some());
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "a connection was made"
    );
}

/// Returns a gzip layer whose tar is followed, inside the gzip stream, by `trailer`, and
/// the diffID of the tar alone.
fn layer_with_trailer(trailer: &[u8]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &b"hello"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.write_all(trailer).unwrap();
    (gz.finish().unwrap(), Digest::of(&tar))
}

/// R14 (e): bytes smuggled after the tar's end inside the gzip stream: the whole stream is
/// read, so the layer does not match the diffID of the tar alone, in the validator (base
/// pulls) and when a cache layer is unpacked (cache pulls), which leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r14_e_bytes_after_the_tar_end_make_the_diffid_mismatch() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let (clean, _) = layer_with_trailer(b"");
    let (smuggled, diff_id) = layer_with_trailer(&noise(4096, 77));
    let out = tmp.path().join("clean");
    extract_layer(&clean[..], Compression::Gzip, &diff_id, &out).unwrap();
    assert_eq!(std::fs::read(out.join("hello.txt")).unwrap(), b"hello");

    let out = tmp.path().join("smuggled");
    let err = extract_layer(&smuggled[..], Compression::Gzip, &diff_id, &out).unwrap_err();
    assert!(
        matches!(err, kiln_layer::ExtractError::DiffId { .. }),
        "{err}"
    );
    assert!(!out.exists(), "a half-unpacked layer was left");

    let repo = reference(&reg, "base/smuggled:1");
    push_raw(
        &c,
        &repo,
        &smuggled,
        &diff_id,
        media_types::OCI_LAYER_GZIP,
        tmp.path(),
    )
    .await;
    let err = validate_remote(&c, &repo).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("layer diffID `{diff_id}` does not match")),
        "{err}"
    );
}

/// Pushes an image of the one layer `layer` (declared `media_type`, diffID `diff_id`) with
/// the registry client alone, as another tool would have.
async fn push_raw(
    c: &Client,
    repo: &Reference,
    layer: &[u8],
    diff_id: &Digest,
    media_type: &str,
    dir: &std::path::Path,
) -> Digest {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .unwrap();
    for bytes in [layer, &config[..]] {
        let path = dir.join(Digest::of(bytes).hex());
        std::fs::write(&path, bytes).unwrap();
        c.push_blob(
            repo,
            &Digest::of(bytes),
            bytes.len() as u64,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": media_types::OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": media_type, "digest": Digest::of(layer).to_string(), "size": layer.len()}],
    }))
    .unwrap();
    c.push_manifest(
        repo,
        repo.tag().unwrap(),
        media_types::OCI_MANIFEST,
        &manifest,
    )
    .await
    .unwrap()
}

/// R15 (e): an OCI manifest whose layer says Docker's gzip media type is read as a run
/// image: the same bytes, typed as OCI gzip, and it validates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r15_e_an_oci_manifest_with_docker_layer_types_is_accepted() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let (gz, diff_id) = layer_with_trailer(b"");
    let repo = reference(&reg, "base/mixed:1");
    let digest = push_raw(
        &c,
        &repo,
        &gz,
        &diff_id,
        media_types::DOCKER_LAYER_GZIP,
        tmp.path(),
    )
    .await;
    let (image, got) = fetch_remote(&c, &repo, "linux", "amd64").await.unwrap();
    assert_eq!(got, digest);
    assert_eq!(image.layers[0].media_type, media_types::OCI_LAYER_GZIP);
    assert_eq!(image.layers[0].digest, Digest::of(&gz));
    assert_eq!(validate_remote(&c, &repo).await.unwrap().layers, 1);
}

/// C05: a layout whose layer blob is a symlink (even to a file with the right bytes) is
/// refused by the reader and the validator; nothing reaches the store through it.
#[tokio::test]
async fn c05_layout_blobs_that_are_symlinks_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let fin = image(blobs.store(), 21).finalize().unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &fin, "app", &blobs).await.unwrap();
    let victim = dir.join("blobs/sha256").join(fin.layers[0].digest.hex());
    let elsewhere = tmp.path().join("outside");
    std::fs::copy(&victim, &elsewhere).unwrap();
    std::fs::remove_file(&victim).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &victim).unwrap();

    let fresh = Blobs::new(store(&tmp.path().join("fresh")), None);
    let err = read_layout(&dir, Some("app"), ("linux", "amd64"), &fresh).unwrap_err();
    let text = chain(&err);
    assert!(text.contains("not a symlink"), "{text}");
    assert!(
        text.contains(&fin.layers[0].digest.hex().to_string()),
        "{text}"
    );
    assert!(!fresh.store().contains(&fin.layers[0].digest));
    let err = validate_layout(&dir, "app").unwrap_err();
    assert!(chain(&err).contains("not a symlink"), "{err:?}");

    // Writing the layout again replaces the planted link with the real blob.
    write_layout(&dir, &fin, "app", &blobs).await.unwrap();
    assert!(std::fs::symlink_metadata(&victim).unwrap().is_file());
    validate_layout(&dir, "app").unwrap();
}
