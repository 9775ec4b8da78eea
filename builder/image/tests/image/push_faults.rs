//! `push_image` against kiln-registry's fault-injecting fake: when the registry refuses
//! (R04) or keeps rejecting tokens (R03), the push fails as an auth error and the manifest
//! is never put, so the tag is untouched; a 403 on an existence check does not stop it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kiln_image::{Blobs, ImageError, push_image};
use kiln_model::Origin;
use kiln_registry::{Client, ErrorClass, RegistryError, RegistrySettings, RetryPolicy};

use crate::common::{image, store};
use crate::fake::{Fake, Recorded, Reply};

/// The registry part of the fake: blobs are absent (or `head` answers), upload sessions
/// get numbers unless `post` answers instead, manifests are taken.
fn registry(
    req: &Recorded,
    sessions: &Mutex<usize>,
    head: u16,
    post: Option<fn() -> Reply>,
) -> Reply {
    match (req.method.as_str(), req.path()) {
        ("HEAD", _) => Reply::status(head),
        ("POST", _) => match post {
            Some(answer) => answer(),
            None => {
                let mut n = sessions.lock().unwrap();
                *n += 1;
                Reply::status(202).header("Location", &format!("/v2/app/blobs/uploads/{n}"))
            }
        },
        ("PATCH", p) => Reply::status(202).header("Location", p),
        ("PUT", p) if p.contains("/blobs/uploads/") => Reply::status(201),
        ("PUT", p) if p.contains("/manifests/") => Reply::status(201),
        _ => Reply::status(400),
    }
}

fn client(chunk_size: Option<u64>) -> Client {
    Client::new(RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
        chunk_size,
        ..RegistrySettings::default()
    })
    .unwrap()
}

fn manifest_puts(fake: &Fake) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path().contains("/manifests/"))
        .count()
}

/// Pushes a two-layer image to the fake's `app:v1`.
async fn push(fake: &Fake, c: &Client) -> Result<kiln_image::PushReport, ImageError> {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let fin = image(blobs.store(), 7).finalize().unwrap();
    let target = format!("{}/app:v1", fake.host).parse().unwrap();
    push_image(c, &target, &fin, &blobs, &()).await
}

fn registry_error(err: ImageError) -> RegistryError {
    match err {
        ImageError::Registry(e) => e,
        other => panic!("expected a registry error, got {other:?}"),
    }
}

/// R04: 403 `DENIED` on every upload `POST`: the push fails as an auth error with the
/// registry's code, each blob's `POST` was sent at most once, and no manifest was put.
#[tokio::test]
async fn r04_a_denied_upload_fails_the_push_before_any_manifest() {
    let sessions = Mutex::new(0);
    let denied = || {
        Reply::status(403)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"DENIED","message":"push access denied"}]}"#)
    };
    let fake = Fake::start(move |req, _| registry(req, &sessions, 404, Some(denied))).await;
    let err = registry_error(push(&fake, &client(None)).await.unwrap_err());
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(err.code(), Some("DENIED"));
    assert!(err.to_string().contains("push access denied"), "{err}");
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(
        (1..=3).contains(&posts),
        "2 layers and a config, no retry: {posts}"
    );
    assert_eq!(manifest_puts(&fake), 0, "the tag was touched");
}

/// R04: a 403 on every existence check (`HEAD`) means "unknown": every blob is uploaded
/// and the manifest goes last.
#[tokio::test]
async fn r04_forbidden_existence_checks_do_not_stop_the_push() {
    let sessions = Mutex::new(0);
    let fake = Fake::start(move |req, _| registry(req, &sessions, 403, None)).await;
    let report = push(&fake, &client(None)).await.unwrap();
    let reqs = fake.requests();
    let blob_puts = reqs
        .iter()
        .filter(|r| r.method == "PUT" && r.path().contains("/blobs/"))
        .count();
    assert_eq!(blob_puts, 3, "two layers and the config");
    assert_eq!(reqs.last().unwrap().path(), "/v2/app/manifests/v1");
    assert_eq!(manifest_puts(&fake), 1);
    assert_eq!(report.layers.len(), 2);
}

