//! Redirects: credentials stay with the registry host, signed URLs stay out of errors.

use std::sync::Arc;

use kiln_oci::Digest;
use kiln_registry::RegistryError;

use crate::fake::{Fake, Recorded, Reply};
use crate::{reference, with_credentials};

/// A registry that wants Basic auth and redirects blob GETs to `to`.
fn registry_redirecting_to(to: String) -> impl Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync {
    move |req, _| match req.header("authorization") {
        None => Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
        Some(_) => Reply::status(307).header("Location", &to),
    }
}

/// Storage that refuses a request carrying `Authorization`, as S3 does ("Only one auth
/// mechanism allowed") when a client forwards the registry's credentials to a signed URL.
fn storage_serving(bytes: Vec<u8>) -> impl Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync {
    move |req, _| {
        match req.header("authorization") {
        Some(_) => Reply::status(400).body(
            "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
        ),
        None => Reply::status(200).body(bytes.clone()),
    }
    }
}

/// R06 (a): a blob GET redirected to storage on another host sends no credentials there,
/// and storage that refuses credentials serves the blob.
#[tokio::test]
async fn r06_a_authorization_is_not_sent_to_the_redirect_host() {
    let bytes = b"blob from storage".to_vec();
    let storage = Fake::start(storage_serving(bytes.clone())).await;
    let registry = Fake::start(registry_redirecting_to(format!(
        "http://{}/blob?X-Amz-Signature=secret",
        storage.host
    )))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let settings = with_credentials(tmp.path(), &registry.host, "user", "hunter2");
    let c = kiln_registry::Client::new(settings.clone()).unwrap();
    let dest = tmp.path().join("blob");
    let d = Digest::of(&bytes);
    c.get_blob_to_file(&reference(&registry.host, "app"), &d, None, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    let to_registry = registry.requests();
    assert_eq!(to_registry.len(), 2);
    assert_eq!(
        to_registry[1].header("authorization"),
        Some("Basic dXNlcjpodW50ZXIy")
    );
    let to_storage = storage.requests();
    assert_eq!(to_storage.len(), 1);
    assert_eq!(to_storage[0].target, "/blob?X-Amz-Signature=secret");
    assert_eq!(to_storage[0].header("authorization"), None);

    for text in [format!("{c:?}"), format!("{settings:?}")] {
        assert!(
            !text.contains("hunter2") && !text.contains("dXNlcjpodW50ZXIy"),
            "{text}"
        );
    }
}

/// C02: a signed storage URL's query never shows in an error, whether storage refuses
/// or cannot be reached.
#[tokio::test]
async fn c02_signed_urls_are_redacted_in_errors() {
    let storage = Fake::start(|_, _| {
        Reply::status(403).body("<Error><SignatureProvided>secret</SignatureProvided></Error>")
    })
    .await;
    let registry = Fake::start(registry_redirecting_to(format!(
        "http://{}/blob?X-Amz-Signature=secret",
        storage.host
    )))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let c =
        kiln_registry::Client::new(with_credentials(tmp.path(), &registry.host, "u", "p")).unwrap();
    let repo = reference(&registry.host, "app");
    let d = Digest::of(b"x");
    let err = c.get_blob_bytes(&repo, &d, 100).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(&format!("http://{}/blob?<redacted>", storage.host)),
        "{shown}"
    );
    assert!(!shown.contains("secret"), "{shown}");

    // A transport failure at the signed URL (nothing listens there) is redacted too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let registry = Fake::start(registry_redirecting_to(format!(
        "http://{closed}/blob?X-Amz-Signature=secret"
    )))
    .await;
    let c =
        kiln_registry::Client::new(with_credentials(tmp.path(), &registry.host, "u", "p")).unwrap();
    let err = c
        .get_blob_bytes(&reference(&registry.host, "app"), &d, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// R06 (b): a chain registry → storage/1 → storage/2 carries no credentials past the
/// registry, not even on the second hop of the other host (Go CVE-2024-45336).
#[tokio::test]
async fn r06_b_a_redirect_chain_on_another_host_carries_no_credentials() {
    let bytes = b"blob after two hops".to_vec();
    let serve = storage_serving(bytes.clone());
    let storage = Fake::start(move |req, earlier| match req.path() {
        "/1" => Reply::status(307).header("Location", "/2?X-Amz-Signature=s"),
        _ => serve(req, earlier),
    })
    .await;
    let registry = Fake::start(registry_redirecting_to(format!(
        "http://{}/1",
        storage.host
    )))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let c =
        kiln_registry::Client::new(with_credentials(tmp.path(), &registry.host, "u", "p")).unwrap();
    let got = c
        .get_blob_bytes(&reference(&registry.host, "app"), &Digest::of(&bytes), 100)
        .await
        .unwrap();
    assert_eq!(got, bytes);
    let hops: Vec<_> = storage
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(hops, ["/1", "/2?X-Amz-Signature=s"]);
    assert!(
        storage
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
    assert!(registry.requests()[1].header("authorization").is_some());
}

/// R06 (c): a subdomain of the registry (`cdn.reg.localhost` for `reg.localhost`, same
/// port, same listener) is another host: no credentials. kiln resolves `*.localhost`
/// itself, so this never asks DNS.
#[tokio::test]
async fn r06_c_a_subdomain_of_the_registry_gets_no_credentials() {
    let bytes = b"blob from the cdn".to_vec();
    let serve = storage_serving(bytes.clone());
    let fake = Fake::start(move |req, earlier| {
        let host = req.header("host").unwrap_or_default();
        if host.starts_with("cdn.") {
            return serve(req, earlier);
        }
        let port = host.rsplit_once(':').unwrap().1;
        match req.header("authorization") {
            None => Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
            Some(_) => Reply::status(307)
                .header("Location", &format!("http://cdn.reg.localhost:{port}/blob")),
        }
    })
    .await;
    let port = fake.host.rsplit_once(':').unwrap().1;
    let registry = format!("reg.localhost:{port}");
    let tmp = tempfile::tempdir().unwrap();
    let c = kiln_registry::Client::new(with_credentials(tmp.path(), &registry, "u", "p")).unwrap();
    let got = c
        .get_blob_bytes(&reference(&registry, "app"), &Digest::of(&bytes), 100)
        .await
        .unwrap();
    assert_eq!(got, bytes);
    let reqs = fake.requests();
    let hosts: Vec<_> = reqs.iter().map(|r| r.header("host").unwrap()).collect();
    assert_eq!(
        hosts,
        [
            registry.as_str(),
            registry.as_str(),
            &format!("cdn.reg.localhost:{port}")
        ]
    );
    assert!(reqs[1].header("authorization").is_some());
    assert_eq!(reqs[2].header("authorization"), None);
}

/// R06 (e): the host a blob GET is redirected to answers 401 with its own (attacker's)
/// Bearer realm: kiln neither sends it the registry's token nor fetches one from that
/// realm; the error names the redirect host, redacted.
#[tokio::test]
async fn r06_e_the_redirect_hosts_own_challenge_never_gets_the_token() {
    let own = Arc::new(std::sync::OnceLock::<String>::new());
    let own_in = own.clone();
    let attacker = Fake::start(move |req, _| match req.path() {
        "/steal" => Reply::status(200).body(r#"{"token":"attacker"}"#),
        _ => Reply::status(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="http://{}/steal",service="evil""#,
                own_in.get().unwrap()
            ),
        ),
    })
    .await;
    own.set(attacker.host.clone()).unwrap();
    let realm = Arc::new(std::sync::OnceLock::<String>::new());
    let (realm_in, to) = (
        realm.clone(),
        format!("http://{}/blob?sig=1", attacker.host),
    );
    let registry = Fake::start(move |req, _| {
        if req.path() == "/token" {
            return Reply::status(200).body(r#"{"token":"registry-token-SECRET"}"#);
        }
        match req.header("authorization") {
            Some("Bearer registry-token-SECRET") => Reply::status(307).header("Location", &to),
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{}",service="reg""#,
                    realm_in.get().unwrap()
                ),
            ),
        }
    })
    .await;
    realm
        .set(format!("http://{}/token", registry.host))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let c = kiln_registry::Client::new(with_credentials(tmp.path(), &registry.host, "u", "pw"))
        .unwrap();
    let err = c
        .get_blob_bytes(&reference(&registry.host, "app"), &Digest::of(b"x"), 100)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains(&format!(
            "answered by `http://{}/blob?<redacted>`",
            attacker.host
        )),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
    // One request, to the blob URL: nothing went to the attacker's realm.
    let seen = attacker.requests();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].header("authorization"), None);
    // The registry was asked once for a token, and nothing else went to its realm.
    let tokens = registry
        .requests()
        .iter()
        .filter(|r| r.path() == "/token")
        .count();
    assert_eq!(tokens, 1);
}

/// C03: a redirect to plain http on a host that is neither loopback nor listed as an
/// insecure registry is refused before any request.
#[tokio::test]
async fn c03_plain_http_redirects_to_other_hosts_are_refused() {
    let registry =
        Fake::start(|_, _| Reply::status(307).header("Location", "http://storage.invalid/blob"))
            .await;
    let err = crate::client()
        .get_blob_bytes(&reference(&registry.host, "app"), &Digest::of(b"x"), 100)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::InsecureHttp { .. }), "{err}");
    assert!(
        err.hint()
            .unwrap()
            .contains("`storage.invalid` answers over plain http")
    );
}
