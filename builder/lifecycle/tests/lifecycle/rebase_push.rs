//! A rebase published as `kiln rebase --publish` publishes it (RELIABILITY.md R17 (d)), against
//! real registries (Debian's `docker-registry` on 127.0.0.1): the app and its new run image
//! are read from the registry by a process whose store holds no blob, and the rebased image
//! is pushed. The new base's layers are mounted from the base's repository when it is on the
//! same registry, else copied from the other registry; the app's layers are not sent again.

use std::time::Duration;

use kiln_e2e::Registry;
use kiln_image::{BlobOutcome, Blobs, fetch_remote, push_image, validate_remote};
use kiln_layer::BlobStore;
use kiln_lifecycle::{Rebase, RunImage};
use kiln_model::Image;
use kiln_oci::{Digest, Reference};
use kiln_registry::{Client, RegistrySettings, RetryPolicy};

use crate::rebase::{World, app, v1, v2, world};

fn client() -> Client {
    Client::new(RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
        ..RegistrySettings::default()
    })
    .unwrap()
}

/// Pushes `image` (its blobs in the world's store) as `reference`.
async fn push(c: &Client, w: &World, reference: &str, image: &Image) {
    let blobs = Blobs::new(w.store.clone(), Some(c.clone()));
    let target: Reference = reference.parse().unwrap();
    push_image(c, &target, &image.finalize().unwrap(), &blobs, &())
        .await
        .unwrap();
}

/// Reads `reference` (linux/amd64) as the rebase command does: its layers stay remote.
async fn read(c: &Client, reference: &str) -> (Image, Digest) {
    fetch_remote(c, &reference.parse().unwrap(), "linux", "amd64")
        .await
        .unwrap()
}

/// Rebases the app at `app_ref` onto the run image at `base_ref` in a process whose store is
/// the empty `store`, pushes it to `app_ref`, and returns the rebased image and the push's
/// outcome per layer.
async fn rebase_and_push(
    c: &Client,
    store: &std::path::Path,
    app_ref: &str,
    base_ref: &str,
    old_ref: &str,
) -> (Image, kiln_image::PushReport) {
    let (app, _) = read(c, app_ref).await;
    let (image, digest) = read(c, base_ref).await;
    let new_base = RunImage {
        image,
        digest,
        name: base_ref.to_owned(),
    };
    let (old, _) = read(c, old_ref).await;
    let rebased = Rebase {
        app: &app,
        new_base: &new_base,
        old_base: Some(&old),
        force: false,
    }
    .run()
    .unwrap();
    let blobs = Blobs::new(BlobStore::open(store).unwrap(), Some(c.clone()));
    let fin = rebased.image.finalize().unwrap();
    let report = push_image(c, &app_ref.parse().unwrap(), &fin, &blobs, &())
        .await
        .unwrap();
    (rebased.image, report)
}

#[test]
fn r17_d_new_base_layers_are_mounted_from_their_repository_else_copied() {
    let w = world();
    let (old, new) = (v1(&w), v2(&w));
    let app = app(&w, &old);
    let reg = Registry::anonymous();
    let other = Registry::anonymous();
    let c = client();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let v1_ref = reg.reference("bases/node:v1");
        push(&c, &w, &v1_ref, &old.image).await;
        push(&c, &w, &reg.reference("bases/node:v2"), &new.image).await;
        push(&c, &w, &other.reference("bases/node:v2"), &new.image).await;
        for repo in ["team/mounted:1", "team/copied:1"] {
            push(&c, &w, &reg.reference(repo), &app).await;
        }
        // The one layer v2 adds to v1; the others are the app's own, already in its repository.
        let added = &new.image.layers[2];
        assert!(!app.layers.iter().any(|l| l.digest == added.digest));
        let tmp = tempfile::tempdir().unwrap();

        for (repo, base, want, bytes) in [
            (
                "team/mounted:1",
                reg.reference("bases/node:v2"),
                BlobOutcome::Mounted,
                0,
            ),
            (
                "team/copied:1",
                other.reference("bases/node:v2"),
                BlobOutcome::Uploaded { bytes: added.size },
                added.size,
            ),
        ] {
            let target = reg.reference(repo);
            let store = tmp.path().join(repo.replace(['/', ':'], "-"));
            let (image, report) = rebase_and_push(&c, &store, &target, &base, &v1_ref).await;
            let outcomes: Vec<(Digest, BlobOutcome)> = image
                .layers
                .iter()
                .map(|l| {
                    let o = if l.digest == added.digest {
                        want.clone()
                    } else {
                        BlobOutcome::Existing
                    };
                    (l.digest.clone(), o)
                })
                .collect();
            assert_eq!(report.layers, outcomes, "{repo}");
            assert_eq!(report.uploaded_bytes, bytes, "{repo}");
            // Layer bytes came through the rebasing process only to cross registries.
            let held: Vec<&Digest> = image
                .layers
                .iter()
                .map(|l| &l.digest)
                .filter(|d| BlobStore::open(&store).unwrap().contains(d))
                .collect();
            let copied: Vec<&Digest> = match want {
                BlobOutcome::Mounted => vec![],
                _ => vec![&added.digest],
            };
            assert_eq!(held, copied, "{repo}");
            let fin = image.finalize().unwrap();
            assert_eq!(report.digest, fin.manifest_digest);
            let target: Reference = target.parse().unwrap();
            let v = validate_remote(&c, &target).await.unwrap();
            assert_eq!(
                v.manifest_digest, fin.manifest_digest,
                "{repo}: the tag moved"
            );
            assert_eq!(v.layers, 5);
        }
    });
}
