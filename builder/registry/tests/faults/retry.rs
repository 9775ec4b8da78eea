//! Retries: 5xx, 429 with `Retry-After`, connection resets, and upload session restarts
//! (RELIABILITY.md R05, R07).

use std::time::Duration;

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, Client, RegistryError, RegistrySettings, RetryPolicy};

use crate::fake::{Fake, Recorded, Reply};
use crate::{client, reference, settings};

const MANIFEST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;

fn manifest_reply() -> Reply {
    Reply::status(200)
        .header("Content-Type", OCI_MANIFEST)
        .body(MANIFEST)
}

#[tokio::test]
async fn retries_a_server_error() {
    let fake = Fake::start(|_, earlier| match earlier.len() {
        0 => Reply::status(500),
        _ => manifest_reply(),
    })
    .await;
    let got = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    assert_eq!(got.bytes, MANIFEST);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_not_on_4xx() {
    let fake = Fake::start(|_, _| Reply::status(503)).await;
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(fake.requests().len(), 3);

    let fake = Fake::start(|_, _| Reply::status(400)).await;
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(fake.requests().len(), 1);
}

/// R05: `429` with `Retry-After: 2` is retried after at least 2 s, and then succeeds.
#[tokio::test]
async fn r05_b_retry_after_2_waits_at_least_2_s_then_succeeds() {
    let fake = Fake::start(|_, earlier| match earlier.len() {
        0 => Reply::status(429).header("Retry-After", "2"),
        _ => manifest_reply(),
    })
    .await;
    let got = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    assert_eq!(got.bytes, MANIFEST);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at - reqs[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
}

/// R05: `429` without `Retry-After` backs off exponentially: each wait at least doubles
/// the policy's base delay of the one before.
#[tokio::test]
async fn r05_c_429_without_retry_after_backs_off_exponentially() {
    let fake = Fake::start(|_, earlier| match earlier.len() {
        0..4 => Reply::status(429),
        _ => manifest_reply(),
    })
    .await;
    let base = Duration::from_millis(40);
    let c = kiln_registry::Client::new(kiln_registry::RegistrySettings {
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: base,
            max_delay: Duration::from_secs(2),
        },
        ..crate::settings()
    })
    .unwrap();
    c.get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    let at: Vec<_> = fake.requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 5);
    for (i, pair) in at.windows(2).enumerate() {
        let waited = pair[1] - pair[0];
        let floor = base * (1 << i);
        assert!(
            waited >= floor,
            "wait {i} was {waited:?}, expected >= {floor:?}"
        );
    }
}

