//! Pushing: blob existence checks, cross-repository mounts, blob uploads and manifests.
//! Spec: distribution-spec "Push" <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push>

use std::path::Path;

use bytes::Bytes;
use kiln_oci::{Digest, Reference};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::manifest::{check_reference, check_size};
use crate::payload::Payload;
use crate::request::{Request, Target, expect};
use crate::upload::Session;
use crate::{Client, RegistryError};

/// The header registries put a content digest in.
pub(crate) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// The header a registry with the referrers API answers a manifest with a `subject` with.
const OCI_SUBJECT: &str = "oci-subject";

/// How a blob got into the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had it (HEAD said so); nothing was sent.
    Existing,
    /// It was mounted from another repository of the same registry; nothing was sent.
    Mounted,
    /// It was uploaded.
    Uploaded {
        /// The bytes sent (the blob's size).
        bytes: u64,
    },
}

/// What a mount attempt achieved.
enum Mount {
    Done,
    /// The registry opened an upload session instead.
    Session(Session),
    /// The mount failed or was refused; upload instead.
    Declined,
}

impl Client {
    /// Returns `Some(size)` if `repo` has blob `digest` (HEAD), `None` if not.
    pub async fn blob_exists(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let t = Target::pull(
            repo,
            format!("checking for blob `{digest}` in `{}`", repo.name()),
        );
        let t = &t;
        self.inner
            .settings
            .retry
            .run(&t.action, move || self.head_blob(t, repo, digest))
            .await
    }

