//! The CNB project descriptor, `project.toml`
//! (<https://github.com/buildpacks/spec/blob/main/extensions/project-descriptor.md>), so pack
//! users keep their files, plus kiln's own `[io.kiln]` table.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// What kiln uses from `project.toml`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectDescriptor {
    /// `[io.buildpacks] include`: if non-empty, only these gitignore-style patterns enter the build.
    pub include: Vec<String>,
    /// `[io.buildpacks] exclude`: gitignore-style patterns kept out of the build.
    pub exclude: Vec<String>,
    /// `[[io.buildpacks.build.env]]`: build-time environment for the toolchain.
    pub build_env: BTreeMap<String, String>,
    /// `[io.kiln] process`: the default process when the app has several.
    pub process: Option<String>,
    /// `[io.kiln] run-image`: the run image, unless `--run-image` says otherwise.
    pub run_image: Option<String>,
    /// `[io.kiln] buildpack`: the buildpack to use when several detect the app.
    pub buildpack: Option<String>,
    /// `[io.kiln.<language>]` tables (`go`, `java`, `node`): each buildpack's own settings,
    /// read by the buildpack whose id is `kiln/<language>`.
    pub buildpack_settings: BTreeMap<String, toml::Table>,
}

/// Why `project.toml` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file exists but could not be read (or is larger than any real one).
    #[error("reading `{path}`")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("parsing `{path}`: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// Both `include` and `exclude` are set, which the CNB spec forbids.
    #[error(
        "`{0}` sets both `io.buildpacks.include` and `io.buildpacks.exclude`; the project descriptor spec allows only one"
    )]
    IncludeAndExclude(String),
}

#[derive(Deserialize, Default)]
struct Raw {
    #[serde(default)]
    io: RawIo,
}

#[derive(Deserialize, Default)]
struct RawIo {
    #[serde(default)]
    buildpacks: RawBuildpacks,
    #[serde(default)]
    kiln: RawKiln,
}

#[derive(Deserialize, Default)]
struct RawBuildpacks {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    build: RawBuild,
}

#[derive(Deserialize, Default)]
struct RawBuild {
    #[serde(default)]
    env: Vec<RawEnv>,
}

