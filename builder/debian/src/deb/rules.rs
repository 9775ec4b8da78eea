//! [`PackageRules`]: what a base allows package contents to do while they become a layer,
//! and [`PackagesLayer`]: what writing them found (setuid files, maintainer scripts not run).

use std::collections::BTreeSet;

use kiln_layer::LayerBlob;

/// The default expansion bound: `data.tar` may hold up to 150 % of `Installed-Size`.
pub const DEFAULT_MAX_EXPANSION_PERCENT: u64 = 150;

/// The setuid and setgid bits.
pub(crate) const SETID_BITS: u32 = 0o6000;

/// How package contents are judged while they become a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRules {
    /// How far `data.tar` may expand, in percent of the package's `Installed-Size` (plus
    /// 1 MiB for headers): past it the package is refused as a decompression bomb.
    pub max_expansion_percent: u64,
    /// In-image paths (`usr/bin/su`, no leading `/`, merged-usr applied) of regular files
    /// that keep their setuid and setgid bits. Every other file loses them: a base image
    /// offers no privilege escalation unless its definition asks for it by name.
    pub keep_setuid: BTreeSet<String>,
}

impl Default for PackageRules {
    fn default() -> Self {
        Self {
            max_expansion_percent: DEFAULT_MAX_EXPANSION_PERCENT,
            keep_setuid: BTreeSet::new(),
        }
    }
}

/// A regular file a package ships with the setuid or setgid bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetuidFile {
    /// The in-image path (merged-usr applied, no leading `/`).
    pub path: String,
    /// The package that ships it.
    pub package: String,
    /// Its mode as shipped.
    pub mode: u32,
    /// Whether the bits were kept ([`PackageRules::keep_setuid`] names it) or stripped.
    pub kept: bool,
}

/// The maintainer scripts and triggers of a package, which kiln never runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedScripts {
    /// The package.
    pub package: String,
    /// The `control.tar` members skipped (`postinst`, `triggers`...), in archive order.
    pub scripts: Vec<String>,
}

/// A layer of packages and what writing it found.
#[derive(Debug, Clone)]
pub struct PackagesLayer {
    /// The layer.
    pub blob: LayerBlob,
    /// The setuid and setgid files, in layer order, with what was done to them.
    pub setuid: Vec<SetuidFile>,
    /// The packages that have maintainer scripts or triggers, in layer order.
    pub skipped_scripts: Vec<SkippedScripts>,
}
