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
use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use url::Url;

use self::credentials::Credential;
use self::token::TokenCache;
use crate::RegistryError;
use crate::client::Inner;
use crate::error::redact_url;
use crate::hosts::{is_loopback, normalize_registry, url_authority};
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

/// Credentials looked up for a repository (none is an answer too), and when.
type Found = (Instant, Option<Credential>);

/// Auth knowledge shared by the clones of a client. `Debug` is deliberately not derived.
#[derive(Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    /// Credentials given for a whole registry (`kiln login`), used before any file.
    given: Mutex<HashMap<String, Credential>>,
    /// What was found for `(registry, repository)`, and when: looked up again once older
    /// than `RegistrySettings::credential_ttl`.
    credentials: Mutex<HashMap<(String, String), Found>>,
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

    /// Returns the credentials for the repository `t` is for, looking them up once per
    /// `RegistrySettings::credential_ttl`.
    pub(crate) async fn credential(&self, t: &Target) -> Result<Option<Credential>, RegistryError> {
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
        let ttl = self.settings.credential_ttl;
        if let Some((at, c)) = self
            .auth
            .credentials
            .lock()
            .expect("credentials lock")
            .get(&key)
            && at.elapsed() < ttl
        {
            return Ok(c.clone());
        }
        let found = credentials::lookup(&self.settings, &self.auth.helpers, &key.0, &key.1).await?;
        self.auth
            .credentials
            .lock()
            .expect("credentials lock")
            .insert(key, (Instant::now(), found.clone()));
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
                .bearer_for(t, &realm, service.as_deref(), &t.scopes)
                .await
                .map(Some),
            Some(Scheme::Basic) => Ok(self.basic_for(t).await?),
            None => Ok(None),
        }
    }

    /// Returns what to resend with after a 401: a fresh `Authorization` (`None` if nothing
    /// different from `sent` can be tried), and the scopes the registry said were missing.
    ///
    /// `error="insufficient_scope"` asks for a token with the challenge's scopes placed
    /// first (ggcr `TestInsufficientScope`); any other 401 after a token was sent refreshes
    /// it, at most [`MAX_REFRESHES`] times per call (Jib's bound), then fails.
    pub(crate) async fn answer_challenge(
        &self,
        t: &Target,
        headers: &HeaderMap,
        sent: Option<&HeaderValue>,
    ) -> Result<Answer, RegistryError> {
        let scheme = self.learn_challenge(&t.authority, headers);
        let mut missing = Vec::new();
        let fresh = match scheme {
            Some(Scheme::Bearer { realm, service }) => {
                missing = insufficient_scope(headers).unwrap_or_default();
                if sent.is_some() && missing.is_empty() {
                    let refreshes = t.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
                    if refreshes > MAX_REFRESHES {
                        return Err(RegistryError::TokenRejected {
                            action: t.action.clone(),
                            registry: t.registry.clone(),
                            refreshes: MAX_REFRESHES,
                        });
                    }
                    tracing::debug!(registry = %t.registry, refreshes, "token rejected, refreshing");
                }
                let wanted = match t.scopes.is_empty() {
                    true => challenge_scope(headers),
                    false => t.scopes.clone(),
                };
                let scopes = merge_scopes(missing.iter().chain(&wanted));
                let header = self
                    .bearer_for(t, &realm, service.as_deref(), &scopes)
                    .await?;
                Some(header)
            }
            Some(Scheme::Basic) => self.basic_for(t).await?,
            None => None,
        };
        Ok(Answer {
            header: fresh.filter(|f| Some(f) != sent),
            missing,
        })
    }

    async fn basic_for(&self, t: &Target) -> Result<Option<HeaderValue>, RegistryError> {
        let Some(header) = self.credential(t).await?.and_then(|c| c.basic_header()) else {
            return Ok(None);
        };
        let registry_url = self.base_url(t).await?;
        self.check_credentials_transport(t, &registry_url)?;
        Ok(sensitive(&header))
    }

    /// Fetches a token for `scopes` and caches it for them, and for `t`'s own scopes too:
    /// a token granting more still grants what `t` needs.
    async fn bearer_for(
        &self,
        t: &Target,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<HeaderValue, RegistryError> {
        let realm_url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!("the registry's token realm is not a URL: {e}"),
        })?;
        self.check_url(t, "token realm", &realm_url, &realm_url)?;
        let cred = self.credential(t).await?;
        if cred.is_some() {
            self.check_credentials_transport(t, &realm_url)?;
            let registry_url = self.base_url(t).await?;
            self.check_credentials_transport(t, &registry_url)?;
        }
        let tok = token::fetch(self, t, &realm_url, service, scopes, cred.as_ref()).await?;
        let header = bearer(&tok.value);
        if t.scopes.as_slice() != scopes {
            self.auth.tokens.put(&t.authority, &t.scopes, tok.clone());
        }
        self.auth.tokens.put(&t.authority, scopes, tok);
        Ok(header)
    }

    /// Refuses `url` for credentials if it is plain http to another machine and the
    /// settings do not allow that (RELIABILITY.md C03).
    fn check_credentials_transport(&self, t: &Target, url: &Url) -> Result<(), RegistryError> {
        if url.scheme() == "https"
            || is_loopback(&url_authority(url))
            || self.settings.allow_http_credentials
        {
            return Ok(());
        }
        Err(RegistryError::CredentialsOverHttp {
            action: t.action.clone(),
            registry: t.registry.clone(),
            url: redact_url(url),
        })
    }
}

