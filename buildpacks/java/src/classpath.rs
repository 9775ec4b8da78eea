//! The runtime classpath of a jar that does not bundle its dependencies, from Maven itself:
//! kiln adds the dependency plugin's `build-classpath` goal to the build, which writes each
//! module's runtime classpath (in Maven's order) to [`CLASSPATH_FILE`].
//!
//! Each entry becomes a file under `/workspace/lib`: released artifacts from the local
//! repository in a `dependencies` layer, snapshots and the project's own modules in a
//! `snapshot-dependencies` layer (they change with the code). Dependencies the jar already
//! holds (a shaded jar) are left out.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use kiln_lifecycle::BuildpackError;

use crate::failure::with_causes;

/// Where each module's runtime classpath is written, relative to the module.
pub const CLASSPATH_FILE: &str = "target/kiln-classpath.txt";
/// The dependency plugin goal, pinned so builds do not depend on the newest release.
const BUILD_CLASSPATH: &str =
    "org.apache.maven.plugins:maven-dependency-plugin:3.11.0:build-classpath";

/// Returns the goal and flags that make Maven write [`CLASSPATH_FILE`] in every module.
pub fn build_classpath_args() -> Vec<String> {
    vec![
        BUILD_CLASSPATH.to_owned(),
        format!("-Dmdep.outputFile={CLASSPATH_FILE}"),
        "-Dmdep.includeScope=runtime".to_owned(),
    ]
}

/// One jar of the runtime classpath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Where it is on the build host.
    pub path: PathBuf,
    /// Its file name under `/workspace/lib`, unique within the classpath.
    pub name: String,
    /// Whether it changes with the project: a `-SNAPSHOT` or a module of this build.
    pub snapshot: bool,
}

/// Returns the runtime dependencies of `jar` that it does not hold itself, in classpath
/// order. `module_dir` is the Maven module that built the jar, `repository` the local
/// repository; a module without a classpath file has no dependencies.
pub fn runtime_dependencies(
    jar: &Path,
    module_dir: &Path,
    repository: &Path,
) -> Result<Vec<Dependency>, BuildpackError> {
    let file = module_dir.join(CLASSPATH_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BuildpackError::io(
                format!("reading `{}`", file.display()),
                e,
            ));
        }
    };
    let held = entry_names(jar)?;
    let mut names = HashSet::new();
    let mut deps = Vec::new();
    for (i, entry) in text.trim().split(':').filter(|e| !e.is_empty()).enumerate() {
        let path = PathBuf::from(entry);
        if !path.is_file() {
            return Err(BuildpackError::App {
                message: format!(
                    "the runtime classpath of `{}` holds `{entry}`, which is not a jar",
                    module_dir.display()
                ),
                hint: Some(
                    "let Maven package every module the app depends on (run the `package` phase)"
                        .to_owned(),
                ),
            });
        }
        if is_held(&path, &held)? {
            continue;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Two artifacts may share a file name (same artifactId, other groups).
        let name = if names.contains(&file_name) {
            format!("{i}-{file_name}")
        } else {
            file_name
        };
        names.insert(name.clone());
        let snapshot = !path.starts_with(repository) || name.contains("-SNAPSHOT");
        deps.push(Dependency {
            path,
            name,
            snapshot,
        });
    }
    Ok(deps)
}

/// Returns `(groupId, artifactId, version)` of a jar in the local Maven `repository`, read
/// from its path (`<group dirs>/<artifactId>/<version>/<artifactId>-<version>[-classifier].jar`),
/// or `None` for a jar elsewhere (a module of this build).
pub fn maven_coordinates(jar: &Path, repository: &Path) -> Option<(String, String, String)> {
    let rel = jar.strip_prefix(repository).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let [group @ .., artifact, version, file] = parts.as_slice() else {
        return None;
    };
    if group.is_empty() || !file.starts_with(&format!("{artifact}-{version}")) {
        return None;
    }
    Some((
        group.join("."),
        (*artifact).to_owned(),
        (*version).to_owned(),
    ))
}

/// Returns file name → coordinates of every jar of the local `repository` on the runtime
/// classpath `module_dir` recorded (nothing when it recorded none).
pub fn classpath_coordinates(
    module_dir: &Path,
    repository: &Path,
) -> std::collections::BTreeMap<String, (String, String, String)> {
    let text = std::fs::read_to_string(module_dir.join(CLASSPATH_FILE)).unwrap_or_default();
    text.trim()
        .split(':')
        .filter_map(|entry| {
            let path = Path::new(entry);
            let file = path.file_name()?.to_str()?.to_owned();
            Some((file, maven_coordinates(path, repository)?))
        })
        .collect()
}

