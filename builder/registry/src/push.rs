//! Pushing: blob existence checks, cross-repository mounts, blob uploads and manifests.
//! Spec: distribution-spec "Push" <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push>

use std::path::Path;

use bytes::Bytes;
use kiln_oci::{Digest, Reference};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use url::Url;

use crate::payload::Payload;
use crate::request::{Request, Target, expect, location};
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
    /// The registry opened an upload session instead (at this location).
    Session(Url),
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
        self.head_blob(&t, repo, digest).await
    }

    async fn head_blob(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let inner = &*self.inner;
        inner
            .settings
            .retry
            .run(&t.action, move || async move {
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
            })
            .await
    }

    /// Puts blob `digest` (`size` bytes, read from `path`) into `repo`.
    ///
    /// Skips blobs the registry has; if `mount_from` names another repository on the same
    /// registry, tries a cross-repository mount first and falls back to uploading on any
    /// refusal. An upload streams the file (monolithic `PUT`, or `PATCH` chunks when
    /// [`crate::RegistrySettings::chunk_size`] is set); a failed upload starts a new
    /// session from the start of the file. `progress` gets the bytes sent so far.
    pub async fn push_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BlobPush, RegistryError> {
        let action = format!("pushing blob `{digest}` to `{}`", repo.name());
        let on_disk = tokio::fs::metadata(path)
            .await
            .map_err(|source| RegistryError::Io {
                action: action.clone(),
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
        let mut t = Target::push(repo, action);
        let existing = match self.head_blob(&t, repo, digest).await {
            Ok(found) => found,
            // A HEAD answer has no body to say why; the upload's answer will carry the code.
            Err(e) if matches!(e.status(), Some(401 | 403)) => None,
            Err(e) => return Err(e),
        };
        if existing.is_some() {
            return Ok(BlobPush::Existing);
        }
        let mut session = None;
        if let Some(from) = mount_from.filter(|f| !f.is_empty() && *f != repo.repository()) {
            let mut mt = t.clone();
            mt.scopes.push(format!("repository:{from}:pull"));
            match self.mount(&mt, repo, digest, from).await {
                Ok(Mount::Done) => return Ok(BlobPush::Mounted),
                Ok(Mount::Session(url)) => session = Some(url),
                Err(e) => tracing::debug!(error = %e, "mount refused, uploading"),
            }
            // The mount token carries the extra scope; keep using it for this upload.
            t = mt;
        }
        self.upload(&t, repo, digest, size, path, session, progress)
            .await?;
        Ok(BlobPush::Uploaded { bytes: size })
    }

    /// Mounts blob `digest` from repository `from` into `repo` (same registry) without
    /// sending any bytes. Returns `true` if mounted, `false` if the registry declined (it
    /// may not have the blob there, or not let this user read it); the upload session a
    /// declining registry opens is cancelled.
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let mut t = Target::push(
            repo,
            format!(
                "mounting blob `{digest}` from `{from}` into `{}`",
                repo.name()
            ),
        );
        t.scopes.push(format!("repository:{from}:pull"));
        let t = &t;
        let attempt = self
            .inner
            .settings
            .retry
            .run(&t.action, move || async move {
                self.mount(t, repo, digest, from).await
            })
            .await;
        match attempt {
            Ok(Mount::Done) => Ok(true),
            Ok(Mount::Session(url)) => {
                // Best effort: an abandoned session is garbage-collected by the registry anyway.
                if let Ok(resp) = self.inner.send(t, &Request::new(Method::DELETE, url)).await {
                    tracing::debug!(status = resp.status().as_u16(), "cancelled upload session");
                }
                Ok(false)
            }
            Err(e) if matches!(e.status(), Some(400 | 401 | 403 | 404)) => {
                tracing::debug!(error = %e, "mount declined");
                Ok(false)
            }
            Err(e) => Err(e),
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
        if resp.status().as_u16() == 201 {
            tracing::debug!(%digest, %from, "mounted blob");
            return Ok(Mount::Done);
        }
        Ok(Mount::Session(location(t, &resp)?))
    }

    /// Pushes manifest `bytes` of `media_type` as `tag_or_digest`; returns their digest.
    /// Fails if a digest reference or the registry's `Docker-Content-Digest` disagrees.
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
        let resp = inner
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
                expect(tr, resp, &[200, 201, 202, 204]).await
            })
            .await?;
        if let Some(said) = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && said != digest
        {
            return Err(RegistryError::DigestMismatch {
                action: t.action,
                expected: digest,
                actual: said,
            });
        }
        let subject_acknowledged = resp.headers().contains_key(OCI_SUBJECT);
        Ok((digest, subject_acknowledged))
    }
}