#[derive(Deserialize)]
struct RawEnv {
    name: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKiln {
    process: Option<String>,
    #[serde(rename = "run-image")]
    run_image: Option<String>,
    buildpack: Option<String>,
    go: Option<toml::Table>,
    java: Option<toml::Table>,
    node: Option<toml::Table>,
}

impl ProjectError {
    /// Returns the next step for the user.
    pub fn hint(&self) -> String {
        match self {
            Self::Io { path, .. } => {
                format!("check `{path}`, the project descriptor; remove it if it is not one")
            }
            Self::Parse { .. } => {
                "fix the TOML (the CNB project descriptor format, with kiln's `[io.kiln]` tables)"
                    .to_owned()
            }
            Self::IncludeAndExclude(_) => "keep only one of the two lists".to_owned(),
        }
    }
}

impl ProjectDescriptor {
    /// Reads `<app_dir>/project.toml`; a missing file is an empty descriptor.
    pub fn load(app_dir: &Path) -> Result<Self, ProjectError> {
        let path = app_dir.join("project.toml");
        let text = match crate::read_bounded_string(&path, crate::MANIFEST_LIMIT) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ProjectError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a `project.toml`; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, ProjectError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ProjectError::Parse {
            path: path.to_string(),
            message: e.message().to_string(),
        })?;
        let bp = raw.io.buildpacks;
        if !bp.include.is_empty() && !bp.exclude.is_empty() {
            return Err(ProjectError::IncludeAndExclude(path.to_string()));
        }
        Ok(Self {
            include: bp.include,
            exclude: bp.exclude,
            build_env: bp
                .build
                .env
                .into_iter()
                .map(|e| (e.name, e.value))
                .collect(),
            buildpack_settings: [
                ("go", raw.io.kiln.go),
                ("java", raw.io.kiln.java),
                ("node", raw.io.kiln.node),
            ]
            .into_iter()
            .filter_map(|(name, table)| Some((name.to_owned(), table?)))
            .collect(),
            process: raw.io.kiln.process,
            run_image: raw.io.kiln.run_image,
            buildpack: raw.io.kiln.buildpack,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cnb_and_kiln_tables() {
        let p = ProjectDescriptor::parse(
            r#"
[_]
id = "my-app"
schema-version = "0.2"

[io.buildpacks]
exclude = ["docs/", "*.md"]

[[io.buildpacks.build.env]]
name = "GOFLAGS"
value = "-tags=prod"

[io.kiln]
process = "api"
run-image = "registry.example.com/bases/static:13"
buildpack = "kiln/go"
"#,
            "project.toml",
        )
        .unwrap();
        assert_eq!(p.exclude, vec!["docs/", "*.md"]);
        assert_eq!(p.build_env["GOFLAGS"], "-tags=prod");
        assert_eq!(p.process.as_deref(), Some("api"));
        assert_eq!(
            p.run_image.as_deref(),
            Some("registry.example.com/bases/static:13")
        );
        assert_eq!(p.buildpack.as_deref(), Some("kiln/go"));
    }

    #[test]
    fn keeps_each_language_table_for_its_buildpack() {
        let p = ProjectDescriptor::parse(
            "[io.kiln.java]\njar = \"app/target/app.jar\"\nmaven-args = [\"-Pprod\", \"package\"]\n",
            "project.toml",
        )
        .unwrap();
        let java = &p.buildpack_settings["java"];
        assert_eq!(java["jar"].as_str(), Some("app/target/app.jar"));
        assert_eq!(java["maven-args"].as_array().map(Vec::len), Some(2));
        assert!(!p.buildpack_settings.contains_key("go"));
        assert!(matches!(
            ProjectDescriptor::parse("[io.kiln.python]\nx = 1", "p"),
            Err(ProjectError::Parse { .. })
        ));
    }

    #[test]
    fn refuses_include_with_exclude_and_bad_toml() {
        let both = "[io.buildpacks]\ninclude=[\"a\"]\nexclude=[\"b\"]\n";
        assert!(matches!(
            ProjectDescriptor::parse(both, "p"),
            Err(ProjectError::IncludeAndExclude(_))
        ));
        assert!(matches!(
            ProjectDescriptor::parse("[io.kiln]\nproces = 1", "p"),
            Err(ProjectError::Parse { .. })
        ));
    }

    /// B04: 100,000 levels of arrays, inline tables, dotted keys or table-header keys are
    /// a parse error naming the file (the TOML parser's recursion limit), not a stack overflow.
    #[test]
    fn b04_deeply_nested_project_toml_is_an_error_not_a_stack_overflow() {
        let n = 100_000;
        for text in [
            format!("a = {}{}", "[".repeat(n), "]".repeat(n)),
            format!("a = {}1{}", "{b = ".repeat(n), "}".repeat(n)),
            format!("[io.kiln.node]\n{}= 1\n", "a.".repeat(n)),
            format!("[io.kiln.node.{}]\n", vec!["a"; n].join(".")),
        ] {
            let err = ProjectDescriptor::parse(&text, "/src/project.toml").unwrap_err();
            assert!(matches!(err, ProjectError::Parse { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.starts_with("parsing `/src/project.toml`") && text.contains("recursion limit"),
                "{text}"
            );
        }
    }

    /// B04: a `project.toml` that is not UTF-8 (TOML must be) is refused naming the file.
    #[test]
    fn b04_a_project_toml_that_is_not_utf8_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("project.toml"),
            b"[io.kiln]\nprocess = \"caf\xe9\"\n",
        )
        .unwrap();
        let err = ProjectDescriptor::load(dir.path()).unwrap_err();
        let ProjectError::Io { path, source } = &err else {
            panic!("{err:?}")
        };
        assert!(path.ends_with("/project.toml"), "{path}");
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
        assert!(source.to_string().contains("invalid utf-8"), "{source}");
    }
}
