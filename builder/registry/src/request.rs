//! One request to a registry: scheme choice, auth, manual redirects, error bodies.
//!
//! Redirects are followed by hand (GET blob usually redirects to storage): the
//! `Authorization` header goes only to the registry's own host and port, never to the
//! host a redirect points at. Error bodies follow distribution-spec "Error Codes":
//! <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes>

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use kiln_oci::Reference;
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, LOCATION,
};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::auth::insufficient_scope;
use crate::client::Inner;
use crate::error::redact_url;
use crate::hosts::{allows_plain_http, same_origin, url_authority};
use crate::payload::Payload;
use crate::{RegistryError, retry};

/// How many redirects one request may follow.
const MAX_REDIRECTS: usize = 10;
/// How long the HTTPS probe of a loopback/insecure host may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Who a request is for and why: the registry, the token scopes it needs, and the action
/// named in errors.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The registry as written, for credentials and hints.
    pub registry: String,
    /// The repository the request is for, whose credentials it uses (empty for requests to
    /// the registry itself, such as the `/v2/` check of `kiln login`).
    pub repository: String,
    /// The host[:port] serving the API.
    pub authority: String,
    /// Token scopes, e.g. `repository:app:pull,push`.
    pub scopes: Vec<String>,
    /// What is being done, for error messages.
    pub action: String,
    /// How many rejected bearer tokens were refreshed so far in this call (clones share it).
    pub refreshes: Arc<AtomicU32>,
}

impl Target {
    /// A target that reads `repo`.
    pub(crate) fn pull(repo: &Reference, action: String) -> Self {
        Self::with_scope(
            repo,
            format!("repository:{}:pull", repo.repository()),
            action,
        )
    }

    /// A target that writes `repo`.
    pub(crate) fn push(repo: &Reference, action: String) -> Self {
        Self::with_scope(
            repo,
            format!("repository:{}:pull,push", repo.repository()),
            action,
        )
    }

    fn with_scope(repo: &Reference, scope: String, action: String) -> Self {
        Self {
            registry: repo.registry().to_string(),
            repository: repo.repository().to_string(),
            authority: repo.api_host().to_string(),
            scopes: vec![scope],
            action,
            refreshes: Arc::default(),
        }
    }
}

/// A request that can be sent again (its payload is rebuilt each time).
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub payload: Payload,
}

impl Request {
    /// Returns a request without headers or body.
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            payload: Payload::Empty,
        }
    }

    /// Adds a header; values are constants or validated by the caller.
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// Sets the payload.
    pub(crate) fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: Option<String>,
    message: Option<String>,
}

impl Inner {
    /// Returns `<scheme>://<authority>/v2/` for `t`. Loopback and insecure hosts are probed
    /// with HTTPS once and use plain HTTP if they do not speak TLS; a certificate error is
    /// reported, not papered over.
    pub(crate) async fn base_url(&self, t: &Target) -> Result<Url, RegistryError> {
        let scheme = self.scheme(t).await?;
        Url::parse(&format!("{scheme}://{}/v2/", t.authority)).map_err(|e| {
            RegistryError::Protocol {
                action: t.action.clone(),
                detail: format!("`{}` is not a valid registry host: {e}", t.authority),
            }
        })
    }

