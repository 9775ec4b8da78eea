//! Which jar is the app: the one the `jar` setting names, else the one runnable jar the build
//! left under a module's `target/`. Several candidates, or none, is an error that names them
//! and the setting that picks one.

use std::path::{Path, PathBuf};

use kiln_lifecycle::BuildpackError;

use crate::jar::{JarKind, inspect};

/// How deep under the project kiln looks for Maven modules.
const MAX_MODULE_DEPTH: usize = 6;
/// Jars Maven attaches beside the app that are never the app.
const NOT_THE_APP: [&str; 4] = [
    "-sources.jar",
    "-javadoc.jar",
    "-tests.jar",
    "-test-sources.jar",
];

/// Returns the app's jar: see the module docs. `pattern` is the `jar` setting.
pub(crate) fn select_jar(app_dir: &Path, pattern: Option<&str>) -> Result<PathBuf, BuildpackError> {
    let built = built_jars(app_dir);
    if let Some(pattern) = pattern {
        return by_pattern(app_dir, pattern, &built);
    }
    let runnable: Vec<&PathBuf> = built
        .iter()
        .filter(|j| {
            matches!(
                inspect(j),
                Ok(JarKind::SpringBoot { .. } | JarKind::Executable { .. })
            )
        })
        .collect();
    match (runnable.as_slice(), built.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [one]) => Ok(one.clone()),
        ([], []) => Err(BuildpackError::App {
            message: "the Maven build produced no jar under `target/` of the project or its modules"
                .to_owned(),
            hint: Some(
                "check `<packaging>jar</packaging>` (the default) in pom.xml, or name the jar: `[io.kiln.java] jar = \"PATH\"` in project.toml"
                    .to_owned(),
            ),
        }),
        ([], many) => Err(several(app_dir, "none of them has a `Main-Class`", many)),
        (many, _) => Err(several(
            app_dir,
            "several are runnable",
            &many.iter().map(|p| (*p).clone()).collect::<Vec<_>>(),
        )),
    }
}

/// The jars under `<module>/target/` of every Maven module (a directory with a `pom.xml`),
/// sorted, leaving out sources, javadoc and test jars.
fn built_jars(app_dir: &Path) -> Vec<PathBuf> {
    let mut modules = Vec::new();
    find_modules(app_dir, 0, &mut modules);
    let mut jars: Vec<PathBuf> = modules
        .iter()
        .flat_map(|m| jars_in(&m.join("target")))
        .collect();
    jars.sort();
    jars
}

fn find_modules(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("pom.xml").is_file() {
        out.push(dir.to_path_buf());
    }
    if depth == MAX_MODULE_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && !name.starts_with('.')
            && !["target", "src", "node_modules"].contains(&name.as_ref())
        {
            find_modules(&entry.path(), depth + 1, out);
        }
    }
}

fn jars_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            p.is_file() && name.ends_with(".jar") && !NOT_THE_APP.iter().any(|s| name.ends_with(s))
        })
        .collect()
}

/// The one file `pattern` (relative to the project, `*` in its file name) names.
fn by_pattern(app_dir: &Path, pattern: &str, built: &[PathBuf]) -> Result<PathBuf, BuildpackError> {
    let relative = Path::new(pattern);
    if relative.is_absolute() || relative.components().any(|c| c.as_os_str() == "..") {
        return Err(BuildpackError::Usage {
            message: format!(
                "`[io.kiln.java] jar = \"{pattern}\"` must be a path inside the project"
            ),
            hint: Some(
                "name the jar relative to the project directory, e.g. `server/target/server-*.jar`"
                    .to_owned(),
            ),
        });
    }
    let file_pattern = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = app_dir.join(relative.parent().unwrap_or(Path::new("")));
    let mut matches: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard_match(&file_pattern, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    matches.sort();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(BuildpackError::Usage {
            message: format!(
                "`[io.kiln.java] jar = \"{pattern}\"` matches no file after the Maven build; it built: {}",
                list(app_dir, built)
            ),
            hint: Some("set `jar` to one of the built jars".to_owned()),
        }),
        many => Err(BuildpackError::Usage {
            message: format!(
                "`[io.kiln.java] jar = \"{pattern}\"` matches several files: {}",
                list(app_dir, many)
            ),
            hint: Some("make the pattern match exactly one jar".to_owned()),
        }),
    }
}

