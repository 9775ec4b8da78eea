//! Pulling: manifests and blobs, every byte verified against its digest.
//! Spec: distribution-spec "Pull" <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pull>

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_oci::media_types::MANIFEST_ACCEPT;
use kiln_oci::{Digest, Reference};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::manifest::{MAX_MANIFEST_BYTES, check_reference, media_type_of};
use crate::push::DOCKER_CONTENT_DIGEST;
use crate::request::{Request, Target, expect};
use crate::{Client, RegistryError};

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledManifest {
    /// The exact bytes; their sha256 is `digest`.
    pub bytes: Vec<u8>,
    /// The media type: `Content-Type`, or the body's `mediaType` if that is missing or generic.
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
}

impl Client {
    /// Returns the manifest `reference` (tag or digest) of `repo`, asking for every manifest
    /// and index type kiln reads, at most [`crate::MAX_MANIFEST_BYTES`]. Bytes pulled by
    /// digest must hash to it. Pulled by tag, the bytes' own hash is their digest: a
    /// `Docker-Content-Digest` that disagrees is only warned about, as registries get it
    /// wrong (RELIABILITY.md R14). Schema 1, documents that read as both an index and an
    /// image, and a `mediaType` the `Content-Type` contradicts are refused (R15).
    pub async fn get_manifest(
        &self,
        repo: &Reference,
        reference: &str,
    ) -> Result<PulledManifest, RegistryError> {
        let t = &Target::pull(
            repo,
            format!("pulling manifest `{reference}` from `{}`", repo.name()),
        );
        check_reference(t, reference)?;
        let inner = &*self.inner;
        let (resp, bytes) = inner
            .settings
            .retry
            .run(&t.action, move || async move {
                let url = inner
                    .url(t, &format!("{}/manifests/{reference}", repo.repository()))
                    .await?;
                let req = Request::new(Method::GET, url).header(ACCEPT, MANIFEST_ACCEPT);
                let resp = expect(t, inner.send(t, &req).await?, &[200]).await?;
                let headers = resp.headers().clone();
                let bytes = read_capped(t, resp, MAX_MANIFEST_BYTES).await?;
                Ok((headers, bytes))
            })
            .await?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                action: t.action.clone(),
                expected,
                actual: digest,
            });
        }
        let said = resp
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok());
        if let Some(said) = said
            && said != digest.to_string()
        {
            tracing::warn!(
                reference,
                repository = %repo.name(),
                registry_said = said,
                %digest,
                "the registry's Docker-Content-Digest does not match the manifest it sent; using the manifest's own digest"
            );
        }
        let content_type = resp.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let media_type = media_type_of(t, content_type, &bytes)?;
        Ok(PulledManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Returns the digest of manifest `reference` of `repo` from one HEAD when the registry
    /// names it (`Docker-Content-Digest`); a registry that leaves the header out, or a HEAD
    /// that fails otherwise than 404, costs a GET, and kiln hashes the bytes itself
    /// (RELIABILITY.md R10).
    pub async fn manifest_digest(
        &self,
        repo: &Reference,
        reference: &str,
    ) -> Result<Digest, RegistryError> {
        let t = &Target::pull(
            repo,
            format!("resolving manifest `{reference}` of `{}`", repo.name()),
        );
        check_reference(t, reference)?;
        let inner = &*self.inner;
        let url = inner
            .url(t, &format!("{}/manifests/{reference}", repo.repository()))
            .await?;
        let req = Request::new(Method::HEAD, url).header(ACCEPT, MANIFEST_ACCEPT);
        match inner.send(t, &req).await {
            Ok(resp) if resp.status().as_u16() == 200 => {
                let said = resp
                    .headers()
                    .get(DOCKER_CONTENT_DIGEST)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok());
                match (said, reference.parse::<Digest>()) {
                    (Some(said), Err(_)) => return Ok(said),
                    (Some(said), Ok(asked)) if said == asked => return Ok(said),
                    _ => {}
                }
            }
            Ok(resp) if resp.status().as_u16() == 404 => {
                return Err(crate::request::status_error(t, resp).await);
            }
            Ok(resp) => {
                tracing::debug!(
                    status = resp.status().as_u16(),
                    "manifest HEAD failed; asking with GET"
                );
            }
            Err(e) => tracing::debug!(error = %e, "manifest HEAD failed; asking with GET"),
        }
        Ok(self.get_manifest(repo, reference).await?.digest)
    }

    /// Downloads blob `digest` of `repo` into `dest` through a temporary file in the same
    /// directory, renamed into place only once size and digest check out.
    pub async fn get_blob_to_file(
        &self,
        repo: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let t = &Target::pull(
            repo,
            format!("pulling blob `{digest}` from `{}`", repo.name()),
        );
        let tmp = &temp_path(dest);
        let result = self.download(t, repo, digest, expected_size, tmp).await;
        let result = match result {
            Ok(()) => tokio::fs::rename(tmp, dest)
                .await
                .map_err(|source| RegistryError::Io {
                    action: t.action.clone(),
                    path: dest.to_path_buf(),
                    source,
                }),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(tmp).await;
        }
        result
    }

    async fn download(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        tmp: &Path,
    ) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        let io = |source| RegistryError::Io {
            action: t.action.clone(),
            path: tmp.to_path_buf(),
            source,
        };
        let (actual, n) = inner
            .settings
            .retry
            .run(&t.action, move || async move {
                let mut resp = self.blob_response(t, repo, digest).await?;
                if let (Some(expected), Some(announced)) = (expected_size, resp.content_length())
                    && expected != announced
                {
                    return Err(RegistryError::AnnouncedSize {
                        action: t.action.clone(),
                        expected,
                        announced,
                    });
                }
                let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
                let mut hasher = Sha256::new();
                let mut n = 0u64;
                while let Some(chunk) = next_chunk(t, &mut resp).await? {
                    n += chunk.len() as u64;
                    if let Some(max) = expected_size.filter(|m| n > *m) {
                        return Err(RegistryError::SizeMismatch {
                            action: t.action.clone(),
                            expected: max,
                            actual: n,
                        });
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(io)?;
                }
                file.flush().await.map_err(io)?;
                file.sync_all().await.map_err(io)?;
                Ok((Digest::from_hasher(hasher), n))
            })
            .await?;
        if let Some(expected) = expected_size.filter(|s| *s != n) {
            return Err(RegistryError::SizeMismatch {
                action: t.action.clone(),
                expected,
                actual: n,
            });
        }
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                action: t.action.clone(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Returns blob `digest` of `repo` in memory, verified; fails past `max` bytes.
    pub async fn get_blob_bytes(
        &self,
        repo: &Reference,
        digest: &Digest,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let t = &Target::pull(
            repo,
            format!("pulling blob `{digest}` from `{}`", repo.name()),
        );
        let bytes = self
            .inner
            .settings
            .retry
            .run(&t.action, move || async move {
                let resp = self.blob_response(t, repo, digest).await?;
                read_capped(t, resp, max).await
            })
            .await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                action: t.action.clone(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn blob_response(
        &self,
        t: &Target,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Response, RegistryError> {
        let inner = &*self.inner;
        let url = inner
            .url(t, &format!("{}/blobs/{digest}", repo.repository()))
            .await?;
        expect(
            t,
            inner.send(t, &Request::new(Method::GET, url)).await?,
            &[200],
        )
        .await
    }
}

async fn next_chunk(
    t: &Target,
    resp: &mut Response,
) -> Result<Option<bytes::Bytes>, RegistryError> {
    let url = resp.url().clone();
    resp.chunk()
        .await
        .map_err(|e| RegistryError::transport(&t.action, &t.registry, &url, e))
}

/// Reads the whole body of `resp`, failing past `max` bytes.
pub(crate) async fn read_capped(
    t: &Target,
    mut resp: Response,
    max: u64,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(RegistryError::TooLarge {
            action: t.action.clone(),
            max,
        });
    }
    let mut out = Vec::new();
    while let Some(chunk) = next_chunk(t, &mut resp).await? {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(RegistryError::TooLarge {
                action: t.action.clone(),
                max,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn temp_path(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // kiln's temp file names (kiln-layer's `temp_prefix`): `.tmp-<pid>-…`.
    dest.with_file_name(format!(".tmp-{}-{name}.{n}", std::process::id()))
}