/// What [`Inner::answer_challenge`] found.
pub(crate) struct Answer {
    /// The `Authorization` to resend with, if there is a new one.
    pub header: Option<HeaderValue>,
    /// The scopes an `insufficient_scope` challenge named (empty otherwise).
    pub missing: Vec<String>,
}

/// How many times one call refreshes a bearer token the registry rejected.
pub(crate) const MAX_REFRESHES: u32 = 5;

fn bearer_challenge(headers: &HeaderMap) -> Option<challenge::Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .find(|c| c.scheme == "bearer")
}

fn challenge_scope(headers: &HeaderMap) -> Vec<String> {
    bearer_challenge(headers)
        .and_then(|c| c.param("scope").map(split_scopes))
        .unwrap_or_default()
}

/// Returns the scopes of a Bearer challenge with `error="insufficient_scope"`, if `headers`
/// hold one (a challenge may name several scopes, space separated).
pub(crate) fn insufficient_scope(headers: &HeaderMap) -> Option<Vec<String>> {
    let c = bearer_challenge(headers)?;
    (c.param("error") == Some("insufficient_scope"))
        .then(|| c.param("scope").map(split_scopes).unwrap_or_default())
}

/// Returns `scopes` with one entry per resource (`type:name`), in order of first
/// appearance, each with the union of its actions: registries list actions in any order
/// (`push,pull`), and asking twice for one resource helps nobody.
fn merge_scopes<'a>(scopes: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut merged: Vec<(&str, Vec<&str>)> = Vec::new();
    for scope in scopes {
        let (resource, actions) = scope.rsplit_once(':').unwrap_or((scope, ""));
        let index = match merged.iter().position(|(r, _)| *r == resource) {
            Some(i) => i,
            None => {
                merged.push((resource, Vec::new()));
                merged.len() - 1
            }
        };
        for action in actions.split(',').filter(|a| !a.is_empty()) {
            if !merged[index].1.contains(&action) {
                merged[index].1.push(action);
            }
        }
    }
    merged
        .into_iter()
        .map(|(resource, actions)| format!("{resource}:{}", actions.join(",")))
        .collect()
}

fn split_scopes(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_string).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_scopes_per_resource_keeping_the_first_order() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let merged = |v: &[&str]| merge_scopes(s(v).iter());
        assert_eq!(
            merged(&["repository:a:push,pull", "repository:a:pull,push"]),
            ["repository:a:push,pull"]
        );
        assert_eq!(
            merged(&["repository:base:pull", "repository:app:pull,push"]),
            ["repository:base:pull", "repository:app:pull,push"]
        );
        assert_eq!(
            merged(&[
                "repository:app:push",
                "repository:app:pull",
                "registry:catalog:*"
            ]),
            ["repository:app:push,pull", "registry:catalog:*"]
        );
    }
}
