//! Finding credentials for a repository the way docker and podman store them.
//!
//! A key names a registry (`host`, `https://host/v1/`) or a namespace in it (`host/team`,
//! `host/team/app`), as containers-auth.json allows; it applies to the repositories at or
//! below it, and the most specific key that applies wins (RELIABILITY.md C04): an entry for
//! `host/other` is never used for `host/team/app`. Order: docker `config.json` `auths` with a
//! namespace that applies, then `credHelpers.<host>`, then `auths.<host>`, then its
//! `credsStore`; then each podman `auth.json` (its most specific `auths` entry), else
//! anonymous. Hosts are compared after normalizing (Docker Hub aliases → `docker.io`).
//! Format: <https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md>

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::helper::HelperCache;
use crate::hosts::normalize_registry;
use crate::{RegistryError, RegistrySettings};

/// A secret to authenticate with. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Username and password (or a registry token used as a password).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token server.
    IdentityToken {
        /// The user name, if known.
        username: String,
        /// The refresh token.
        token: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl Credential {
    /// Returns the `Authorization: Basic` value for these credentials, if they have a password.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                B64.encode(format!("{username}:{password}"))
            )),
            Self::IdentityToken { .. } => None,
        }
    }
}

/// The parts of docker's `config.json` (and podman's `auth.json`) kiln reads.
#[derive(Default, Deserialize)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    pub creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    pub cred_helpers: BTreeMap<String, String>,
}

/// One `auths` entry.
#[derive(Default, Deserialize)]
pub(crate) struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credential(&self, path: &Path) -> Result<Option<Credential>, RegistryError> {
        let mut username = self.username.clone().unwrap_or_default();
        let mut password = self.password.clone();
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || RegistryError::Credentials {
                path: path.to_path_buf(),
                detail: "an `auth` value is not base64 of `user:password`".to_string(),
            };
            let decoded = B64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            username = u.to_string();
            password = Some(p.to_string());
        }
        if let Some(token) = self.identitytoken.clone().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken { username, token }));
        }
        Ok(password
            .filter(|p| !p.is_empty() || !username.is_empty())
            .map(|password| Credential::Basic { username, password }))
    }
}

/// Returns how specific credentials key `key` is for `repository` at `registry` (the number
/// of namespace segments it names, 0 for the registry itself), or `None` when it does not
/// apply to that repository.
fn key_depth(key: &str, registry: &str, repository: &str) -> Option<usize> {
    let key = key.trim();
    let (scheme, rest) = match key.split_once("://") {
        Some((_, rest)) => (true, rest),
        None => (false, key),
    };
    let rest = rest.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if normalize_registry(host) != registry {
        return None;
    }
    // `https://host/v1/`: docker's legacy server URL, not a namespace.
    if path.is_empty() || (scheme && matches!(path, "v1" | "v2")) {
        return Some(0);
    }
    let applies = repository == path
        || repository
            .strip_prefix(path)
            .is_some_and(|below| below.starts_with('/'));
    applies.then(|| path.split('/').count())
}

/// Returns the entry of `map` most specific for `repository` at `registry` (see
/// [`key_depth`]) with its depth; among keys of the same depth, one written exactly as the
/// registry first.
pub(crate) fn find<'a, V>(
    map: &'a BTreeMap<String, V>,
    registry: &str,
    repository: &str,
) -> Option<(&'a String, &'a V, usize)> {
    map.iter()
        .filter_map(|(k, v)| Some((k, v, key_depth(k, registry, repository)?)))
        .max_by_key(|(k, _, depth)| (*depth, k.as_str() == registry))
}

