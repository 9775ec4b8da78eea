//! The golden-base engine: base definitions and lockfiles, signed Debian repository metadata
//! (`InRelease` → `Release` → `Packages`), dependency resolution, and `.deb` packages
//! transformed tar→tar into image layers with `/var/lib/dpkg/status.d` entries.
//!
//! Locking: [`Definition::load`] → [`Keyring::load`] → [`lock()`] (or [`relock()`] over an
//! existing lock, refusing a rollback) → [`Lockfile::write`];
//! [`diff`] compares two locks for `kiln base update`; [`fetch_deb`] fills the `.deb` cache
//! for `kiln base build`. Nothing here prints, reads the environment or the clock: the CLI
//! passes the mirror (see [`apt_sources::default_mirror`]) and the time in.
//!
//! Spec: Debian repository format (<https://wiki.debian.org/DebianRepository/Format>).

pub mod apt_sources;
pub mod base_image;
pub mod control;
pub mod deb;
pub mod definition;
pub mod depends;
mod error;
pub mod fetch;
pub mod inrelease;
pub mod jks;
pub mod keyring;
mod lock;
pub mod lockfile;
pub mod mirrors;
pub mod packages;
pub mod platform;
pub mod release;
pub mod resolve;
pub mod version;

pub use definition::Definition;
pub use error::DebianError;
pub use fetch::{FetchError, fetch_deb};
pub use inrelease::{InRelease, InReleaseError};
pub use keyring::{Keyring, KeyringError};
pub use lock::{Change, diff, lock, relock};
pub use lockfile::{LockedPackage, LockedSuite, Lockfile, LockfileError};
pub use mirrors::Mirrors;
pub use resolve::{INSTALL_TIME, Resolution, resolve};
pub use version::Version;
