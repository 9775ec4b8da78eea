//! Digest verification of pulled manifests and blobs.

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::RegistryError;

use crate::fake::{Fake, Reply};
use crate::{client, reference};

#[tokio::test]
async fn manifest_by_digest_must_match() {
    let fake = Fake::start(|_, _| {
        Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{\"other\":1}")
    })
    .await;
    let wanted = Digest::of(b"{\"expected\":1}");
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), &wanted.to_string())
        .await
        .unwrap_err();
    match &err {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &wanted);
            assert_eq!(actual, &Digest::of(b"{\"other\":1}"));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
}

#[tokio::test]
async fn manifest_by_tag_must_match_docker_content_digest() {
    let said = Digest::of(b"something else").to_string();
    let fake = Fake::start(move |_, _| {
        Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .header("Docker-Content-Digest", &said)
            .body("{}")
    })
    .await;
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn corrupt_blob_leaves_no_file() {
    let fake = Fake::start(|_, _| Reply::status(200).body("tampered bytes")).await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("blob");
    let d = Digest::of(b"original bytes");
    let c = client();
    let repo = reference(&fake.host, "app");
    let err = c
        .get_blob_to_file(&repo, &d, Some(14), &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "a temporary file was left behind"
    );

    // Wrong size is caught too, and so is an in-memory blob.
    let err = c
        .get_blob_to_file(&repo, &d, Some(5), &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let err = c.get_blob_bytes(&repo, &d, 100).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    let err = c
        .get_blob_bytes(&repo, &Digest::of(b"tampered bytes"), 4)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
}
