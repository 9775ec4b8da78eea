//! `kiln login`: check credentials against the registry, then store them where docker
//! does (`config.json` `auths`, or its credential helper), so docker, podman and kiln all
//! see them. Format: <https://docs.docker.com/reference/cli/docker/login/>

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::auth::credentials::{ConfigFile, Credential, find, read_config};
use crate::auth::helper;
use crate::hosts::{
    DOCKER_HUB, DOCKER_HUB_AUTH_KEY, api_host, helper_server_url, normalize_registry,
};
use crate::request::{Request, Target, expect};
use crate::{Client, RegistryError, RegistrySettings};

/// Checks `username`/`password` against `host` (`GET /v2/` through the registry's auth
/// flow), then stores them like `docker login`: through the `credHelpers`/`credsStore`
/// helper if `config.json` names one, else as `auths.<host>.auth` = base64(`user:pass`) in
/// `<docker_config_dir>/config.json`, keeping every other key; the file is written 0600.
pub async fn login(
    settings: &RegistrySettings,
    host: &str,
    username: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let (registry, dir) = config_dir(settings, host)?;
    let client = Client::new(settings.clone())?;
    let inner = &*client.inner;
    inner.set_credential(
        &registry,
        Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        },
    );
    let t = &Target {
        registry: registry.clone(),
        repository: String::new(),
        authority: api_host(&registry).to_string(),
        scopes: Vec::new(),
        action: format!("logging in to `{registry}` as `{username}`"),
        refreshes: Default::default(),
    };
    settings
        .retry
        .run(&t.action, move || async move {
            let url = inner.base_url(t).await?;
            expect(
                t,
                inner.send(t, &Request::new(Method::GET, url)).await?,
                &[200],
            )
            .await
        })
        .await?;
    store(settings, dir, &registry, username, password).await
}

async fn store(
    settings: &RegistrySettings,
    dir: &Path,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let path = dir.join("config.json");
    let config = read_config(&path).await?;
    if let Some(name) = helper_for(&config, registry) {
        let server = helper_server_url(registry);
        return helper::store(settings, &name, registry, server, username, password).await;
    }
    let io = |source| RegistryError::Io {
        action: format!("storing credentials for `{registry}`"),
        path: path.clone(),
        source,
    };
    let mut doc = read_doc(&path, io).await?.unwrap_or_default();
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(RegistryError::Credentials {
            path,
            detail: "`auths` is not an object".to_string(),
        });
    };
    // Reuse the key an existing entry has (`https://host`, ...) so there is one entry per host.
    let key = auths
        .keys()
        .find(|k| normalize_registry(k) == registry)
        .cloned()
        .unwrap_or_else(|| {
            if registry == DOCKER_HUB {
                DOCKER_HUB_AUTH_KEY.to_string()
            } else {
                registry.to_string()
            }
        });
    let auth = B64.encode(format!("{username}:{password}"));
    auths.insert(key, serde_json::json!({ "auth": auth }));
    let text = serde_json::to_vec_pretty(&Value::Object(doc)).expect("a JSON value serializes");
    let dir = dir.to_path_buf();
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_private(&dir, &target, &text))
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)
}

/// Returns `host` as `config.json` keys it, and the docker config dir its credentials go in.
fn config_dir<'a>(
    settings: &'a RegistrySettings,
    host: &str,
) -> Result<(String, &'a Path), RegistryError> {
    let registry = normalize_registry(host);
    match settings.docker_config_dir.as_deref() {
        Some(dir) => Ok((registry, dir)),
        None => Err(RegistryError::NoConfigDir { registry }),
    }
}

/// Removes what `kiln login` (or `docker login`) stored for `host`: through the
/// credential helper `config.json` names for it, else its `auths` entry, keeping every
/// other key. Returns whether there was anything to remove.
pub async fn logout(settings: &RegistrySettings, host: &str) -> Result<bool, RegistryError> {
    let (registry, dir) = config_dir(settings, host)?;
    let path = dir.join("config.json");
    let config = read_config(&path).await?;
    if let Some(name) = helper_for(&config, &registry) {
        let server = helper_server_url(&registry);
        helper::erase(settings, &name, &registry, server).await?;
        return Ok(true);
    }
    let io = |source| RegistryError::Io {
        action: format!("removing the credentials for `{registry}`"),
        path: path.clone(),
        source,
    };
    let Some(mut doc) = read_doc(&path, io).await? else {
        return Ok(false);
    };
    let Some(Value::Object(auths)) = doc.get_mut("auths") else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|key, _| normalize_registry(key) != registry);
    if auths.len() == before {
        return Ok(false);
    }
    let text = serde_json::to_vec_pretty(&Value::Object(doc)).expect("a JSON value serializes");
    let (dir, target) = (dir.to_path_buf(), path.clone());
    tokio::task::spawn_blocking(move || write_private(&dir, &target, &text))
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    Ok(true)
}

/// Returns the credential helper `config.json` names for `registry` (`credHelpers`, else
/// `credsStore`), if any: `kiln login` and `kiln logout` go through it.
fn helper_for(config: &ConfigFile, registry: &str) -> Option<String> {
    find(&config.cred_helpers, registry, "")
        .map(|(_, h, _)| h.clone())
        .or(config.creds_store.clone().filter(|s| !s.is_empty()))
}

/// Reads `config.json` as a JSON object, every key kept; `None` when there is none. `io`
/// says what a failed read was for.
async fn read_doc(
    path: &Path,
    io: impl Fn(std::io::Error) -> RegistryError,
) -> Result<Option<Map<String, Value>>, RegistryError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| RegistryError::Credentials {
                    path: path.to_path_buf(),
                    detail: "not a JSON object".to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Writes `bytes` to `path` via a 0600 temporary file and a rename.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".config.json.{}.kiln-tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
