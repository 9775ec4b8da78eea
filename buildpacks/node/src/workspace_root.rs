//! Workspace members: a package whose lockfile lives at an ancestor that declares it as a
//! workspace (npm and yarn `workspaces` in package.json, pnpm's `pnpm-workspace.yaml`).
//! Files only.

use std::path::{Path, PathBuf};

use crate::lockfile::Lockfile;
use crate::package_json::PackageJson;

/// How far up kiln looks for the workspace root of a package without a lockfile.
const MAX_LEVELS: usize = 8;

/// A workspace root above the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceRoot {
    /// The root directory.
    pub dir: PathBuf,
    /// How many levels above the app it is.
    pub levels: usize,
    /// The app's path relative to the root, `/`-separated (`packages/api`).
    pub member: String,
    /// The root's lockfile.
    pub lockfile: Lockfile,
}

/// Returns the nearest ancestor of `app_dir` with a lockfile whose workspace globs include
/// `app_dir`. The search stops at a directory holding `.git` (the repository's root) and
/// after [`MAX_LEVELS`] levels; an ancestor with a lockfile that does not list the app ends
/// it too, since the app is then not part of that project.
pub fn find(app_dir: &Path) -> Option<WorkspaceRoot> {
    let mut dir = app_dir.to_path_buf();
    for levels in 1..=MAX_LEVELS {
        let stop_here = dir.join(".git").exists();
        if stop_here || !dir.pop() {
            return None;
        }
        if let Some(lockfile) = Lockfile::find(&dir).into_iter().next() {
            let member = app_dir
                .strip_prefix(&dir)
                .ok()?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let globs = member_globs(&dir);
            return matches_any(&globs, &member).then_some(WorkspaceRoot {
                dir,
                levels,
                member,
                lockfile,
            });
        }
    }
    None
}

/// Returns the workspace globs of the root at `dir`: `workspaces` of its package.json, and
/// the `packages` list of a `pnpm-workspace.yaml`.
pub fn member_globs(dir: &Path) -> Vec<String> {
    let mut globs = PackageJson::read(dir)
        .map(|p| p.workspaces)
        .unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(dir.join("pnpm-workspace.yaml")) {
        globs.extend(pnpm_workspace_packages(&text));
    }
    globs
}

/// Returns the `packages:` list of a `pnpm-workspace.yaml` (block-style list of plain or
/// quoted scalars, which is what pnpm documents and writes).
fn pnpm_workspace_packages(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let content = line.split(" #").next().unwrap_or_default().trim_end();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t', '-']) {
            inside = content.trim() == "packages:";
            continue;
        }
        if let Some(item) = content.trim().strip_prefix('-').filter(|_| inside) {
            let item = item.trim().trim_matches(|c| c == '\'' || c == '"');
            if !item.is_empty() {
                out.push(item.to_owned());
            }
        }
    }
    out
}

/// Returns whether `path` (`/`-separated, relative) matches the globs, negations (`!x`)
/// taken in order as npm and pnpm do: the last matching glob decides.
pub fn matches_any(globs: &[String], path: &str) -> bool {
    let mut matched = false;
    for glob in globs {
        let (negated, glob) = match glob.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, glob.as_str()),
        };
        let glob = glob.trim_start_matches("./").trim_end_matches('/');
        if glob_matches(glob, path) {
            matched = !negated;
        }
    }
    matched
}

/// Matches `/`-separated segments: `**` any number of segments, `*` and `?` within one.
fn glob_matches(glob: &str, path: &str) -> bool {
    let g: Vec<&str> = glob.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments_match(&g, &p)
}

fn segments_match(g: &[&str], p: &[&str]) -> bool {
    match (g.first(), p.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            segments_match(&g[1..], p) || (!p.is_empty() && segments_match(g, &p[1..]))
        }
        (Some(s), Some(seg)) => {
            segment_matches(s.as_bytes(), seg.as_bytes()) && segments_match(&g[1..], &p[1..])
        }
        _ => false,
    }
}

fn segment_matches(g: &[u8], s: &[u8]) -> bool {
    match (g.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment_matches(&g[1..], s) || (!s.is_empty() && segment_matches(g, &s[1..]))
        }
        (Some(b'?'), Some(_)) => segment_matches(&g[1..], &s[1..]),
        (Some(a), Some(b)) => a == b && segment_matches(&g[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn globs_match_like_npm_workspaces() {
        let g = |globs: &[&str], path| {
            matches_any(
                &globs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                path,
            )
        };
        assert!(g(&["packages/*"], "packages/api"));
        assert!(!g(&["packages/*"], "packages/api/sub"));
        assert!(g(&["apps/**"], "apps/web/site"));
        assert!(g(&["./packages/api/"], "packages/api"));
        assert!(g(&["pkg-?"], "pkg-a"));
        assert!(!g(&["packages/*", "!packages/api"], "packages/api"));
        assert!(g(
            &["packages/*", "!packages/api", "packages/api"],
            "packages/api"
        ));
        assert!(!g(&[], "packages/api"));
    }

    #[test]
    fn reads_pnpm_workspace_yaml() {
        let text = "# pnpm\npackages:\n  - 'apps/*'\n  - \"libs/**\"\n  - tools # inline comment\n  - '!**/test/**'\ncatalog:\n  - nope\n";
        assert_eq!(
            pnpm_workspace_packages(text),
            ["apps/*", "libs/**", "tools", "!**/test/**"]
        );
    }

    #[test]
    fn finds_the_root_that_lists_the_member() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        write(
            &root,
            &[
                ("package.json", r#"{"workspaces":["packages/*"]}"#),
                ("package-lock.json", "{}"),
                ("packages/api/package.json", "{}"),
                ("tools/x/package.json", "{}"),
            ],
        );
        let found = find(&root.join("packages/api")).unwrap();
        assert_eq!(found.dir, root);
        assert_eq!(found.levels, 2);
        assert_eq!(found.member, "packages/api");
        assert_eq!(found.lockfile, Lockfile::PackageLock);
        assert_eq!(find(&root.join("tools/x")), None, "not a member");

        // pnpm's own file lists the members.
        let pnpm = tmp.path().join("pnpm");
        write(
            &pnpm,
            &[
                ("package.json", "{}"),
                ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
                ("pnpm-workspace.yaml", "packages:\n  - apps/*\n"),
                ("apps/web/package.json", "{}"),
            ],
        );
        assert_eq!(
            find(&pnpm.join("apps/web")).unwrap().lockfile,
            Lockfile::Pnpm
        );
    }

    #[test]
    fn stops_at_the_repository_root() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            &[
                ("package.json", r#"{"workspaces":["repo/app"]}"#),
                ("package-lock.json", "{}"),
                ("repo/.git/HEAD", "ref: refs/heads/main\n"),
                ("repo/app/package.json", "{}"),
            ],
        );
        assert_eq!(find(&tmp.path().join("repo/app")), None);
    }
}
