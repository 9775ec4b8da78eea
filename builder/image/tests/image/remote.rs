//! `push_image`, `fetch_remote` and `validate_remote` against a real registry.

use std::sync::Mutex;

use kiln_image::{
    BlobOutcome, Blobs, ImageError, PushObserver, fetch_remote, push_image, validate_layout,
    validate_remote, write_layout,
};
use kiln_layer::Compression;
use kiln_model::Origin;
use kiln_oci::spec::Arch;
use kiln_oci::{Digest, media_types};

use kiln_e2e::Registry;

use crate::common::{client, config, image, layer, noise, reference, store};

#[derive(Default)]
struct Record(Mutex<Vec<(Digest, BlobOutcome)>>);

impl PushObserver for Record {
    fn finished(&self, digest: &Digest, outcome: &BlobOutcome) {
        self.0
            .lock()
            .unwrap()
            .push((digest.clone(), outcome.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_validate_and_push_again() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let blobs = Blobs::new(store(&tmp.path().join("store")), Some(c.clone()));
    let fin = image(blobs.store(), 1).finalize().unwrap();
    let target = reference(&reg, "team/app:v1");

    let seen = Record::default();
    let report = push_image(&c, &target, &fin, &blobs, &seen).await.unwrap();
    assert_eq!(report.digest, fin.manifest_digest);
    let sizes: Vec<_> = fin.layers.iter().map(|l| l.size).collect();
    assert_eq!(
        report.layers,
        fin.layers
            .iter()
            .map(|l| (l.digest.clone(), BlobOutcome::Uploaded { bytes: l.size }))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.uploaded_bytes, sizes.iter().sum::<u64>());
    assert_eq!(seen.0.lock().unwrap().len(), 2);

    let (pulled, digest) = fetch_remote(&c, &target, "linux", "amd64").await.unwrap();
    assert_eq!(digest, fin.manifest_digest);
    assert_eq!(pulled.layers.len(), fin.layers.len());
    for (p, l) in pulled.layers.iter().zip(&fin.layers) {
        assert_eq!(
            (&p.digest, &p.diff_id, p.size),
            (&l.digest, &l.diff_id, l.size)
        );
        assert_eq!(p.media_type, l.media_type);
        assert_eq!(p.origin, Origin::Remote(target.clone()));
    }
    assert_eq!(
        pulled.finalize().unwrap().manifest_digest,
        fin.manifest_digest
    );

    let v = validate_remote(&c, &target).await.unwrap();
    assert_eq!(v.manifest_digest, fin.manifest_digest);
    assert_eq!(v.layers, 2);
    let v = validate_remote(&c, &target.with_digest(fin.manifest_digest.clone()))
        .await
        .unwrap();
    assert_eq!(v.layers, 2);

    // The fetched image's blobs come from the registry on demand into a fresh store.
    let fresh = Blobs::new(store(&tmp.path().join("fresh")), Some(c.clone()));
    let dir = tmp.path().join("layout");
    write_layout(&dir, &pulled.finalize().unwrap(), "pulled", &fresh)
        .await
        .unwrap();
    for l in &pulled.layers {
        assert!(fresh.store().contains(&l.digest));
    }
    validate_layout(&dir, "pulled").unwrap();

    let seen = Record::default();
    let again = push_image(&c, &target, &fin, &blobs, &seen).await.unwrap();
    assert_eq!(again.digest, fin.manifest_digest);
    assert!(
        again
            .layers
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Existing),
        "{:?}",
        again.layers
    );
    assert_eq!(again.uploaded_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_layers_from_another_repository_are_mounted() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let base_blobs = Blobs::new(store(&tmp.path().join("base")), Some(c.clone()));
    let base_ref = reference(&reg, "golden/run:1");
    let base_fin = image(base_blobs.store(), 7).finalize().unwrap();
    push_image(&c, &base_ref, &base_fin, &base_blobs, &())
        .await
        .unwrap();

    let (base, _) = fetch_remote(&c, &base_ref, "linux", "amd64").await.unwrap();
    // The app's store never held the base blobs: they can only be mounted (or pulled).
    let app_blobs = Blobs::new(store(&tmp.path().join("app")), Some(c.clone()));
    let mut app = base.clone();
    let app_layer = layer(
        app_blobs.store(),
        &[("workspace/bin/app", noise(8 * 1024, 99))],
        Compression::Gzip,
    );
    app.layers.push(app_layer.clone());
    let fin = app.finalize().unwrap();
    let target = reference(&reg, "team/app:v1");
    let report = push_image(&c, &target, &fin, &app_blobs, &())
        .await
        .unwrap();
    assert_eq!(
        report.layers,
        vec![
            (fin.layers[0].digest.clone(), BlobOutcome::Mounted),
            (fin.layers[1].digest.clone(), BlobOutcome::Mounted),
            (
                app_layer.digest.clone(),
                BlobOutcome::Uploaded {
                    bytes: app_layer.size
                }
            ),
        ]
    );
    assert_eq!(report.uploaded_bytes, app_layer.size);
    for l in &base.layers {
        assert!(!app_blobs.store().contains(&l.digest), "nothing was pulled");
    }
    assert_eq!(validate_remote(&c, &target).await.unwrap().layers, 3);

    // Blobs that are also in the local store are still mounted rather than re-sent.
    let target2 = reference(&reg, "team/other:v1");
    let mut app2 = base.clone();
    app2.layers.push(app_layer.clone());
    let both = Blobs::new(base_blobs.store().clone(), Some(c.clone()));
    std::fs::copy(
        app_blobs.store().path(&app_layer.digest),
        both.store().path(&app_layer.digest),
    )
    .unwrap();
    let report = push_image(&c, &target2, &app2.finalize().unwrap(), &both, &())
        .await
        .unwrap();
    assert_eq!(report.layers[0].1, BlobOutcome::Mounted);
    assert_eq!(report.layers[1].1, BlobOutcome::Mounted);
    assert_eq!(report.uploaded_bytes, app_layer.size);
    validate_remote(&c, &target2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_run_image_resolves_to_linux_amd64() {
    let reg = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    let c = client();
    let blobs = Blobs::new(store(&tmp.path().join("store")), Some(c.clone()));
    let amd64 = image(blobs.store(), 1).finalize().unwrap();
    let mut arm = image(blobs.store(), 2);
    arm.config = config(Arch::ARM64, "/workspace/bin/app");
    let arm64 = arm.finalize().unwrap();
    let repo = reference(&reg, "golden/multi");
    push_image(&c, &repo.with_tag("amd64"), &amd64, &blobs, &())
        .await
        .unwrap();
    push_image(&c, &repo.with_tag("arm64"), &arm64, &blobs, &())
        .await
        .unwrap();
    let entry = |fin: &kiln_model::FinalImage, arch: &str| {
        serde_json::json!({
            "mediaType": media_types::OCI_MANIFEST,
            "digest": fin.manifest_digest.to_string(),
            "size": fin.manifest_bytes.len(),
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    // arm64 first, so picking the first entry would be wrong.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [entry(&arm64, "arm64"), entry(&amd64, "amd64")],
    }))
    .unwrap();
    let index_digest = c
        .push_manifest(&repo, "latest", media_types::OCI_INDEX, &index)
        .await
        .unwrap();
    assert_eq!(index_digest, Digest::of(&index));

    let by_tag = repo.with_tag("latest");
    let (img, digest) = fetch_remote(&c, &by_tag, "linux", "amd64").await.unwrap();
    assert_eq!(digest, amd64.manifest_digest);
    assert_eq!(img.config.architecture().to_string(), "amd64");
    assert_eq!(img.layers, {
        let mut l = amd64.layers.clone();
        for x in &mut l {
            x.origin = Origin::Remote(by_tag.clone());
        }
        l
    });
    let (_, digest) = fetch_remote(&c, &repo.with_digest(index_digest), "linux", "arm64")
        .await
        .unwrap();
    assert_eq!(digest, arm64.manifest_digest);

    let err = fetch_remote(&c, &by_tag, "linux", "s390x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Model(kiln_model::ModelError::NoImageFor { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("linux/s390x"), "{err}");
    let err = validate_remote(&c, &by_tag).await.unwrap_err();
    assert!(matches!(err, ImageError::MediaType { .. }), "{err:?}");
}
