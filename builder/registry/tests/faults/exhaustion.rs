//! Endless answers (RELIABILITY.md R16): a 1 GiB error body, a 1 GiB token response, a
//! 200 MiB manifest and an endless blob are announced and streamed by the fake; kiln stops
//! reading early with a clear error. What the fake managed to write is counted: socket
//! buffers on loopback hold a few MiB, so anything near the announced size means kiln
//! kept reading.

use std::sync::{Arc, OnceLock};

use kiln_oci::Digest;
use kiln_registry::RegistryError;

use crate::fake::{Fake, Reply};
use crate::{client, reference};

const GIB: u64 = 1 << 30;
/// What kiln may have let through: its limit, plus the kernel's socket buffers.
const READ_BOUND: u64 = 32 << 20;

fn stream(status: u16, len: u64, chunked: bool) -> Reply {
    Reply::Stream {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        len,
        chunked,
    }
}

/// R16 (a, c): a 1 GiB error body is read up to 64 KiB; a manifest announced as 200 MiB
/// is refused unread, and one streamed without a length is cut at 4 MiB.
#[tokio::test]
async fn r16_error_bodies_and_manifests_are_read_within_limits() {
    let fake = Fake::start(|req, _| match req.path() {
        "/v2/app/manifests/error" => stream(403, GIB, false),
        "/v2/app/manifests/announced" => stream(200, 200 << 20, false),
        "/v2/app/manifests/endless" => stream(200, GIB, true),
        _ => Reply::status(404),
    })
    .await;
    let c = client();
    let repo = reference(&fake.host, "app");

    let err = c.get_manifest(&repo, "error").await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert!(
        err.to_string().starts_with("pulling manifest `error`"),
        "{err}"
    );
    let sent = fake.streamed(1).await;
    assert!(sent < READ_BOUND, "kiln read {sent} bytes of an error body");

    for (tag, streams) in [("announced", 2), ("endless", 3)] {
        let err = c.get_manifest(&repo, tag).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RegistryError::TooLarge { .. }), "{text}");
        assert!(
            text.starts_with(&format!("pulling manifest `{tag}`")),
            "{text}"
        );
        assert!(
            text.contains("larger than the 4194304 bytes kiln accepts"),
            "{text}"
        );
        let sent = fake.streamed(streams).await;
        assert!(sent < 2 * READ_BOUND, "{tag}: kiln read {sent} bytes");
    }
    assert_eq!(fake.requests().len(), 3, "no retries of a limit");
}

/// R16 (b): a token server answering 1 GiB is cut off at 1 MiB with an error naming it.
#[tokio::test]
async fn r16_a_huge_token_response_is_cut_off() {
    let realm = Arc::new(OnceLock::<String>::new());
    let realm_in = realm.clone();
    let fake = Fake::start(move |req, _| match req.path() {
        "/token" => stream(200, GIB, true),
        _ => Reply::status(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="{}",service="fake""#,
                realm_in.get().unwrap()
            ),
        ),
    })
    .await;
    realm.set(format!("http://{}/token", fake.host)).unwrap();
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the token server at `http://"), "{text}");
    assert!(
        text.contains("larger than the 1 MiB kiln accepts"),
        "{text}"
    );
    let sent = fake.streamed(1).await;
    assert!(
        sent < READ_BOUND,
        "kiln read {sent} bytes of a token response"
    );
}

/// R16 (d): an endless blob body whose size the descriptor gives is read no further than
/// that size (plus one network read), refused as overlong, and nothing is kept.
#[tokio::test]
async fn r16_an_endless_blob_is_read_up_to_its_size() {
    let fake = Fake::start(|_, _| stream(200, 100 * GIB, true)).await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("blob");
    let d = Digest::of(b"a small blob");
    let c = client();
    let repo = reference(&fake.host, "app");
    let err = c
        .get_blob_to_file(&repo, &d, Some(1024 * 1024), &dest)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{text}");
    assert!(text.starts_with(&format!("pulling blob `{d}`")), "{text}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let err = c.get_blob_bytes(&repo, &d, 1024 * 1024).await.unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
    let sent = fake.streamed(2).await;
    assert!(
        sent < 2 * READ_BOUND,
        "kiln read {sent} bytes of an endless blob"
    );
}
