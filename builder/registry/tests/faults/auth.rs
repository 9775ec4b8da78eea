//! Auth answers: the registry's JSON error on a refused push, and the Bearer token flow.

use std::sync::Arc;

use kiln_oci::Digest;
use kiln_oci::media_types::OCI_MANIFEST;

use crate::fake::{Fake, Reply};
use crate::{reference, with_credentials};

#[tokio::test]
async fn refused_push_keeps_code_and_message() {
    let fake = Fake::start(|req, _| {
        let r = Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        match req.method.as_str() {
            "HEAD" => r,
            _ => r.header("Content-Type", "application/json").body(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
            ),
        }
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b");
    std::fs::write(&path, b"abc").unwrap();
    let d = Digest::of(b"abc");
    let err = crate::client()
        .push_blob(&reference(&fake.host, "app"), &d, 3, &path, None, &|_| {})
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("UNAUTHORIZED"));
    assert_eq!(
        err.to_string(),
        format!(
            "pushing blob `{d}` to `{}/app`: registry said 401 UNAUTHORIZED: authentication required",
            fake.host
        )
    );
    assert!(
        err.hint()
            .unwrap()
            .contains(&format!("log in to `{}`", fake.host))
    );
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_per_scope() {
    let realm = Arc::new(std::sync::OnceLock::<String>::new());
    let realm_in = realm.clone();
    let fake = Fake::start(move |req, _| {
        if req.path() == "/token" {
            return match req.header("authorization") {
                Some("Basic dXNlcjpodW50ZXIy") => {
                    Reply::status(200).body(r#"{"access_token":"tok-SECRET","expires_in":300}"#)
                }
                _ => Reply::status(401),
            };
        }
        match req.header("authorization") {
            Some("Bearer tok-SECRET") => Reply::status(200)
                .header("Content-Type", OCI_MANIFEST)
                .body("{}"),
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{}",service="fake registry",scope="repository:team/app:pull""#,
                    realm_in.get().unwrap()
                ),
            ),
        }
    })
    .await;
    realm.set(format!("http://{}/token", fake.host)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let settings = with_credentials(tmp.path(), &fake.host, "user", "hunter2");
    let c = kiln_registry::Client::new(settings).unwrap();
    let repo = reference(&fake.host, "team/app");
    c.get_manifest(&repo, "v1").await.unwrap();
    c.clone().get_manifest(&repo, "v2").await.unwrap();

    let reqs = fake.requests();
    let tokens: Vec<_> = reqs.iter().filter(|r| r.path() == "/token").collect();
    assert_eq!(tokens.len(), 1, "{reqs:#?}");
    assert_eq!(
        tokens[0].target,
        "/token?service=fake+registry&scope=repository%3Ateam%2Fapp%3Apull"
    );
    let manifests: Vec<_> = reqs
        .iter()
        .filter(|r| r.path().contains("/manifests/"))
        .collect();
    assert_eq!(
        manifests.len(),
        3,
        "one challenge, then one request per pull"
    );
    assert!(!format!("{c:?}").contains("tok-SECRET"));
}

#[tokio::test]
async fn identity_tokens_use_the_oauth2_refresh_grant() {
    let realm = Arc::new(std::sync::OnceLock::<String>::new());
    let realm_in = realm.clone();
    let fake = Fake::start(move |req, _| {
        if req.path() == "/token" {
            let form = String::from_utf8_lossy(&req.body).into_owned();
            let ok = req.method == "POST"
                && req.header("authorization").is_none()
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=refresh-SECRET")
                && form.contains("scope=repository%3Aapp%3Apull");
            return if ok {
                Reply::status(200).body(r#"{"access_token":"tok-2"}"#)
            } else {
                Reply::status(400)
            };
        }
        match req.header("authorization") {
            Some("Bearer tok-2") => Reply::status(200)
                .header("Content-Type", OCI_MANIFEST)
                .body("{}"),
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{}",service="fake""#,
                    realm_in.get().unwrap()
                ),
            ),
        }
    })
    .await;
    realm.set(format!("http://{}/token", fake.host)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"auths": {&fake.host: {"identitytoken": "refresh-SECRET"}}});
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    let settings = kiln_registry::RegistrySettings {
        docker_config_dir: Some(tmp.path().to_path_buf()),
        ..crate::settings()
    };
    let c = kiln_registry::Client::new(settings).unwrap();
    c.get_manifest(&reference(&fake.host, "app"), "v1")
        .await
        .unwrap();
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path() == "/token")
            .count(),
        1
    );
}