/// R05: a registry answering `429` (no header) to everything, 50 calls at once: every call
/// gives up after the policy's attempts, so the registry sees at most 50 × 3 requests,
/// and the whole storm is over in the policy's bounded waiting time.
#[tokio::test]
async fn r05_d_a_429_storm_is_bounded_in_requests_and_time() {
    let fake = Fake::start(|_, _| Reply::status(429)).await;
    let c = client();
    let started = std::time::Instant::now();
    let calls = (0..50).map(|i| {
        let c = c.clone();
        let repo = reference(&fake.host, &format!("app{i}"));
        async move { c.get_manifest(&repo, "v1").await }
    });
    let results = futures_util::future::join_all(calls).await;
    for r in &results {
        let err = r.as_ref().unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.class(), kiln_registry::ErrorClass::Transient);
    }
    assert_eq!(fake.requests().len(), 50 * 3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// R05: a `Retry-After` longer than kiln would ever wait (a day) fails at once with the
/// registry's own words and the wait in the hint, instead of retrying a capped wait; and a
/// 429 repeated forever is given up after the policy's attempts.
#[tokio::test]
async fn r05_a_retry_after_beyond_the_cap_fails_fast_with_the_registrys_message() {
    let fake = Fake::start(|_, _| {
        Reply::status(429)
            .header("Retry-After", "86400")
            .header("Content-Type", "application/json")
            .body(br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull quota used up until tomorrow"}]}"#)
    })
    .await;
    let started = std::time::Instant::now();
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "no retry of a day-long Retry-After"
    );
    assert_eq!(err.code(), Some("TOOMANYREQUESTS"));
    let text = err.to_string();
    assert!(text.contains("pull quota used up until tomorrow"), "{text}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("86400 s"), "{hint}");

    let fake = Fake::start(|_, _| Reply::status(429)).await;
    let err = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(fake.requests().len(), 3, "a bounded number of tries");
}

#[tokio::test]
async fn retries_a_connection_closed_without_answer() {
    let fake = Fake::start(|_, earlier| match earlier.len() {
        0 => Reply::Close,
        _ => manifest_reply(),
    })
    .await;
    let got = client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    assert_eq!(got.bytes, MANIFEST);
    assert_eq!(fake.requests().len(), 2);
}

/// R07 (and R11 a): a PUT answered 500 abandons the session; a new one starts with HEAD and
/// POST, the relative `Location` keeps its query, `digest` is appended with `&`, and the
/// whole file is sent again.
#[tokio::test]
async fn r07_a_failed_upload_restarts_from_post() {
    let puts = std::sync::atomic::AtomicUsize::new(0);
    let fake = Fake::start(move |req, _| match req.method.as_str() {
        "HEAD" => Reply::status(404),
        // A relative location with state that must be kept.
        "POST" => Reply::status(202).header("Location", "/v2/app/blobs/uploads/u1?_state=abc"),
        "PUT" if puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => Reply::status(500),
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let bytes = b"layer bytes".repeat(1000);
    let path = tmp.path().join("layer");
    std::fs::write(&path, &bytes).unwrap();
    let d = Digest::of(&bytes);
    let got = client()
        .push_blob(
            &reference(&fake.host, "app"),
            &d,
            bytes.len() as u64,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        BlobPush::Uploaded {
            bytes: bytes.len() as u64
        }
    );
    let methods: Vec<_> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "POST", "PUT", "HEAD", "POST", "PUT"]);
    let put = &fake.requests()[5];
    assert_eq!(
        put.target,
        format!(
            "/v2/app/blobs/uploads/u1?_state=abc&digest={}",
            d.to_string().replace(':', "%3A")
        )
    );
    assert_eq!(put.body, bytes);
    assert_eq!(put.header("content-type"), Some("application/octet-stream"));
}

/// One R07 fault: what the first session's PATCH or PUT meets.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Status(u16),
    Reset,
    CutMidBody,
}

/// A registry whose sessions are `u1`, `u2`, …; every PATCH/PUT of the sessions up to
/// `failing` meets `fault`, later ones succeed.
async fn faulty_registry(fault: Fault, failing: usize) -> Fake {
    let session = |req: &Recorded| -> usize {
        req.path()
            .rsplit('/')
            .next()
            .and_then(|u| u.strip_prefix('u'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let hit = move |req: &Recorded| {
        matches!(req.method.as_str(), "PATCH" | "PUT") && session(req) <= failing
    };
    Fake::start_cutting(
        move |req, earlier| {
            if hit(req) {
                return match fault {
                    Fault::Status(s) => Reply::status(s),
                    Fault::Reset => Reply::Reset,
                    Fault::CutMidBody => Reply::Close,
                };
            }
            match req.method.as_str() {
                "HEAD" => Reply::status(404),
                "POST" => {
                    let n = earlier.iter().filter(|r| r.method == "POST").count() + 1;
                    Reply::status(202).header(
                        "Location",
                        &format!("/v2/app/blobs/uploads/u{n}?_state=s{n}"),
                    )
                }
                "PATCH" => {
                    let (_, end) = req
                        .header("content-range")
                        .unwrap()
                        .split_once('-')
                        .unwrap();
                    Reply::status(202)
                        .header("Location", req.path())
                        .header("Range", &format!("0-{end}"))
                }
                "PUT" => Reply::status(201),
                _ => Reply::status(400),
            }
        },
        move |req, _| (matches!(fault, Fault::CutMidBody) && hit(req)).then_some(1000),
    )
    .await
}

/// R07: each transient fault (500, 502, 503, 504, 408, 499, 522, a reset connection, a
/// connection cut mid-body) on a PATCH or the PUT, monolithic and chunked: the session is
/// abandoned for good (its URL never sees another request), a new one starts from HEAD
/// and POST, and the blob is complete. When every session fails: three sessions with
/// growing waits between them, and an error naming the blob and the last status.
#[tokio::test]
async fn r07_transient_faults_restart_the_whole_session() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = kiln_e2e::noise(200_000, 7);
    let path = tmp.path().join("layer");
    std::fs::write(&path, &bytes).unwrap();
    let d = Digest::of(&bytes);
    let faults = [500, 502, 503, 504, 408, 499, 522]
        .map(Fault::Status)
        .into_iter()
        .chain([Fault::Reset, Fault::CutMidBody]);
    for fault in faults {
        for chunk_size in [None, Some(64 * 1024)] {
            let what = format!("{fault:?} chunks {chunk_size:?}");
            let fake = faulty_registry(fault, 1).await;
            let c = Client::new(RegistrySettings {
                chunk_size,
                ..settings()
            })
            .unwrap();
            let got = c
                .push_blob(
                    &reference(&fake.host, "app"),
                    &d,
                    200_000,
                    &path,
                    None,
                    &|_| {},
                )
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, BlobPush::Uploaded { bytes: 200_000 }, "{what}");
            let reqs = fake.requests();
            let failed_at = reqs.iter().position(|r| r.path().ends_with("/u1")).unwrap();
            assert!(
                reqs[failed_at + 1..]
                    .iter()
                    .all(|r| !r.path().ends_with("/u1")),
                "{what}: the broken session was used again: {reqs:#?}"
            );
            let after: Vec<&str> = reqs[failed_at + 1..]
                .iter()
                .map(|r| r.method.as_str())
                .collect();
            assert_eq!(after[..2], ["HEAD", "POST"], "{what}: {after:?}");
            // The new session carries the whole file, in order.
            let sent: Vec<u8> = reqs
                .iter()
                .filter(|r| r.path().ends_with("/u2"))
                .flat_map(|r| r.body.clone())
                .collect();
            assert!(sent == bytes, "{what}: the second session sent other bytes");
            let put = reqs.last().unwrap();
            assert!(
                put.method == "PUT"
                    && put
                        .target
                        .ends_with(&format!("digest={}", d.to_string().replace(':', "%3A"))),
                "{what}: {put:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the layer file is untouched"
    );

    // Every session fails: three of them, with growing waits, then a clear error.
    let fake = faulty_registry(Fault::Status(503), usize::MAX).await;
    let err = client()
        .push_blob(
            &reference(&fake.host, "app"),
            &d,
            200_000,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    let reqs = fake.requests();
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3, "{reqs:#?}");
    let heads: Vec<_> = reqs.iter().filter(|r| r.method == "HEAD").collect();
    assert_eq!(heads.len(), 3, "a HEAD opens every session: {reqs:#?}");
    assert!(posts[1].at - posts[0].at >= Duration::from_millis(10));
    assert!(posts[2].at - posts[1].at >= Duration::from_millis(20));
    assert_eq!(err.status(), Some(503));
    let text = err.to_string();
    assert!(text.contains(&format!("pushing blob `{d}`")), "{text}");
    assert!(text.contains("gave up after 3 upload sessions"), "{text}");
    assert!(
        text.ends_with("registry said 503 Service Unavailable"),
        "{text}"
    );

    // The same for a connection reset on every try: the transport failure is named.
    let fake = faulty_registry(Fault::Reset, usize::MAX).await;
    let err = client()
        .push_blob(
            &reference(&fake.host, "app"),
            &d,
            200_000,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Transport { .. }), "{text}");
    assert!(
        text.contains(&format!("pushing blob `{d}`")) && text.contains("gave up after 3"),
        "{text}"
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        3
    );
}