/// Returns file name → coordinates of every jar in the local `repository`: for jars a
/// Spring Boot jar bundles that are not on the runtime classpath (the plugin adds its own,
/// such as `spring-boot-jarmode-tools`). Walked only when such a jar turns up.
pub fn repository_coordinates(
    repository: &Path,
) -> std::collections::BTreeMap<String, (String, String, String)> {
    let mut found = std::collections::BTreeMap::new();
    let mut stack = vec![repository.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "jar") => {
                    if let (Some(file), Some(gav)) = (
                        path.file_name().and_then(|n| n.to_str()),
                        maven_coordinates(&path, repository),
                    ) {
                        found.entry(file.to_owned()).or_insert(gav);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Returns the coordinates of a jar the Spring Boot Maven plugin adds from inside itself
/// (`spring-boot-jarmode-tools-4.1.2.jar`): no repository path names it, but it is the
/// plugin's own artifact, of the plugin's group and version, when `repository` holds that
/// plugin version.
pub fn spring_boot_plugin_coordinates(
    file: &str,
    repository: &Path,
) -> Option<(String, String, String)> {
    const GROUP: &str = "org.springframework.boot";
    let stem = file.strip_suffix(".jar")?;
    let (artifact, version) = stem.rsplit_once('-')?;
    let plugin = repository
        .join("org/springframework/boot/spring-boot-maven-plugin")
        .join(version);
    (artifact.starts_with("spring-boot-") && plugin.is_dir())
        .then(|| (GROUP.to_owned(), artifact.to_owned(), version.to_owned()))
}

/// Whether `jar` already holds `dep`: its first class (or, for a jar of resources only, its
/// first file) outside `META-INF/` is in `held`.
fn is_held(dep: &Path, held: &BTreeSet<String>) -> Result<bool, BuildpackError> {
    let names = entry_names(dep)?;
    let own = |n: &&String| !n.starts_with("META-INF/") && !n.ends_with('/');
    let probe = names
        .iter()
        .filter(own)
        .find(|n| n.ends_with(".class"))
        .or_else(|| names.iter().find(own));
    Ok(probe.is_some_and(|p| held.contains(p)))
}

fn entry_names(jar: &Path) -> Result<BTreeSet<String>, BuildpackError> {
    let file = std::fs::File::open(jar)
        .map_err(|e| BuildpackError::io(format!("opening `{}`", jar.display()), e))?;
    let archive = zip::ZipArchive::new(file).map_err(|e| BuildpackError::App {
        message: format!("reading jar `{}`: {}", jar.display(), with_causes(&e)),
        hint: None,
    })?;
    Ok(archive.file_names().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::zip_bytes;

    fn jar(path: &Path, entries: &[&str]) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|e| (*e, &b"x"[..])).collect();
        std::fs::write(path, zip_bytes(&entries)).unwrap();
        path.to_path_buf()
    }

    #[test]
    fn coordinates_come_from_the_repository_layout() {
        let repo = Path::new("/r");
        assert_eq!(
            maven_coordinates(
                Path::new("/r/org/springframework/boot/spring-boot/4.1.2/spring-boot-4.1.2.jar"),
                repo
            ),
            Some((
                "org.springframework.boot".into(),
                "spring-boot".into(),
                "4.1.2".into()
            ))
        );
        assert_eq!(
            maven_coordinates(Path::new("/r/g/a/1.0/a-1.0-linux-x86_64.jar"), repo),
            Some(("g".into(), "a".into(), "1.0".into()))
        );
        for outside in [
            "/r/a/1.0/a-1.0.jar",
            "/r/g/a/1.0/b-1.0.jar",
            "/elsewhere/g/a/1.0/a-1.0.jar",
        ] {
            assert_eq!(
                maven_coordinates(Path::new(outside), repo),
                None,
                "{outside}"
            );
        }
    }

    #[test]
    fn classpath_order_layers_and_unique_names() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        let module = root.path().join("app/server");
        let app = jar(
            &module.join("target/server.jar"),
            &["META-INF/MANIFEST.MF", "s/Main.class"],
        );
        let lang = jar(
            &repo.join("org/a/util/1.0/util-1.0.jar"),
            &["org/a/U.class"],
        );
        let other = jar(
            &repo.join("org/b/util/1.0/util-1.0.jar"),
            &["org/b/U.class"],
        );
        let snap = jar(
            &repo.join("org/c/c/2-SNAPSHOT/c-2-SNAPSHOT.jar"),
            &["c/C.class"],
        );
        let sibling = jar(
            &root.path().join("app/greeting/target/greeting-1.jar"),
            &["g/G.class"],
        );
        let cp = [&sibling, &lang, &other, &snap]
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        std::fs::write(module.join(CLASSPATH_FILE), cp).unwrap();
        let deps = runtime_dependencies(&app, &module, &repo).unwrap();
        let got: Vec<(&str, bool)> = deps.iter().map(|d| (d.name.as_str(), d.snapshot)).collect();
        assert_eq!(
            got,
            [
                ("greeting-1.jar", true),
                ("util-1.0.jar", false),
                ("2-util-1.0.jar", false),
                ("c-2-SNAPSHOT.jar", true),
            ]
        );
        assert_eq!(deps[2].path, other);
    }

    #[test]
    fn dependencies_a_shaded_jar_holds_are_left_out() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        let module = root.path().join("app");
        let app = jar(
            &module.join("target/app.jar"),
            &["META-INF/MANIFEST.MF", "app/Main.class", "org/a/U.class"],
        );
        let shaded = jar(
            &repo.join("org/a/u/1/u-1.jar"),
            &["META-INF/MANIFEST.MF", "org/a/U.class"],
        );
        let kept = jar(&repo.join("org/b/v/1/v-1.jar"), &["org/b/V.class"]);
        std::fs::write(
            module.join(CLASSPATH_FILE),
            format!("{}:{}\n", shaded.display(), kept.display()),
        )
        .unwrap();
        let deps = runtime_dependencies(&app, &module, &repo).unwrap();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].name, "v-1.jar");
    }

    #[test]
    fn no_classpath_file_means_no_dependencies_and_a_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let app = jar(&root.path().join("target/app.jar"), &["a/A.class"]);
        assert!(
            runtime_dependencies(&app, root.path(), root.path())
                .unwrap()
                .is_empty()
        );
        std::fs::create_dir_all(root.path().join("other/target/classes")).unwrap();
        std::fs::write(
            root.path().join(CLASSPATH_FILE),
            root.path()
                .join("other/target/classes")
                .display()
                .to_string(),
        )
        .unwrap();
        let err = runtime_dependencies(&app, root.path(), root.path()).unwrap_err();
        assert!(err.to_string().contains("not a jar"), "{err}");
    }
}