    /// Returns `Some(size)` if the registry answers one HEAD with 200. Any other answer
    /// than 200 or 404 (401/403, storage that refuses a HEAD it was redirected to, 5xx, no
    /// answer) means "unknown", so the caller uploads: uploading a blob the registry has is
    /// harmless (RELIABILITY.md R10).
    pub(crate) async fn probe_blob(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
    ) -> Option<u64> {
        match self.head_blob(t, repo, digest).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, %digest, "blob existence unknown; uploading");
                None
            }
        }
    }

    async fn head_blob(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let inner = &*self.inner;
        let url = inner
            .url(t, &format!("{}/blobs/{digest}", repo.repository()))
            .await?;
        let resp = inner.send(t, &Request::new(Method::HEAD, url)).await?;
        match resp.status().as_u16() {
            200 => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(crate::request::status_error(t, resp).await),
        }
    }

    /// Puts blob `digest` (`size` bytes, read from `path`) into `repo`.
    ///
    /// Skips blobs the registry has; if `mount_from` names another repository on the same
    /// registry, tries a cross-repository mount first and falls back to uploading on any
    /// refusal (a 4xx refusal stops this client from asking again for that pair). An
    /// upload streams the file (monolithic `PUT`, or `PATCH` chunks when
    /// [`crate::RegistrySettings::chunk_size`] is set); a failed upload starts a whole new
    /// session (HEAD, POST, ...) from the start of the file. `progress` gets the bytes sent
    /// so far.
    pub async fn push_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobPush, RegistryError> {
        let t = blob_push_target(repo, digest);
        check_file_size(&t.action, path, size).await?;
        if self.probe_blob(&t, repo, digest).await.is_some() {
            return Ok(BlobPush::Existing);
        }
        self.push_missing_blob(t, repo, digest, size, path, mount_from, progress)
            .await
    }

    /// Returns whether `repo`'s registry says (to one `HEAD` with push rights) that it has
    /// the blob `digest`; any doubt is `false` (RELIABILITY.md R10). A caller that checks
    /// before it reads the blob pushes it afterwards with [`Client::push_probed_blob`].
    pub async fn has_blob_for_push(&self, repo: &Reference, digest: &Digest) -> bool {
        let t = blob_push_target(repo, digest);
        self.probe_blob(&t, repo, digest).await.is_some()
    }

    /// Like [`Client::push_blob`], for a blob [`Client::has_blob_for_push`] just said the
    /// registry lacks: without asking again.
    pub async fn push_probed_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobPush, RegistryError> {
        let t = blob_push_target(repo, digest);
        check_file_size(&t.action, path, size).await?;
        self.push_missing_blob(t, repo, digest, size, path, mount_from, progress)
            .await
    }

    /// Mounts `digest` from `mount_from` or uploads it from `path`.
    #[allow(clippy::too_many_arguments)]
    async fn push_missing_blob(
        &self,
        mut t: Target,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobPush, RegistryError> {
        let mut session = None;
        if let Some(from) = mount_from.filter(|f| self.may_mount(repo, f)) {
            let mut mt = t.clone();
            mt.scopes.push(format!("repository:{from}:pull"));
            match self.try_mount(&mt, repo, digest, from).await {
                Mount::Done => return Ok(BlobPush::Mounted),
                Mount::Session(s) => {
                    session = Some(s);
                    // The session was opened with the mount's token: go on with it.
                    t = mt;
                }
                Mount::Declined => {}
            }
        }
        self.upload(&t, repo, digest, size, path, session, progress)
            .await?;
        Ok(BlobPush::Uploaded { bytes: size })
    }

    /// Mounts blob `digest` from repository `from` into `repo` (same registry) without
    /// sending any bytes. Returns `true` if mounted, `false` if not: the registry declined
    /// (it may not have the blob there, or not let this user read it; the upload session
    /// it opens instead is cancelled), refused mounts, or failed. A failed mount is never
    /// an error: the caller uploads instead (RELIABILITY.md R09).
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        if !self.may_mount(repo, from) {
            return Ok(false);
        }
        let mut t = Target::push(
            repo,
            format!(
                "mounting blob `{digest}` from `{from}` into `{}`",
                repo.name()
            ),
        );
        t.scopes.push(format!("repository:{from}:pull"));
        match self.try_mount(&t, repo, digest, from).await {
            Mount::Done => Ok(true),
            Mount::Session(s) => {
                // Best effort: an abandoned session is garbage-collected by the registry anyway.
                if let Ok(resp) = self
                    .inner
                    .send(&t, &Request::new(Method::DELETE, s.url))
                    .await
                {
                    tracing::debug!(status = resp.status().as_u16(), "cancelled upload session");
                }
                Ok(false)
            }
            Mount::Declined => Ok(false),
        }
    }

    /// Returns whether a mount from `from` into `repo` is worth asking for.
    fn may_mount(&self, repo: &Reference, from: &str) -> bool {
        !from.is_empty()
            && from != repo.repository()
            && !self
                .inner
                .mounts_refused
                .lock()
                .expect("mount lock")
                .contains(&(repo.name(), from.to_string()))
    }

    /// Asks once for a mount. 201 is a mount (unless its `Docker-Content-Digest` names other
    /// content), 202 a session to upload on; a 4xx refusal (unsupported, not allowed,
    /// unknown) turns mounts from `from` into `repo` off for this client, and a 5xx or a
    /// broken connection only declines this one: the upload that follows has its own retries.
    async fn try_mount(&self, t: &Target, repo: &Reference, digest: &Digest, from: &str) -> Mount {
        match self.mount(t, repo, digest, from).await {
            Ok(m) => m,
            Err(e) => {
                let status = e.status().unwrap_or(0);
                if (400..500).contains(&status) && !matches!(status, 408 | 429 | 499) {
                    self.inner
                        .mounts_refused
                        .lock()
                        .expect("mount lock")
                        .insert((repo.name(), from.to_string()));
                }
                tracing::debug!(error = %e, "mount failed; uploading instead");
                Mount::Declined
            }
        }
    }

    async fn mount(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let inner = &*self.inner;
        let mut url = inner
            .url(t, &format!("{}/blobs/uploads/", repo.repository()))
            .await?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let resp = inner.send(t, &Request::new(Method::POST, url)).await?;
        let resp = expect(t, resp, &[201, 202]).await?;
        if resp.status().as_u16() == 202 {
            return Ok(Mount::Session(Session::of(t, &resp)?));
        }
        let said = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok());
        if let Some(said) = said
            && said != digest.to_string()
        {
            tracing::warn!(%digest, %said, "a mount answered with another digest; uploading instead");
            return Ok(Mount::Declined);
        }
        tracing::debug!(%digest, %from, "mounted blob");
        Ok(Mount::Done)
    }

    /// Pushes manifest `bytes` of `media_type` as `tag_or_digest`; returns their digest.
    /// Refuses, before sending anything, a reference that is neither a tag nor a digest and
    /// a manifest over [`crate::MAX_MANIFEST_BYTES`]. Fails if a digest reference or the
    /// registry's `Docker-Content-Digest` disagrees with the bytes (RELIABILITY.md R13).
    /// A manifest refused over its blobs (`DIGEST_INVALID`, `BLOB_UNKNOWN`) is sent again,
    /// a few times: see [`blob_link_race`].
    pub async fn push_manifest(
        &self,
        repo: &Reference,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        Ok(self
            .push_manifest_acknowledged(repo, tag_or_digest, media_type, bytes)
            .await?
            .0)
    }

    /// Like [`Client::push_manifest`], and also returns whether the registry acknowledged
    /// the manifest's `subject` (the `OCI-Subject` header of a registry with the referrers
    /// API); a client must maintain the fallback tag itself when it did not.
    pub async fn push_manifest_acknowledged(
        &self,
        repo: &Reference,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(Digest, bool), RegistryError> {
        let t = Target::push(
            repo,
            format!("pushing manifest `{tag_or_digest}` to `{}`", repo.name()),
        );
        check_reference(&t, tag_or_digest)?;
        check_size(&t, bytes)?;
        let digest = Digest::of(bytes);
        if let Ok(expected) = tag_or_digest.parse::<Digest>()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                action: t.action,
                expected,
                actual: digest,
            });
        }
        let inner = &*self.inner;
        let body = &Bytes::copy_from_slice(bytes);
        let tr = &t;
        let mut refused = 0;
        let resp = loop {
            let put = inner
                .settings
                .retry
                .run(&t.action, move || async move {
                    let url = inner
                        .url(
                            tr,
                            &format!("{}/manifests/{tag_or_digest}", repo.repository()),
                        )
                        .await?;
                    let req = Request::new(Method::PUT, url)
                        .header(CONTENT_TYPE, media_type)
                        .payload(Payload::Bytes(body.clone()));
                    let resp = inner.send(tr, &req).await?;
                    if resp.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                        return Err(RegistryError::ManifestRefused {
                            action: tr.action.clone(),
                            size: body.len() as u64,
                        });
                    }
                    expect(tr, resp, &[200, 201, 202, 204]).await
                })
                .await;
            match put {
                Err(e) if refused + 1 < MANIFEST_BLOB_TRIES && blob_link_race(&e) => {
                    refused += 1;
                    let wait = inner.settings.retry.delay(refused, None);
                    tracing::debug!(error = %e, ?wait, "manifest refused over its blobs; trying again");
                    tokio::time::sleep(wait).await;
                }
                other => break other?,
            }
        };
        if let Some(said) = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && said != digest
        {
            return Err(RegistryError::StoredDigest {
                action: t.action,
                expected: digest,
                stored: said,
            });
        }
        let subject_acknowledged = resp.headers().contains_key(OCI_SUBJECT);
        Ok((digest, subject_acknowledged))
    }
}

