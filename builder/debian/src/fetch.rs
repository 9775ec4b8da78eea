//! Downloads from a Debian mirror: `InRelease` and index files into memory, `.deb` packages
//! into a content-addressed cache (`<cache>/debs/sha256/<hex>`).
//!
//! Every download is capped: indices and `.deb`s at the size their signed metadata gives,
//! `InRelease` at [`MAX_INRELEASE`]. A `.deb` is streamed into a temporary file next to its
//! final name, its size and SHA-256 checked, and only then renamed into place; any failure
//! drops the temporary file, so the cache only ever holds verified packages.
//!
//! Async: tokio + reqwest. Spec: <https://wiki.debian.org/DebianRepository/Format>
//! (`dists/<suite>/InRelease`, `by-hash/SHA256/<hex>`, `pool/...`).

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::lockfile::LockedPackage;
use crate::release::{IndexFile, Release};

/// The largest `InRelease` kiln downloads (Debian's are ~150 KB).
pub const MAX_INRELEASE: u64 = 16 << 20;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL cannot be built from the mirror and the path.
    #[error("building a URL for `{path}` under mirror `{mirror}`: {reason}")]
    Url {
        /// The mirror, credentials removed.
        mirror: String,
        /// The path.
        path: String,
        /// The URL parser's message.
        reason: String,
    },
    /// The request failed before a response (DNS, TLS, connection, timeout).
    #[error("downloading `{url}`")]
    Transport {
        /// The URL, credentials and query removed.
        url: String,
        /// The HTTP client's error, without its URL (which may hold credentials; the
        /// message names the redacted one).
        source: reqwest::Error,
    },
    /// The mirror answered with an error status.
    #[error("downloading `{url}`: the mirror answered {status}{}", hint_for(*.status))]
    Status {
        /// The URL, credentials and query removed.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
    },
    /// The body is larger than allowed.
    #[error("downloading `{url}`: the body exceeds {limit} bytes; refusing to read more")]
    TooLarge {
        /// The URL, credentials and query removed.
        url: String,
        /// The cap.
        limit: u64,
    },
    /// A `.deb`'s size or digest differs from the lockfile.
    #[error(
        "downloading `{url}`: Hash Sum mismatch: got {actual_size} bytes with sha256 `{actual}`, but the lockfile says {expected_size} bytes with sha256 `{expected}`; nothing was cached"
    )]
    Mismatch {
        /// The URL, credentials and query removed.
        url: String,
        /// The lockfile's digest.
        expected: String,
        /// The computed digest.
        actual: String,
        /// The lockfile's size.
        expected_size: u64,
        /// The downloaded size.
        actual_size: u64,
    },
    /// Writing to the cache failed.
    #[error("writing `{path}` to the package cache")]
    Cache {
        /// The cache path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Returns whether the mirror says the file is not there (404 or 410): a lock older
    /// than the archive keeps superseded `.deb`s.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            Self::Status { status, .. }
                if *status == reqwest::StatusCode::NOT_FOUND || *status == reqwest::StatusCode::GONE
        )
    }

    /// Returns whether trying again later may help: the connection failed (but not its TLS
    /// handshake), or the mirror answered 408, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { source, .. } => {
                !source.is_builder() && !format!("{source:?}").contains("certificate")
            }
            Self::Status { status, .. } => {
                status.is_server_error()
                    || *status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

fn hint_for(status: reqwest::StatusCode) -> &'static str {
    if status == reqwest::StatusCode::NOT_FOUND {
        "; the suite, architecture or package may be gone from the mirror (re-lock, or check the mirror)"
    } else {
        ""
    }
}

/// Returns `url` without user, password, query or fragment, for messages.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Returns `mirror` joined with the relative `path`, refusing paths that would leave it.
pub fn mirror_url(mirror: &Url, path: &str) -> Result<Url, FetchError> {
    let err = |reason: String| FetchError::Url {
        mirror: redact(mirror),
        path: path.to_owned(),
        reason,
    };
    if path.starts_with('/')
        || path
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
        || path.contains(['?', '#', '\\'])
    {
        return Err(err(
            "the path must be relative and stay under the mirror".into()
        ));
    }
    let mut url = mirror.clone();
    url.path_segments_mut()
        .map_err(|()| err("the mirror URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(path.split('/'));
    Ok(url)
}

/// Downloads `url` into memory, refusing bodies over `limit` bytes.
pub async fn fetch_bytes(
    http: &reqwest::Client,
    url: &Url,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    let shown = redact(url);
    let response = send(http, url).await?;
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| FetchError::Transport {
            url: shown.clone(),
            source: source.without_url(),
        })?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(FetchError::TooLarge { url: shown, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn send(http: &reqwest::Client, url: &Url) -> Result<reqwest::Response, FetchError> {
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|source| FetchError::Transport {
            url: redact(url),
            source: source.without_url(),
        })?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: redact(url),
            status: response.status(),
        });
    }
    Ok(response)
}

