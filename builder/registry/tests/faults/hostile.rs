//! Hostile endpoints (R08) and the plain-HTTP policy (C03).
//!
//! Refused addresses are `0.0.0.0:<the fake's port>` here: kiln refuses them like any
//! link-local or unspecified address, and if it ever followed one, Linux would deliver the
//! request to the fake on 127.0.0.1, where the test sees it; nothing leaves the machine.
//! The exact catalogue addresses (`169.254.169.254`, `10.0.0.1`) are judged by the same
//! code in `guard.rs`'s unit tests, without a connection.

use std::sync::{Arc, OnceLock};

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, ErrorClass, RegistryError, RegistrySettings, TransportKind};

use crate::fake::{Fake, Reply};
use crate::{reference, settings, with_credentials};

fn port(host: &str) -> &str {
    host.rsplit_once(':').unwrap().1
}

fn refusal(err: &RegistryError) -> String {
    assert!(matches!(err, RegistryError::Refused { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Protocol);
    assert!(err.hint().is_some());
    err.to_string()
}

/// R08: a realm `file://…` or at an unspecified/link-local address, a token server
/// redirecting there, and an upload `Location` there are refused with "refusing …" and no
/// request reaches them; an upload `Location` on the registry's own host is followed.
#[tokio::test]
async fn r08_hostile_realms_and_locations_are_refused_before_any_request() {
    let me = Arc::new(OnceLock::<String>::new());
    let me_in = me.clone();
    let fake = Fake::start(move |req, _| {
        let host = me_in.get().unwrap();
        let evil = format!("http://0.0.0.0:{}", port(host));
        let repo = req.path().split('/').nth(2).unwrap_or_default();
        let bearer = |realm: &str| {
            Reply::status(401).header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#))
        };
        match (req.path(), req.method.as_str(), repo) {
            (p, _, _) if p.starts_with("/token") => {
                Reply::status(302).header("Location", &format!("{evil}/stolen"))
            }
            (_, _, "file") => bearer("file:///etc/passwd"),
            (_, _, "meta") => bearer(&format!("{evil}/latest/meta-data/iam")),
            (_, _, "bounce") => bearer(&format!("http://{host}/token")),
            (_, "HEAD", _) => Reply::status(404),
            (_, "POST", "upload") => {
                Reply::status(202).header("Location", &format!("{evil}/upload?_state=x"))
            }
            (_, "POST", _) => Reply::status(202).header(
                "Location",
                &format!("http://{host}/v2/same/blobs/uploads/u1?_state=x"),
            ),
            (_, "PUT", "same") => Reply::status(201),
            _ => Reply::status(400),
        }
    })
    .await;
    me.set(fake.host.clone()).unwrap();
    // A client per case: a client remembers a host's realm.
    let pull = |repo: &'static str| {
        let r = reference(&fake.host, repo);
        async move { crate::client().get_manifest(&r, "v1").await.unwrap_err() }
    };
    let c = crate::client();
    let evil = format!("http://0.0.0.0:{}", port(&fake.host));

    let text = refusal(&pull("file").await);
    assert!(
        text.contains("refusing the token realm `file:///etc/passwd`: kiln follows only http"),
        "{text}"
    );
    let text = refusal(&pull("meta").await);
    assert!(
        text.contains(&format!(
            "refusing the token realm `{evil}/latest/meta-data/iam`"
        )),
        "{text}"
    );
    assert!(
        text.contains("link-local, unspecified or multicast"),
        "{text}"
    );
    let text = refusal(&pull("bounce").await);
    assert!(
        text.contains(&format!("refusing the redirect `{evil}/stolen`")),
        "{text}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b");
    std::fs::write(&path, b"layer").unwrap();
    let d = Digest::of(b"layer");
    let err = c
        .push_blob(
            &reference(&fake.host, "upload"),
            &d,
            5,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    let text = refusal(&err);
    assert!(
        text.contains(&format!("refusing the location `{evil}/upload?<redacted>`")),
        "{text}"
    );
    let got = c
        .push_blob(&reference(&fake.host, "same"), &d, 5, &path, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 5 });

    let reqs = fake.requests();
    for r in &reqs {
        assert!(
            !["/latest", "/stolen", "/upload"]
                .iter()
                .any(|p| r.path().starts_with(p)),
            "a refused URL was requested: {r:?}"
        );
    }
    let puts: Vec<_> = reqs.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].path().starts_with("/v2/same/"));
}

