//! Blob upload sessions: `POST` to open, then one `PUT` with the whole file, or `PATCH`
//! chunks and a closing `PUT`.
//!
//! A transient failure anywhere (5xx, 408, 429, 499, a reset or cut connection) abandons
//! the session and starts a new one from the top (HEAD, POST, ...), at most
//! [`MAX_SESSIONS`] in all with backoff between them: a session URL that saw a failure is
//! never sent another chunk, since what the registry kept of it is unknown (RELIABILITY.md
//! R07). A chunk answered 416 is the one exception: the registry says what it holds
//! (`GET` on the session, `Range`), and the upload goes on from there (R11 e).
//! Spec: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kiln_oci::{Digest, Reference};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::mpsc;
use url::Url;

use crate::client::Inner;
use crate::payload::{Payload, with_progress};
use crate::push::blob_push_target;
use crate::request::{Request, Target, expect, location};
use crate::{Client, RegistryError};

/// How long [`Client::abort_uploads`] gives each `DELETE`.
const ABORT_TIMEOUT: Duration = Duration::from_secs(3);

const OCTET_STREAM: &str = "application/octet-stream";
/// Upload sessions tried per blob: the first and two restarts (fewer if the retry policy
/// allows fewer attempts).
const MAX_SESSIONS: u32 = 3;
/// How often one session may pick up at the registry's offset after a 416.
const MAX_RESUMES: u32 = 3;
/// The header a registry names its smallest chunk in (distribution-spec v1.1).
const CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";

/// An upload session the registry opened.
pub(crate) struct Session {
    /// Where the next request of the session goes.
    pub url: Url,
    /// The smallest chunk the registry takes (all but the last), if it says.
    pub min_chunk: Option<u64>,
}

impl Session {
    /// Returns the session a 202 answer opened.
    pub(crate) fn of(t: &Target, resp: &Response) -> Result<Self, RegistryError> {
        let min_chunk = resp
            .headers()
            .get(CHUNK_MIN_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(Self {
            url: location(t, resp)?,
            min_chunk,
        })
    }
}

/// An upload session this client has open, known to [`Client::abort_uploads`] until dropped
/// (the upload finished, failed or was abandoned).
struct Open<'a> {
    inner: &'a Inner,
    id: u64,
}

impl<'a> Open<'a> {
    fn new(inner: &'a Inner, t: &Target, at: &Url) -> Self {
        let id = inner.next_upload.fetch_add(1, Ordering::Relaxed);
        let mut open = inner.uploads.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, (t.clone(), at.clone()));
        Self { inner, id }
    }

    /// Notes where the session goes next (each answer names the next URL).
    fn moved(&self, at: &Url) {
        let mut open = self.inner.uploads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = open.get_mut(&self.id) {
            entry.1 = at.clone();
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let mut open = self.inner.uploads.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
    }
}

/// Returns whether a new session may get further than the one that failed with `e`.
fn restartable(e: &RegistryError) -> bool {
    e.is_retryable() || e.status() == Some(416) || e.code() == Some("BLOB_UPLOAD_UNKNOWN")
}

