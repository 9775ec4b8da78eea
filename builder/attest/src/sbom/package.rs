use std::fmt;

use serde::{Deserialize, Serialize};

/// The package ecosystem a [`Package`] was found in; it picks the package URL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// A Debian package recorded in dpkg's database.
    Deb,
    /// A Go module linked into a Go binary.
    Golang,
    /// A Java library described by a jar's `pom.properties`.
    Maven,
    /// A package installed under `node_modules`.
    Npm,
}

impl Ecosystem {
    /// Returns the lowercase name, which is also the package URL type.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Golang => "golang",
            Ecosystem::Maven => "maven",
            Ecosystem::Npm => "npm",
        }
    }

    /// Returns the ecosystem of a package URL such as `pkg:npm/express@4.21.2`, or `None`
    /// for types kiln does not catalog (`pkg:oci/…` included).
    pub fn from_purl(purl: &str) -> Option<Ecosystem> {
        let kind = purl.strip_prefix("pkg:")?.split('/').next()?;
        match kind.to_ascii_lowercase().as_str() {
            "deb" => Some(Ecosystem::Deb),
            "golang" => Some(Ecosystem::Golang),
            "maven" => Some(Ecosystem::Maven),
            "npm" => Some(Ecosystem::Npm),
            _ => None,
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, Ord, PartialOrd, Hash, Serialize, Deserialize)]
pub struct Package {
    /// Where it was found.
    pub ecosystem: Ecosystem,
    /// The package name: the Debian package, the Go module path, the Maven artifactId,
    /// or the npm name without its scope.
    pub name: String,
    /// The Maven groupId, or the npm scope without `@` (`types` for `@types/node`).
    pub namespace: Option<String>,
    /// The version exactly as recorded (`1:2.3+dfsg-1`, `v1.6.0`, `(devel)`, `go1.26.8`).
    pub version: String,
    /// The Debian architecture (`amd64`, `all`).
    pub arch: Option<String>,
    /// The Debian source package, only when it differs from `name`.
    pub source: Option<String>,
    /// The npm `license` field, when it is a string.
    pub license: Option<String>,
    /// The Debian `Maintainer`.
    pub supplier: Option<String>,
    /// The file it was found in, absolute inside the image; a jar inside a jar is
    /// `/outer.jar!BOOT-INF/lib/inner.jar`.
    pub location: String,
}

impl Package {
    /// Returns a package of `ecosystem` with only the always-present fields set.
    pub fn new(
        ecosystem: Ecosystem,
        namespace: Option<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        Self {
            ecosystem,
            name: name.into(),
            namespace,
            version: version.into(),
            arch: None,
            source: None,
            license: None,
            supplier: None,
            location: location.into(),
        }
    }

    /// Returns the name as its ecosystem writes it: `@types/node` for a scoped npm
    /// package, the artifactId for Maven, `name` otherwise.
    pub fn display_name(&self) -> String {
        match (self.ecosystem, &self.namespace) {
            (Ecosystem::Npm, Some(scope)) => format!("@{scope}/{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// The distribution an image is based on, from `os-release(5)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Distro {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
}
