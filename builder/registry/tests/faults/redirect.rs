//! Redirects: credentials stay with the registry host, signed URLs stay out of errors.

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

#[tokio::test]
async fn authorization_is_not_sent_to_the_redirect_host() {
    let bytes = b"blob from storage".to_vec();
    let served = bytes.clone();
    let storage = Fake::start(move |_, _| Reply::status(200).body(served.clone())).await;
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

#[tokio::test]
async fn signed_urls_are_redacted_in_errors() {
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

#[tokio::test]
async fn plain_http_redirects_to_other_hosts_are_refused() {
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
            .contains("--insecure-registry storage.invalid")
    );
}