impl Client {
    /// Uploads `path` as blob `digest`, starting in `session` if the registry opened one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn upload(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        mut session: Option<Session>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), RegistryError> {
        let policy = &self.inner.settings.retry;
        let sessions = policy.max_attempts.clamp(1, MAX_SESSIONS);
        let mut failed = 0;
        loop {
            progress(0);
            let (tx, rx) = mpsc::unbounded_channel();
            let attempt = self.upload_once(t, repo, digest, size, path, session.take(), tx);
            let err = match with_progress(attempt, rx, progress).await {
                Ok(()) => break,
                Err(e) => e,
            };
            failed += 1;
            let too_long = err
                .retry_after()
                .is_some_and(|after| after > policy.max_delay);
            if too_long || !restartable(&err) || failed >= sessions {
                return Err(match failed {
                    1 => err,
                    n => err.noting(&format!(" (gave up after {n} upload sessions)")),
                });
            }
            let wait = policy.delay(failed, err.retry_after());
            tracing::debug!(%digest, session = failed, ?wait, error = %err, "upload failed; starting a new session");
            tokio::time::sleep(wait).await;
            // The failed session's closing PUT may have landed with only its answer lost.
            if self.probe_blob(t, repo, digest).await.is_some() {
                break;
            }
        }
        progress(size);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_once(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        session: Option<Session>,
        tx: mpsc::UnboundedSender<u64>,
    ) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        let Session {
            url: mut at,
            min_chunk,
        } = match session {
            Some(s) => s,
            None => {
                let url = inner
                    .url(t, &format!("{}/blobs/uploads/", repo.repository()))
                    .await?;
                let resp = inner.send(t, &Request::new(Method::POST, url)).await?;
                Session::of(t, &expect(t, resp, &[202]).await?)?
            }
        };
        let open = Open::new(inner, t, &at);
        let file = |offset: u64, len: u64| Payload::File {
            path: path.to_path_buf(),
            offset,
            len,
            progress: Some(tx.clone()),
        };
        let last = match inner.settings.chunk_size.filter(|n| *n > 0) {
            None => file(0, size),
            Some(chunk) => {
                // The registry's minimum wins; only the last chunk may be shorter (R11 d).
                let chunk = chunk.max(min_chunk.unwrap_or(0));
                let (mut offset, mut resumes) = (0, 0);
                while offset < size {
                    let len = chunk.min(size - offset);
                    let end = offset + len - 1;
                    let req = Request::new(Method::PATCH, at.clone())
                        .header(CONTENT_TYPE, OCTET_STREAM)
                        .header(CONTENT_RANGE, &format!("{offset}-{end}"))
                        .payload(file(offset, len));
                    let resp = inner.send(t, &req).await?;
                    if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && resumes < MAX_RESUMES {
                        resumes += 1;
                        (offset, at) = self.upload_status(t, &at, size).await?;
                        open.moved(&at);
                        tracing::debug!(%digest, offset, "chunk out of order; resuming where the registry is");
                        continue;
                    }
                    let resp = expect(t, resp, &[202]).await?;
                    check_range(t, &resp, end)?;
                    at = location(t, &resp)?;
                    open.moved(&at);
                    offset += len;
                }
                Payload::Empty
            }
        };
        at.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let req = Request::new(Method::PUT, at)
            .header(CONTENT_TYPE, OCTET_STREAM)
            .payload(last);
        expect(t, inner.send(t, &req).await?, &[201, 204]).await?;
        drop(open);
        Ok(())
    }

    /// Cancels the upload sessions this client (and its clones) has open, with a `DELETE`
    /// on each (at most a few seconds apiece, answers ignored), so the registry can drop what
    /// it kept; for a push interrupted by a signal (RELIABILITY.md C06). Returns how many
    /// sessions there were. The uploads themselves are not stopped: the caller exits.
    pub async fn abort_uploads(&self) -> usize {
        let open: Vec<(Target, Url)> = {
            let mut open = self.inner.uploads.lock().unwrap_or_else(|e| e.into_inner());
            open.drain().map(|(_, s)| s).collect()
        };
        let inner = &*self.inner;
        let deletes = open.iter().map(|(t, at)| async move {
            let req = Request::new(Method::DELETE, at.clone());
            match tokio::time::timeout(ABORT_TIMEOUT, inner.send(t, &req)).await {
                Ok(Ok(resp)) => {
                    tracing::debug!(status = %resp.status(), "upload session cancelled")
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "cancelling an upload session failed"),
                Err(_) => tracing::debug!("cancelling an upload session timed out"),
            }
        });
        futures_util::future::join_all(deletes).await;
        open.len()
    }

    /// Checks that this client may push to `repo`, writing nothing: opens a blob upload
    /// session, which a registry grants only to accepted credentials with the push right,
    /// and cancels it at once with a `DELETE` (the distribution spec lets a client drop a
    /// session it opened; the answer is ignored).
    pub async fn check_push(&self, repo: &Reference) -> Result<(), RegistryError> {
        let t = Target::push(
            repo,
            format!("checking that kiln may push to `{}`", repo.name()),
        );
        let inner = &*self.inner;
        let url = inner
            .url(&t, &format!("{}/blobs/uploads/", repo.repository()))
            .await?;
        let resp = inner.send(&t, &Request::new(Method::POST, url)).await?;
        let session = Session::of(&t, &expect(&t, resp, &[202]).await?)?;
        let cancel = Request::new(Method::DELETE, session.url);
        if let Ok(Err(e)) = tokio::time::timeout(ABORT_TIMEOUT, inner.send(&t, &cancel)).await {
            tracing::debug!(error = %e, "cancelling the checking upload session failed");
        }
        Ok(())
    }

    /// Returns whether this client has credentials for `repo` (from `kiln login`, docker's
    /// or podman's files, or a credential helper).
    pub async fn has_credentials(&self, repo: &Reference) -> Result<bool, RegistryError> {
        let t = Target::push(
            repo,
            format!("looking up credentials for `{}`", repo.name()),
        );
        Ok(self.inner.credential(&t).await?.is_some())
    }

    /// Asks the registry how much of the session at `at` it holds; returns the offset to go
    /// on from and the session's next URL.
    async fn upload_status(
        &self,
        t: &Target,
        at: &Url,
        size: u64,
    ) -> Result<(u64, Url), RegistryError> {
        let inner = &*self.inner;
        let resp = inner
            .send(t, &Request::new(Method::GET, at.clone()))
            .await?;
        let resp = expect(t, resp, &[200, 204]).await?;
        let range = resp.headers().get("range").and_then(|v| v.to_str().ok());
        let next = match range {
            None => Some(0),
            Some(r) => r
                .trim()
                .trim_start_matches("bytes=")
                .split_once('-')
                .and_then(|(_, e)| e.trim().parse::<u64>().ok())
                // distribution says `0-0` for an empty session: start over to be safe.
                .map(|end| if end == 0 { 0 } else { end + 1 }),
        };
        let Some(next) = next.filter(|n| *n <= size) else {
            return Err(RegistryError::Protocol {
                action: t.action.clone(),
                detail: format!(
                    "asked where an upload stands, the registry answered range `{}` for a {size}-byte blob",
                    range.unwrap_or_default()
                ),
            });
        };
        let url = location(t, &resp).unwrap_or_else(|_| at.clone());
        Ok((next, url))
    }
}