    /// Returns the URL of `path` under `/v2/` of `t`'s registry.
    pub(crate) async fn url(&self, t: &Target, path: &str) -> Result<Url, RegistryError> {
        let base = self.base_url(t).await?;
        base.join(path).map_err(|e| RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!("bad request path `{path}`: {e}"),
        })
    }

    async fn scheme(&self, t: &Target) -> Result<&'static str, RegistryError> {
        if !allows_plain_http(&self.settings, &t.authority) {
            return Ok("https");
        }
        if let Some(s) = self.schemes.lock().expect("scheme lock").get(&t.authority) {
            return Ok(s);
        }
        let url = Url::parse(&format!("https://{}/v2/", t.authority)).map_err(|e| {
            RegistryError::Protocol {
                action: t.action.clone(),
                detail: format!("`{}` is not a valid registry host: {e}", t.authority),
            }
        })?;
        let client = self.transports.for_authority(&t.authority)?;
        let scheme = match client.get(url.clone()).timeout(PROBE_TIMEOUT).send().await {
            Ok(resp) => {
                self.learn_challenge(&t.authority, resp.headers());
                "https"
            }
            Err(e) => {
                let refused = nothing_listens(&e);
                let err = RegistryError::transport(&t.action, &t.registry, &url, e);
                match &err {
                    RegistryError::Transport {
                        kind: crate::TransportKind::Tls,
                        ..
                    } => return Err(err),
                    // Nothing listens: do not remember a choice, the next try probes again.
                    // A server that answered, but not in TLS, speaks plain HTTP.
                    _ if refused => return Ok("http"),
                    _ => "http",
                }
            }
        };
        tracing::debug!(authority = %t.authority, scheme, "registry scheme");
        self.schemes
            .lock()
            .expect("scheme lock")
            .insert(t.authority.clone(), scheme);
        Ok(scheme)
    }

    /// Sends `req` once with whatever auth `t`'s registry wants, answering one 401
    /// challenge. Returns the final response whatever its status, except that a scope the
    /// token server will not grant is [`RegistryError::InsufficientScope`] (RELIABILITY.md
    /// R02).
    pub(crate) async fn send(&self, t: &Target, req: &Request) -> Result<Response, RegistryError> {
        let origin = self.base_url(t).await?;
        let auth = self.auth_header(t).await?;
        let resp = self.execute(t, &origin, req, auth.as_ref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED || !same_origin(resp.url(), &origin) {
            return Ok(resp);
        }
        let answer = self
            .answer_challenge(t, resp.headers(), auth.as_ref())
            .await?;
        let missing = answer.missing;
        let resp = match answer.header {
            Some(auth) => self.execute(t, &origin, req, Some(&auth)).await?,
            None => resp,
        };
        if !missing.is_empty()
            && resp.status() == StatusCode::UNAUTHORIZED
            && insufficient_scope(resp.headers()).is_some()
        {
            return Err(RegistryError::InsufficientScope {
                action: t.action.clone(),
                registry: t.registry.clone(),
                scope: missing.join(" "),
            });
        }
        Ok(resp)
    }

    /// Sends `req`, following redirects by hand; `auth` goes only to URLs on `origin`, and
    /// never again once a redirect has left it. Every URL is checked (see `guard.rs`) before
    /// it is requested.
    pub(crate) async fn execute(
        &self,
        t: &Target,
        origin: &Url,
        req: &Request,
        mut auth: Option<&HeaderValue>,
    ) -> Result<Response, RegistryError> {
        let mut method = req.method.clone();
        let mut url = req.url.clone();
        let mut with_body = true;
        let mut from = origin.clone();
        for hop in 0..=MAX_REDIRECTS {
            let what = if hop == 0 { "location" } else { "redirect" };
            self.check_url(t, what, &from, &url)?;
            if !same_origin(&url, origin) {
                // Go CVE-2024-45336: a later redirect back must not restore the header.
                auth = None;
            }
            let authority = url_authority(&url);
            let client = self.transports.for_authority(&authority)?;
            let mut rb = client
                .request(method.clone(), url.clone())
                .headers(req.headers.clone());
            let body = if with_body {
                req.payload
                    .body()
                    .await
                    .map_err(|source| RegistryError::Io {
                        action: t.action.clone(),
                        path: match &req.payload {
                            Payload::File { path, .. } => path.clone(),
                            _ => Default::default(),
                        },
                        source,
                    })?
            } else {
                None
            };
            match body {
                Some((body, len)) => rb = rb.header(CONTENT_LENGTH, len).body(body),
                None if matches!(method, Method::PUT | Method::POST | Method::PATCH) => {
                    rb = rb.header(CONTENT_LENGTH, 0)
                }
                None => {}
            }
            if let Some(a) = auth {
                let mut a = a.clone();
                a.set_sensitive(true);
                rb = rb.header(AUTHORIZATION, a);
            }
            tracing::debug!(%method, url = %redact_url(&url), "registry request");
            let resp = rb
                .send()
                .await
                .map_err(|e| RegistryError::transport(&t.action, &t.registry, &url, e))?;
            let status = resp.status();
            tracing::debug!(status = status.as_u16(), url = %redact_url(&url), "registry response");
            let location = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok());
            let (true, Some(location)) = (is_redirect(status), location) else {
                return Ok(resp);
            };
            let next = url.join(location).map_err(|e| RegistryError::Protocol {
                action: t.action.clone(),
                detail: format!(
                    "the redirect from `{}` has an invalid location: {e}",
                    redact_url(&url)
                ),
            })?;
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = Method::GET;
                with_body = false;
            }
            from = std::mem::replace(&mut url, next);
        }
        Err(RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Returns `resp` if its status is one of `ok`, else the registry's error.
pub(crate) async fn expect(
    t: &Target,
    resp: Response,
    ok: &[u16],
) -> Result<Response, RegistryError> {
    if ok.contains(&resp.status().as_u16()) {
        Ok(resp)
    } else {
        Err(status_error(t, resp).await)
    }
}

/// Returns the error for an unexpected answer, with the distribution error code and
/// message if the body has them. Non-JSON bodies are never shown: storage error pages can
/// echo signed URLs.
pub(crate) async fn status_error(t: &Target, mut resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let retry_after = retry::retry_after(resp.headers());
    let url = (url_authority(resp.url()) != t.authority).then(|| redact_url(resp.url()));
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let first = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let (code, message) = match first {
        Some(e) => (
            e.code.filter(|c| !c.is_empty()),
            e.message.filter(|m| !m.is_empty()).map(|mut m| {
                m.truncate(500);
                m
            }),
        ),
        None => (None, None),
    };
    RegistryError::Status(Box::new(crate::error::StatusError {
        action: t.action.clone(),
        registry: t.registry.clone(),
        status,
        code,
        message,
        url,
        retry_after,
    }))
}

/// Returns the `Location` of `resp` resolved against the URL it answered.
pub(crate) fn location(t: &Target, resp: &Response) -> Result<Url, RegistryError> {
    let err = |detail: String| RegistryError::Protocol {
        action: t.action.clone(),
        detail,
    };
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| {
            err(format!(
                "the registry answered {} without a `Location` header",
                resp.status().as_u16()
            ))
        })?;
    resp.url()
        .join(loc)
        .map_err(|e| err(format!("the registry's upload location is invalid: {e}")))
}

