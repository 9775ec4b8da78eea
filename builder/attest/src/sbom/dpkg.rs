//! Debian packages from dpkg's database: `/var/lib/dpkg/status` (deb-control(5) stanzas
//! separated by blank lines) and distroless's `/var/lib/dpkg/status.d/<name>` (one stanza
//! per file, no `Status` field to trust).

use super::package::{Ecosystem, Package};

/// Returns the installed packages in the stanzas of `text`, found at `location`.
///
/// With `require_installed`, stanzas whose `Status` does not end in `installed` are left
/// out: dpkg keeps removed-but-not-purged packages (`deinstall ok config-files`) there.
pub(crate) fn packages(text: &str, location: &str, require_installed: bool) -> Vec<Package> {
    let mut out = Vec::new();
    let mut stanza = Stanza::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let Some(p) = std::mem::take(&mut stanza).into_package(location, require_installed) {
                out.push(p);
            }
            continue;
        }
        // Continuation lines only ever extend fields kiln does not read (Description,
        // Conffiles), so they are skipped.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            stanza.set(key.trim(), value.trim());
        }
    }
    out
}

#[derive(Default)]
struct Stanza {
    package: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    maintainer: Option<String>,
    status: Option<String>,
}

impl Stanza {
    fn set(&mut self, key: &str, value: &str) {
        // deb-control(5): field names are case-insensitive.
        let slot = match key.to_ascii_lowercase().as_str() {
            "package" => &mut self.package,
            "version" => &mut self.version,
            "architecture" => &mut self.arch,
            "source" => &mut self.source,
            "maintainer" => &mut self.maintainer,
            "status" => &mut self.status,
            _ => return,
        };
        if !value.is_empty() {
            *slot = Some(value.to_string());
        }
    }

    fn into_package(self, location: &str, require_installed: bool) -> Option<Package> {
        if require_installed {
            let status = self.status.as_deref().unwrap_or("");
            if status.split_whitespace().last() != Some("installed") {
                return None;
            }
        }
        let name = self.package?;
        let version = self.version?;
        // `Source: glibc (2.36-9)` names the source package and, when it differs from the
        // binary's, its version; only the name goes into the purl's `upstream`.
        let source = self
            .source
            .as_deref()
            .and_then(|s| s.split_whitespace().next())
            .filter(|s| *s != name)
            .map(String::from);
        let mut p = Package::new(Ecosystem::Deb, None, name, version, location);
        p.arch = self.arch;
        p.source = source;
        p.supplier = self.maintainer;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: oldconf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

package: tzdata
status: install ok installed
architecture: all
version: 2024a-0+deb12u1
source: tzdata (2024a-0+deb12u1)
";

    #[test]
    fn status_keeps_installed_stanzas_only() {
        let pkgs = packages(STATUS, "/var/lib/dpkg/status", true);
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "libc6");
        assert_eq!(pkgs[0].version, "2.36-9+deb12u4");
        assert_eq!(pkgs[0].arch.as_deref(), Some("amd64"));
        assert_eq!(pkgs[0].source.as_deref(), Some("glibc"));
        assert_eq!(
            pkgs[0].supplier.as_deref(),
            Some("GNU Libc Maintainers <debian-glibc@lists.debian.org>")
        );
        assert_eq!(pkgs[1].name, "tzdata");
        assert_eq!(pkgs[1].source, None, "same-named source is not an upstream");
    }

    #[test]
    fn status_d_ignores_status_and_skips_incomplete_stanzas() {
        let pkgs = packages(STATUS, "/var/lib/dpkg/status.d/x", false);
        assert_eq!(pkgs.len(), 3);
        assert!(packages("Package: nover\n", "/x", false).is_empty());
        assert!(packages("garbage\n\n\n", "/x", false).is_empty());
    }
}
