//! Where an image is read from, as a user names it: parsed once, at the edge, into an
//! [`ImageSource`] (a registry reference, an OCI image layout, or a name in kiln's local
//! store), then read for one platform ([`read_image`]).

use std::fmt;
use std::path::{Path, PathBuf};

use kiln_image::{ImageError, fetch_remote, layout_has, read_layout};
use kiln_lifecycle::RunImage;
use kiln_oci::{Reference, ReferenceError};
use kiln_registry::Client;

use crate::Store;

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A registry reference: `registry.example.com/bases/node:20`.
    Registry {
        /// The reference.
        reference: Reference,
        /// The reference as the user wrote it (which the image records, so it stays as
        /// written: `node:20`, not `docker.io/library/node:20`).
        written: String,
    },
    /// An OCI image layout directory and the name of the image in it: `oci:PATH[:NAME]`
    /// (without a name, the layout's only image).
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` of the image.
        name: Option<String>,
    },
    /// An image in kiln's local store, by name: `kiln-base/node`.
    Store(String),
}

impl ImageSource {
    /// Parses what a user wrote: `oci:PATH[:NAME]` is a layout (the path is everything up
    /// to the first `:`); a name whose first part is a registry host (`host.tld/…`,
    /// `host:port/…`, `localhost/…`) is a registry reference; a name the store at
    /// `store_dir` holds is the store's; anything else is a registry reference (Docker Hub's
    /// short names).
    pub fn parse(name: &str, store_dir: &Path) -> Result<Self, ReferenceError> {
        if let Some(rest) = name.strip_prefix("oci:") {
            let (dir, name) = match rest.split_once(':') {
                Some((p, n)) => (PathBuf::from(p), Some(n.to_owned())),
                None => (PathBuf::from(rest), None),
            };
            return Ok(Self::Layout { dir, name });
        }
        if !names_a_registry(name) && layout_has(store_dir, name) {
            return Ok(Self::Store(name.to_owned()));
        }
        Ok(Self::Registry {
            reference: name.parse()?,
            written: name.to_owned(),
        })
    }
}

impl fmt::Display for ImageSource {
    /// The source as a user would write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry { written, .. } => f.write_str(written),
            Self::Layout {
                dir,
                name: Some(name),
            } => write!(f, "oci:{}:{name}", dir.display()),
            Self::Layout { dir, name: None } => write!(f, "oci:{}", dir.display()),
            Self::Store(name) => write!(f, "{name}"),
        }
    }
}

/// Returns whether `name` names a registry (`host[:port]/repo…`, `localhost/…`) rather than
/// an image in kiln's store (`kiln-base/node`).
pub fn names_a_registry(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
}

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {role} `{name}`{}", if *.from_store { " from kiln's store" } else { "" })]
pub struct SourceError {
    /// What the image is for: `run image`, `cache image`.
    pub role: &'static str,
    /// The image, as the user named it.
    pub name: String,
    /// Whether it was read from kiln's store.
    pub from_store: bool,
    /// What went wrong.
    #[source]
    pub source: ImageError,
}

/// Reads the image `source` names, as `role` (`run image`), for `(os, arch)`: from its
/// layout, kiln's `store`, or its registry (layers fetched on demand).
pub async fn read_image(
    source: &ImageSource,
    role: &'static str,
    client: &Client,
    store: &Store,
    (os, arch): (&str, &str),
) -> Result<RunImage, SourceError> {
    let fail = |from_store, error| SourceError {
        role,
        name: source.to_string(),
        from_store,
        source: error,
    };
    let blobs = store.blobs();
    let read = match source {
        ImageSource::Layout { dir, name } => {
            read_layout(dir, name.as_deref(), (os, arch), blobs).map_err(|e| fail(false, e))
        }
        ImageSource::Store(name) => {
            read_layout(store.dir(), Some(name), (os, arch), blobs).map_err(|e| fail(true, e))
        }
        ImageSource::Registry { reference, .. } => fetch_remote(client, reference, os, arch)
            .await
            .map_err(|e| fail(false, e)),
    };
    let (image, digest) = read?;
    Ok(RunImage {
        image,
        digest,
        name: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_registry_references_from_store_names() {
        for name in [
            "registry.example.com/bases/node:13",
            "127.0.0.1:5000/bases/node",
            "localhost/x",
        ] {
            assert!(names_a_registry(name), "{name}");
        }
        for name in ["kiln-base/node", "node", "team/app:1"] {
            assert!(!names_a_registry(name), "{name}");
        }
    }

    #[test]
    fn parses_layouts_store_names_and_references_once() {
        let store = tempfile::tempdir().unwrap();
        assert_eq!(
            ImageSource::parse("oci:/tmp/x:kiln-base/node", store.path()).unwrap(),
            ImageSource::Layout {
                dir: "/tmp/x".into(),
                name: Some("kiln-base/node".into())
            }
        );
        assert_eq!(
            ImageSource::parse("oci:/tmp/x", store.path()).unwrap(),
            ImageSource::Layout {
                dir: "/tmp/x".into(),
                name: None
            }
        );
        let source = ImageSource::parse("127.0.0.1:5000/bases/node:1", store.path()).unwrap();
        assert!(matches!(source, ImageSource::Registry { .. }), "{source:?}");
        assert_eq!(source.to_string(), "127.0.0.1:5000/bases/node:1");
        // Not in the store: a Docker Hub short name.
        assert!(matches!(
            ImageSource::parse("kiln-base/node", store.path()).unwrap(),
            ImageSource::Registry { .. }
        ));
        assert!(ImageSource::parse("Bad Name", store.path()).is_err());
    }
}
