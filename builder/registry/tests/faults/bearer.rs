//! Bearer tokens going wrong in the middle of a push: a scope the registry wants but kiln
//! did not ask for (R02), tokens the registry stops accepting (R03), and 403 answers (R04).
//!
//! [`TokenRegistry`] is a fake registry with its own token endpoint: tokens grant the
//! scopes asked for that its policy allows, and each authorizes a limited number of
//! registry requests, after which the registry answers 401 `invalid_token` as it would for
//! an expired one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use kiln_oci::Digest;
use kiln_registry::{BlobPush, ErrorClass, RegistryError, RegistrySettings};

use crate::fake::{Fake, Recorded, Reply};
use crate::{reference, settings};

/// What the token endpoint grants and what the registry demands.
pub(crate) struct Policy {
    /// Whether a requested scope is granted.
    pub grants: fn(&str) -> bool,
    /// How many registry requests one token authorizes.
    pub uses: usize,
    /// Scopes a request needs besides `repository:app:pull,push`.
    pub needs: fn(&Recorded) -> &'static [&'static str],
    /// An answer that replaces the registry's own for a request it returns `Some` for.
    pub answer: fn(&Recorded) -> Option<Reply>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            grants: |_| true,
            uses: usize::MAX,
            needs: |_| &[],
            answer: |_| None,
        }
    }
}

#[derive(Default)]
struct State {
    /// Token → (scopes it grants, registry requests it may still authorize).
    live: HashMap<String, (Vec<String>, usize)>,
    /// The scopes of each token request, in order.
    asked: Vec<Vec<String>>,
    /// Tokens the registry refused (used up), never to be sent again.
    dead: Vec<String>,
    /// Tokens sent after they were refused.
    resent_dead: usize,
    /// The bytes the upload session received.
    stored: Vec<u8>,
}

/// A fake registry for repository `app` with a token endpoint at `/token`.
pub(crate) struct TokenRegistry {
    pub fake: Fake,
    state: Arc<Mutex<State>>,
}

const APP: &str = "repository:app:pull,push";

impl TokenRegistry {
    pub(crate) async fn start(policy: Policy) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let realm = Arc::new(OnceLock::<String>::new());
        let (st, realm_in) = (state.clone(), realm.clone());
        let fake = Fake::start(move |req, _| {
            let mut st = st.lock().unwrap();
            if req.path() == "/token" {
                let query = req.target.split_once('?').map_or("", |(_, q)| q);
                let asked: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                let granted = asked.iter().filter(|s| (policy.grants)(s)).cloned();
                let token = format!("tok-{}", st.asked.len());
                st.live
                    .insert(token.clone(), (granted.collect(), policy.uses));
                st.asked.push(asked);
                return Reply::status(200)
                    .body(format!(r#"{{"token":"{token}","expires_in":300}}"#));
            }
            let mut needs = vec![APP.to_string()];
            needs.extend((policy.needs)(req).iter().map(|s| s.to_string()));
            let challenge = |error: &str, scope: &str| {
                Reply::status(401).header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="{}",service="fake",scope="{scope}"{error}"#,
                        realm_in.get().unwrap()
                    ),
                )
            };
            let token = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_string);
            let Some(token) = token else {
                return challenge("", &needs.join(" "));
            };
            if st.dead.contains(&token) {
                st.resent_dead += 1;
            }
            let Some((granted, uses)) = st.live.get_mut(&token) else {
                return challenge(r#",error="invalid_token""#, &needs.join(" "));
            };
            if *uses == 0 {
                st.live.remove(&token);
                st.dead.push(token);
                return challenge(r#",error="invalid_token""#, &needs.join(" "));
            }
            let missing: Vec<String> = needs
                .iter()
                .filter(|n| !granted.contains(n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return challenge(r#",error="insufficient_scope""#, &missing.join(" "));
            }
            *uses -= 1;
            if let Some(reply) = (policy.answer)(req) {
                return reply;
            }
            app(req, &mut st.stored)
        })
        .await;
        realm.set(format!("http://{}/token", fake.host)).unwrap();
        Self { fake, state }
    }

    /// Returns the scopes of each token request, in order.
    pub(crate) fn asked(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().asked.clone()
    }

    /// Returns the bytes the upload sessions received.
    pub(crate) fn stored(&self) -> Vec<u8> {
        self.state.lock().unwrap().stored.clone()
    }

    /// Returns how many requests carried a token after the registry had refused it.
    pub(crate) fn resent_dead(&self) -> usize {
        self.state.lock().unwrap().resent_dead
    }

    /// Returns how many registry requests had `method` (`POST`, `PUT`, ...).
    pub(crate) fn count(&self, method: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path().starts_with("/v2/"))
            .count()
    }
}

/// The registry itself: blob HEAD says absent, uploads are one session at `u1`.
fn app(req: &Recorded, stored: &mut Vec<u8>) -> Reply {
    let session = "/v2/app/blobs/uploads/u1";
    match (req.method.as_str(), req.path()) {
        ("HEAD", _) => Reply::status(404),
        ("POST", "/v2/app/blobs/uploads/") => {
            stored.clear();
            Reply::status(202).header("Location", session)
        }
        ("PATCH", p) if p == session => {
            stored.extend_from_slice(&req.body);
            Reply::status(202)
                .header("Location", session)
                .header("Range", &format!("0-{}", stored.len() - 1))
        }
        ("PUT", p) if p == session => {
            stored.extend_from_slice(&req.body);
            Reply::status(201)
        }
        ("PUT", p) if p.starts_with("/v2/app/manifests/") => Reply::status(201),
        _ => Reply::status(400),
    }
}

/// Writes `len` bytes of a pattern seeded with `seed`; returns path, digest and bytes.
pub(crate) fn blob(dir: &std::path::Path, len: usize, seed: u8) -> (PathBuf, Digest, Vec<u8>) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let path = dir.join(format!("blob-{seed}"));
    std::fs::write(&path, &bytes).unwrap();
    (path, Digest::of(&bytes), bytes)
}

