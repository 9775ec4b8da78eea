//! Blob upload sessions: `POST` to open, then one `PUT` with the whole file, or `PATCH`
//! chunks and a closing `PUT`. A failure anywhere restarts the whole session.
//! Spec: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>

use std::path::Path;

use kiln_oci::{Digest, Reference};
use reqwest::Method;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use tokio::sync::mpsc;
use url::Url;

use crate::payload::{Payload, with_progress};
use crate::request::{Request, Target, expect, location};
use crate::{Client, RegistryError};

const OCTET_STREAM: &str = "application/octet-stream";

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
        session: Option<Url>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), RegistryError> {
        let session = &std::sync::Mutex::new(session);
        self.inner
            .settings
            .retry
            .run(&t.action, move || async move {
                progress(0);
                let first = session.lock().expect("session lock").take();
                let (tx, rx) = mpsc::unbounded_channel();
                let attempt = self.upload_once(t, repo, digest, size, path, first, tx);
                with_progress(attempt, rx, progress).await
            })
            .await?;
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
        session: Option<Url>,
        tx: mpsc::UnboundedSender<u64>,
    ) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        let mut at = match session {
            Some(url) => url,
            None => {
                let url = inner
                    .url(t, &format!("{}/blobs/uploads/", repo.repository()))
                    .await?;
                let resp = inner.send(t, &Request::new(Method::POST, url)).await?;
                location(t, &expect(t, resp, &[202]).await?)?
            }
        };
        let file = |offset: u64, len: u64| Payload::File {
            path: path.to_path_buf(),
            offset,
            len,
            progress: Some(tx.clone()),
        };
        let last = match inner.settings.chunk_size.filter(|n| *n > 0) {
            None => file(0, size),
            Some(chunk) => {
                let mut offset = 0;
                while offset < size {
                    let len = chunk.min(size - offset);
                    let end = offset + len - 1;
                    let req = Request::new(Method::PATCH, at.clone())
                        .header(CONTENT_TYPE, OCTET_STREAM)
                        .header(CONTENT_RANGE, &format!("{offset}-{end}"))
                        .payload(file(offset, len));
                    let resp = expect(t, inner.send(t, &req).await?, &[202]).await?;
                    check_range(t, &resp, end)?;
                    at = location(t, &resp)?;
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
        Ok(())
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
        let t = &Target::push(
            repo,
            format!("pushing blob `{digest}` to `{}`", repo.name()),
        );
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
