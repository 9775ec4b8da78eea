//! `/var/lib/dpkg/status.d/<package>`: one dpkg status stanza per package, so that
//! scanners (syft, trivy, grype) see what an image without dpkg holds.
//!
//! The layout is distroless's: `status.d/<package>` holds the package's `control` stanza
//! and `status.d/<package>.md5sums` its `md5sums`, one file each so that a package's
//! entries live in the same layer as its files and layers never rewrite a shared database.
//! kiln also adds the `Status: install ok installed` line that `/var/lib/dpkg/status`
//! stanzas carry, right after `Package` as dpkg writes it.

use crate::deb::ControlFile;

/// The in-image directory of the status files.
pub const STATUS_DIR: &str = "var/lib/dpkg/status.d";

/// The `Status` line of an installed package.
const STATUS_LINE: &str = "Status: install ok installed";

/// Returns whether `name` is a valid Debian package name (Policy §5.6.1: lowercase
/// letters, digits, `+`, `-`, `.`, at least two characters, starting alphanumeric), which
/// also makes it safe as a file name.
pub fn is_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

/// Returns the in-image path of the status file of `package`.
pub fn status_path(package: &str) -> String {
    format!("{STATUS_DIR}/{package}")
}

/// Returns the in-image path of the md5sums file of `package`.
pub fn md5sums_path(package: &str) -> String {
    format!("{STATUS_DIR}/{package}.md5sums")
}

/// Returns the status stanza of a package: its `control` stanza as shipped, with
/// `Status: install ok installed` after `Package`, any `Status` of its own and comment
/// lines dropped, and one trailing newline.
pub fn status_text(control: &ControlFile) -> String {
    let mut out = String::with_capacity(control.text.len() + STATUS_LINE.len() + 2);
    let mut inserted = false;
    let mut after_package = false;
    let mut skipping = false;
    for line in control.text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            if after_package && !inserted {
                out.push_str(STATUS_LINE);
                out.push('\n');
                inserted = true;
            }
            let name = line.split(':').next().unwrap_or("");
            after_package = name.eq_ignore_ascii_case("Package");
            skipping = name.eq_ignore_ascii_case("Status");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !inserted {
        out.push_str(STATUS_LINE);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(text: &str) -> ControlFile {
        ControlFile::parse(text.to_string()).unwrap()
    }

    #[test]
    fn adds_status_after_package_and_keeps_the_rest_verbatim() {
        let c = control(
            "Package: libc6\nSource: glibc\nVersion: 2.41-12\nArchitecture: amd64\n\
             Installed-Size: 12345\nDepends: libgcc-s1\nDescription: GNU C Library\n \
             Contains the standard libraries.\n .\n   indented verbatim line\n",
        );
        assert_eq!(
            status_text(&c),
            "Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.41-12\n\
             Architecture: amd64\nInstalled-Size: 12345\nDepends: libgcc-s1\n\
             Description: GNU C Library\n Contains the standard libraries.\n .\n   indented \
             verbatim line\n"
        );
    }

    #[test]
    fn replaces_a_shipped_status_and_handles_package_last() {
        let c = control("Version: 1\nStatus: deinstall ok\n half\nPackage: a1\n");
        assert_eq!(
            status_text(&c),
            "Version: 1\nPackage: a1\nStatus: install ok installed\n"
        );
    }

    #[test]
    fn package_names() {
        assert!(is_package_name("libstdc++6"));
        assert!(is_package_name("ca-certificates"));
        assert!(!is_package_name("../etc"));
        assert!(!is_package_name("a"));
        assert!(!is_package_name("Foo"));
        assert!(!is_package_name("a/b"));
    }
}
