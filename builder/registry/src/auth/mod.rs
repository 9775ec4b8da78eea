//! Registry authentication: which credentials to use, and how to answer a 401.
//!
//! A 401 carries `WWW-Authenticate`: `Basic` means resend with the user's credentials
//! (to the same host only); `Bearer realm=…,service=…,scope=…` means fetch a token from
//! the realm (token auth spec: <https://distribution.github.io/distribution/spec/auth/token/>).
//! Once a host is known to use Bearer, tokens are fetched before the first request.

pub(crate) mod challenge;
pub(crate) mod credentials;
pub(crate) mod helper;
mod token;

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use url::Url;

use self::credentials::Credential;
use self::token::TokenCache;
use crate::RegistryError;
use crate::client::Inner;
use crate::error::redact_url;
use crate::hosts::{allows_plain_http, normalize_registry, url_authority};
use crate::request::Target;

/// The scheme a host asked for.
#[derive(Debug, Clone)]
pub(crate) enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Auth knowledge shared by the clones of a client. `Debug` is deliberately not derived.
#[derive(Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    /// Credentials given for a whole registry (`kiln login`), used before any file.
    given: Mutex<HashMap<String, Credential>>,
    /// What was found for `(registry, repository)`, looked up once each.
    credentials: Mutex<HashMap<(String, String), Option<Credential>>>,
    helpers: helper::HelperCache,
    tokens: TokenCache,
}

impl Inner {
    /// Uses `credential` for `registry` instead of looking it up (`kiln login`).
    pub(crate) fn set_credential(&self, registry: &str, credential: Credential) {
        self.auth
            .given
            .lock()
            .expect("credentials lock")
            .insert(normalize_registry(registry), credential);
    }

    /// Returns the credentials for the repository `t` is for, looking them up once.
    async fn credential(&self, t: &Target) -> Result<Option<Credential>, RegistryError> {
        let registry = normalize_registry(&t.registry);
        if let Some(c) = self
            .auth
            .given
            .lock()
            .expect("credentials lock")
            .get(&registry)
        {
            return Ok(Some(c.clone()));
        }
        let key = (registry, t.repository.clone());
        if let Some(c) = self
            .auth
            .credentials
            .lock()
            .expect("credentials lock")
            .get(&key)
        {
            return Ok(c.clone());
        }
        let found = credentials::lookup(&self.settings, &self.auth.helpers, &key.0, &key.1).await?;
        self.auth
            .credentials
            .lock()
            .expect("credentials lock")
            .insert(key, found.clone());
        Ok(found)
    }

    /// Remembers the challenge in `headers` (from a 401 of `authority`), returning it.
    pub(crate) fn learn_challenge(&self, authority: &str, headers: &HeaderMap) -> Option<Scheme> {
        let challenges: Vec<_> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenge::parse)
            .collect();
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let scheme = match bearer {
            Some(b) => Scheme::Bearer {
                realm: b.param("realm")?.to_string(),
                service: b.param("service").map(str::to_string),
            },
            None if challenges.iter().any(|c| c.scheme == "basic") => Scheme::Basic,
            None => return None,
        };
        self.auth
            .schemes
            .lock()
            .expect("schemes lock")
            .insert(authority.to_string(), scheme.clone());
        Some(scheme)
    }

    /// Returns the `Authorization` to send before any challenge: a cached token, a fresh
    /// token if the host is known to use Bearer, basic credentials if it uses Basic.
    pub(crate) async fn auth_header(
        &self,
        t: &Target,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let Some(tok) = self.auth.tokens.get(&t.authority, &t.scopes) {
            return Ok(Some(bearer(&tok)));
        }
        let known = self
            .auth
            .schemes
            .lock()
            .expect("schemes lock")
            .get(&t.authority)
            .cloned();
        match known {
            Some(Scheme::Bearer { realm, service }) => self
                .bearer_for(t, &realm, service.as_deref(), t.scopes.clone())
                .await
                .map(Some),
            Some(Scheme::Basic) => Ok(self.basic_for(t).await?),
            None => Ok(None),
        }
    }

    /// Returns the `Authorization` to resend with after a 401, or `None` if nothing
    /// different from `sent` can be tried.
    pub(crate) async fn answer_challenge(
        &self,
        t: &Target,
        headers: &HeaderMap,
        sent: Option<&HeaderValue>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let scheme = self.learn_challenge(&t.authority, headers);
        let scope = challenge_scope(headers);
        let fresh = match scheme {
            Some(Scheme::Bearer { realm, service }) => {
                let mut scopes = t.scopes.clone();
                if scopes.is_empty() {
                    scopes.extend(scope);
                }
                Some(
                    self.bearer_for(t, &realm, service.as_deref(), scopes)
                        .await?,
                )
            }
            Some(Scheme::Basic) => self.basic_for(t).await?,
            None => None,
        };
        Ok(fresh.filter(|f| Some(f) != sent))
    }

    async fn basic_for(&self, t: &Target) -> Result<Option<HeaderValue>, RegistryError> {
        let cred = self.credential(t).await?;
        Ok(cred
            .and_then(|c| c.basic_header())
            .and_then(|h| sensitive(&h)))
    }

    async fn bearer_for(
        &self,
        t: &Target,
        realm: &str,
        service: Option<&str>,
        scopes: Vec<String>,
    ) -> Result<HeaderValue, RegistryError> {
        let realm_url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!("the registry's token realm is not a URL: {e}"),
        })?;
        let realm_host = url_authority(&realm_url);
        if realm_url.scheme() != "https"
            && !(realm_url.scheme() == "http" && allows_plain_http(&self.settings, &realm_host))
        {
            return Err(RegistryError::InsecureHttp {
                action: t.action.clone(),
                url: redact_url(&realm_url),
                host: realm_host,
            });
        }
        let cred = self.credential(t).await?;
        let tok = token::fetch(self, t, &realm_url, service, &scopes, cred.as_ref()).await?;
        let header = bearer(&tok.value);
        self.auth.tokens.put(&t.authority, &scopes, tok);
        Ok(header)
    }
}

fn challenge_scope(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .find(|c| c.scheme == "bearer")
        .and_then(|c| c.param("scope").map(str::to_string))
}

fn bearer(token: &str) -> HeaderValue {
    sensitive(&format!("Bearer {token}"))
        .unwrap_or_else(|| HeaderValue::from_static("Bearer invalid"))
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}
