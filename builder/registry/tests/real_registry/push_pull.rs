//! Push, pull, HEAD skip, cross-repository mount and chunked uploads.

use std::sync::atomic::{AtomicU64, Ordering};

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, Client, RegistrySettings};

use kiln_e2e::Registry;

use crate::common::{blob, manifest, noise, reference, settings};

fn client(s: RegistrySettings) -> Client {
    Client::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_pulls_back_an_image() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client(settings());
    let repo = reference(&reg, "team/app");
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer_bytes = noise(300 * 1024, 1);
    let (config_path, config) = blob(tmp.path(), "config", config_bytes);
    let (layer_path, layer) = blob(tmp.path(), "layer", &layer_bytes);

    let last = AtomicU64::new(0);
    let progress = |n: u64| last.store(n, Ordering::SeqCst);
    let got = c
        .push_blob(
            &repo,
            &layer,
            layer_bytes.len() as u64,
            &layer_path,
            None,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        BlobPush::Uploaded {
            bytes: layer_bytes.len() as u64
        }
    );
    assert_eq!(last.load(Ordering::SeqCst), layer_bytes.len() as u64);
    c.push_blob(
        &repo,
        &config,
        config_bytes.len() as u64,
        &config_path,
        None,
        &|_| {},
    )
    .await
    .unwrap();
    let m = manifest((&config, config_bytes.len()), (&layer, layer_bytes.len()));
    let digest = c
        .push_manifest(&repo, "v1", OCI_MANIFEST, &m)
        .await
        .unwrap();
    assert_eq!(digest, Digest::of(&m));

    for reference in ["v1".to_string(), digest.to_string()] {
        let pulled = c.get_manifest(&repo, &reference).await.unwrap();
        assert_eq!(pulled.bytes, m);
        assert_eq!(pulled.digest, digest);
        assert_eq!(pulled.media_type, OCI_MANIFEST);
    }
    let dest = tmp.path().join("pulled-layer");
    c.get_blob_to_file(&repo, &layer, Some(layer_bytes.len() as u64), &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), layer_bytes);
    assert_eq!(
        c.get_blob_bytes(&repo, &config, 1 << 20).await.unwrap(),
        config_bytes
    );
    assert_eq!(
        c.blob_exists(&repo, &layer).await.unwrap(),
        Some(layer_bytes.len() as u64)
    );
    assert_eq!(
        c.blob_exists(&repo, &Digest::of(b"absent")).await.unwrap(),
        None
    );

    // An independent client reads back exactly what kiln pushed.
    let out = kiln_e2e::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}:v1", repo.name()),
    ]);
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, m);
}

#[tokio::test]
async fn second_push_finds_the_blob() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client(settings());
    let repo = reference(&reg, "app");
    let bytes = noise(4096, 2);
    let (path, d) = blob(tmp.path(), "b", &bytes);
    let first = c
        .push_blob(&repo, &d, 4096, &path, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(first, BlobPush::Uploaded { bytes: 4096 });
    let second = c
        .push_blob(&repo, &d, 4096, &path, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(second, BlobPush::Existing);
}

#[tokio::test]
async fn mounts_across_repositories_and_falls_back() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client(settings());
    let (a, b, other) = (
        reference(&reg, "base/a"),
        reference(&reg, "app/b"),
        reference(&reg, "app/c"),
    );
    let bytes = noise(10_000, 3);
    let (path, d) = blob(tmp.path(), "b", &bytes);
    c.push_blob(&a, &d, 10_000, &path, None, &|_| {})
        .await
        .unwrap();
    let got = c
        .push_blob(&b, &d, 10_000, &path, Some("base/a"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Mounted);
    assert_eq!(c.blob_exists(&b, &d).await.unwrap(), Some(10_000));

    // The source lacks this blob: the registry opens an upload session instead.
    let bytes = noise(5_000, 4);
    let (path, d) = blob(tmp.path(), "c", &bytes);
    let got = c
        .push_blob(&other, &d, 5_000, &path, Some("base/a"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 5_000 });
    assert_eq!(c.get_blob_bytes(&other, &d, 10_000).await.unwrap(), bytes);

    // `mount_blob` alone: declined where the source lacks the blob, done where it has it.
    let elsewhere = reference(&reg, "app/d");
    assert!(!c.mount_blob(&elsewhere, &d, "base/a").await.unwrap());
    assert_eq!(c.blob_exists(&elsewhere, &d).await.unwrap(), None);
    assert!(c.mount_blob(&elsewhere, &d, "app/c").await.unwrap());
    assert_eq!(c.blob_exists(&elsewhere, &d).await.unwrap(), Some(5_000));
}

#[tokio::test]
async fn uploads_in_chunks() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client(RegistrySettings {
        chunk_size: Some(16 * 1024),
        ..settings()
    });
    let repo = reference(&reg, "chunked");
    let bytes = noise(100_000, 5);
    let (path, d) = blob(tmp.path(), "b", &bytes);
    let seen = std::sync::Mutex::new(Vec::new());
    let got = c
        .push_blob(&repo, &d, 100_000, &path, None, &|n| {
            seen.lock().unwrap().push(n)
        })
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 100_000 });
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
    assert!(
        seen.contains(&(16 * 1024)),
        "no report at the first chunk boundary: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&100_000));
    assert_eq!(c.get_blob_bytes(&repo, &d, 200_000).await.unwrap(), bytes);
}

#[tokio::test]
async fn unknown_manifest_keeps_the_registry_code() {
    let reg = Registry::anonymous();
    let c = client(settings());
    let err = c
        .get_manifest(&reference(&reg, "app"), "nope")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(
        matches!(err.code(), Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN")),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "pulling manifest `nope` from `{}/app`: registry said 404",
            reg.host()
        )),
        "{err}"
    );
}
