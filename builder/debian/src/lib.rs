//! The golden-base engine: base definitions and lockfiles, signed Debian repository metadata
//! (`InRelease` → `Release` → `Packages`), dependency resolution, and `.deb` packages
//! transformed tar→tar into image layers with `/var/lib/dpkg/status.d` entries.
//!
//! Spec: Debian repository format (<https://wiki.debian.org/DebianRepository/Format>).

pub mod deb;