/// C03: a TLS failure on a host that may use plain http (loopback, or a listed insecure
/// registry) is reported as such; kiln never retries the registry over plain http.
#[tokio::test]
async fn c03_a_tls_failure_never_falls_back_to_plain_http() {
    let fake = Fake::start_failing_tls(|_, _| Reply::status(200).body("{}")).await;
    let err = crate::client()
        .get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Transport {
                kind: TransportKind::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Input);
    assert!(err.hint().unwrap().contains("private CA"), "{err:?}");
    assert!(fake.tls_hellos() >= 1);
    assert!(
        fake.requests().is_empty(),
        "plain http after a TLS failure: {:?}",
        fake.requests()
    );
}

/// C03: a loopback registry that answers a TLS handshake in plain http is probed with
/// HTTPS once, not before every request (each probe is a connection and a handshake).
#[tokio::test]
async fn c03_a_plain_http_loopback_registry_is_probed_once() {
    let fake = Fake::start(|_, _| {
        Reply::status(200)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body("{}")
    })
    .await;
    let client = crate::client();
    for tag in ["v1", "v2", "v3"] {
        let _ = client
            .get_manifest(&reference(&fake.host, "app"), tag)
            .await;
    }
    assert_eq!(fake.tls_hellos(), 1, "{:?}", fake.requests());
    assert!(fake.requests().len() >= 3, "{:?}", fake.requests());
}

/// C03: a registry that is not this machine is spoken to over https only unless listed as
/// insecure; listed, it gets plain http but no credentials unless the settings allow it.
/// (`0.0.0.0` is such a host for kiln and, on Linux, reaches the fake on 127.0.0.1.)
#[tokio::test]
async fn c03_credentials_cross_plain_http_only_to_this_machine_or_when_allowed() {
    let fake = Fake::start(|req, _| match req.header("authorization") {
        Some("Basic dTpwLUNBTkFSWQ==") => Reply::status(200)
            .header("Content-Type", OCI_MANIFEST)
            .body("{}"),
        _ => Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
    })
    .await;
    let registry = format!("0.0.0.0:{}", port(&fake.host));
    let tmp = tempfile::tempdir().unwrap();
    let with_creds = with_credentials(tmp.path(), &registry, "u", "p-CANARY");
    let repo = reference(&registry, "app");

    // Not listed: https only, so nothing but a TLS hello ever arrives.
    let err = kiln_registry::Client::new(with_creds.clone())
        .unwrap()
        .get_manifest(&repo, "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    // Listed as insecure: plain http, anonymous, and the credentials are refused.
    let insecure = RegistrySettings {
        insecure_registries: vec![registry.clone()],
        ..with_creds
    };
    let err = kiln_registry::Client::new(insecure.clone())
        .unwrap()
        .get_manifest(&repo, "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::CredentialsOverHttp { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "refusing to send the credentials for `{registry}` over plain http to `http://{registry}/v2/"
        )),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("CANARY"));
    assert!(!fake.requests().is_empty());
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "{:?}",
        fake.requests()
    );

    // Explicitly allowed: the credentials go.
    let allowed = RegistrySettings {
        allow_http_credentials: true,
        ..insecure
    };
    kiln_registry::Client::new(allowed)
        .unwrap()
        .get_manifest(&repo, "v1")
        .await
        .unwrap();
}

/// C03: the same for a token registry: with credentials the token request is refused
/// before it is sent (the realm is plain http on another machine); anonymous, the token
/// exchange happens and the pull works.
#[tokio::test]
async fn c03_no_credentials_to_a_plain_http_token_realm_on_another_machine() {
    let me = Arc::new(OnceLock::<String>::new());
    let me_in = me.clone();
    let fake = Fake::start(move |req, _| {
        if req.path() == "/token" {
            return Reply::status(200).body(r#"{"token":"anon"}"#);
        }
        match req.header("authorization") {
            Some("Bearer anon") => Reply::status(200)
                .header("Content-Type", OCI_MANIFEST)
                .body("{}"),
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{}/token""#, me_in.get().unwrap()),
            ),
        }
    })
    .await;
    let registry = format!("0.0.0.0:{}", port(&fake.host));
    me.set(registry.clone()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = reference(&registry, "app");
    let insecure = |s: RegistrySettings| RegistrySettings {
        insecure_registries: vec![registry.clone()],
        ..s
    };
    let err =
        kiln_registry::Client::new(insecure(with_credentials(tmp.path(), &registry, "u", "p")))
            .unwrap()
            .get_manifest(&repo, "v1")
            .await
            .unwrap_err();
    assert!(
        matches!(err, RegistryError::CredentialsOverHttp { .. }),
        "{err:?}"
    );
    assert!(!fake.requests().iter().any(|r| r.path() == "/token"));

    kiln_registry::Client::new(insecure(settings()))
        .unwrap()
        .get_manifest(&repo, "v1")
        .await
        .unwrap();
    let tokens: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].header("authorization"), None);
}
