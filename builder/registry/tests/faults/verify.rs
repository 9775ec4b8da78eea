//! Pull integrity: every manifest and blob checked against its digest and size before
//! anything is kept (RELIABILITY.md R14).

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::RegistryError;

use crate::fake::{Fake, Reply};
use crate::{client, reference};

/// R14 (a): a manifest pulled by digest that hashes otherwise is refused, naming both.
#[tokio::test]
async fn r14_a_manifest_by_digest_must_match() {
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

/// R14 (d): pulled by tag, a wrong `Docker-Content-Digest` (registries get it wrong) is not
/// trusted: the manifest's own hash is its digest (kiln only logs a warning).
#[tokio::test]
async fn r14_d_a_tag_pull_uses_the_local_hash_over_docker_content_digest() {
    let said = Digest::of(b"something else").to_string();
    let fake = Fake::start(move |_, _| {
        Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .header("Docker-Content-Digest", &said)
            .body("{}")
    })
    .await;
    let got = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    assert_eq!(got.digest, Digest::of(b"{}"));
    assert_eq!(got.bytes, b"{}");
    assert_eq!(got.media_type, OCI_MANIFEST);
}

/// R14 (b): corrupted blob bytes are refused naming the digest, and nothing is left on
/// disk; a wrong size and an in-memory read are caught the same way.
#[tokio::test]
async fn r14_b_corrupt_blob_leaves_no_file() {
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
    // Caught from the announced length now, before a byte is read (R14 c).
    assert!(
        matches!(
            err,
            RegistryError::SizeMismatch { .. } | RegistryError::AnnouncedSize { .. }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let err = c.get_blob_bytes(&repo, &d, 100).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    let err = c
        .get_blob_bytes(&repo, &Digest::of(b"tampered bytes"), 4)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
}

/// R14 (b, c): a blob cut short (the connection closes before `Content-Length` bytes), an
/// overlong one, and one whose `Content-Length` differs from the descriptor's size are
/// refused naming the blob, before anything is kept; the destination does not exist.
#[tokio::test]
async fn r14_bc_truncated_overlong_and_misannounced_blobs_are_refused() {
    let bytes = b"exactly these bytes".to_vec();
    let d = Digest::of(&bytes);
    let size = bytes.len() as u64;
    let served = bytes.clone();
    let fake = Fake::start(move |req, _| {
        let mut long = served.clone();
        long.extend_from_slice(b"and more");
        match req.path() {
            // Announced right, then cut off after 10 bytes.
            p if p.starts_with("/v2/truncated/") => Reply::status(200)
                .header("Content-Length", &served.len().to_string())
                .body(served[..10].to_vec()),
            p if p.starts_with("/v2/overlong/") => Reply::Stream {
                status: 200,
                headers: Vec::new(),
                len: 1000,
                chunked: true,
            },
            p if p.starts_with("/v2/announced/") => Reply::status(200)
                .header("Content-Length", &long.len().to_string())
                .body(long),
            _ => Reply::status(404),
        }
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("blob");
    let c = client();
    for repo in ["truncated", "overlong", "announced"] {
        let err = c
            .get_blob_to_file(&reference(&fake.host, repo), &d, Some(size), &dest)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("pulling blob `{d}` from")),
            "{repo}: {text}"
        );
        match repo {
            "truncated" => assert!(matches!(err, RegistryError::Transport { .. }), "{text}"),
            "overlong" => assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{text}"),
            _ => {
                assert!(matches!(err, RegistryError::AnnouncedSize { .. }), "{text}");
                assert!(
                    text.contains(&format!(
                        "announced 27 bytes (`Content-Length`), the descriptor says {size}"
                    )),
                    "{text}"
                );
            }
        }
        assert!(!dest.exists(), "{repo}");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{repo}: a partial file was left"
        );
    }
    let asked = |repo: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.path().starts_with(&format!("/v2/{repo}/")))
            .count()
    };
    assert_eq!(asked("announced"), 1, "a wrong length is not retried");
    assert_eq!(asked("overlong"), 1, "an overlong blob is not retried");
}
