//! What kiln reads of `package.json` (npm documents the file as `npm help package-json`):
//! scripts, `main`, `engines.node`, `packageManager` and `workspaces`. Every field is
//! optional; a field of the wrong type is treated as absent, as npm itself does.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_lifecycle::BuildpackError;
use serde_json::Value;

/// The parts of a `package.json` kiln uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageJson {
    /// `name`.
    pub name: Option<String>,
    /// `scripts`: name → command line.
    pub scripts: BTreeMap<String, String>,
    /// `main`: the package's entry module.
    pub main: Option<String>,
    /// `engines.node`: the Node.js range the package supports.
    pub engines_node: Option<String>,
    /// `packageManager` (Corepack's field): `pnpm@9.15.0`, `yarn@4.5.0+sha512.…`.
    pub package_manager: Option<String>,
    /// `workspaces` (npm, yarn: an array, or `{ "packages": [...] }`): globs of member packages.
    pub workspaces: Vec<String>,
    /// Whether it declares `devDependencies`.
    pub has_dev_dependencies: bool,
}

impl PackageJson {
    /// Parses the text of a `package.json`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, BuildpackError> {
        let value: Value = serde_json::from_str(text).map_err(|e| BuildpackError::App {
            message: format!("`{}` is not valid JSON: {e}", path.display()),
            hint: Some("fix package.json; `npm pkg get name` shows what npm makes of it".into()),
        })?;
        let Value::Object(obj) = value else {
            return Err(BuildpackError::App {
                message: format!("`{}` is not a JSON object", path.display()),
                hint: None,
            });
        };
        let string = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
        let scripts = obj
            .get("scripts")
            .and_then(Value::as_object)
            .map(|s| {
                s.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let workspaces = match obj.get("workspaces") {
            Some(Value::Array(list)) => strings(list),
            Some(Value::Object(o)) => o
                .get("packages")
                .and_then(Value::as_array)
                .map(|l| strings(l))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Self {
            name: string("name"),
            scripts,
            main: string("main").filter(|m| !m.trim().is_empty()),
            engines_node: obj
                .get("engines")
                .and_then(|e| e.get("node"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            package_manager: string("packageManager"),
            workspaces,
            has_dev_dependencies: obj
                .get("devDependencies")
                .and_then(Value::as_object)
                .is_some_and(|d| !d.is_empty()),
        })
    }

    /// Reads and parses `<dir>/package.json`.
    pub fn read(dir: &Path) -> Result<Self, BuildpackError> {
        let path = dir.join("package.json");
        let text = kiln_lifecycle::read_bounded_string(&path, kiln_lifecycle::MANIFEST_LIMIT)
            .map_err(|e| BuildpackError::reading(&path, e))?;
        Self::parse(&text, &path)
    }

    /// Returns the script `name` when it is set to something other than blanks.
    pub fn script(&self, name: &str) -> Option<&str> {
        self.scripts
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }
}

fn strings(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PackageJson {
        PackageJson::parse(text, Path::new("package.json")).unwrap()
    }

    #[test]
    fn reads_the_fields_kiln_uses() {
        let p = parse(
            r#"{"name":"a","main":"lib/a.js","scripts":{"start":"node a.js","build":"tsc","x":1},
               "engines":{"node":">=20"},"packageManager":"pnpm@9.1.0",
               "devDependencies":{"typescript":"5"},"workspaces":["packages/*"]}"#,
        );
        assert_eq!(p.name.as_deref(), Some("a"));
        assert_eq!(p.main.as_deref(), Some("lib/a.js"));
        assert_eq!(p.script("start"), Some("node a.js"));
        assert_eq!(p.script("build"), Some("tsc"));
        assert_eq!(p.script("x"), None, "a non-string script is ignored");
        assert_eq!(p.engines_node.as_deref(), Some(">=20"));
        assert_eq!(p.package_manager.as_deref(), Some("pnpm@9.1.0"));
        assert_eq!(p.workspaces, ["packages/*"]);
        assert!(p.has_dev_dependencies);
    }

    #[test]
    fn yarn_workspaces_object_and_wrong_types_and_blanks() {
        let p = parse(
            r#"{"workspaces":{"packages":["apps/*","libs/*"]},"main":" ","engines":"x",
               "scripts":{"build":"  "},"devDependencies":{}}"#,
        );
        assert_eq!(p.workspaces, ["apps/*", "libs/*"]);
        assert_eq!(p.main, None);
        assert_eq!(p.engines_node, None);
        assert_eq!(p.script("build"), None);
        assert!(!p.has_dev_dependencies);
        assert_eq!(parse("{}"), PackageJson::default());
    }

    #[test]
    fn invalid_json_is_an_app_error_naming_the_file() {
        for text in ["{", "[1]", ""] {
            let err = PackageJson::parse(text, Path::new("/src/package.json")).unwrap_err();
            assert!(matches!(err, BuildpackError::App { .. }), "{err:?}");
            assert!(err.to_string().contains("`/src/package.json`"), "{err}");
        }
    }

    /// B04: 100,000 levels of nesting, in an array or in the fields kiln reads, are an app
    /// error naming the file (serde_json's recursion limit), not a stack overflow; detection
    /// stops there.
    #[test]
    fn b04_deeply_nested_package_json_is_an_error_not_a_stack_overflow() {
        let n = 100_000;
        for text in [
            format!("{}{}", "[".repeat(n), "]".repeat(n)),
            format!(
                "{{\"engines\":{}1{}}}",
                "{\"node\":".repeat(n),
                "}".repeat(n)
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("package.json"), &text).unwrap();
            let err = crate::detect::detect(dir.path()).unwrap_err();
            assert!(matches!(err, BuildpackError::App { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains("package.json` is not valid JSON: recursion limit exceeded"),
                "{text}"
            );
        }
    }

    /// B04: a `package.json` that is not UTF-8 (JSON must be) is a usage error naming the
    /// file; detection stops there.
    #[test]
    fn b04_a_package_json_that_is_not_utf8_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), b"{\"name\":\"caf\xe9\"}").unwrap();
        let err = crate::detect::detect(dir.path()).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("package.json`") && text.contains("invalid utf-8"),
            "{text}"
        );
    }
}
