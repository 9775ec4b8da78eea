//! npm packages from the `package.json` at the root of each package installed under
//! `node_modules` (<https://docs.npmjs.com/cli/v10/configuring-npm/package-json>).

use serde_json::Value;

use super::package::{Ecosystem, Package};

/// Larger `package.json` files are skipped: real ones are a few KiB.
pub(crate) const MAX_PACKAGE_JSON: u64 = 4 << 20;

/// Returns whether `path` is `…node_modules/<name>/package.json` or
/// `…node_modules/@<scope>/<name>/package.json`.
///
/// Only the innermost `node_modules` counts, so nested installs and pnpm's
/// `node_modules/.pnpm/<id>/node_modules/<name>` (where the real files live; the top-level
/// entries are symlinks) match, while a package's own fixtures deeper down do not.
pub(crate) fn is_package_json(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some(nm) = parts.iter().rposition(|p| *p == "node_modules") else {
        return false;
    };
    let plain = |name: &str| !name.is_empty() && !name.starts_with(['.', '@']);
    match &parts[nm + 1..] {
        [name, "package.json"] => plain(name),
        [scope, name, "package.json"] => scope.len() > 1 && scope.starts_with('@') && plain(name),
        _ => false,
    }
}

/// Returns the package a `package.json` describes, or `None` when it is not JSON or lacks
/// a string `name` or `version`.
pub(crate) fn package(bytes: &[u8], location: &str) -> Option<Package> {
    let json: Value = serde_json::from_slice(bytes).ok()?;
    let full = json.get("name")?.as_str()?.trim();
    let version = json.get("version")?.as_str()?.trim();
    if full.is_empty() || version.is_empty() {
        return None;
    }
    let (namespace, name) = match full.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, name)) if !scope.is_empty() && !name.is_empty() => {
            (Some(scope.to_string()), name)
        }
        _ => (None, full),
    };
    let mut p = Package::new(Ecosystem::Npm, namespace, name, version, location);
    // The old object form (`{"type": "MIT", "url": …}`) and arrays are left out rather
    // than guessed at.
    p.license = json
        .get("license")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_package_roots_inside_node_modules_only() {
        for yes in [
            "workspace/node_modules/express/package.json",
            "node_modules/express/package.json",
            "workspace/node_modules/@types/node/package.json",
            "workspace/node_modules/a/node_modules/b/package.json",
            "workspace/node_modules/.pnpm/x@1.0.0/node_modules/x/package.json",
            "workspace/node_modules/.pnpm/@s+y@2/node_modules/@s/y/package.json",
        ] {
            assert!(is_package_json(yes), "{yes}");
        }
        for no in [
            "workspace/package.json",
            "workspace/node_modules/package.json",
            "workspace/node_modules/express/lib/package.json",
            "workspace/node_modules/express/test/fixtures/package.json",
            "workspace/node_modules/.bin/package.json",
            "workspace/node_modules/@types/package.json",
            "workspace/node_modules/@/x/package.json",
            "workspace/node_modules/express/package.json.bak",
        ] {
            assert!(!is_package_json(no), "{no}");
        }
    }

    #[test]
    fn reads_name_scope_version_and_string_license() {
        let p = package(
            br#"{"name": "@types/node", "version": "20.1.0", "license": "MIT"}"#,
            "/n/package.json",
        )
        .unwrap();
        assert_eq!(p.namespace.as_deref(), Some("types"));
        assert_eq!(p.name, "node");
        assert_eq!(p.version, "20.1.0");
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert_eq!(p.location, "/n/package.json");

        let p = package(
            br#"{"name": "old", "version": "1.0.0", "license": {"type": "MIT"}}"#,
            "/x",
        )
        .unwrap();
        assert_eq!((p.namespace, p.license), (None, None));
    }

    #[test]
    fn skips_packages_without_name_or_version() {
        assert!(package(br#"{"name": "x"}"#, "/x").is_none());
        assert!(package(br#"{"version": "1.0.0"}"#, "/x").is_none());
        assert!(package(br#"{"name": "x", "version": 1}"#, "/x").is_none());
        assert!(package(b"{not json", "/x").is_none());
    }
}