/// Downloads `dists/<suite>/InRelease`.
pub async fn fetch_inrelease(
    http: &reqwest::Client,
    mirror: &Url,
    suite: &str,
) -> Result<Vec<u8>, FetchError> {
    let url = mirror_url(mirror, &format!("dists/{suite}/InRelease"))?;
    fetch_bytes(http, &url, MAX_INRELEASE).await
}

/// Downloads the index file `file` of `release` (capped at its listed size; the caller
/// checks the digest): by hash when the archive supports it (`Acquire-By-Hash: yes`, which
/// avoids a race with a mirror update between `InRelease` and the index), else by path.
pub async fn fetch_index(
    http: &reqwest::Client,
    mirror: &Url,
    suite: &str,
    release: &Release,
    file: &IndexFile,
) -> Result<Vec<u8>, FetchError> {
    let path = if release.acquire_by_hash {
        let dir = file.path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("dists/{suite}/{dir}/by-hash/SHA256/{}", file.sha256)
    } else {
        format!("dists/{suite}/{}", file.path)
    };
    let url = mirror_url(mirror, &path)?;
    fetch_bytes(http, &url, file.size).await
}

/// Returns the cache path of a `.deb` with this SHA-256.
pub fn deb_cache_path(cache: &Path, sha256: &str) -> PathBuf {
    cache.join("debs").join("sha256").join(sha256)
}

/// Returns the path of `entry`'s `.deb` in `cache`, downloading it from `mirror` first
/// unless a cached copy with the right size and SHA-256 is already there (a cached file that
/// fails the check is replaced).
pub async fn fetch_deb(
    http: &reqwest::Client,
    mirror: &Url,
    entry: &LockedPackage,
    cache: &Path,
) -> Result<PathBuf, FetchError> {
    let target = deb_cache_path(cache, &entry.sha256);
    let cache_err = |path: &Path| {
        let path = path.to_owned();
        move |source| FetchError::Cache { path, source }
    };
    if let Ok(meta) = tokio::fs::metadata(&target).await
        && meta.len() == entry.size
    {
        let path = target.clone();
        let digest = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(cache_err(&target))?;
        if digest == entry.sha256 {
            return Ok(target);
        }
    }
    let dir = target.parent().unwrap_or(cache);
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(cache_err(dir))?;
    let url = mirror_url(mirror, &entry.filename)?;
    let shown = redact(&url);
    let tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(cache_err(dir))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(cache_err(tmp.path()))?);
    let response = send(http, &url).await?;
    if response
        .content_length()
        .is_some_and(|len| len > entry.size)
    {
        return Err(FetchError::TooLarge {
            url: shown,
            limit: entry.size,
        });
    }
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| FetchError::Transport {
            url: shown.clone(),
            source: source.without_url(),
        })?;
        written += chunk.len() as u64;
        if written > entry.size {
            return Err(FetchError::TooLarge {
                url: shown,
                limit: entry.size,
            });
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(cache_err(tmp.path()))?;
    }
    file.flush().await.map_err(cache_err(tmp.path()))?;
    file.sync_all().await.map_err(cache_err(tmp.path()))?;
    drop(file);
    let actual = hex::encode(hasher.finalize());
    if actual != entry.sha256 || written != entry.size {
        return Err(FetchError::Mismatch {
            url: shown,
            expected: entry.sha256.clone(),
            actual,
            expected_size: entry.size,
            actual_size: written,
        });
    }
    tmp.persist(&target).map_err(|e| FetchError::Cache {
        path: target.clone(),
        source: e.error,
    })?;
    Ok(target)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_stay_under_the_mirror_and_lose_credentials() {
        let mirror = Url::parse("https://user:secret@m.example.org/debian").unwrap();
        let u = mirror_url(&mirror, "dists/trixie/InRelease").unwrap();
        assert_eq!(u.path(), "/debian/dists/trixie/InRelease");
        assert!(!redact(&u).contains("secret"));
        for bad in [
            "/etc/passwd",
            "pool/../../x",
            "pool//x",
            "https://evil.example/x?y",
        ] {
            assert!(mirror_url(&mirror, bad).is_err(), "{bad}");
        }
    }
}
