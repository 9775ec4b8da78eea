//! Assembling one platform's image of a golden base: the `.deb`s its lock names, fetched
//! (or found in the cache) and checked, unpacked into layers. What follows (attest,
//! deliver) is what every image goes through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt, stream};
use kiln_debian::base_image::{BaseBuild, BaseImageError, LocalFile, build_base};
use kiln_debian::mirrors::NoSecurityMirror;
use kiln_debian::{Definition, FetchError, LockedPackage, Lockfile, Mirrors, fetch_deb};
use kiln_layer::{BlobStore, Compression};
use kiln_model::{FinalImage, ModelError};

use crate::{Progress, Session, human_bytes};

/// `.deb`s downloaded at once.
const FETCH_CONCURRENCY: usize = 4;

/// Why a base image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// A package comes from the security archive, and there is no mirror of it.
    #[error(transparent)]
    NoMirror(#[from] NoSecurityMirror),
    /// A `.deb` could not be fetched, or did not match its lock.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The packages could not be unpacked into layers.
    #[error(transparent)]
    Build(#[from] BaseImageError),
    /// The image could not be assembled.
    #[error(transparent)]
    Assemble(#[from] ModelError),
}

/// One platform's image of a base, from its lock.
pub struct AssembleBase<'a> {
    /// The definition, includes merged.
    pub definition: &'a Definition,
    /// Its lock.
    pub lock: &'a Lockfile,
    /// The locks of the definitions it includes, deepest first.
    pub included: &'a [Lockfile],
    /// Fetches `.deb`s.
    pub http: &'a reqwest::Client,
    /// The Debian mirrors.
    pub mirrors: &'a Mirrors,
    /// Where fetched `.deb`s are kept, by hash.
    pub deb_cache: &'a Path,
    /// Where layers go.
    pub store: &'a BlobStore,
    /// Layer compression.
    pub compression: Compression,
    /// Files from the build machine to add on top.
    pub local_files: &'a [LocalFile],
}

impl AssembleBase<'_> {
    /// Fetches the `.deb`s locked for the Debian architecture `arch` and assembles its
    /// image.
    pub fn run(
        &self,
        session: &Session,
        arch: &str,
        progress: &dyn Progress,
    ) -> Result<FinalImage, BaseError> {
        let locked = self.lock.packages.get(arch).map_or(&[][..], Vec::as_slice);
        progress.phase(&format!("FETCHING {} packages for {arch}", locked.len()));
        let debs = session.block_on(fetch_all(
            self.http,
            self.mirrors,
            &self.lock.suite,
            locked,
            self.deb_cache,
            progress,
        ))?;
        progress.phase(&format!("BUILDING {arch}"));
        let image = build_base(&BaseBuild {
            definition: self.definition,
            lock: self.lock,
            included: self.included,
            arch,
            debs: &debs,
            store: self.store,
            compression: self.compression,
            local_files: self.local_files,
        })?;
        let image = image.finalize()?;
        for l in &image.layers {
            progress.info(&format!("layer {} ({})", l.digest, human_bytes(l.size)));
        }
        Ok(image)
    }
}

/// Downloads (or finds in the cache) every `.deb` of `locked`, a few at a time, each checked
/// against its locked size and SHA-256. Returns package name → cached path.
async fn fetch_all(
    http: &reqwest::Client,
    mirrors: &Mirrors,
    suite: &str,
    locked: &[LockedPackage],
    cache: &Path,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, PathBuf>, BaseError> {
    for p in locked {
        mirrors.for_suite(p.suite.as_deref().unwrap_or(suite))?;
    }
    let total = locked.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let done = &done;
    let fetched: Vec<(String, PathBuf)> = stream::iter(locked)
        .map(|p| async move {
            let mirror = mirrors
                .for_suite(p.suite.as_deref().unwrap_or(suite))
                .unwrap_or(&mirrors.main);
            let path = fetch_deb(http, mirror, p, cache).await?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.count(n, total);
            Ok::<_, FetchError>((p.name.clone(), path))
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(fetched.into_iter().collect())
}