/// Returns whether `e` failed because nothing accepted the connection (as opposed to a
/// server that answered, say in plain HTTP to a TLS handshake).
fn nothing_listens(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, RegistrySettings};

    fn target(authority: &str) -> Target {
        let repo: Reference = format!("{authority}/app").parse().unwrap();
        Target::pull(&repo, "pulling".to_string())
    }

    /// C03: names that merely look local get `https` at once: no plain-http probe and no
    /// lookup happens to decide it (nothing is sent anywhere). Names under `localhost` are
    /// loopback and probed like `127.0.0.1`.
    #[tokio::test]
    async fn c03_look_alike_hosts_are_https_without_a_probe() {
        let c = Client::new(RegistrySettings::default()).unwrap();
        for host in [
            "localhost.evil.com:5000",
            "127.0.0.1.nip.io:5000",
            "x127.0.0.1:5000",
            "foo.local:5000",
        ] {
            match c.inner.base_url(&target(host)).await {
                Ok(url) => assert_eq!(url.as_str(), format!("https://{host}/v2/")),
                // URL parsing reads a name ending in a number as an (invalid) IPv4
                // address: refused before anything is sent, which is fine too.
                Err(e) => assert!(
                    host.starts_with("x127") && e.to_string().contains("not a valid registry host"),
                    "{host}: {e}"
                ),
            }
        }
        assert!(c.inner.schemes.lock().unwrap().is_empty(), "a probe ran");
    }
}