fn several(app_dir: &Path, why: &str, jars: &[PathBuf]) -> BuildpackError {
    let first = jars[0].strip_prefix(app_dir).unwrap_or(&jars[0]);
    BuildpackError::Usage {
        message: format!(
            "the Maven build produced several jars and {why}, so kiln cannot tell which is the app: {}",
            list(app_dir, jars)
        ),
        hint: Some(format!(
            "pick one in project.toml: `[io.kiln.java] jar = \"{}\"` (and `main-class = \"...\"` if it has no `Main-Class`)",
            first.display()
        )),
    }
}

fn list(app_dir: &Path, jars: &[PathBuf]) -> String {
    if jars.is_empty() {
        return "no jar".to_owned();
    }
    jars.iter()
        .map(|p| format!("`{}`", p.strip_prefix(app_dir).unwrap_or(p).display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::zip_bytes;

    fn manifest(main: Option<&str>) -> Vec<u8> {
        let mut m = "Manifest-Version: 1.0\r\n".to_owned();
        if let Some(main) = main {
            m.push_str(&format!("Main-Class: {main}\r\n"));
        }
        m.into_bytes()
    }

    fn jar(path: &Path, main: Option<&str>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            zip_bytes(&[("META-INF/MANIFEST.MF", &manifest(main))]),
        )
        .unwrap();
    }

    fn project(modules: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pom.xml"), "<project/>").unwrap();
        for m in modules {
            std::fs::create_dir_all(dir.path().join(m)).unwrap();
            std::fs::write(dir.path().join(m).join("pom.xml"), "<project/>").unwrap();
        }
        dir
    }

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_match("app-*.jar", "app-1.0.jar"));
        assert!(wildcard_match("*.jar", "x.jar"));
        assert!(wildcard_match("app.jar", "app.jar"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("app-*.jar", "app-1.0.jar.original"));
        assert!(!wildcard_match("a*a", "a"));
        assert!(!wildcard_match("app.jar", "app.jarx"));
    }

    #[test]
    fn the_one_runnable_jar_of_a_multi_module_build_is_the_app() {
        let p = project(&["lib", "services/api"]);
        jar(&p.path().join("lib/target/lib-1.0.jar"), None);
        jar(
            &p.path().join("services/api/target/api-1.0.jar"),
            Some("x.Main"),
        );
        jar(
            &p.path().join("services/api/target/api-1.0-sources.jar"),
            None,
        );
        assert_eq!(
            select_jar(p.path(), None).unwrap(),
            p.path().join("services/api/target/api-1.0.jar")
        );
    }

    #[test]
    fn a_lone_plain_jar_is_the_app() {
        let p = project(&[]);
        jar(&p.path().join("target/app-1.0.jar"), None);
        assert_eq!(
            select_jar(p.path(), None).unwrap(),
            p.path().join("target/app-1.0.jar")
        );
    }

    #[test]
    fn several_candidates_are_named_with_the_setting_that_picks_one() {
        let p = project(&["a", "b"]);
        jar(&p.path().join("a/target/a.jar"), Some("a.Main"));
        jar(&p.path().join("b/target/b.jar"), Some("b.Main"));
        let err = select_jar(p.path(), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`a/target/a.jar`, `b/target/b.jar`"),
            "{text}"
        );
        assert_eq!(
            err.hint(),
            Some(
                "pick one in project.toml: `[io.kiln.java] jar = \"a/target/a.jar\"` (and `main-class = \"...\"` if it has no `Main-Class`)"
            )
        );
        assert_eq!(
            select_jar(p.path(), Some("b/target/*.jar")).unwrap(),
            p.path().join("b/target/b.jar")
        );
        // Several plain jars: the same error.
        let q = project(&["x", "y"]);
        jar(&q.path().join("x/target/x.jar"), None);
        jar(&q.path().join("y/target/y.jar"), None);
        assert!(
            select_jar(q.path(), None)
                .unwrap_err()
                .to_string()
                .contains("`Main-Class`")
        );
    }

    #[test]
    fn no_jar_and_bad_patterns_are_errors() {
        let p = project(&[]);
        assert!(matches!(
            select_jar(p.path(), None),
            Err(BuildpackError::App { .. })
        ));
        jar(&p.path().join("target/a-1.jar"), Some("a.Main"));
        jar(&p.path().join("target/a-2.jar"), Some("a.Main"));
        for bad in [
            "../x.jar",
            "/etc/x.jar",
            "target/none-*.jar",
            "target/a-*.jar",
        ] {
            let err = select_jar(p.path(), Some(bad)).unwrap_err();
            assert!(matches!(err, BuildpackError::Usage { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }
}
