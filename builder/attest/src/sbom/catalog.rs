//! The packages of a whole image: its layers' catalogs stacked bottom to top.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::layer::LayerCatalog;
use super::package::{Distro, Ecosystem, Package};

/// Every package in an image, in a deterministic order, and the distribution it is based on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Sorted by ecosystem, namespace, name, version and location; no exact duplicates.
    pub packages: Vec<Package>,
    /// The distribution named by the topmost layer that has an `os-release` file.
    pub distro: Option<Distro>,
}

impl Catalog {
    /// Returns the catalog of an image whose layers, bottom layer first, hold `layers`.
    ///
    /// A file in an upper layer replaces the same path below it, so when an upper layer
    /// found packages in a file (say a rewritten `/var/lib/dpkg/status` after an upgrade),
    /// the packages lower layers found in that file are dropped.
    pub fn merge(layers: impl IntoIterator<Item = LayerCatalog>) -> Catalog {
        let mut packages: Vec<Package> = Vec::new();
        let mut distro = None;
        for layer in layers {
            let replaced: BTreeSet<&str> = layer.packages.iter().map(file_of).collect();
            packages.retain(|p| !replaced.contains(file_of(p)));
            packages.extend(layer.packages.iter().cloned());
            if layer.distro.is_some() {
                distro = layer.distro;
            }
        }
        packages.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)).then_with(|| a.cmp(b)));
        packages.dedup();
        Catalog { packages, distro }
    }

    /// Returns how many packages each ecosystem has; ecosystems with none are absent.
    pub fn counts(&self) -> BTreeMap<Ecosystem, usize> {
        let mut counts = BTreeMap::new();
        for p in &self.packages {
            *counts.entry(p.ecosystem).or_insert(0) += 1;
        }
        counts
    }
}

/// The image file a package came from: a nested jar's location names its outer jar.
fn file_of(p: &Package) -> &str {
    p.location.split('!').next().unwrap_or(&p.location)
}

fn sort_key(p: &Package) -> (Ecosystem, Option<&str>, &str, &str, &str) {
    (
        p.ecosystem,
        p.namespace.as_deref(),
        &p.name,
        &p.version,
        &p.location,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(ecosystem: Ecosystem, name: &str, version: &str, location: &str) -> Package {
        Package::new(ecosystem, None, name, version, location)
    }

    fn distro(id: &str) -> Option<Distro> {
        Some(Distro {
            id: id.into(),
            version_id: None,
            codename: None,
        })
    }

    #[test]
    fn merges_sorts_dedupes_and_lets_upper_layers_win() {
        let base = LayerCatalog {
            packages: vec![
                pkg(Ecosystem::Deb, "zlib1g", "1.2", "/var/lib/dpkg/status"),
                pkg(Ecosystem::Deb, "libc6", "2.36", "/var/lib/dpkg/status"),
                pkg(Ecosystem::Deb, "gone", "1", "/var/lib/dpkg/status"),
                pkg(
                    Ecosystem::Maven,
                    "old",
                    "1",
                    "/app.jar!BOOT-INF/lib/old.jar",
                ),
            ],
            distro: distro("debian"),
        };
        let upgrade = LayerCatalog {
            packages: vec![
                pkg(Ecosystem::Deb, "zlib1g", "1.3", "/var/lib/dpkg/status"),
                pkg(Ecosystem::Deb, "libc6", "2.36", "/var/lib/dpkg/status"),
                pkg(Ecosystem::Maven, "new", "2", "/app.jar"),
            ],
            distro: None,
        };
        let app = LayerCatalog {
            packages: vec![
                pkg(Ecosystem::Npm, "b", "1", "/w/node_modules/b/package.json"),
                pkg(Ecosystem::Npm, "a", "1", "/w/node_modules/a/package.json"),
                pkg(
                    Ecosystem::Npm,
                    "a",
                    "1",
                    "/w/node_modules/c/node_modules/a/package.json",
                ),
                pkg(Ecosystem::Npm, "a", "1", "/w/node_modules/a/package.json"),
                pkg(Ecosystem::Golang, "stdlib", "go1.26.8", "/w/app"),
            ],
            distro: distro("ubuntu"),
        };
        let catalog = Catalog::merge([base, upgrade, app]);
        let got: Vec<_> = catalog
            .packages
            .iter()
            .map(|p| format!("{} {} {} {}", p.ecosystem, p.name, p.version, p.location))
            .collect();
        assert_eq!(
            got,
            [
                "deb libc6 2.36 /var/lib/dpkg/status",
                "deb zlib1g 1.3 /var/lib/dpkg/status",
                "golang stdlib go1.26.8 /w/app",
                "maven new 2 /app.jar",
                "npm a 1 /w/node_modules/a/package.json",
                "npm a 1 /w/node_modules/c/node_modules/a/package.json",
                "npm b 1 /w/node_modules/b/package.json",
            ]
        );
        assert_eq!(catalog.distro, distro("ubuntu"));
        let counts = catalog.counts();
        assert_eq!(counts[&Ecosystem::Deb], 2);
        assert_eq!(counts[&Ecosystem::Npm], 3);
        assert_eq!(counts.len(), 4);
    }

    #[test]
    fn namespace_orders_before_name_and_empty_merge_is_empty() {
        let mut scoped = pkg(Ecosystem::Npm, "a", "1", "/x");
        scoped.namespace = Some("types".into());
        let plain = pkg(Ecosystem::Npm, "z", "1", "/x");
        let catalog = Catalog::merge([LayerCatalog {
            packages: vec![scoped.clone(), plain.clone()],
            distro: None,
        }]);
        assert_eq!(catalog.packages, [plain, scoped]);
        assert_eq!(Catalog::merge([]), Catalog::default());
    }

    #[test]
    fn layer_catalogs_round_trip_through_json() {
        let layer = LayerCatalog {
            packages: vec![pkg(Ecosystem::Golang, "stdlib", "go1.26.8", "/app")],
            distro: distro("debian"),
        };
        let json = serde_json::to_string(&layer).unwrap();
        assert!(json.contains(r#""ecosystem":"golang""#), "{json}");
        assert_eq!(serde_json::from_str::<LayerCatalog>(&json).unwrap(), layer);
    }
}
