//! The start command: `node` run directly (no shell, no npm in the image), so signals reach
//! the app as PID 1. From the `start` setting, else `scripts.start` when it is a plain
//! `node <file>`, else `main`, else `server.js` or `index.js`.

use std::path::Path;

use kiln_lifecycle::BuildpackError;

use crate::package_json::PackageJson;

/// Where the golden bases have `node` (Debian's `nodejs`).
pub const NODE: &str = "/usr/bin/node";

/// Characters that make a script line shell syntax rather than one command.
const SHELL_SYNTAX: &[char] = &[
    '&', '|', ';', '<', '>', '$', '`', '\'', '"', '\\', '(', ')', '*', '?', '[', '{', '~', '#',
    '\n',
];

/// Returns the command (absolute `node` first) that runs the app in `dir` (the built
/// project: its files are checked), from `setting` (`[io.kiln.node] start`), else from
/// `pkg`.
pub fn command(
    pkg: &PackageJson,
    dir: &Path,
    setting: Option<&[String]>,
) -> Result<Vec<String>, BuildpackError> {
    if let Some(words) = setting {
        return from_setting(words);
    }
    if let Some(script) = pkg.script("start") {
        let words = plain_node(script).ok_or_else(|| BuildpackError::Usage {
            message: format!(
                "the start script `{script}` is not a plain `node <file>` command; kiln runs the app with `node` directly (no shell and no npm in the image, so signals reach it)"
            ),
            hint: Some(
                "name the command in project.toml: `[io.kiln.node] start = \"node server.js\"` (run other steps, such as migrations, elsewhere)".to_owned(),
            ),
        })?;
        let file = words.iter().skip(1).find(|w| !w.starts_with('-'));
        if let Some(file) = file.filter(|f| resolve_module(dir, f).is_none()) {
            return Err(BuildpackError::App {
                message: format!("the start script runs `{file}`, which is not in the built app"),
                hint: Some(
                    "check the path, and that the build script (if any) writes it".to_owned(),
                ),
            });
        }
        return Ok(with_node(words));
    }
    if let Some(main) = &pkg.main {
        let file = resolve_module(dir, main).ok_or_else(|| BuildpackError::App {
            message: format!("package.json's `main` is `{main}`, which is not in the built app"),
            hint: Some("fix `main`, or set a start script `node <file>`".to_owned()),
        })?;
        return Ok(vec![NODE.to_owned(), file]);
    }
    for file in ["server.js", "index.js"] {
        if dir.join(file).is_file() {
            return Ok(vec![NODE.to_owned(), file.to_owned()]);
        }
    }
    Err(BuildpackError::Usage {
        message: "kiln cannot tell how to start the app: package.json has no start script and no `main`, and there is no `server.js` or `index.js`".to_owned(),
        hint: Some("add `\"scripts\": {\"start\": \"node app.js\"}` to package.json, or `[io.kiln.node] start = \"node app.js\"` to project.toml".to_owned()),
    })
}

/// Returns the words of `script` if it is `node [options] <file> [args]` with nothing a
/// shell would interpret.
fn plain_node(script: &str) -> Option<Vec<String>> {
    if script.contains(SHELL_SYNTAX) {
        return None;
    }
    let words: Vec<String> = script.split_whitespace().map(str::to_owned).collect();
    let has_file = words.iter().skip(1).any(|w| !w.starts_with('-'));
    (words.first().is_some_and(|w| w == "node") && has_file).then_some(words)
}

fn from_setting(words: &[String]) -> Result<Vec<String>, BuildpackError> {
    match words.first().map(String::as_str) {
        None | Some("") => Err(BuildpackError::Usage {
            message: "`[io.kiln.node] start` is empty".to_owned(),
            hint: Some("write the command, e.g. `start = \"node server.js\"`".to_owned()),
        }),
        Some("node" | "nodejs") => Ok(with_node(words.to_vec())),
        Some(exe) if exe.starts_with('/') => Ok(words.to_vec()),
        Some(exe) => Err(BuildpackError::Usage {
            message: format!(
                "`[io.kiln.node] start` runs `{exe}`: the image has no shell and no PATH lookup of project tools"
            ),
            hint: Some("start with `node` (`start = \"node dist/server.js\"`) or an absolute path in the image".to_owned()),
        }),
    }
}

