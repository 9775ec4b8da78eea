//! Upload sessions as the spec lets registries shape them (RELIABILITY.md R11): relative
//! and absolute `Location`s, a monolithic `POST ?digest=` answered 202, a minimum chunk
//! length, and a chunk the registry did not expect (416).

use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_oci::Digest;
use kiln_registry::{BlobPush, Client, RegistrySettings};

use crate::fake::{Fake, Recorded, Reply};
use crate::{reference, settings, with_credentials};

fn digest_query(d: &Digest) -> String {
    format!("digest={}", d.to_string().replace(':', "%3A"))
}

/// Returns the bytes the PATCHes to `session` carried, placed by their `Content-Range`.
fn assembled(reqs: &[Recorded], session: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for r in reqs
        .iter()
        .filter(|r| r.method == "PATCH" && r.path() == session)
    {
        let (start, _) = r.header("content-range").unwrap().split_once('-').unwrap();
        let start: usize = start.parse().unwrap();
        out.truncate(start);
        out.extend_from_slice(&r.body);
    }
    out
}

fn chunked(chunk: u64) -> Client {
    Client::new(RegistrySettings {
        chunk_size: Some(chunk),
        ..settings()
    })
    .unwrap()
}

/// R11 (a): relative `Location`s with a query (a new one after every chunk) are followed
/// with their query kept, and `digest` is appended to the last one with `&`.
#[tokio::test]
async fn r11_a_relative_locations_keep_their_query() {
    let fake = Fake::start(|req, earlier| match req.method.as_str() {
        "HEAD" => Reply::status(404),
        "POST" => Reply::status(202).header("Location", "/v2/app/blobs/uploads/u?_state=0"),
        "PATCH" => {
            let n = earlier.iter().filter(|r| r.method == "PATCH").count() + 1;
            let (_, end) = req
                .header("content-range")
                .unwrap()
                .split_once('-')
                .unwrap();
            Reply::status(202)
                .header("Location", &format!("/v2/app/blobs/uploads/u?_state={n}"))
                .header("Range", &format!("0-{end}"))
        }
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let bytes = kiln_e2e::noise(10_000, 11);
    let path = tmp.path().join("b");
    std::fs::write(&path, &bytes).unwrap();
    let d = Digest::of(&bytes);
    chunked(4096)
        .push_blob(
            &reference(&fake.host, "app"),
            &d,
            10_000,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    let targets: Vec<String> = fake.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets[2..],
        [
            "/v2/app/blobs/uploads/u?_state=0".to_string(),
            "/v2/app/blobs/uploads/u?_state=1".to_string(),
            "/v2/app/blobs/uploads/u?_state=2".to_string(),
            format!("/v2/app/blobs/uploads/u?_state=3&{}", digest_query(&d)),
        ]
    );
    assert_eq!(
        assembled(&fake.requests(), "/v2/app/blobs/uploads/u"),
        bytes
    );
}

/// R11 (b): an absolute `Location` on another upload host is followed; the registry's
/// credentials go to the registry only.
#[tokio::test]
async fn r11_b_an_absolute_location_on_an_upload_host_gets_no_credentials() {
    let upload = Fake::start(|req, _| match req.method.as_str() {
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    let location = format!("http://{}/upload/abc?sig=1", upload.host);
    let registry =
        Fake::start(
            move |req, _| match (req.header("authorization"), req.method.as_str()) {
                (None, _) => Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
                (Some(_), "HEAD") => Reply::status(404),
                (Some(_), "POST") => Reply::status(202).header("Location", &location),
                _ => Reply::status(400),
            },
        )
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let c = Client::new(with_credentials(tmp.path(), &registry.host, "u", "pw")).unwrap();
    let (path, d) = (tmp.path().join("b"), Digest::of(b"upload host bytes"));
    std::fs::write(&path, b"upload host bytes").unwrap();
    let got = c
        .push_blob(
            &reference(&registry.host, "app"),
            &d,
            17,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 17 });
    let put = &upload.requests()[0];
    assert_eq!(
        put.target,
        format!("/upload/abc?sig=1&{}", digest_query(&d))
    );
    assert_eq!(put.header("authorization"), None);
    assert_eq!(put.body, b"upload host bytes");
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.header("authorization").is_some())
    );
}

/// R11 (c): a monolithic `POST ?digest=` answered 202 (the registry wants a session) goes
/// on with a PUT to the `Location`, carrying the bytes and the digest.
#[tokio::test]
async fn r11_c_a_monolithic_post_answered_202_continues_with_put() {
    let fake = Fake::start(|req, _| match req.method.as_str() {
        "POST" => Reply::status(202).header("Location", "/v2/app/blobs/uploads/s?_state=x"),
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    let bytes = bytes::Bytes::from_static(b"{\"sbom\":true}");
    let d = Digest::of(&bytes);
    let got = crate::client()
        .push_blob_bytes(&reference(&fake.host, "app"), bytes.clone())
        .await
        .unwrap();
    assert_eq!(got, d);
    let reqs = fake.requests();
    assert_eq!(
        reqs[0].target,
        format!("/v2/app/blobs/uploads/?{}", digest_query(&d))
    );
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(
        reqs[1].target,
        format!("/v2/app/blobs/uploads/s?_state=x&{}", digest_query(&d))
    );
    assert_eq!(reqs[1].body, bytes.as_ref());
}

/// R11 (d): `OCI-Chunk-Min-Length: 5242880` makes every chunk but the last at least that
/// long, whatever kiln's own chunk size.
#[tokio::test]
async fn r11_d_chunks_respect_the_registrys_minimum() {
    let fake = Fake::start(|req, _| match req.method.as_str() {
        "HEAD" => Reply::status(404),
        "POST" => Reply::status(202)
            .header("Location", "/v2/app/blobs/uploads/u")
            .header("OCI-Chunk-Min-Length", "5242880"),
        "PATCH" => {
            let (_, end) = req
                .header("content-range")
                .unwrap()
                .split_once('-')
                .unwrap();
            Reply::status(202)
                .header("Location", "/v2/app/blobs/uploads/u")
                .header("Range", &format!("0-{end}"))
        }
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let size = 2 * 5_242_880 + 1000;
    let bytes = kiln_e2e::noise(size, 12);
    let path = tmp.path().join("b");
    std::fs::write(&path, &bytes).unwrap();
    chunked(1024 * 1024)
        .push_blob(
            &reference(&fake.host, "app"),
            &Digest::of(&bytes),
            size as u64,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    let lens: Vec<usize> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body.len())
        .collect();
    assert_eq!(lens, [5_242_880, 5_242_880, 1000]);
    assert_eq!(
        assembled(&fake.requests(), "/v2/app/blobs/uploads/u"),
        bytes
    );
}

/// R11 (e): a chunk answered 416: kiln asks the session where it stands (`GET`, `Range`)
/// and resumes from there; when the session is gone, it starts a new one. The blob ends
/// with 201 and the registry holds exactly its bytes.
#[tokio::test]
async fn r11_e_an_out_of_order_chunk_resumes_or_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = kiln_e2e::noise(12_000, 13);
    let path = tmp.path().join("b");
    std::fs::write(&path, &bytes).unwrap();
    let d = Digest::of(&bytes);
    for session_survives in [true, false] {
        let refused = AtomicUsize::new(0);
        let fake = Fake::start(move |req, earlier| {
            let session = format!(
                "/v2/app/blobs/uploads/u{}",
                earlier.iter().filter(|r| r.method == "POST").count()
            );
            match req.method.as_str() {
                "HEAD" => Reply::status(404),
                "POST" => {
                    let n = earlier.iter().filter(|r| r.method == "POST").count() + 1;
                    Reply::status(202).header("Location", &format!("/v2/app/blobs/uploads/u{n}"))
                }
                // The second chunk arrives "out of order" once: the registry holds only the first.
                "PATCH"
                    if req.header("content-range") == Some("4096-8191")
                        && refused.fetch_add(1, Ordering::SeqCst) == 0 =>
                {
                    Reply::status(416)
                }
                "GET" if session_survives => Reply::status(204)
                    .header("Location", &session)
                    .header("Range", "0-4095"),
                "GET" => Reply::status(404)
                    .header("Content-Type", "application/json")
                    .body(r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}"#),
                "PATCH" => {
                    let (_, end) = req
                        .header("content-range")
                        .unwrap()
                        .split_once('-')
                        .unwrap();
                    Reply::status(202)
                        .header("Location", &session)
                        .header("Range", &format!("0-{end}"))
                }
                "PUT" => Reply::status(201),
                _ => Reply::status(400),
            }
        })
        .await;
        chunked(4096)
            .push_blob(
                &reference(&fake.host, "app"),
                &d,
                12_000,
                &path,
                None,
                &|_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("survives {session_survives}: {e}"));
        let reqs = fake.requests();
        let sent: Vec<String> = reqs
            .iter()
            .map(|r| format!("{} {}", r.method, r.path()))
            .collect();
        let last_session = if session_survives {
            "/v2/app/blobs/uploads/u1"
        } else {
            "/v2/app/blobs/uploads/u2"
        };
        assert!(
            sent.contains(&"GET /v2/app/blobs/uploads/u1".to_string()),
            "{sent:?}"
        );
        assert_eq!(
            sent.iter().filter(|s| s.starts_with("POST")).count(),
            if session_survives { 1 } else { 2 },
            "{sent:?}"
        );
        assert_eq!(assembled(&reqs, last_session), bytes, "{sent:?}");
        let put = reqs.last().unwrap();
        assert_eq!(put.method, "PUT");
        assert_eq!(put.target, format!("{last_session}?{}", digest_query(&d)));
    }
}
