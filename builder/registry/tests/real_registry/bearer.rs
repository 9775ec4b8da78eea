//! Bearer token auth against real registries (`auth: token`) and the kiln-e2e token
//! issuer, which records every scope asked for and whether credentials came with it.

use kiln_e2e::{Registry, TokenIssuer};
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, Client, ErrorClass, RegistryError, RegistrySettings};

use crate::common::{blob, docker_config, manifest, noise, reference, settings};

/// Returns a client whose docker `config.json` (in `dir`) holds `user`/`pass` for `host`.
fn client_for(dir: &std::path::Path, host: &str, user: &str, pass: &str) -> Client {
    std::fs::create_dir_all(dir).unwrap();
    docker_config(dir, host, user, pass);
    Client::new(RegistrySettings {
        docker_config_dir: Some(dir.to_path_buf()),
        ..settings()
    })
    .unwrap()
}

/// R01: a base pulled anonymously from registry A, an image pushed with credentials to
/// registry B (mounting a layer from B's base repository). A's token server never sees an
/// `Authorization` header; every request to B's carries B's user; a push asks for
/// `repository:<dst>:pull,push`, a mount also for `repository:<src>:pull`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r01_scopes_name_the_repositories_and_credentials_stay_with_their_realm() {
    let issuer_a = TokenIssuer::new("a-admin", "a-secret");
    let issuer_b = TokenIssuer::with_anonymous_pull("b-user", "b-secret", false);
    let (reg_a, reg_b) = (Registry::token(&issuer_a), Registry::token(&issuer_b));
    let tmp = tempfile::tempdir().unwrap();
    let bytes = noise(4096, 11);
    let (path, d) = blob(tmp.path(), "layer", &bytes);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (config_path, config_d) = blob(tmp.path(), "config", config);
    let m = manifest((&config_d, config.len()), (&d, bytes.len()));

    // Seeding A (with A's admin) and B's base repository (with B's user).
    let admin_a = client_for(&tmp.path().join("a"), &reg_a.host(), "a-admin", "a-secret");
    let base_a = reference(&reg_a, "library/base");
    for (p, dg, n) in [
        (&path, &d, 4096),
        (&config_path, &config_d, config.len() as u64),
    ] {
        admin_a
            .push_blob(&base_a, dg, n, p, None, &|_| {})
            .await
            .unwrap();
    }
    admin_a
        .push_manifest(&base_a, "1", OCI_MANIFEST, &m)
        .await
        .unwrap();
    let c = client_for(&tmp.path().join("b"), &reg_b.host(), "b-user", "b-secret");
    c.push_blob(
        &reference(&reg_b, "team/base"),
        &d,
        4096,
        &path,
        None,
        &|_| {},
    )
    .await
    .unwrap();
    issuer_a.clear_requests();
    issuer_b.clear_requests();

    // The build: pull the base from A (no credentials for A), push to B.
    let pulled = c.get_manifest(&base_a, "1").await.unwrap();
    assert_eq!(pulled.bytes, m);
    assert_eq!(c.get_blob_bytes(&base_a, &d, 8192).await.unwrap(), bytes);
    let app = reference(&reg_b, "team/app");
    let got = c
        .push_blob(&app, &d, 4096, &path, Some("team/base"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Mounted);
    c.push_blob(
        &app,
        &config_d,
        config.len() as u64,
        &config_path,
        None,
        &|_| {},
    )
    .await
    .unwrap();
    c.push_manifest(&app, "1", OCI_MANIFEST, &m).await.unwrap();

    let to_a = issuer_a.requests();
    assert!(!to_a.is_empty());
    for r in &to_a {
        assert!(!r.auth_present, "A's realm got credentials: {r:?}");
        assert_eq!(r.scopes, ["repository:library/base:pull"], "{r:?}");
    }
    let to_b = issuer_b.requests();
    for r in &to_b {
        assert!(
            r.authenticated && r.user.as_deref() == Some("b-user"),
            "B's realm got no or other credentials: {r:?}"
        );
    }
    let asked: Vec<_> = to_b.iter().map(|r| r.scopes.clone()).collect();
    assert!(
        asked.contains(&vec![
            "repository:team/app:pull,push".to_string(),
            "repository:team/base:pull".to_string()
        ]),
        "no mount scope: {asked:?}"
    );
    assert!(
        asked.contains(&vec!["repository:team/app:pull,push".to_string()]),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .flatten()
            .all(|s| s.starts_with("repository:team/")),
        "{asked:?}"
    );
}

/// R02 against a real registry: an anonymous push gets a token granting `pull` only; the
/// registry's `insufficient_scope` is asked for once more, and the push fails naming the
/// scope, as an auth error, with nothing tagged.
#[tokio::test]
async fn r02_an_anonymous_push_to_a_token_registry_names_the_missing_scope() {
    let issuer = TokenIssuer::new("ci", "ci-secret");
    let reg = Registry::token(&issuer);
    let tmp = tempfile::tempdir().unwrap();
    let bytes = noise(2048, 12);
    let (path, d) = blob(tmp.path(), "layer", &bytes);
    let repo = reference(&reg, "team/app");
    let err = Client::new(settings())
        .unwrap()
        .push_blob(&repo, &d, 2048, &path, None, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InsufficientScope { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    // distribution lists the actions in either order; kiln asks for them as listed.
    let app = ["pull,push", "push,pull"].map(|a| format!("repository:team/app:{a}"));
    let text = err.to_string();
    assert!(
        app.iter()
            .any(|s| text.contains(&format!("insufficient scope for `{s}`"))),
        "{text}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains(&format!("your credentials for `{}`", reg.host()))
            && hint.contains("log in as a user who may"),
        "{hint}"
    );
    let asked: Vec<_> = issuer.requests().into_iter().map(|r| r.scopes).collect();
    assert!(
        asked.iter().all(|s| s.len() == 1 && app.contains(&s[0])),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 2, "one re-exchange, not a loop: {asked:?}");
    let tags = Client::new(settings())
        .unwrap()
        .get_manifest(&repo, "latest")
        .await
        .unwrap_err();
    assert_eq!(tags.status(), Some(404), "{tags}");
}
