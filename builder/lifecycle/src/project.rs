//! The CNB project descriptor, `project.toml`
//! (<https://github.com/buildpacks/spec/blob/main/extensions/project-descriptor.md>), so pack
//! users keep their files, plus kiln's own `[io.kiln]` table.
//!
//! Both of pack's schemas are read: 0.2 (`[_]`, `[io.buildpacks]` with `include`/`exclude`
//! and `[[io.buildpacks.build.env]]`) and the older 0.1 (`[project]`, `[build]` with
//! `include`/`exclude` and `[[build.env]]`, `[metadata]`). What kiln does not honour is
//! listed in [`ProjectDescriptor::ignored`] for a warning, except a key that would keep
//! files out of the image (`exclude`, `ignore`, ... anywhere kiln does not read it), which
//! is an error: ignoring it could ship what the user meant to keep out.

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
    /// `[io.kiln] base-registry`: where curated bases are pulled from (`registry/bases`, so
    /// `kiln-base/node` is `registry/bases/node`), instead of built from kiln's lock.
    pub base_registry: Option<String>,
    /// `[io.kiln] platforms`: the platforms to build (`linux/amd64`, `linux/arm64`), one
    /// image each under an index when several, unless `--platform` says otherwise.
    pub platforms: Vec<String>,
    /// `[io.kiln] tags`: more references the image gets (`registry/team/app:1.2`).
    pub tags: Vec<String>,
    /// `[io.kiln] labels`: image config labels.
    pub labels: BTreeMap<String, String>,
    /// `[io.kiln] launch-env`: environment the app runs with (not the build's).
    pub launch_env: BTreeMap<String, String>,
    /// `[io.kiln] expose`: ports the app listens on (`8080`, `53/udp`).
    pub expose: Vec<String>,
    /// `[io.kiln] user`: `UID[:GID]` the app runs as.
    pub user: Option<String>,
    /// `[io.kiln] workdir`: the image's working directory.
    pub workdir: Option<String>,
    /// `[io.kiln.<language>]` tables (`go`, `java`, `node`): each buildpack's own settings,
    /// read by the buildpack whose id is `kiln/<language>`.
    pub buildpack_settings: BTreeMap<String, toml::Table>,
    /// Tables and keys kiln read and does not honour (`[[io.buildpacks.group]]`,
    /// `[io.buildpacks] builder`, another platform's table, ...), as dotted names: the
    /// caller warns about each.
    pub ignored: Vec<String>,
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
    /// A key that looks like it keeps files out of the build, where kiln does not read it.
    #[error(
        "`{path}` sets `{key}`, which kiln does not honour; it looks like it keeps files out of the image, so kiln refuses to ignore it"
    )]
    Unhonoured {
        /// The file.
        path: String,
        /// The dotted key.
        key: String,
    },
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
    #[serde(rename = "base-registry")]
    base_registry: Option<String>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, rename = "launch-env")]
    launch_env: BTreeMap<String, String>,
    #[serde(default)]
    expose: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
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
            Self::Unhonoured { .. } => {
                "write it as `[io.buildpacks] exclude = [...]` (or `include`), which kiln honours, or `.dockerignore`"
                    .to_owned()
            }
        }
    }
}

impl ProjectDescriptor {
    /// Reads `<app_dir>/project.toml`; a missing file is an empty descriptor.
    pub fn load(app_dir: &Path) -> Result<Self, ProjectError> {
        Self::read(&app_dir.join("project.toml"), true)
    }

    /// Reads the descriptor `path` names (one kept outside the app, say); it must exist.
    pub fn load_file(path: &Path) -> Result<Self, ProjectError> {
        Self::read(path, false)
    }

