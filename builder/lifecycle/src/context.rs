//! The build context: the directory kiln copies into the scratch dir. The app's source
//! directory, unless the app refers to files above it (a Go `replace ../lib` or an enclosing
//! `go.work`, a member of an npm/pnpm/Yarn workspace, a Maven parent POM): then the
//! ancestor its buildpack asks for ([`SOURCE_ROOT_FACT`]), or the one the user names.

use std::path::{Component, Path, PathBuf};

use crate::{Plan, SOURCE_ROOT_FACT};

/// Why the build context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context, or the source dir, does not exist.
    #[error("reading `{}`", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The context named does not hold the app.
    #[error("the build context `{}` does not hold the app `{}`", context.display(), app.display())]
    OutsideContext {
        /// The context named.
        context: PathBuf,
        /// The app's source dir.
        app: PathBuf,
    },
    /// The app refers to a directory above the context named.
    #[error(
        "the app refers to `{}`, above the build context `{}`: {why}",
        needed.display(),
        context.display()
    )]
    TooNarrow {
        /// The context named.
        context: PathBuf,
        /// The directory the buildpack needs.
        needed: PathBuf,
        /// What needs it.
        why: String,
    },
    /// The buildpack asked for an ancestor that is no ancestor.
    #[error("the buildpack asked for the source root `{asked}`, which {why}")]
    BadRoot {
        /// What it asked for.
        asked: String,
        /// Why that does not work.
        why: &'static str,
    },
}

/// The directory to copy, and the app inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRoot {
    /// The directory to copy (absolute, canonical).
    pub root: PathBuf,
    /// The app's path inside it (empty when the app is the root).
    pub member: PathBuf,
}

/// Returns what to copy for the app at `source` with `plan`: `context` when given (it must
/// hold the app and whatever the buildpack asked for), else the ancestor the buildpack asked
/// for, else the source itself.
pub fn source_root(
    source: &Path,
    plan: &Plan,
    context: Option<&Path>,
) -> Result<SourceRoot, ContextError> {
    let canonical = |path: &Path| {
        path.canonicalize().map_err(|source| ContextError::Missing {
            path: path.to_path_buf(),
            source,
        })
    };
    let app = canonical(source)?;
    let asked = match plan.facts.get(SOURCE_ROOT_FACT) {
        Some(up) => Some(ancestor(&app, up)?),
        None => None,
    };
    let root = match context {
        Some(context) => {
            let context = canonical(context)?;
            if !app.starts_with(&context) {
                return Err(ContextError::OutsideContext {
                    context,
                    app: app.clone(),
                });
            }
            if let Some(needed) = asked.filter(|needed| !needed.starts_with(&context)) {
                let why = plan
                    .facts
                    .get(crate::SOURCE_ROOT_REASON_FACT)
                    .cloned()
                    .unwrap_or_else(|| "its buildpack needs it".to_owned());
                return Err(ContextError::TooNarrow {
                    context,
                    needed,
                    why,
                });
            }
            context
        }
        None => asked.unwrap_or_else(|| app.clone()),
    };
    let member = app
        .strip_prefix(&root)
        .expect("the root is an ancestor of the app")
        .to_path_buf();
    Ok(SourceRoot { root, member })
}

/// Returns the ancestor of `app` that `up` (`../..`) names.
fn ancestor(app: &Path, up: &str) -> Result<PathBuf, ContextError> {
    let bad = |why| ContextError::BadRoot {
        asked: up.to_owned(),
        why,
    };
    let levels = Path::new(up).components().count();
    if up.is_empty()
        || !Path::new(up)
            .components()
            .all(|c| c == Component::ParentDir)
    {
        return Err(bad("is not a path of `..` components"));
    }
    match app.ancestors().nth(levels) {
        Some(root) if root.parent().is_some() => Ok(root.to_path_buf()),
        _ => Err(bad("is the file system root or above it")),
    }
}

/// Returns `path` as seen from the directory `from`, `..`-style (`../../go.work`): for
/// messages that name what an app refers to above itself.
pub fn relative_path(from: &Path, path: &Path) -> String {
    let common = from
        .ancestors()
        .find(|a| path.starts_with(a))
        .unwrap_or(Path::new("/"));
    let ups = from
        .strip_prefix(common)
        .map_or(0, |rest| rest.components().count());
    let mut out: Vec<String> = vec!["..".to_owned(); ups];
    out.extend(
        path.strip_prefix(common)
            .unwrap_or(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            }),
    );
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(facts: &[(&str, &str)]) -> Plan {
        let mut plan = Plan::default();
        for (k, v) in facts {
            plan.facts.insert((*k).to_owned(), (*v).to_owned());
        }
        plan
    }

    #[test]
    fn relative_paths_climb_then_descend() {
        let app = Path::new("/src/repo/services/api");
        assert_eq!(
            relative_path(app, Path::new("/src/repo/go.work")),
            "../../go.work"
        );
        assert_eq!(
            relative_path(app, Path::new("/src/repo/services/api/x")),
            "x"
        );
        assert_eq!(
            relative_path(app, Path::new("/other/pom.xml")),
            "../../../../other/pom.xml"
        );
    }

    #[test]
    fn the_root_is_the_source_the_buildpacks_ancestor_or_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().canonicalize().unwrap();
        let app = top.join("repo/services/api");
        std::fs::create_dir_all(&app).unwrap();
        let alone = source_root(&app, &Plan::default(), None).unwrap();
        assert_eq!(alone.root, app);
        assert_eq!(alone.member, PathBuf::new());

        let up = plan(&[(SOURCE_ROOT_FACT, "../..")]);
        let asked = source_root(&app, &up, None).unwrap();
        assert_eq!(asked.root, top.join("repo"));
        assert_eq!(asked.member, Path::new("services/api"));

        let wider = source_root(&app, &up, Some(&top)).unwrap();
        assert_eq!(wider.root, top);
        assert_eq!(wider.member, Path::new("repo/services/api"));

        let narrow = source_root(&app, &up, Some(&top.join("repo/services"))).unwrap_err();
        assert!(matches!(narrow, ContextError::TooNarrow { .. }), "{narrow}");
        let beside = source_root(
            &app,
            &Plan::default(),
            Some(&top.join("repo/services/api/..")),
        );
        assert_eq!(beside.unwrap().member, Path::new("api"));
        std::fs::create_dir_all(top.join("other")).unwrap();
        let outside = source_root(&app, &Plan::default(), Some(&top.join("other"))).unwrap_err();
        assert!(
            matches!(outside, ContextError::OutsideContext { .. }),
            "{outside}"
        );
        for bad in ["", "../x", "/"] {
            let err = source_root(&app, &plan(&[(SOURCE_ROOT_FACT, bad)]), None).unwrap_err();
            assert!(matches!(err, ContextError::BadRoot { .. }), "{bad}: {err}");
        }
    }
}
