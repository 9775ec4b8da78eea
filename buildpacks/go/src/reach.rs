//! What a Go app reaches above its own directory, so that the build copies the ancestor
//! holding it: an enclosing `go.work` that uses the app (the `go` tool finds it by walking
//! up, as it does on the developer's machine), the directories that `go.work` uses, and the
//! local targets of `replace` directives (`replace example.com/lib => ../lib`). Files only.

use std::path::{Path, PathBuf};

use kiln_lifecycle::relative_path;

use crate::gomod::GoMod;

/// How far up kiln looks for an enclosing `go.work`, and the most levels a build context may
/// be above the app.
const MAX_LEVELS: usize = 8;

/// The ancestor a Go app needs copied with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reach {
    /// How many levels above the app it is.
    pub levels: usize,
    /// What needs it, in the user's words.
    pub reason: String,
}

/// Returns the ancestor of `app_dir` that holds everything its `go.mod` (`module`) and its
/// own or enclosing `go.work` refer to, `None` when the app's directory holds it all. A
/// directory that does not exist, or is more than [`MAX_LEVELS`] up, is left for the `go`
/// tool to report.
pub(crate) fn reach(app_dir: &Path, module: &GoMod, work: Option<&GoMod>) -> Option<Reach> {
    let app = app_dir.canonicalize().ok()?;
    let mut needed: Vec<(PathBuf, String)> = Vec::new();
    let add_replaces = |needed: &mut Vec<(PathBuf, String)>, dir: &Path, file: &str, m: &GoMod| {
        for (module, target) in &m.local_replaces {
            needed.push((
                dir.join(target),
                format!("{file} replaces {module} with {target}"),
            ));
        }
    };
    add_replaces(&mut needed, &app, "go.mod", module);
    let workspace = match work {
        Some(work) => Some((app.clone(), work.clone())),
        None => enclosing_workspace(&app),
    };
    if let Some((dir, work)) = &workspace {
        let file = match dir == &app {
            true => "go.work".to_owned(),
            false => relative_path(&app, &dir.join("go.work")),
        };
        if dir != &app {
            needed.push((dir.clone(), format!("{file} uses the app")));
        }
        add_replaces(&mut needed, dir, &file, work);
        for used in &work.uses {
            let used_dir = dir.join(used);
            needed.push((used_dir.clone(), format!("{file} uses {used}")));
            if let Ok(text) = std::fs::read_to_string(used_dir.join("go.mod")) {
                let label = relative_path(&app, &used_dir.join("go.mod"));
                add_replaces(&mut needed, &used_dir, &label, &GoMod::parse(&text));
            }
        }
    }
    needed
        .into_iter()
        .filter_map(|(path, reason)| {
            let path = path.canonicalize().ok()?;
            let levels = app.ancestors().position(|a| path.starts_with(a))?;
            Some((levels, reason))
        })
        .filter(|(levels, _)| *levels > 0 && *levels <= MAX_LEVELS)
        .filter(|(levels, _)| {
            app.ancestors()
                .nth(*levels)
                .is_some_and(|a| a.parent().is_some())
        })
        // The first reason among the farthest: `max_by_key` keeps the last.
        .rev()
        .max_by_key(|(levels, _)| *levels)
        .map(|(levels, reason)| Reach { levels, reason })
}

/// Returns the nearest ancestor of `app` with a `go.work` that uses `app`, and that file.
/// The search stops at the repository's root (a directory holding `.git`) and after
/// [`MAX_LEVELS`]; a `go.work` that does not use the app ends it too (the `go` tool would
/// refuse to build there, as on the developer's machine).
fn enclosing_workspace(app: &Path) -> Option<(PathBuf, GoMod)> {
    let mut dir = app.to_path_buf();
    for _ in 0..MAX_LEVELS {
        if dir.join(".git").exists() || !dir.pop() {
            return None;
        }
        let Ok(text) = std::fs::read_to_string(dir.join("go.work")) else {
            continue;
        };
        let work = GoMod::parse(&text);
        let uses_app = work
            .uses
            .iter()
            .any(|u| dir.join(u).canonicalize().is_ok_and(|d| d == app));
        return uses_app.then_some((dir, work));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn reach_of(dir: &tempfile::TempDir, app: &str) -> Option<Reach> {
        let app = dir.path().join(app);
        let read = |name: &str| {
            std::fs::read_to_string(app.join(name))
                .ok()
                .map(|t| GoMod::parse(&t))
        };
        reach(
            &app,
            &read("go.mod").unwrap_or_default(),
            read("go.work").as_ref(),
        )
    }

    #[test]
    fn a_replace_outside_the_app_reaches_the_common_ancestor() {
        let dir = tree(&[
            ("repo/.git/HEAD", ""),
            ("repo/lib/go.mod", "module example.com/lib\n"),
            (
                "repo/services/api/go.mod",
                "module example.com/api\nreplace example.com/lib => ../../lib\n",
            ),
        ]);
        assert_eq!(
            reach_of(&dir, "repo/services/api"),
            Some(Reach {
                levels: 2,
                reason: "go.mod replaces example.com/lib with ../../lib".into()
            })
        );
    }

    #[test]
    fn replaces_inside_the_app_missing_ones_and_module_paths_reach_nothing() {
        let dir = tree(&[
            (
                "app/go.mod",
                "module m\nreplace a => ./internal/a\nreplace b => ../gone\nreplace c => example.com/c v1.0.0\n",
            ),
            ("app/internal/a/go.mod", "module a\n"),
        ]);
        assert_eq!(reach_of(&dir, "app"), None);
    }

    #[test]
    fn an_enclosing_go_work_that_uses_the_app_is_the_root() {
        let dir = tree(&[
            ("repo/go.work", "go 1.22\nuse (\n\t./lib\n\t./cmd/web\n)\n"),
            ("repo/lib/go.mod", "module example.com/lib\n"),
            ("repo/cmd/web/go.mod", "module example.com/web\n"),
            ("repo/cmd/other/go.mod", "module example.com/other\n"),
        ]);
        let web = reach_of(&dir, "repo/cmd/web").unwrap();
        assert_eq!(web.levels, 2);
        assert_eq!(web.reason, "../../go.work uses the app");
        // A go.work that does not use the app is not its workspace.
        assert_eq!(reach_of(&dir, "repo/cmd/other"), None);
    }

    #[test]
    fn the_search_for_a_go_work_stops_at_the_repository_root() {
        let dir = tree(&[
            ("go.work", "go 1.22\nuse ./repo/app\n"),
            ("repo/.git/HEAD", ""),
            ("repo/app/go.mod", "module example.com/app\n"),
        ]);
        assert_eq!(reach_of(&dir, "repo/app"), None);
    }

    #[test]
    fn a_go_work_at_the_app_reaches_its_use_and_replace_directories() {
        let dir = tree(&[
            ("top/shared/go.mod", "module example.com/shared\n"),
            ("top/mono/app/go.work", "go 1.22\nuse .\nuse ../../shared\n"),
            ("top/mono/app/go.mod", "module example.com/app\n"),
        ]);
        let got = reach_of(&dir, "top/mono/app").unwrap();
        assert_eq!(got.levels, 2);
        assert_eq!(got.reason, "go.work uses ../../shared");
    }
}