impl Client {
    /// Uploads the small blob `bytes` (an SBOM, a signature payload) from memory and returns
    /// its digest: one monolithic `POST …?digest=` where the registry takes it, else the
    /// session it opens and one `PUT`. No existence check first: such blobs are new, and a
    /// registry stores a blob it has once anyway.
    pub async fn push_blob_bytes(
        &self,
        repo: &Reference,
        bytes: bytes::Bytes,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(&bytes);
        let t = &blob_push_target(repo, &digest);
        let inner = &*self.inner;
        let (body, d) = (&bytes, &digest);
        inner
            .settings
            .retry
            .run(&t.action, move || async move {
                let mut url = inner
                    .url(t, &format!("{}/blobs/uploads/", repo.repository()))
                    .await?;
                url.query_pairs_mut().append_pair("digest", &d.to_string());
                let req = Request::new(Method::POST, url)
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .payload(Payload::Bytes(body.clone()));
                let resp = expect(t, inner.send(t, &req).await?, &[201, 202]).await?;
                if resp.status().as_u16() == 201 {
                    return Ok(());
                }
                let mut at = location(t, &resp)?;
                at.query_pairs_mut().append_pair("digest", &d.to_string());
                let req = Request::new(Method::PUT, at)
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .payload(Payload::Bytes(body.clone()));
                expect(t, inner.send(t, &req).await?, &[201, 204]).await?;
                Ok(())
            })
            .await?;
        Ok(digest)
    }
}

/// Checks that the registry's `Range` after a chunk ends where the chunk ended.
fn check_range(t: &Target, resp: &reqwest::Response, end: u64) -> Result<(), RegistryError> {
    let Some(range) = resp.headers().get("range").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let got = range
        .trim_start_matches("bytes=")
        .split_once('-')
        .and_then(|(_, e)| e.trim().parse::<u64>().ok());
    match got {
        Some(e) if e == end => Ok(()),
        _ => Err(RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!(
                "after a chunk ending at byte {end} the registry reported range `{range}`"
            ),
        }),
    }
}
