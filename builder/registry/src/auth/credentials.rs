//! Finding credentials for a registry the way docker and podman store them.
//!
//! Order: docker `config.json` `credHelpers.<host>`, then `auths.<host>`, then its
//! `credsStore`, then each podman `auth.json` (`auths.<host>`), else anonymous. Keys are
//! matched after normalizing (`https://host/v1/` → `host`, Docker Hub aliases →
//! `docker.io`). Format: <https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md>

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::helper;
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

/// Returns the value of the first key of `map` that names `registry`, preferring exact keys.
pub(crate) fn find<'a, V>(
    map: &'a BTreeMap<String, V>,
    registry: &str,
) -> Option<(&'a String, &'a V)> {
    map.get_key_value(registry)
        .or_else(|| map.iter().find(|(k, _)| normalize_registry(k) == registry))
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

/// Returns the stored credentials for `registry` (normalized), or `None` for anonymous.
pub(crate) async fn lookup(
    settings: &RegistrySettings,
    registry: &str,
) -> Result<Option<Credential>, RegistryError> {
    if let Some(dir) = &settings.docker_config_dir {
        let path = dir.join("config.json");
        let config = read_config(&path).await?;
        if let Some((key, name)) = find(&config.cred_helpers, registry) {
            tracing::debug!(%registry, helper = %name, "credentials from credHelpers");
            return helper::get(settings, name, registry, key).await;
        }
        if let Some((_, entry)) = find(&config.auths, registry)
            && let Some(c) = entry.credential(&path)?
        {
            tracing::debug!(%registry, file = %path.display(), "credentials from config.json");
            return Ok(Some(c));
        }
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let server = crate::hosts::helper_server_url(registry);
            if let Some(c) = helper::get(settings, store, registry, server).await? {
                return Ok(Some(c));
            }
        }
    }
    for path in &settings.auth_files {
        let config = read_config(path).await?;
        if let Some((_, entry)) = find(&config.auths, registry)
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
        let basic = |u: &str, p: &str| {
            Some(Credential::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            lookup(&s, "docker.io").await.unwrap(),
            basic("alice", "pa:ss")
        );
        assert_eq!(lookup(&s, "one.example").await.unwrap(), basic("u", "p"));
        assert_eq!(
            lookup(&s, "two.example").await.unwrap(),
            Some(Credential::IdentityToken {
                username: String::new(),
                token: "rt".into()
            })
        );
        assert_eq!(
            lookup(&s, "empty.example").await.unwrap(),
            basic("bob", "x")
        );
        assert_eq!(lookup(&s, "nobody.example").await.unwrap(), None);
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
        let e = lookup(&settings(tmp.path()), "h").await.unwrap_err();
        assert!(!e.to_string().contains("secretish"), "{e}");
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
