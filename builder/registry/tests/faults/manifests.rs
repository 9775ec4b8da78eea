//! Manifests: checks after a push (RELIABILITY.md R13), documents kiln refuses to read
//! (R15), and references refused before any request (C05).

use kiln_oci::Digest;
use kiln_oci::media_types::{DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use kiln_registry::{ManifestProblem, RegistryError};

use crate::fake::{Fake, Reply};
use crate::{client, reference};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;

/// R13: a registry that answers the manifest PUT with another `Docker-Content-Digest` than
/// the bytes' fails the push loudly; a 413 is a size error, not retried; a manifest over
/// 4 MiB is refused before anything is sent.
#[tokio::test]
async fn r13_post_push_checks_stored_digest_and_size() {
    let local = Digest::of(MANIFEST.as_bytes());
    let rewritten = Digest::of(b"what the registry made of it");
    let said = rewritten.to_string();
    let fake = Fake::start(move |req, _| match req.path() {
        "/v2/app/manifests/v1" => Reply::status(201).header("Docker-Content-Digest", &said),
        "/v2/app/manifests/big" => Reply::status(413),
        _ => Reply::status(400),
    })
    .await;
    let c = client();
    let repo = reference(&fake.host, "app");
    let err = c
        .push_manifest(&repo, "v1", OCI_MANIFEST, MANIFEST.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::StoredDigest { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "registry stored digest `{rewritten}`, expected `{local}`"
        )),
        "{text}"
    );
    assert!(text.starts_with("pushing manifest `v1` to `"), "{text}");
    assert!(err.hint().unwrap().contains("rewrote the manifest"));

    let err = c
        .push_manifest(&repo, "big", OCI_MANIFEST, MANIFEST.as_bytes())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::ManifestRefused { .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "refused the {}-byte manifest as too large (413)",
            MANIFEST.len()
        )),
        "{text}"
    );
    let puts = |fake: &Fake, tag: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.path().ends_with(tag))
            .count()
    };
    assert_eq!(puts(&fake, "/big"), 1, "a 413 is not retried");

    let huge = format!(
        r#"{{"schemaVersion":2,"annotations":{{"x":"{}"}}}}"#,
        "a".repeat(4 * 1024 * 1024)
    );
    let err = c
        .push_manifest(&repo, "huge", OCI_MANIFEST, huge.as_bytes())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::ManifestTooLarge { .. }),
        "{text}"
    );
    assert!(
        text.contains("more than the 4194304 bytes (4 MiB)"),
        "{text}"
    );
    assert!(err.hint().is_some());
    assert_eq!(puts(&fake, "/huge"), 0, "nothing was sent");
}

/// R15: (a) `manifests` beside `layers`/`config` is refused as ambiguous; (b) a `mediaType`
/// that contradicts `Content-Type` is refused; (c) `Content-Type` parameters are ignored;
/// (d) schema 1 is refused as unsupported; (e) an OCI manifest with Docker layer media types
/// is read (the image crate maps the layer types).
#[tokio::test]
async fn r15_confusing_manifests_are_refused() {
    let both = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"config":{{}},"layers":[]}}"#
    );
    let mismatch = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","layers":[]}}"#);
    let docker_layers = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}"}}]}}"#
    );
    let schema1 = r#"{"schemaVersion":1,"name":"app","tag":"v1","fsLayers":[],"signatures":[]}"#;
    let cases: Vec<(&str, String, String)> = vec![
        ("ambiguous", OCI_INDEX.into(), both),
        ("mismatch", OCI_MANIFEST.into(), mismatch),
        (
            "charset",
            format!("{OCI_MANIFEST}; charset=utf-8"),
            MANIFEST.into(),
        ),
        (
            "schema1",
            "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            schema1.into(),
        ),
        ("schema1-json", "application/json".into(), schema1.into()),
        ("docker-layers", OCI_MANIFEST.into(), docker_layers.clone()),
    ];
    let served = cases.clone();
    let fake = Fake::start(move |req, _| {
        let tag = req.path().rsplit('/').next().unwrap();
        match served.iter().find(|(name, _, _)| *name == tag) {
            Some((_, ct, body)) => Reply::status(200)
                .header("Content-Type", ct)
                .body(body.clone()),
            None => Reply::status(404),
        }
    })
    .await;
    let c = client();
    let repo = reference(&fake.host, "app");
    let refused = |name: &'static str| {
        let c = c.clone();
        let repo = repo.clone();
        async move {
            let err = c.get_manifest(&repo, name).await.unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("pulling manifest `{name}` from")),
                "{err}"
            );
            assert!(err.hint().is_some(), "{err}");
            match err {
                RegistryError::BadManifest { problem, .. } => problem,
                other => panic!("{name}: {other}"),
            }
        }
    };
    assert_eq!(refused("ambiguous").await, ManifestProblem::Ambiguous);
    assert_eq!(
        refused("mismatch").await,
        ManifestProblem::MediaTypeMismatch {
            header: OCI_MANIFEST.into(),
            body: DOCKER_MANIFEST.into()
        }
    );
    for name in ["schema1", "schema1-json"] {
        let problem = refused(name).await;
        assert_eq!(problem, ManifestProblem::Schema1);
        assert!(problem.to_string().contains("schema1 unsupported"));
    }
    let got = c.get_manifest(&repo, "charset").await.unwrap();
    assert_eq!(got.media_type, OCI_MANIFEST);
    let got = c.get_manifest(&repo, "docker-layers").await.unwrap();
    assert_eq!(
        (got.media_type.as_str(), got.bytes),
        (OCI_MANIFEST, docker_layers.into_bytes())
    );
    // Each refused document was asked for once: a refusal is not retried.
    assert_eq!(fake.requests().len(), 6, "{:?}", fake.requests());
}

