//! Bearer tokens: fetching them from the realm (GET with optional Basic auth, or the
//! OAuth2 refresh-token POST for identity tokens) and caching them per host and scope.
//! Spec: <https://distribution.github.io/distribution/spec/auth/token/> and
//! <https://distribution.github.io/distribution/spec/auth/oauth/>

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::credentials::Credential;
use crate::RegistryError;
use crate::client::Inner;
use crate::payload::Payload;
use crate::request::{Request, Target, expect};

/// Lifetime assumed when the token server names none (the spec's default and minimum).
const MIN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this much before they expire, to survive a slow request.
const MARGIN: Duration = Duration::from_secs(10);
/// The largest token response kiln reads (real ones are a few KiB).
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// Tokens by (host, scopes).
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    /// Returns a live token for `authority` and `scopes`.
    pub(crate) fn get(&self, authority: &str, scopes: &[String]) -> Option<String> {
        let map = self.tokens.lock().expect("token lock");
        map.get(&(authority.to_string(), scopes.join(" ")))
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }

    /// Stores `token` for `authority` and `scopes`.
    pub(crate) fn put(&self, authority: &str, scopes: &[String], token: Token) {
        self.tokens
            .lock()
            .expect("token lock")
            .insert((authority.to_string(), scopes.join(" ")), token);
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Asks the token server at `realm` for a token for `scopes`.
pub(crate) async fn fetch(
    inner: &Inner,
    t: &Target,
    realm: &Url,
    service: Option<&str>,
    scopes: &[String],
    cred: Option<&Credential>,
) -> Result<Token, RegistryError> {
    let (req, auth) = match cred {
        Some(Credential::IdentityToken { token, .. }) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("client_id", "kiln")
                .append_pair("refresh_token", token);
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            let req = Request::new(Method::POST, realm.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .payload(Payload::Bytes(Bytes::from(form.finish())));
            (req, None)
        }
        other => {
            let mut url = realm.clone();
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scopes {
                    q.append_pair("scope", s);
                }
            }
            let auth = other
                .and_then(Credential::basic_header)
                .and_then(|h| HeaderValue::from_str(&h).ok());
            (Request::new(Method::GET, url), auth)
        }
    };
    tracing::debug!(registry = %t.registry, scopes = %scopes.join(" "), "fetching bearer token");
    let resp = inner.execute(t, realm, &req, auth.as_ref()).await?;
    let resp = expect(t, resp, &[200]).await?;
    let bad = |detail: &str| RegistryError::Protocol {
        action: t.action.clone(),
        detail: format!(
            "the token server at `{}` {detail}",
            crate::error::redact_url(realm)
        ),
    };
    // Capped: a token server must not make kiln hold an endless answer (R16).
    let body = match crate::pull::read_capped(t, resp, MAX_TOKEN_RESPONSE).await {
        Ok(body) => body,
        Err(RegistryError::TooLarge { .. }) => {
            return Err(bad("sent an answer larger than the 1 MiB kiln accepts"));
        }
        Err(_) => return Err(bad("broke off its answer")),
    };
    // serde's error could quote a value from the body; say only that it was unreadable.
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| bad("sent an answer that is not a token response"))?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| bad("sent no token"))?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60)).max(MIN_LIFETIME);
    Ok(Token {
        value,
        expires: Instant::now() + lifetime - MARGIN,
    })
}
