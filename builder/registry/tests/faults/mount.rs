//! Cross-repository mounts and existence checks, as registries really answer them
//! (RELIABILITY.md R09, R10).

use std::path::PathBuf;

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, Client};

use crate::fake::{Fake, Recorded, Reply};
use crate::{client, reference};

/// Writes `len` bytes of noise seeded `seed` into `dir`; returns path, digest and size.
fn blob(dir: &std::path::Path, len: usize, seed: u64) -> (PathBuf, Digest, u64) {
    let bytes = kiln_e2e::noise(len, seed);
    let path = dir.join(format!("blob-{seed}"));
    std::fs::write(&path, &bytes).unwrap();
    (path, Digest::of(&bytes), len as u64)
}

/// A registry that has no blob, answers mounts with `mount(request)`, and takes plain uploads.
async fn registry(mount: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Fake {
    Fake::start(move |req, _| match req.method.as_str() {
        "HEAD" => Reply::status(404),
        "POST" if req.target.contains("mount=") => mount(req),
        "POST" => Reply::status(202).header("Location", "/v2/app/blobs/uploads/plain"),
        "PUT" => Reply::status(201),
        "DELETE" => Reply::status(204),
        _ => Reply::status(400),
    })
    .await
}

fn methods(fake: &Fake) -> Vec<String> {
    fake.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect()
}

/// R09: 201 without `Location` is a mount and nothing is uploaded; 201 whose
/// `Docker-Content-Digest` names other content is not trusted (the blob is uploaded); 202
/// with a `Location` continues the upload in that session.
#[tokio::test]
async fn r09_mount_201_skips_the_upload_and_202_continues_in_its_session() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, size) = blob(tmp.path(), 5000, 1);
    let repo_at = |fake: &Fake| reference(&fake.host, "app");

    let fake = registry(|_| Reply::status(201)).await;
    let got = client()
        .push_blob(&repo_at(&fake), &d, size, &path, Some("base"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Mounted);
    let mount = &fake.requests()[1];
    assert_eq!(
        mount.target,
        format!(
            "/v2/app/blobs/uploads/?mount={}&from=base",
            d.to_string().replace(':', "%3A")
        )
    );
    assert_eq!(methods(&fake).len(), 2, "{:?}", methods(&fake));

    let other = Digest::of(b"other").to_string();
    let fake = registry(move |_| Reply::status(201).header("Docker-Content-Digest", &other)).await;
    let got = client()
        .push_blob(&repo_at(&fake), &d, size, &path, Some("base"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: size });
    assert_eq!(
        methods(&fake).last().unwrap(),
        "PUT /v2/app/blobs/uploads/plain"
    );

    let fake = registry(|_| {
        Reply::status(202).header("Location", "/v2/app/blobs/uploads/from-mount?_state=m")
    })
    .await;
    let got = client()
        .push_blob(&repo_at(&fake), &d, size, &path, Some("base"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: size });
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "HEAD, mount, PUT: {:?}", methods(&fake));
    assert!(
        reqs[2].method == "PUT"
            && reqs[2]
                .target
                .starts_with("/v2/app/blobs/uploads/from-mount?_state=m&digest="),
        "{:?}",
        reqs[2]
    );
    assert_eq!(reqs[2].body.len() as u64, size);
}

/// R09: a mount refused with 401, 403, 400 `BAD_REQUEST` or 404 falls back to a plain
/// upload, and this client asks no more for mounts from that repository; a 500 only falls
/// back. A failed mount never fails the push.
#[tokio::test]
async fn r09_mount_refusals_fall_back_to_upload_and_turn_mounts_off() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, d1, s1) = blob(tmp.path(), 3000, 2);
    let (p2, d2, s2) = blob(tmp.path(), 4000, 3);
    for status in [401, 403, 400, 404, 500] {
        let fake = registry(move |_| {
            Reply::status(status)
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"BAD_REQUEST","message":"no mounts here"}]}"#)
        })
        .await;
        let c = client();
        let repo = reference(&fake.host, "app");
        for (path, d, size) in [(&p1, &d1, s1), (&p2, &d2, s2)] {
            let got = c
                .push_blob(&repo, d, size, path, Some("base"), &|_| {})
                .await
                .unwrap_or_else(|e| panic!("{status}: {e}"));
            assert_eq!(got, BlobPush::Uploaded { bytes: size }, "{status}");
        }
        let mounted = c.mount_blob(&repo, &d1, "base").await.unwrap();
        assert!(!mounted, "{status}: mount_blob reports no mount");
        let mounts = fake
            .requests()
            .iter()
            .filter(|r| r.target.contains("mount="))
            .count();
        let puts = fake.requests().iter().filter(|r| r.method == "PUT").count();
        assert_eq!(puts, 2, "{status}: both blobs uploaded");
        if status == 500 {
            assert_eq!(mounts, 3, "a 5xx does not turn mounts off");
        } else {
            assert_eq!(mounts, 1, "{status}: mounts stay off after a refusal");
        }
        // Another source repository is still worth asking.
        let _ = c.mount_blob(&repo, &d1, "other-base").await.unwrap();
        let asked = fake
            .requests()
            .iter()
            .filter(|r| r.target.contains("from=other-base"))
            .count();
        assert_eq!(asked, 1, "{status}");
    }
}