/// C05: a manifest reference that is neither a tag nor a sha256 digest (a path, uppercase
/// hex, another algorithm) is refused before any request is made.
#[tokio::test]
async fn c05_bad_manifest_references_are_refused_before_any_request() {
    let fake = Fake::start(|_, _| Reply::status(500)).await;
    let c = client();
    let repo = reference(&fake.host, "app");
    let upper = format!("sha256:{}", Digest::of(b"x").hex().to_uppercase());
    let sha512 = format!("sha512:{}", "a".repeat(128));
    let long = "t".repeat(129);
    for bad in [
        "../../x",
        "sha256:../../x",
        upper.as_str(),
        sha512.as_str(),
        long.as_str(),
        "v1/../../x",
    ] {
        let errors = [
            c.get_manifest(&repo, bad).await.unwrap_err(),
            c.manifest_digest(&repo, bad).await.unwrap_err(),
            c.push_manifest(&repo, bad, OCI_MANIFEST, MANIFEST.as_bytes())
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert!(
                matches!(err, RegistryError::InvalidReference { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("is neither a tag"), "{err}");
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

/// W10: a registry whose blob links another push of the same blobs is rewriting refuses a
/// manifest with `DIGEST_INVALID` (the CNCF registry's file-system storage does); kiln sends
/// it again and the push succeeds. A refusal that stays is reported after three tries, with
/// the registry's code and message; any other 400 is not tried again.
#[tokio::test]
async fn w10_a_manifest_refused_while_another_push_relinks_its_blobs_is_sent_again() {
    let invalid = || {
        Reply::status(400)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#)
    };
    let fake = Fake::start(move |req, seen| {
        let earlier = seen.iter().filter(|r| r.target == req.target).count();
        match req.path() {
            "/v2/app/manifests/once" if earlier == 0 => invalid(),
            "/v2/app/manifests/once" => Reply::status(201),
            "/v2/app/manifests/always" => invalid(),
            _ => Reply::status(400),
        }
    })
    .await;
    let c = client();
    let repo = reference(&fake.host, "app");
    let digest = c
        .push_manifest(&repo, "once", OCI_MANIFEST, MANIFEST.as_bytes())
        .await
        .unwrap();
    assert_eq!(digest, Digest::of(MANIFEST.as_bytes()));
    let puts = |tag: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path() == format!("/v2/app/manifests/{tag}"))
            .count()
    };
    assert_eq!(puts("once"), 2);

    let err = c
        .push_manifest(&repo, "always", OCI_MANIFEST, MANIFEST.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("DIGEST_INVALID"), "{err}");
    assert!(
        err.to_string().contains("provided digest did not match"),
        "{err}"
    );
    assert_eq!(puts("always"), 3);
    let err = c
        .push_manifest(&repo, "other", OCI_MANIFEST, MANIFEST.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert_eq!(puts("other"), 1, "a plain 400 is not tried again");
}