    fn read(path: &Path, may_be_missing: bool) -> Result<Self, ProjectError> {
        let text = match crate::read_bounded_string(path, crate::MANIFEST_LIMIT) {
            Ok(t) => t,
            Err(e) if may_be_missing && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
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
        let parse_error = |message: String| ProjectError::Parse {
            path: path.to_string(),
            message,
        };
        let mut root: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(e.message().to_string()))?;
        let mut read = Read::default();
        // Metadata of both schemas: nothing kiln acts on, nothing to warn about.
        for key in ["_", "project", "metadata"] {
            root.remove(key);
        }
        if let Some(build) = take_table(&mut root, "build", "build", path)? {
            read.lists(build, "build", path)?;
        }
        let mut io = take_table(&mut root, "io", "io", path)?.unwrap_or_default();
        if let Some(buildpacks) = take_table(&mut io, "buildpacks", "io.buildpacks", path)? {
            read.lists(buildpacks, "io.buildpacks", path)?;
        }
        let kiln: RawKiln = match io.remove("kiln") {
            Some(v) => v.try_into().map_err(|e: toml::de::Error| {
                parse_error(format!("in `[io.kiln]`: {}", e.message()))
            })?,
            None => RawKiln::default(),
        };
        read.unhonoured(io, "io", path)?;
        read.unhonoured(root, "", path)?;
        if !read.include.is_empty() && !read.exclude.is_empty() {
            return Err(ProjectError::IncludeAndExclude(path.to_string()));
        }
        Ok(Self {
            include: read.include,
            exclude: read.exclude,
            build_env: read.env,
            buildpack_settings: [("go", kiln.go), ("java", kiln.java), ("node", kiln.node)]
                .into_iter()
                .filter_map(|(name, table)| Some((name.to_owned(), table?)))
                .collect(),
            process: kiln.process,
            run_image: kiln.run_image,
            buildpack: kiln.buildpack,
            base_registry: kiln.base_registry,
            platforms: kiln.platforms,
            tags: kiln.tags,
            labels: kiln.labels,
            launch_env: kiln.launch_env,
            expose: kiln.expose,
            user: kiln.user,
            workdir: kiln.workdir,
            ignored: read.ignored,
        })
    }
}

/// What the CNB tables of either schema say.
#[derive(Default)]
struct Read {
    include: Vec<String>,
    exclude: Vec<String>,
    env: BTreeMap<String, String>,
    ignored: Vec<String>,
}

impl Read {
    /// Reads `include`, `exclude` and `build.env` (0.2) or `env` (0.1) of the table at
    /// `at`; what else it holds is [`Read::unhonoured`].
    fn lists(&mut self, mut table: toml::Table, at: &str, path: &str) -> Result<(), ProjectError> {
        let parse = |what: &str, e: toml::de::Error| ProjectError::Parse {
            path: path.to_string(),
            message: format!("in `{at}.{what}`: {}", e.message()),
        };
        for (key, list) in [
            ("include", &mut self.include),
            ("exclude", &mut self.exclude),
        ] {
            if let Some(v) = table.remove(key) {
                list.extend(v.try_into::<Vec<String>>().map_err(|e| parse(key, e))?);
            }
        }
        let env = match table.get_mut("build").and_then(toml::Value::as_table_mut) {
            Some(build) => build.remove("env"),
            None => table.remove("env"),
        };
        if let Some(env) = env {
            let env: Vec<RawEnv> = env.try_into().map_err(|e| parse("env", e))?;
            self.env.extend(env.into_iter().map(|e| (e.name, e.value)));
        }
        if table
            .get("build")
            .and_then(toml::Value::as_table)
            .is_some_and(toml::Table::is_empty)
        {
            table.remove("build");
        }
        self.unhonoured(table, at, path)
    }