fn with_node(mut words: Vec<String>) -> Vec<String> {
    words[0] = NODE.to_owned();
    words
}

/// Returns `spec` as Node would find it relative to `dir` (as given, with `.js`, `.cjs`,
/// `.mjs`, or `/index.js`), when it exists.
fn resolve_module(dir: &Path, spec: &str) -> Option<String> {
    let spec = spec.trim_start_matches("./");
    [
        spec.to_owned(),
        format!("{spec}.js"),
        format!("{spec}.cjs"),
        format!("{spec}.mjs"),
        format!("{}/index.js", spec.trim_end_matches('/')),
    ]
    .into_iter()
    .find(|candidate| dir.join(candidate).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(
        files: &[&str],
        start: Option<&str>,
        main: Option<&str>,
    ) -> (tempfile::TempDir, PackageJson) {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let mut pkg = PackageJson {
            main: main.map(str::to_owned),
            ..Default::default()
        };
        if let Some(s) = start {
            pkg.scripts.insert("start".into(), s.into());
        }
        (dir, pkg)
    }

    fn run(
        files: &[&str],
        start: Option<&str>,
        main: Option<&str>,
    ) -> Result<Vec<String>, BuildpackError> {
        let (dir, pkg) = app(files, start, main);
        command(&pkg, dir.path(), None)
    }

    #[test]
    fn a_plain_node_start_script_becomes_the_entrypoint() {
        assert_eq!(
            run(
                &["dist/server.js"],
                Some("node --enable-source-maps dist/server.js --port 8080"),
                None
            )
            .unwrap(),
            [
                "/usr/bin/node",
                "--enable-source-maps",
                "dist/server.js",
                "--port",
                "8080"
            ]
        );
        let err = run(&[], Some("node dist/server.js"), None).unwrap_err();
        assert!(matches!(err, BuildpackError::App { .. }), "{err:?}");
    }

    #[test]
    fn anything_else_in_start_is_refused_with_the_setting() {
        for script in [
            "node scripts/migrate.js && node server.js",
            "nodemon server.js",
            "NODE_ENV=production node server.js",
            "next start",
            "node",
            "node $ENTRY",
        ] {
            let err = run(&["server.js"], Some(script), Some("server.js")).unwrap_err();
            assert!(matches!(err, BuildpackError::Usage { .. }), "{script}");
            assert!(
                err.hint().unwrap().contains("[io.kiln.node] start"),
                "{script}"
            );
        }
    }

    #[test]
    fn main_then_server_then_index() {
        assert_eq!(
            run(&["lib/app.js"], None, Some("lib/app")).unwrap(),
            ["/usr/bin/node", "lib/app.js"]
        );
        assert_eq!(
            run(&["lib/index.js"], None, Some("./lib")).unwrap(),
            ["/usr/bin/node", "lib/index.js"]
        );
        assert!(run(&["server.js"], None, Some("missing.js")).is_err());
        assert_eq!(
            run(&["server.js", "index.js"], None, None).unwrap(),
            ["/usr/bin/node", "server.js"]
        );
        assert_eq!(
            run(&["index.js"], None, None).unwrap(),
            ["/usr/bin/node", "index.js"]
        );
        let err = run(&["app.js"], None, None).unwrap_err();
        assert!(err.hint().unwrap().contains("[io.kiln.node] start"));
    }

    #[test]
    fn the_setting_wins_and_must_name_node_or_an_absolute_path() {
        let (dir, pkg) = app(&[], Some("npm run serve"), None);
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(&pkg, dir.path(), Some(&words(&["node", "server.js"]))).unwrap(),
            ["/usr/bin/node", "server.js"]
        );
        assert_eq!(
            command(&pkg, dir.path(), Some(&words(&["/workspace/bin/run"]))).unwrap(),
            ["/workspace/bin/run"]
        );
        assert!(command(&pkg, dir.path(), Some(&words(&["npm", "start"]))).is_err());
        assert!(command(&pkg, dir.path(), Some(&[])).is_err());
    }
}
