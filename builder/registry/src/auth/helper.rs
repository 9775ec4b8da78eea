//! Running `docker-credential-<name>` helpers (`get`, `store`): the protocol of
//! <https://github.com/docker/docker-credential-helpers>. The server URL goes on stdin;
//! `get` answers `{"ServerURL","Username","Secret"}`, where Username `<token>` marks an
//! identity token.
//!
//! A helper is untrusted and may hang (RELIABILITY.md C01): it runs in a process group of
//! its own, for at most [`RegistrySettings::helper_timeout`], after which the whole group is
//! killed; its answer is read up to [`MAX_ANSWER`] bytes; and each `(helper, server)` is asked
//! once per client and [`RegistrySettings::credential_ttl`] ([`HelperCache`]), a failure
//! included, so a broken helper costs one timeout, not one per request, and a long build
//! still sees a rotated secret (C04).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Mutex;

use super::credentials::Credential;
use crate::{RegistryError, RegistrySettings};

/// The most kiln reads of a helper's answer (real ones are well under a kilobyte).
pub const MAX_ANSWER: u64 = 64 * 1024;

/// What each `(helper, server)` answered, and when it was asked.
#[derive(Default)]
pub(crate) struct HelperCache {
    answers: Mutex<HashMap<(String, String), Asked>>,
}

/// When a helper was asked, and where its answer is kept.
type Asked = (Instant, Arc<AnswerCell>);

/// Where one `(helper, server)`'s answer is kept once it came.
type AnswerCell = tokio::sync::OnceCell<Answer>;

/// A helper's answer as remembered: credentials (or none), or why it failed.
type Answer = Result<Option<Credential>, String>;

impl HelperCache {
    /// Returns what helper `name` says for `server`, running it the first time and again
    /// once the answer is older than the credentials' time to live.
    pub(crate) async fn get(
        &self,
        settings: &RegistrySettings,
        name: &str,
        registry: &str,
        server: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        let cell = {
            let mut answers = self.answers.lock().await;
            let entry = answers
                .entry((name.to_owned(), server.to_owned()))
                .or_insert_with(|| (Instant::now(), Arc::default()));
            if entry.0.elapsed() >= settings.credential_ttl {
                *entry = (Instant::now(), Arc::default());
            }
            entry.1.clone()
        };
        let answer = cell
            .get_or_init(|| async {
                get(settings, name, registry, server)
                    .await
                    .map_err(|e| match e {
                        RegistryError::Helper { detail, .. } => detail,
                        other => other.to_string(),
                    })
            })
            .await;
        answer.clone().map_err(|detail| RegistryError::Helper {
            helper: name.to_owned(),
            registry: registry.to_owned(),
            detail,
        })
    }
}

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

/// Erases what helper `name` stores for `server` (`docker-credential-NAME erase`).
pub(crate) async fn erase(
    settings: &RegistrySettings,
    name: &str,
    registry: &str,
    server: &str,
) -> Result<(), RegistryError> {
    let out = run(settings, name, registry, "erase", server.as_bytes()).await?;
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

/// Returns the first executable `program` in the absolute directories of `dirs`.
fn find_helper(dirs: &[std::path::PathBuf], program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    dirs.iter()
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
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
    let Some(path) = find_helper(&settings.helper_dirs, &program) else {
        return Err(err(format!(
            "`{program}` is not in any absolute directory of PATH (a relative one, such as \
             `.`, is never searched)"
        )));
    };
    let mut child = Command::new(&path)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: on a timeout, whatever it started dies with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("could not start it: {e}")))?;
    let group = child.id();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let talk = async {
        let (mut out, mut errs) = (Vec::new(), Vec::new());
        let (mut out_pipe, mut err_pipe) = (
            (&mut stdout).take(MAX_ANSWER),
            (&mut stderr).take(MAX_ANSWER),
        );
        let (a, b) = tokio::join!(
            out_pipe.read_to_end(&mut out),
            err_pipe.read_to_end(&mut errs)
        );
        a.and(b)?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>(std::process::Output {
            status,
            stdout: out,
            stderr: errs,
        })
    };
    let timeout = settings.helper_timeout;
    let out = match tokio::time::timeout(timeout, talk).await {
        Ok(out) => out.map_err(|e| err(e.to_string()))?,
        Err(_) => {
            if let Some(pid) = group.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            writer.abort();
            return Err(err(format!(
                "it did not answer within {} s (its processes were killed)",
                timeout.as_secs()
            )));
        }
    };
    let _ = writer.await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C01: a helper is looked up only in absolute directories: one the relative entry `.`
    /// (or a project's `bin`) would find is never run.
    #[test]
    fn c01_helpers_are_found_in_absolute_directories_only() {
        use std::os::unix::fs::PermissionsExt as _;
        // A directory next to the tests' working directory, named relatively as PATH's `.`
        // or `bin` entries would name it.
        let here = tempfile::tempdir_in(".").unwrap();
        let relative = std::path::PathBuf::from(here.path().file_name().unwrap());
        let helper = here.path().join("docker-credential-nosy");
        std::fs::write(&helper, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(relative.join("docker-credential-nosy").is_file());
        assert_eq!(find_helper(&[relative], "docker-credential-nosy"), None);
        let absolute = here.path().canonicalize().unwrap();
        assert_eq!(
            find_helper(std::slice::from_ref(&absolute), "docker-credential-nosy"),
            Some(absolute.join("docker-credential-nosy"))
        );
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            find_helper(&[absolute], "docker-credential-nosy"),
            None,
            "not executable"
        );
    }
}
