//! The error of the crate's top-level operations ([`crate::lock`]): each step's own error,
//! with what was being done around it.

use crate::definition::DefinitionError;
use crate::fetch::FetchError;
use crate::inrelease::InReleaseError;
use crate::keyring::KeyringError;
use crate::lockfile::LockfileError;
use crate::packages::PackagesError;
use crate::release::ReleaseError;
use crate::resolve::ResolveError;

/// Why locking (or another golden-base operation) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebianError {
    /// The base definition is unusable.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// A keyring is unusable.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// `InRelease` was refused.
    #[error("verifying `{url}`")]
    InRelease {
        /// The `InRelease` URL, credentials removed.
        url: String,
        /// Why it was refused.
        source: InReleaseError,
    },
    /// A suite's archive is not configured.
    #[error(transparent)]
    NoMirror(#[from] crate::mirrors::NoSecurityMirror),
    /// The verified `Release` is not the suite that was asked for.
    #[error(
        "`{url}` is the signed `Release` of `{found}`, not of `{wanted}`; the mirror serves the \
         wrong (possibly an older) suite under that name"
    )]
    WrongSuite {
        /// The `InRelease` URL, credentials removed.
        url: String,
        /// The suite the definition names.
        wanted: String,
        /// The `Suite`/`Codename` the file carries.
        found: String,
    },
    /// The verified `Release` is older than the one the previous lock was made from.
    #[error(
        "`{url}` is a `Release` of `{suite}` dated `{date}`, older than the `{locked}` the \
         current lock was made from; refusing to roll the base back (the mirror is stale or \
         replaying old metadata); the lock is unchanged: use an up-to-date mirror"
    )]
    Rollback {
        /// The `InRelease` URL, credentials removed.
        url: String,
        /// The suite or codename.
        suite: String,
        /// The new `Release`'s `Date`, formatted.
        date: String,
        /// The `Date` the lock recorded.
        locked: String,
    },
    /// An identity field of the `Release` differs from the previous lock's.
    #[error(
        "repository `{url}` changed its `{field}` value from `{old}` to `{new}`; this must be \
         accepted explicitly: add `\"{field}\"` to `allow-release-info-change` in the base \
         definition, then lock again"
    )]
    ReleaseInfoChanged {
        /// The `InRelease` URL, credentials removed.
        url: String,
        /// `Origin`, `Label`, `Suite` or `Codename`.
        field: &'static str,
        /// The value the lock recorded.
        old: String,
        /// The value the `Release` has now.
        new: String,
    },
    /// The `Release` lacks something the definition needs.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A `Packages` index was refused.
    #[error(transparent)]
    Packages(#[from] PackagesError),
    /// Dependency resolution failed.
    #[error("resolving base `{definition}` for `{arch}`")]
    Resolve {
        /// The definition's name.
        definition: String,
        /// The architecture.
        arch: String,
        /// Why.
        source: ResolveError,
    },
    /// Reading or writing a lockfile failed.
    #[error(transparent)]
    Lockfile(#[from] LockfileError),
    /// A blocking task panicked or was cancelled.
    #[error("{task}: the worker thread failed: {reason}")]
    Task {
        /// What the task was doing.
        task: String,
        /// The join error.
        reason: String,
    },
}

impl DebianError {
    /// Returns the download's error, when that is what failed (it is the error itself, not
    /// its source: `source()` skips it).
    pub fn fetch(&self) -> Option<&FetchError> {
        match self {
            Self::Fetch(e) => Some(e),
            _ => None,
        }
    }
}
