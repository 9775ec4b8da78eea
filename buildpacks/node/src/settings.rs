//! The Node buildpack's settings: the `[io.kiln.node]` table of `project.toml`.
//!
//! ```toml
//! [io.kiln.node]
//! start = "node dist/server.js"   # the command, when the start script is not plain `node <file>`
//! build-script = "build:prod"     # the package.json script to run instead of `build` ("" for none)
//! ```

use kiln_lifecycle::{BuildContext, BuildpackError};
use serde::Deserialize;

/// The script run when `build-script` is not set (when package.json has it).
pub const DEFAULT_BUILD_SCRIPT: &str = "build";

/// What `[io.kiln.node]` may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeSettings {
    /// The start command: a string split on spaces, or an array of words. It starts with
    /// `node` (the image's `/usr/bin/node`) or an absolute path.
    pub start: Option<Command>,
    /// The package.json script that builds the app, in place of `build`; empty for none.
    pub build_script: Option<String>,
}

/// A command, as a line or as words.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Command {
    /// `"node dist/server.js"`.
    Line(String),
    /// `["node", "dist/server.js"]`.
    Words(Vec<String>),
}

impl NodeSettings {
    /// Reads the settings of the build.
    pub fn of(ctx: &BuildContext<'_>) -> Result<Self, BuildpackError> {
        ctx.settings_as("node")
    }

    /// Returns the start command's words, if set.
    pub fn start_words(&self) -> Option<Vec<String>> {
        self.start.as_ref().map(|c| match c {
            Command::Line(line) => line.split_whitespace().map(str::to_owned).collect(),
            Command::Words(words) => words.clone(),
        })
    }

    /// Returns the build script to run: the setting (none when empty), else `build`.
    pub fn build_script(&self) -> Option<&str> {
        match self.build_script.as_deref() {
            Some("") => None,
            Some(name) => Some(name),
            None => Some(DEFAULT_BUILD_SCRIPT),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<NodeSettings, BuildpackError> {
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
        NodeSettings::of(&ctx)
    }

    #[test]
    fn start_as_a_line_or_words_and_the_build_script() {
        let s = parse("start = \"node  dist/server.js --port 1\"\nbuild-script = \"build:prod\"\n")
            .unwrap();
        assert_eq!(
            s.start_words().unwrap(),
            ["node", "dist/server.js", "--port", "1"]
        );
        assert_eq!(s.build_script(), Some("build:prod"));
        let s = parse("start = [\"node\", \"my app.js\"]\nbuild-script = \"\"\n").unwrap();
        assert_eq!(s.start_words().unwrap(), ["node", "my app.js"]);
        assert_eq!(s.build_script(), None);
        assert_eq!(NodeSettings::default().build_script(), Some("build"));
    }

    #[test]
    fn unknown_keys_are_usage_errors_naming_the_table() {
        let err = parse("entrypoint = \"node x.js\"\n").unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        assert!(err.to_string().contains("[io.kiln.node]"), "{err}");
    }
}
