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
    #[error("verifying `{url}`: {source}")]
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
    /// The `Release` lacks something the definition needs.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A `Packages` index was refused.
    #[error(transparent)]
    Packages(#[from] PackagesError),
    /// Dependency resolution failed.
    #[error("resolving base `{definition}` for `{arch}`: {source}")]
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
