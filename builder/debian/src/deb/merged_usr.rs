//! Merged `/usr`: `/bin`, `/sbin` and `/lib*` are symlinks into `/usr`, and package files
//! shipped under them are stored under `/usr` instead.
//!
//! Debian made merged-usr mandatory in bookworm and finished moving files in trixie
//! (<https://wiki.debian.org/UsrMerge>, DEP-17). Packages may still ship `./bin/...` or
//! `./lib/...` paths; dpkg would write them through the symlinks, kiln rewrites them.

/// The top-level directories that are aliases of the same directory under `/usr`.
pub const MERGED_USR_ALIASES: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// One root symlink of a merged-usr image: `path -> target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergedUsrLink {
    /// The in-image path (`bin`).
    pub path: &'static str,
    /// The relative symlink target (`usr/bin`).
    pub target: &'static str,
}

/// Returns the root symlinks of a merged-usr image for the Debian architecture `arch`:
/// `bin`, `sbin` and `lib` everywhere, and the multilib directories that architecture's
/// ABI uses, following debootstrap's `setup_merged_usr` (`lib64` for the amd64 dynamic
/// loader `/lib64/ld-linux-x86-64.so.2`, for example).
pub fn merged_usr_links(arch: &str) -> Vec<MergedUsrLink> {
    let extra: &[&'static str] = match arch {
        "amd64" => &["lib32", "lib64", "libx32"],
        "i386" => &["lib64", "libx32"],
        "ppc64el" | "loong64" => &["lib64"],
        "s390x" => &["lib32"],
        _ => &[],
    };
    ["bin", "sbin", "lib"]
        .iter()
        .chain(extra)
        .map(|&path| MergedUsrLink {
            path,
            target: target_of(path),
        })
        .collect()
}

/// Returns `usr/<alias>` for one of [`MERGED_USR_ALIASES`].
fn target_of(alias: &'static str) -> &'static str {
    match alias {
        "bin" => "usr/bin",
        "sbin" => "usr/sbin",
        "lib" => "usr/lib",
        "lib32" => "usr/lib32",
        "lib64" => "usr/lib64",
        _ => "usr/libx32",
    }
}

/// Returns the in-image path of the normalized package path `path`: under `usr/` when its
/// first component is a merged-usr alias.
pub(crate) fn remap(path: &str) -> String {
    let first = path.split('/').next().unwrap_or("");
    if MERGED_USR_ALIASES.contains(&first) {
        format!("usr/{path}")
    } else {
        path.to_string()
    }
}

/// Returns whether a symlink at the normalized package path `path` pointing to `target` is
/// a merged-usr root link (`bin -> usr/bin`), which kiln writes itself.
pub(crate) fn is_root_link(path: &str, target: &str) -> bool {
    MERGED_USR_ALIASES.contains(&path)
        && target.trim_start_matches('/').trim_end_matches('/') == format!("usr/{path}")
}

/// Returns the target to store for a symlink moved from `path` (normalized, before
/// [`remap`]) by merged-usr: relative targets that leave the alias directory are made
/// absolute, since `..` no longer climbs to the same place from under `/usr`.
pub(crate) fn fix_target(path: &str, target: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    if target.starts_with('/') || !MERGED_USR_ALIASES.contains(&parts[0]) {
        return target.to_string();
    }
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let alias = path.split('/').next().unwrap_or("");
    if parts.first() == Some(&alias) {
        target.to_string()
    } else {
        format!("/{}", parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_aliases_only() {
        assert_eq!(remap("bin/ls"), "usr/bin/ls");
        assert_eq!(remap("lib"), "usr/lib");
        assert_eq!(
            remap("lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(remap("library/x"), "library/x");
        assert_eq!(remap("usr/bin/ls"), "usr/bin/ls");
        assert_eq!(remap("etc/bin"), "etc/bin");
    }

    #[test]
    fn links_per_architecture() {
        let paths = |arch| -> Vec<&str> { merged_usr_links(arch).iter().map(|l| l.path).collect() };
        assert_eq!(paths("arm64"), ["bin", "sbin", "lib"]);
        assert_eq!(
            paths("amd64"),
            ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]
        );
        for l in merged_usr_links("amd64") {
            assert_eq!(l.target, format!("usr/{}", l.path));
        }
    }

    #[test]
    fn recognises_shipped_root_links() {
        assert!(is_root_link("bin", "usr/bin"));
        assert!(is_root_link("lib64", "/usr/lib64/"));
        assert!(!is_root_link("bin", "usr/sbin"));
        assert!(!is_root_link("etc", "usr/etc"));
    }

    #[test]
    fn fixes_relative_targets_that_leave_the_alias() {
        assert_eq!(
            fix_target("lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.3"),
            "libz.so.1.3"
        );
        assert_eq!(fix_target("sbin/foo", "../usr/bin/foo"), "/usr/bin/foo");
        assert_eq!(fix_target("lib/a/b", "../c"), "../c");
        assert_eq!(fix_target("bin/sh", "/usr/bin/dash"), "/usr/bin/dash");
        assert_eq!(fix_target("usr/bin/x", "../../y"), "../../y");
    }
}