fn chunked(chunk: u64) -> kiln_registry::Client {
    kiln_registry::Client::new(RegistrySettings {
        chunk_size: Some(chunk),
        ..settings()
    })
    .unwrap()
}

/// The closing `PUT` of an upload needs `repository:base:pull` too.
fn closing_put_needs_base(req: &Recorded) -> &'static [&'static str] {
    match req.method == "PUT" && req.path().contains("/blobs/uploads/") {
        true => &["repository:base:pull"],
        false => &[],
    }
}

/// R02: the registry wants `repository:base:pull` as well when the upload closes; kiln
/// asks again with that scope first, retries the `PUT` once and the push goes on. The
/// broader token then serves the next blob without another exchange.
#[tokio::test]
async fn r02_insufficient_scope_is_asked_for_first_and_the_push_goes_on() {
    let reg = TokenRegistry::start(Policy {
        needs: closing_put_needs_base,
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let c = crate::client();
    let repo = reference(&reg.fake.host, "app");
    let (path, d, bytes) = blob(tmp.path(), 3000, 1);
    let got = c
        .push_blob(&repo, &d, 3000, &path, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 3000 });
    assert_eq!(reg.stored(), bytes);
    assert_eq!(
        reg.asked(),
        [
            vec![APP.to_string()],
            vec!["repository:base:pull".into(), APP.into()]
        ]
    );
    assert_eq!(reg.count("PUT"), 2, "one retry of the refused PUT");

    let (path, d, bytes) = blob(tmp.path(), 1000, 2);
    c.push_blob(&repo, &d, 1000, &path, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(reg.stored(), bytes);
    assert_eq!(reg.asked().len(), 2, "{:?}", reg.asked());
}

/// R02: a scope the token server will not grant fails after that one retry, naming the
/// scope, as an auth error; the upload is not restarted.
#[tokio::test]
async fn r02_a_scope_never_granted_fails_once_naming_it() {
    let reg = TokenRegistry::start(Policy {
        grants: |s| s != "repository:base:pull",
        needs: closing_put_needs_base,
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, _) = blob(tmp.path(), 3000, 3);
    let err = crate::client()
        .push_blob(
            &reference(&reg.fake.host, "app"),
            &d,
            3000,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InsufficientScope { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("pushing blob `{d}` to `{}/app`", reg.fake.host))
            && text.contains("insufficient scope for `repository:base:pull`"),
        "{text}"
    );
    assert!(err.hint().unwrap().contains("log in"), "{err:?}");
    assert_eq!(reg.asked().len(), 2, "{:?}", reg.asked());
    assert_eq!(reg.asked()[1][0], "repository:base:pull");
    assert_eq!((reg.count("POST"), reg.count("PUT")), (1, 2));
}

/// R02: a mount from a repository the token server will not let this user read ends in
/// `insufficient_scope`: the mount counts as declined and the blob is uploaded.
#[tokio::test]
async fn r02_a_mount_source_never_granted_falls_back_to_an_upload() {
    let reg = TokenRegistry::start(Policy {
        grants: |s| s != "repository:base:pull",
        needs: |req| match req.target.contains("mount=") {
            true => &["repository:base:pull"],
            false => &[],
        },
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, bytes) = blob(tmp.path(), 500, 8);
    let c = crate::client();
    let repo = reference(&reg.fake.host, "app");
    assert!(!c.mount_blob(&repo, &d, "base").await.unwrap());
    let got = c
        .push_blob(&repo, &d, 500, &path, Some("base"), &|_| {})
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 500 });
    assert_eq!(reg.stored(), bytes);
}

/// R03: tokens that expire after three requests are refreshed in the middle of a chunked
/// upload, which goes on where it was: every byte arrives once, and no refused token is
/// sent again.
#[tokio::test]
async fn r03_an_expired_token_is_refreshed_and_the_upload_continues() {
    let reg = TokenRegistry::start(Policy {
        uses: 3,
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, bytes) = blob(tmp.path(), 4096, 4);
    let got = chunked(1024)
        .push_blob(
            &reference(&reg.fake.host, "app"),
            &d,
            4096,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 4096 });
    assert_eq!(reg.stored(), bytes);
    assert_eq!(reg.asked().len(), 3, "first token and two refreshes");
    assert_eq!(reg.resent_dead(), 0);
    assert_eq!(reg.count("POST"), 1, "the session was not restarted");
}

/// R03: tokens that die after every request are refreshed at most 5 times in one call,
/// then the call fails as an auth error: no further request, no restarted session, and
/// (the caller's part) nothing to tag.
#[tokio::test]
async fn r03_tokens_that_keep_expiring_stop_after_five_refreshes() {
    let reg = TokenRegistry::start(Policy {
        uses: 1,
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, _) = blob(tmp.path(), 4096, 5);
    let started = std::time::Instant::now();
    let err = chunked(256)
        .push_blob(
            &reference(&reg.fake.host, "app"),
            &d,
            4096,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, RegistryError::TokenRejected { refreshes: 5, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    let text = err.to_string();
    assert!(
        text.contains(&format!("`{}` rejected 5 fresh tokens", reg.fake.host)),
        "{text}"
    );
    assert!(err.hint().is_some());
    assert_eq!(reg.asked().len(), 6, "the first token and 5 refreshes");
    let methods: Vec<String> = reg
        .fake
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/v2/"))
        .map(|r| r.method.clone())
        .collect();
    // HEAD and POST (each 401, then accepted), then PATCHes (each 401, then accepted)
    // until the sixth refusal: one session, never restarted, never closed.
    assert_eq!(
        methods[..4],
        ["HEAD", "HEAD", "POST", "POST"],
        "{methods:?}"
    );
    assert!(methods[4..].iter().all(|m| m == "PATCH"), "{methods:?}");
    assert_eq!(methods.len(), 4 + 2 * 4 + 1, "{methods:?}");
}

fn denied() -> Reply {
    Reply::status(403)
        .header("Content-Type", "application/json")
        .body(r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#)
}

/// R04: 403 `DENIED` on the upload `POST` fails at once: no retry, no token refresh, an
/// auth-class error carrying the registry's code and message.
#[tokio::test]
async fn r04_a_denied_upload_fails_at_once_as_an_auth_error() {
    let reg = TokenRegistry::start(Policy {
        answer: |req| (req.method == "POST").then(denied),
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, _) = blob(tmp.path(), 100, 6);
    let err = crate::client()
        .push_blob(
            &reference(&reg.fake.host, "app"),
            &d,
            100,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("DENIED"));
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(
        err.to_string()
            .ends_with("registry said 403 DENIED: requested access to the resource is denied"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("may not do this"));
    assert_eq!(reg.count("POST"), 1, "no retry");
    assert_eq!(reg.asked().len(), 1, "no refresh");
    assert_eq!(reg.count("PUT") + reg.count("PATCH"), 0);
}

/// R04: a 403 on the existence check (`HEAD`) means "unknown": the push uploads.
#[tokio::test]
async fn r04_a_forbidden_head_is_unknown_and_the_push_goes_on() {
    let reg = TokenRegistry::start(Policy {
        answer: |req| (req.method == "HEAD").then(|| Reply::status(403)),
        ..Policy::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (path, d, bytes) = blob(tmp.path(), 100, 7);
    let got = crate::client()
        .push_blob(
            &reference(&reg.fake.host, "app"),
            &d,
            100,
            &path,
            None,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(got, BlobPush::Uploaded { bytes: 100 });
    assert_eq!(reg.stored(), bytes);
    assert_eq!(reg.count("HEAD"), 2, "the challenge, then the 403");
}
