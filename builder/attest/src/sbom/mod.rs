//! SBOMs: packages cataloged from an image's layers, written as SPDX 2.3 and CycloneDX 1.5.
//!
//! [`catalog_layer`] reads one uncompressed layer tar stream and finds Debian packages
//! (dpkg's database), Go modules (build info in ELF binaries), Maven artifacts
//! (`pom.properties` in jars, nested jars one level deep) and npm packages
//! (`node_modules/**/package.json`). [`Catalog::merge`] stacks the layers' results, and
//! [`spdx_json`] and [`cyclonedx_json`] write them down deterministically.

mod catalog;
mod cyclonedx;
mod document;
mod dpkg;
mod error;
#[cfg(test)]
mod fixtures;
mod gobuild;
mod layer;
mod maven;
mod npm;
mod os_release;
mod package;
mod purl;
mod read;
mod spdx;

pub use catalog::Catalog;
pub use cyclonedx::cyclonedx_json;
pub use document::{SbomInput, Subject};
pub use error::SbomError;
pub use layer::{LayerCatalog, catalog_layer};
pub use package::{Distro, Ecosystem, Package};
pub use read::read_packages;
pub use spdx::spdx_json;