    /// Lists every key of `table` (at `at`) as ignored, refusing one that looks like it
    /// keeps files out of the image.
    fn unhonoured(&mut self, table: toml::Table, at: &str, path: &str) -> Result<(), ProjectError> {
        for (key, value) in table {
            let dotted = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            if let toml::Value::Table(inner) = value
                && !inner.is_empty()
            {
                self.unhonoured(inner, &dotted, path)?;
                continue;
            }
            let lower = key.to_ascii_lowercase();
            if ["exclude", "include", "ignore"]
                .iter()
                .any(|k| lower.contains(k))
            {
                return Err(ProjectError::Unhonoured {
                    path: path.to_string(),
                    key: dotted,
                });
            }
            self.ignored.push(dotted);
        }
        Ok(())
    }
}

/// Removes the table `key` (at `at`) of `table` of the file `path`; `None` when absent, an
/// error when not a table.
fn take_table(
    table: &mut toml::Table,
    key: &str,
    at: &str,
    path: &str,
) -> Result<Option<toml::Table>, ProjectError> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(ProjectError::Parse {
            path: path.to_string(),
            message: format!("`{at}` must be a table"),
        }),
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
base-registry = "registry.example.com/bases"
platforms = ["linux/amd64", "linux/arm64"]
tags = ["registry.example.com/team/app:1.2"]
expose = ["8080"]
user = "1000:1000"
workdir = "/workspace/api"
labels = { "org.opencontainers.image.title" = "api" }
launch-env = { GREETING = "hi" }
"#,
            "project.toml",
        )
        .unwrap();
        assert_eq!(p.exclude, vec!["docs/", "*.md"]);
        assert_eq!(
            p.base_registry.as_deref(),
            Some("registry.example.com/bases")
        );
        assert_eq!(p.platforms, vec!["linux/amd64", "linux/arm64"]);
        assert_eq!(p.tags, vec!["registry.example.com/team/app:1.2"]);
        assert_eq!(p.expose, vec!["8080"]);
        assert_eq!(p.user.as_deref(), Some("1000:1000"));
        assert_eq!(p.workdir.as_deref(), Some("/workspace/api"));
        assert_eq!(p.labels["org.opencontainers.image.title"], "api");
        assert_eq!(p.launch_env["GREETING"], "hi");
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

    /// pack's 0.1 schema: `[project]`, `[build]` lists and env, `[metadata]`.
    #[test]
    fn reads_the_legacy_schema() {
        let p = ProjectDescriptor::parse(
            r#"
[project]
id = "io.example.app"
version = "1.0.0"

[build]
exclude = ["secrets/", "*.pem"]
[[build.env]]
name = "GOFLAGS"
value = "-tags=prod"

[metadata]
team = "web"
"#,
            "project.toml",
        )
        .unwrap();
        assert_eq!(p.exclude, ["secrets/", "*.pem"]);
        assert_eq!(p.build_env["GOFLAGS"], "-tags=prod");
        assert!(p.ignored.is_empty(), "{:?}", p.ignored);
    }

    /// What kiln does not implement is named for a warning; a key that would keep files out
    /// of the image where kiln does not read it is an error.
    #[test]
    fn names_what_it_does_not_honour_and_refuses_unread_excludes() {
        let p = ProjectDescriptor::parse(
            r#"
[_]
schema-version = "0.2"
[io.buildpacks]
builder = "paketobuildpacks/builder-jammy-base"
[[io.buildpacks.group]]
uri = "docker://example/buildpack"
[io.buildpacks.build]
verbose = true
[io.heroku]
stack = "heroku-22"
"#,
            "project.toml",
        )
        .unwrap();
        assert_eq!(
            p.ignored,
            [
                "io.buildpacks.build.verbose",
                "io.buildpacks.builder",
                "io.buildpacks.group",
                "io.heroku.stack"
            ]
        );
        for text in [
            "[io.buildpacks.build]\nexclude = [\"secrets/\"]\n",
            "[tool.kiln]\nexcludes = [\"secrets/\"]\n",
            "ignore = [\".env\"]\n",
        ] {
            let err = ProjectDescriptor::parse(text, "project.toml").unwrap_err();
            assert!(
                matches!(err, ProjectError::Unhonoured { .. }),
                "{text}: {err:?}"
            );
        }
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
