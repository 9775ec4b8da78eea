//! Running `docker-credential-<name>` helpers (`get`, `store`): the protocol of
//! <https://github.com/docker/docker-credential-helpers>. The server URL goes on stdin;
//! `get` answers `{"ServerURL","Username","Secret"}`, where Username `<token>` marks an
//! identity token.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::credentials::Credential;
use crate::{RegistryError, RegistrySettings};

/// How long a helper may take (some prompt for a keyring unlock).
const HELPER_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks helper `name` for the credentials of `server` (the key it was stored under).
pub(crate) async fn get(
    settings: &RegistrySettings,
    name: &str,
    registry: &str,
    server: &str,
) -> Result<Option<Credential>, RegistryError> {
    let out = run(settings, name, registry, "get", server.as_bytes()).await?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(name, registry, &out));
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|_| RegistryError::Helper {
            helper: name.to_string(),
            registry: registry.to_string(),
            detail: "its answer is not the expected JSON".to_string(),
        })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken {
            username: String::new(),
            token: answer.secret,
        }
    } else {
        Credential::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// Stores `username`/`secret` for `server` through helper `name`.
pub(crate) async fn store(
    settings: &RegistrySettings,
    name: &str,
    registry: &str,
    server: &str,
    username: &str,
    secret: &str,
) -> Result<(), RegistryError> {
    let input = serde_json::json!({"ServerURL": server, "Username": username, "Secret": secret});
    let out = run(
        settings,
        name,
        registry,
        "store",
        input.to_string().as_bytes(),
    )
    .await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(name, registry, &out))
    }
}

fn failed(name: &str, registry: &str, out: &std::process::Output) -> RegistryError {
    // Helpers print their error on stdout; it never holds the secret, but cap its length.
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    text.truncate(300);
    RegistryError::Helper {
        helper: name.to_string(),
        registry: registry.to_string(),
        detail: format!("it exited with {}: {text}", out.status),
    }
}

async fn run(
    settings: &RegistrySettings,
    name: &str,
    registry: &str,
    verb: &str,
    input: &[u8],
) -> Result<std::process::Output, RegistryError> {
    let err = |detail: String| RegistryError::Helper {
        helper: name.to_string(),
        registry: registry.to_string(),
        detail,
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || name.starts_with('.')
    {
        return Err(err(
            "the helper name may only hold letters, digits and `-_.`".to_string(),
        ));
    }
    let program = format!("docker-credential-{name}");
    let path = settings
        .helper_dir
        .as_ref()
        .map(|d| d.join(&program))
        .filter(|p| p.is_file())
        .map_or_else(|| program.clone().into(), |p| p.into_os_string());
    let mut child = Command::new(&path)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("could not start it: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            err(format!(
                "it did not answer within {}s",
                HELPER_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| err(e.to_string()))?;
    let _ = writer.await;
    Ok(out)
}