/// How many times a manifest refused over its blobs is sent in all.
const MANIFEST_BLOB_TRIES: u32 = 3;

/// Returns whether `e` is a registry refusing a manifest over blobs kiln pushed before it:
/// the CNCF registry's file-system storage rewrites a repository's blob link files in place,
/// so a manifest `PUT` while another push of the same blob to the same repository rewrites
/// its link reads it empty and answers `DIGEST_INVALID` (distribution issues 2098, 4489).
/// Builds sharing a registry meet it (RELIABILITY.md W10); the next try reads it whole.
fn blob_link_race(e: &RegistryError) -> bool {
    e.status() == Some(400)
        && matches!(
            e.code(),
            Some("DIGEST_INVALID" | "BLOB_UNKNOWN" | "MANIFEST_BLOB_UNKNOWN")
        )
}

/// Returns the target of pushing the blob `digest` to `repo`.
pub(crate) fn blob_push_target(repo: &Reference, digest: &Digest) -> Target {
    Target::push(
        repo,
        format!("pushing blob `{digest}` to `{}`", repo.name()),
    )
}

/// Checks that the file at `path` holds `size` bytes, as the blob pushed from it must.
async fn check_file_size(action: &str, path: &Path, size: u64) -> Result<(), RegistryError> {
    let on_disk = tokio::fs::metadata(path)
        .await
        .map_err(|source| RegistryError::Io {
            action: action.to_owned(),
            path: path.to_path_buf(),
            source,
        })?;
    if on_disk.len() != size {
        return Err(RegistryError::SizeMismatch {
            action: format!("{action} from `{}`", path.display()),
            expected: size,
            actual: on_disk.len(),
        });
    }
    Ok(())
}
