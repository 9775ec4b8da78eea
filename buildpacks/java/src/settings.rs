//! The Java buildpack's settings: the `[io.kiln.java]` table of `project.toml` (the CLI lays
//! its flags and environment over it before the build).
//!
//! ```toml
//! [io.kiln.java]
//! maven-args = ["-Pprod", "-DskipTests", "package"]   # replaces `-DskipTests package`
//! jar = "server/target/server-*.jar"                  # which jar is the app
//! main-class = "com.example.Main"                     # for a jar without `Main-Class`
//! maven-settings = "/run/secrets/settings.xml"        # else Maven's own ~/.m2/settings.xml
//! ```

use std::path::{Path, PathBuf};

use kiln_lifecycle::{BuildContext, BuildpackError};
use serde::Deserialize;

/// The goals and flags Maven runs with when `maven-args` is not set.
pub const DEFAULT_MAVEN_ARGS: [&str; 2] = ["-DskipTests", "package"];

/// What `[io.kiln.java]` may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JavaSettings {
    /// Maven goals and flags, in place of `-DskipTests package`. kiln adds `-B`, its local
    /// repository and the reproducible output timestamp in any case.
    pub maven_args: Option<Vec<String>>,
    /// The app's jar, relative to the project; `*` in the file name matches any characters.
    pub jar: Option<String>,
    /// The main class, for a jar whose manifest has no `Main-Class`.
    pub main_class: Option<String>,
    /// A Maven `settings.xml` (relative to the project, or absolute), passed with `--settings`.
    pub maven_settings: Option<PathBuf>,
}

impl JavaSettings {
    /// Reads the settings of the build.
    pub fn of(ctx: &BuildContext<'_>) -> Result<Self, BuildpackError> {
        ctx.settings_as("java")
    }

    /// Returns the Maven goals and flags the user asked for, else the defaults.
    pub fn goals(&self) -> Vec<String> {
        match &self.maven_args {
            Some(args) => args.clone(),
            None => DEFAULT_MAVEN_ARGS.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// Returns the `settings.xml` to pass to Maven, resolved against `app_dir`, after
    /// checking that it exists.
    pub fn maven_settings_file(&self, app_dir: &Path) -> Result<Option<PathBuf>, BuildpackError> {
        let Some(path) = &self.maven_settings else {
            return Ok(None);
        };
        let path = app_dir.join(path);
        if !path.is_file() {
            return Err(BuildpackError::Usage {
                message: format!("the Maven settings file `{}` does not exist", path.display()),
                hint: Some(
                    "fix `maven-settings` in `[io.kiln.java]` of project.toml or `KILN_MAVEN_SETTINGS`"
                        .to_owned(),
                ),
            });
        }
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<JavaSettings, BuildpackError> {
        let table: toml::Table = text.parse().unwrap();
        let ctx = BuildContext {
            app_dir: Path::new("/nonexistent"),
            layers_dir: Path::new("/nonexistent"),
            cache_dir: Path::new("/nonexistent"),
            env: &Default::default(),
            default_process: None,
            workspace: "/workspace",
            output: &|_| {},
            settings: &table,
            sandbox: kiln_lifecycle::Sandbox::unconfined(),
            run_image: None,
            source_stamp: None,
        };
        JavaSettings::of(&ctx)
    }

    #[test]
    fn reads_every_key_and_defaults_the_goals() {
        let s = parse(
            "maven-args = [\"-Pprod\", \"verify\"]\njar = \"a/target/*.jar\"\nmain-class = \"x.Main\"\nmaven-settings = \"ci/settings.xml\"\n",
        )
        .unwrap();
        assert_eq!(s.goals(), ["-Pprod", "verify"]);
        assert_eq!(s.jar.as_deref(), Some("a/target/*.jar"));
        assert_eq!(s.main_class.as_deref(), Some("x.Main"));
        assert_eq!(JavaSettings::default().goals(), ["-DskipTests", "package"]);
    }

    #[test]
    fn an_unknown_key_is_a_usage_error_naming_the_table() {
        let err = parse("maven-flags = [\"-X\"]\n").unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        let text = err.to_string();
        assert!(text.contains("[io.kiln.java]"), "{text}");
        assert!(text.contains("maven-flags"), "{text}");
    }

    #[test]
    fn a_missing_settings_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = JavaSettings {
            maven_settings: Some("nope.xml".into()),
            ..Default::default()
        };
        assert!(matches!(
            s.maven_settings_file(dir.path()),
            Err(BuildpackError::Usage { .. })
        ));
        std::fs::write(dir.path().join("nope.xml"), "<settings/>").unwrap();
        assert_eq!(
            s.maven_settings_file(dir.path()).unwrap(),
            Some(dir.path().join("nope.xml"))
        );
    }
}