type HeadAnswer = dyn Fn() -> Reply + Send + Sync;

/// R10: blob HEAD 200 skips the upload, 404 uploads, and a HEAD that cannot be answered
/// (redirected to storage that refuses HEAD with 403, or a 500) means "unknown", so the
/// blob is uploaded after one HEAD instead of failing the push.
#[tokio::test]
async fn r10_blob_heads_200_skip_404_upload_and_anything_else_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, size) = blob(tmp.path(), 2000, 4);
    let storage = Fake::start(|_, _| Reply::status(403)).await;
    let signed = format!("http://{}/blob?X-Amz-Signature=s", storage.host);
    let cases: Vec<(&str, Box<HeadAnswer>)> = vec![
        (
            "200",
            Box::new(|| Reply::status(200).header("Content-Length", "2000")),
        ),
        ("404", Box::new(|| Reply::status(404))),
        (
            "307->403",
            Box::new(move || Reply::status(307).header("Location", &signed)),
        ),
        ("500", Box::new(|| Reply::status(500))),
    ];
    for (name, head) in cases {
        let fake = Fake::start(move |req, _| match req.method.as_str() {
            "HEAD" => head(),
            "POST" => Reply::status(202).header("Location", "/v2/app/blobs/uploads/u"),
            "PUT" => Reply::status(201),
            _ => Reply::status(400),
        })
        .await;
        let got = client()
            .push_blob(
                &reference(&fake.host, "app"),
                &d,
                size,
                &path,
                None,
                &|_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let sent = methods(&fake);
        if name == "200" {
            assert_eq!(got, BlobPush::Existing);
            assert_eq!(sent.len(), 1, "{sent:?}");
        } else {
            assert_eq!(got, BlobPush::Uploaded { bytes: size }, "{name}");
            assert_eq!(sent[0], format!("HEAD /v2/app/blobs/{d}"), "{name}");
            assert_eq!(
                sent[1..],
                ["POST /v2/app/blobs/uploads/", "PUT /v2/app/blobs/uploads/u"],
                "{name}: one HEAD, then the upload"
            );
        }
    }
    assert_eq!(storage.requests()[0].method, "HEAD");
    assert_eq!(storage.requests()[0].header("authorization"), None);
}

/// R10: a manifest HEAD with `Docker-Content-Digest` resolves a tag by itself; without the
/// header, kiln GETs the manifest and hashes it; a 404 is an error naming the tag.
#[tokio::test]
async fn r10_a_manifest_head_without_digest_falls_back_to_get_and_a_local_hash() {
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#);
    let local = Digest::of(body.as_bytes());
    let said = local.to_string();
    let served = body.clone();
    let fake = Fake::start(move |req, _| match (req.method.as_str(), req.path()) {
        ("HEAD", "/v2/app/manifests/with-header") => Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .header("Docker-Content-Digest", &said),
        ("HEAD", "/v2/app/manifests/without") => {
            Reply::status(200).header("Content-Type", OCI_MANIFEST)
        }
        ("GET", "/v2/app/manifests/without") => Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(served.clone()),
        _ => Reply::status(404),
    })
    .await;
    let c: Client = client();
    let repo = reference(&fake.host, "app");
    assert_eq!(
        c.manifest_digest(&repo, "with-header").await.unwrap(),
        local
    );
    assert_eq!(methods(&fake), ["HEAD /v2/app/manifests/with-header"]);
    assert_eq!(c.manifest_digest(&repo, "without").await.unwrap(), local);
    assert_eq!(
        methods(&fake)[1..],
        [
            "HEAD /v2/app/manifests/without",
            "GET /v2/app/manifests/without"
        ]
    );
    let err = c.manifest_digest(&repo, "gone").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("`gone`"), "{err}");
}
