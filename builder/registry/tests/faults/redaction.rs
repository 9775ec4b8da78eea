//! Secrets stay out of every output (RELIABILITY.md C02): errors (`Display`, `Debug`,
//! hints), the client's and the settings' `Debug`, and the library's trace events (what
//! `kiln build --verbose` prints), captured here at debug level.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use kiln_oci::Digest;
use kiln_registry::{Client, RegistryError, RegistrySettings};

use crate::fake::{Fake, Reply};
use crate::{reference, settings};

/// Every canary contains this; none may appear in any output.
const CANARY: &str = "CANARY";
const PASSWORD: &str = "pw-CANARY-1";
const TOKEN: &str = "tok-CANARY-2";
const IDENTITY_TOKEN: &str = "idt-CANARY-3";

/// A `MakeWriter` collecting everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Returns the buffer every trace event of this test binary goes to, from now on.
///
/// A process-wide subscriber, not a per-test `set_default`: with other tests running on
/// other threads, tracing's per-callsite interest cache can leave a scoped subscriber
/// without the events of callsites first hit elsewhere. Every test's events land here;
/// all of them must be free of canaries anyway.
fn capture() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        captured
    })
}

/// A registry whose token server wants the canary password (Basic) or the canary identity
/// token (OAuth2 refresh grant) and issues the canary token; blob GETs redirect to
/// `storage` at a URL with user info, `X-Amz-Signature` and `access_token` canaries.
async fn registry(storage: String) -> Fake {
    let me = Arc::new(OnceLock::<String>::new());
    let me_in = me.clone();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("u:{PASSWORD}"))
    );
    let fake = Fake::start(move |req, _| {
        if req.path() == "/token" {
            let form = String::from_utf8_lossy(&req.body).into_owned();
            let ok = req.header("authorization") == Some(basic.as_str())
                || form.contains(&format!("refresh_token={IDENTITY_TOKEN}"));
            return match ok {
                true => Reply::status(200).body(format!(r#"{{"token":"{TOKEN}"}}"#)),
                false => Reply::status(401),
            };
        }
        match req.header("authorization") {
            Some(a) if a == format!("Bearer {TOKEN}") => Reply::status(307).header(
                "Location",
                &format!(
                    "http://su:sp-CANARY-4@{storage}{}?X-Amz-Signature=sig-CANARY-5&access_token=at-CANARY-6",
                    req.path().rsplit_once('/').unwrap().1.replace("sha256:", "/")
                ),
            ),
            _ => Reply::status(401)
                .header("Content-Type", "application/json")
                .header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://{}/token",service="r""#, me_in.get().unwrap()),
                )
                .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#),
        }
    })
    .await;
    me.set(fake.host.clone()).unwrap();
    fake
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "{what} leaks a canary: {text}");
}

fn assert_error_clean(err: &RegistryError) {
    assert_clean("an error", &format!("{err}"));
    assert_clean("an error's Debug", &format!("{err:?}"));
    assert_clean("a hint", &err.hint().unwrap_or_default());
}

/// C02: a password, a bearer token, an identity token, a presigned URL's signature and
/// `access_token`, and user info in a redirect URL reach no error, no `Debug` output and
/// no trace event: for a download that succeeds, one that storage refuses, and one whose
/// storage cannot be reached.
#[tokio::test]
async fn c02_canaries_never_reach_errors_debug_or_traces() {
    let captured = capture();

    let bytes = b"layer bytes".to_vec();
    let d = Digest::of(&bytes);
    let served = bytes.clone();
    let deny = Digest::of(b"deny");
    let denied_path = format!("/{}", deny.hex());
    let storage = Fake::start(move |req, _| match req.path() == denied_path {
        true => Reply::status(403).body(format!(
            "<Error><Signature>sig-CANARY-5</Signature><Url>{}</Url></Error>",
            req.target
        )),
        false => Reply::status(200).body(served.clone()),
    })
    .await;
    let reg = registry(storage.host.clone()).await;
    let tmp = tempfile::tempdir().unwrap();
    let s = crate::with_credentials(tmp.path(), &reg.host, "u", PASSWORD);
    let c = Client::new(s.clone()).unwrap();
    let repo = reference(&reg.host, "app");

    assert_eq!(c.get_blob_bytes(&repo, &d, 100).await.unwrap(), bytes);
    assert_clean("the client's Debug", &format!("{c:?}"));
    assert_clean("the settings' Debug", &format!("{s:?}"));

    // Storage refuses (its body echoes the signature) and is named, redacted.
    let err = c.get_blob_bytes(&repo, &deny, 100).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(
        err.to_string().contains(&format!(
            "`http://{}/{}?<redacted>`",
            storage.host,
            deny.hex()
        )),
        "{err}"
    );
    assert_error_clean(&err);

    // Storage cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reg2 = registry(closed.to_string()).await;
    let c2 = Client::new(crate::with_credentials(
        tmp.path(),
        &reg2.host,
        "u",
        PASSWORD,
    ))
    .unwrap();
    let err = c2
        .get_blob_bytes(&reference(&reg2.host, "app"), &d, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert_error_clean(&err);

    // An identity token (OAuth2 refresh grant) instead of a password; and a wrong password.
    let config = serde_json::json!({"auths": {&reg.host: {"identitytoken": IDENTITY_TOKEN}}});
    let idt = tmp.path().join("idt");
    std::fs::create_dir(&idt).unwrap();
    std::fs::write(idt.join("config.json"), config.to_string()).unwrap();
    let c3 = Client::new(RegistrySettings {
        docker_config_dir: Some(idt),
        ..settings()
    })
    .unwrap();
    assert_eq!(c3.get_blob_bytes(&repo, &d, 100).await.unwrap(), bytes);
    assert_clean("the client's Debug", &format!("{c3:?}"));
    let wrong = Client::new(crate::with_credentials(
        tmp.path(),
        &reg.host,
        "u",
        "wrong-CANARY-7",
    ))
    .unwrap();
    let err = wrong.get_blob_bytes(&repo, &d, 100).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert_error_clean(&err);

    let traces = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        traces.contains("registry request") && traces.contains("?<redacted>"),
        "the capture saw no request: {traces}"
    );
    assert_clean("the traces", &traces);
}