/// Reads a `config.json`/`auth.json`; a missing file is an empty one.
pub(crate) async fn read_config(path: &Path) -> Result<ConfigFile, RegistryError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Credentials {
            path: path.to_path_buf(),
            // serde's message has a position and a type, never the file's values.
            detail: format!("not valid JSON: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(RegistryError::Credentials {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Returns the stored credentials for `repository` at `registry` (normalized), or `None`
/// for anonymous; credential helpers are asked through `helpers` (once per client).
pub(crate) async fn lookup(
    settings: &RegistrySettings,
    helpers: &HelperCache,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, RegistryError> {
    if let Some(dir) = &settings.docker_config_dir {
        let path = dir.join("config.json");
        let config = read_config(&path).await?;
        let auth = find(&config.auths, registry, repository);
        if let Some((key, entry, depth)) = auth
            && depth > 0
            && let Some(c) = entry.credential(&path)?
        {
            tracing::debug!(%registry, %repository, %key, "credentials from config.json");
            return Ok(Some(c));
        }
        if let Some((key, name, _)) = find(&config.cred_helpers, registry, "") {
            tracing::debug!(%registry, helper = %name, "credentials from credHelpers");
            return helpers.get(settings, name, registry, key).await;
        }
        if let Some((_, entry, _)) = auth
            && let Some(c) = entry.credential(&path)?
        {
            tracing::debug!(%registry, file = %path.display(), "credentials from config.json");
            return Ok(Some(c));
        }
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let server = crate::hosts::helper_server_url(registry);
            if let Some(c) = helpers.get(settings, store, registry, server).await? {
                return Ok(Some(c));
            }
        }
    }
    for path in &settings.auth_files {
        let config = read_config(path).await?;
        if let Some((_, entry, _)) = find(&config.auths, registry, repository)
            && let Some(c) = entry.credential(path)?
        {
            tracing::debug!(%registry, file = %path.display(), "credentials from auth.json");
            return Ok(Some(c));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> RegistrySettings {
        RegistrySettings {
            docker_config_dir: Some(dir.join("docker")),
            auth_files: vec![dir.join("missing.json"), dir.join("auth.json")],
            ..RegistrySettings::default()
        }
    }

    #[tokio::test]
    async fn reads_docker_and_podman_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("docker")).unwrap();
        let auth = B64.encode("alice:pa:ss");
        std::fs::write(
            tmp.path().join("docker/config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "http://one.example":{{"username":"u","password":"p"}},
                "two.example":{{"identitytoken":"rt","auth":""}},
                "empty.example":{{}}}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("auth.json"),
            format!(
                r#"{{"auths":{{"empty.example":{{"auth":"{}"}}}}}}"#,
                B64.encode("bob:x")
            ),
        )
        .unwrap();
        let s = settings(tmp.path());
        let h = HelperCache::default();
        let lookup = |r: &'static str| lookup(&s, &h, r, "team/app");
        let basic = |u: &str, p: &str| {
            Some(Credential::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(lookup("docker.io").await.unwrap(), basic("alice", "pa:ss"));
        assert_eq!(lookup("one.example").await.unwrap(), basic("u", "p"));
        assert_eq!(
            lookup("two.example").await.unwrap(),
            Some(Credential::IdentityToken {
                username: String::new(),
                token: "rt".into()
            })
        );
        assert_eq!(lookup("empty.example").await.unwrap(), basic("bob", "x"));
        assert_eq!(lookup("nobody.example").await.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_auth_is_an_error_without_the_value() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("docker")).unwrap();
        std::fs::write(
            tmp.path().join("docker/config.json"),
            r#"{"auths":{"h":{"auth":"!!secretish"}}}"#,
        )
        .unwrap();
        let e = lookup(&settings(tmp.path()), &HelperCache::default(), "h", "app")
            .await
            .unwrap_err();
        assert!(!e.to_string().contains("secretish"), "{e}");
    }

    /// C04: the most specific key that applies to the repository wins, whatever the order
    /// of the file; a key for another namespace never applies.
    #[tokio::test]
    async fn c04_the_most_specific_entry_wins_and_no_other_repositorys_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("docker")).unwrap();
        let auth = |u: &str| format!(r#"{{"auth":"{}"}}"#, B64.encode(format!("{u}:pw")));
        std::fs::write(
            tmp.path().join("docker/config.json"),
            format!(
                r#"{{"auths":{{"reg.example/team":{},"reg.example":{},"reg.example/other":{},
                "reg.example/team/app":{},"only.example/other":{},"reg.example/teamster":{}}}}}"#,
                auth("team"),
                auth("host"),
                auth("other"),
                auth("app"),
                auth("elsewhere"),
                auth("teamster"),
            ),
        )
        .unwrap();
        let s = settings(tmp.path());
        let h = HelperCache::default();
        let user = |r: &'static str, repo: &'static str| {
            let (s, h) = (&s, &h);
            async move {
                match lookup(s, h, r, repo).await.unwrap() {
                    Some(Credential::Basic { username, .. }) => Some(username),
                    other => other.map(|c| format!("{c:?}")),
                }
            }
        };
        assert_eq!(
            user("reg.example", "team/app").await.as_deref(),
            Some("app")
        );
        assert_eq!(
            user("reg.example", "team/web").await.as_deref(),
            Some("team")
        );
        assert_eq!(user("reg.example", "team").await.as_deref(), Some("team"));
        assert_eq!(
            user("reg.example", "teamster/x").await.as_deref(),
            Some("teamster")
        );
        assert_eq!(user("reg.example", "tea/x").await.as_deref(), Some("host"));
        assert_eq!(user("reg.example", "").await.as_deref(), Some("host"));
        assert_eq!(user("only.example", "team/app").await, None);
        assert_eq!(
            user("only.example", "other/x").await.as_deref(),
            Some("elsewhere")
        );
    }

    #[test]
    fn keys_apply_to_their_namespace_only() {
        assert_eq!(
            key_depth("https://index.docker.io/v1/", "docker.io", "a/b"),
            Some(0)
        );
        assert_eq!(key_depth("h:5000", "h:5000", "a/b"), Some(0));
        assert_eq!(key_depth("h:5000/a", "h:5000", "a/b"), Some(1));
        assert_eq!(key_depth("h:5000/a/b/", "h:5000", "a/b"), Some(2));
        assert_eq!(key_depth("h:5000/a/b/c", "h:5000", "a/b"), None);
        assert_eq!(key_depth("h:5000/ab", "h:5000", "a/b"), None);
        assert_eq!(key_depth("h:5001", "h:5000", "a/b"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Credential::IdentityToken {
            username: "u".into(),
            token: "tok123".into(),
        };
        assert!(!format!("{c:?}").contains("tok123"));
    }
}
