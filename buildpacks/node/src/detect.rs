//! Detection: a Node.js app has a `package.json`. Files only, no programs. The plan says
//! which package manager installs it and from which lockfile; a workspace member without a
//! lockfile of its own asks for the workspace root to be the scratch copy.

use std::path::Path;

use kiln_lifecycle::{BuildpackError, Plan, SOURCE_ROOT_FACT, SOURCE_ROOT_REASON_FACT};

use crate::lockfile::Lockfile;
use crate::package_json::PackageJson;
use crate::package_manager::choose;
use crate::workspace_root;

/// Plan fact: the package manager and version (range) to install with (`pnpm@9`, `npm@*`).
pub const PACKAGE_MANAGER: &str = "node.package-manager";
/// Plan fact: `true` when `packageManager` of package.json named it.
pub const PINNED: &str = "node.package-manager-pinned";
/// Plan fact: the lockfile ([`Lockfile::fact`]), or `none`.
pub const LOCKFILE: &str = "node.lockfile";
/// Plan fact: the app's path in its workspace (`packages/api`), for a workspace member.
pub const MEMBER: &str = "node.workspace-member";

/// Returns a plan if `app_dir` holds a `package.json`, `None` otherwise.
pub(crate) fn detect(app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
    if !app_dir.join("package.json").is_file() {
        return Ok(None);
    }
    let mut plan = Plan::default();
    let mut lockfiles = Lockfile::find(app_dir);
    let mut pkg = PackageJson::read(app_dir)?;
    let mut root = app_dir.to_path_buf();
    let workspace = match lockfiles.is_empty() {
        true => workspace_root::find(app_dir),
        false => None,
    };
    if let Some(ws) = workspace {
        plan.facts
            .insert(SOURCE_ROOT_FACT.to_owned(), vec![".."; ws.levels].join("/"));
        plan.facts.insert(
            SOURCE_ROOT_REASON_FACT.to_owned(),
            format!(
                "a member of the workspace whose lockfile is {}/{}",
                vec![".."; ws.levels].join("/"),
                ws.lockfile.file_name()
            ),
        );
        plan.facts.insert(MEMBER.to_owned(), ws.member);
        lockfiles = vec![ws.lockfile];
        // The root's package.json says which package manager the workspace uses.
        pkg = PackageJson::read(&ws.dir)?;
        root = ws.dir;
    }
    let (spec, lock) = choose(&pkg, &lockfiles, &root)?;
    plan.facts
        .insert(PACKAGE_MANAGER.to_owned(), spec.to_string());
    plan.facts
        .insert(PINNED.to_owned(), spec.pinned.to_string());
    plan.facts.insert(
        LOCKFILE.to_owned(),
        lock.map_or_else(|| "none".to_owned(), Lockfile::fact),
    );
    Ok(Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(files: &[(&str, &str)], app: &str) -> Option<Vec<(String, String)>> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        detect(&dir.path().join(app))
            .unwrap()
            .map(|p| p.facts.into_iter().collect())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lockfiles_and_package_manager_make_the_plan() {
        assert_eq!(
            facts(&[("package.json", "{}"), ("package-lock.json", "{}")], ""),
            Some(pairs(&[
                (LOCKFILE, "package-lock.json"),
                (PACKAGE_MANAGER, "npm@*"),
                (PINNED, "false"),
            ]))
        );
        assert_eq!(
            facts(
                &[
                    ("package.json", r#"{"packageManager":"pnpm@9"}"#),
                    ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
                ],
                ""
            ),
            Some(pairs(&[
                (LOCKFILE, "pnpm-lock.yaml"),
                (PACKAGE_MANAGER, "pnpm@9"),
                (PINNED, "true"),
            ]))
        );
        assert_eq!(
            facts(
                &[
                    ("package.json", "{}"),
                    ("yarn.lock", "# yarn lockfile v1\n")
                ],
                ""
            )
            .unwrap()[0],
            (LOCKFILE.to_owned(), "yarn.lock@v1".to_owned())
        );
        let none = facts(&[("package.json", "{}")], "").unwrap();
        assert!(none.contains(&(LOCKFILE.to_owned(), "none".to_owned())));
    }

    #[test]
    fn others_are_not_detected() {
        assert_eq!(facts(&[("go.mod", "module x\n")], ""), None);
        assert_eq!(facts(&[], ""), None);
    }

    #[test]
    fn a_workspace_member_asks_for_the_root() {
        let got = facts(
            &[
                (
                    "package.json",
                    r#"{"workspaces":["packages/*"],"packageManager":"npm@11.0.0"}"#,
                ),
                ("package-lock.json", "{}"),
                ("packages/api/package.json", "{}"),
            ],
            "packages/api",
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                (LOCKFILE, "package-lock.json"),
                (PACKAGE_MANAGER, "npm@11.0.0"),
                (PINNED, "true"),
                (SOURCE_ROOT_FACT, "../.."),
                (
                    SOURCE_ROOT_REASON_FACT,
                    "a member of the workspace whose lockfile is ../../package-lock.json",
                ),
                (MEMBER, "packages/api"),
            ])
        );
    }
}