/// R04: the layers of a run image that live in another repository of the target registry
/// (not yet in the local store) are checked with `HEAD` first; a 403 there is "unknown":
/// kiln tries the mount, fetches the layer, uploads it, and the manifest goes last.
#[tokio::test]
async fn r04_a_forbidden_check_of_a_remote_layer_does_not_stop_the_push() {
    let tmp = tempfile::tempdir().unwrap();
    let local = Blobs::new(store(&tmp.path().join("local")), None);
    let mut fin = image(local.store(), 8).finalize().unwrap();
    let stored: Vec<_> = fin
        .layers
        .iter()
        .map(|l| {
            (
                format!("/v2/base/blobs/{}", l.digest),
                std::fs::read(local.store().path(&l.digest)).unwrap(),
            )
        })
        .collect();
    let sessions = Mutex::new(0);
    let fake = Fake::start(move |req, _| {
        if req.method == "GET"
            && let Some((_, bytes)) = stored.iter().find(|(p, _)| p == req.path())
        {
            return Reply::status(200).body(bytes.clone());
        }
        match req.method.as_str() {
            "DELETE" => Reply::status(204),
            _ => registry(req, &sessions, 403, None),
        }
    })
    .await;
    let base: kiln_oci::Reference = format!("{}/base:1", fake.host).parse().unwrap();
    for layer in &mut fin.layers {
        layer.origin = Origin::Remote(base.clone());
    }
    let c = client(None);
    let blobs = Blobs::new(store(&tmp.path().join("empty")), Some(c.clone()));
    let target = format!("{}/app:v1", fake.host).parse().unwrap();
    let report = push_image(&c, &target, &fin, &blobs, &()).await.unwrap();
    assert_eq!(report.digest, fin.manifest_digest);
    let reqs = fake.requests();
    let fetched = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path().starts_with("/v2/base/blobs/"))
        .count();
    assert_eq!(fetched, 2, "both layers fetched for the upload");
    assert_eq!(reqs.last().unwrap().path(), "/v2/app/manifests/v1");
}

/// R03: tokens the registry rejects after one request each: a chunked push refreshes a
/// bounded number of times, then fails as an auth error, and no manifest is put (the
/// 5-refresh bound of one call is asserted in kiln-registry's `faults/bearer.rs`).
#[tokio::test]
async fn r03_tokens_that_keep_expiring_fail_the_push_before_any_manifest() {
    let realm = Arc::new(OnceLock::<String>::new());
    let realm_in = realm.clone();
    let sessions = Mutex::new(0);
    // Token number → whether it has been used.
    let tokens = Mutex::new(Vec::<bool>::new());
    let fake = Fake::start(move |req, _| {
        let mut tokens = tokens.lock().unwrap();
        if req.path() == "/token" {
            tokens.push(false);
            return Reply::status(200).body(format!(r#"{{"token":"t{}"}}"#, tokens.len() - 1));
        }
        let presented = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer t"))
            .and_then(|n| n.parse::<usize>().ok());
        match presented {
            Some(n) if tokens.get(n) == Some(&false) => {
                tokens[n] = true;
                registry(req, &sessions, 404, None)
            }
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{}",service="fake",error="invalid_token""#,
                    realm_in.get().unwrap()
                ),
            ),
        }
    })
    .await;
    realm.set(format!("http://{}/token", fake.host)).unwrap();
    let started = std::time::Instant::now();
    let err = registry_error(push(&fake, &client(Some(2048))).await.unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Concurrent uploads share tokens, so one may also lose its fresh token to another
    // upload before using it: a plain 401 then. Either way an auth error.
    assert!(
        matches!(err, RegistryError::TokenRejected { refreshes: 5, .. })
            || err.status() == Some(401),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(manifest_puts(&fake), 0, "the tag was touched");
}
