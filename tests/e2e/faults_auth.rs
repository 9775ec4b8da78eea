//! The real `kiln` binary against kiln-registry's fault-injecting fake registry (the same
//! `fake.rs`): what a registry's auth and redirects carry never reaches kiln's output.

#[path = "../../builder/registry/tests/common/fake.rs"]
mod fake;

use base64::Engine as _;

use crate::common::Kiln;
use fake::{Fake, Reply};

/// The password in the docker config.
const PASSWORD: &str = "pw-CANARY-e2e-1";
/// The bearer token the fake's token server issues for it.
const TOKEN: &str = "tok-CANARY-e2e-2";
/// Every canary, including those in the presigned storage URL.
const CANARIES: &[&str] = &[
    PASSWORD,
    TOKEN,
    "sp-CANARY-e2e-3",
    "sig-CANARY-e2e-4",
    "at-CANARY-e2e-5",
];

/// C02: `kiln build --publish --verbose` whose run image lives on a registry with Bearer
/// auth (the token issued for the canary password) that redirects to a presigned storage
/// URL (user info, `X-Amz-Signature`, `access_token`), where storage refuses and echoes the
/// signature: kiln fails with the export exit code, its debug traces show the requests,
/// and no canary appears on stdout or stderr. (A failed build writes no `--report`.)
pub(crate) fn c02_verbose_output_and_errors_never_show_credentials_tokens_or_signatures() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let storage = rt.block_on(Fake::start(|req, _| {
        Reply::status(403).body(format!(
            "<Error><Code>SignatureDoesNotMatch</Code><Url>{}</Url></Error>",
            req.target
        ))
    }));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ci:{PASSWORD}"))
    );
    let realm = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let (realm_in, storage_host) = (realm.clone(), storage.host.clone());
    let registry = rt.block_on(Fake::start(move |req, _| {
        if req.path() == "/token" {
            return match req.header("authorization") == Some(basic.as_str()) {
                true => Reply::status(200).body(format!(r#"{{"token":"{TOKEN}"}}"#)),
                false => Reply::status(401),
            };
        }
        match req.header("authorization") {
            Some(a) if a == format!("Bearer {TOKEN}") => Reply::status(307).header(
                "Location",
                &format!(
                    "http://su:sp-CANARY-e2e-3@{storage_host}/bucket/base?X-Amz-Signature=sig-CANARY-e2e-4&access_token=at-CANARY-e2e-5"
                ),
            ),
            _ => Reply::status(401).header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="{}",service="fake""#,
                    realm_in.get().unwrap()
                ),
            ),
        }
    }));
    realm
        .set(format!("http://{}/token", registry.host))
        .unwrap();

    let kiln = Kiln::new();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci:{PASSWORD}"));
    std::fs::write(
        kiln.ws.join("docker/config.json"),
        serde_json::json!({"auths": {&registry.host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let app = kiln.fixture("go-web", "app");
    let run = kiln.run(&[
        "build",
        &format!("{}/team/app:1", registry.host),
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--verbose",
        "--run-image",
        &format!("{}/team/base:1", registry.host),
        "--cache-dir",
        kiln.ws.join("cache").to_str().unwrap(),
    ]);
    // C06: storage refusing the request (403) is an auth failure, not worth a retry.
    assert_eq!(run.code, 77, "{}", run.stderr);
    let storage_url = format!("http://{}/bucket/base?<redacted>", storage.host);
    assert!(
        run.stderr.contains(&storage_url) && run.stderr.contains("403"),
        "the error should name storage, redacted: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("registry request") && run.stderr.contains("fetching bearer token"),
        "no --verbose traces: {}",
        run.stderr
    );
    for canary in CANARIES {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!text.contains(canary), "{canary} on {stream}: {text}");
        }
    }
    // The canaries did travel where they belong: the password to the token server, the
    // token to the registry, the signed URL to storage.
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
    );
    assert!(
        storage
            .requests()
            .iter()
            .any(|r| r.target.contains("sig-CANARY-e2e-4"))
    );
}
