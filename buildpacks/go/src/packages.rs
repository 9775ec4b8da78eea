//! Which main packages become binaries, and which binary is the image's default process.

use std::path::{Component, Path};

use kiln_lifecycle::BuildpackError;

/// The `go list -f` template whose lines [`parse_list`] reads. Import paths and package names
/// have no spaces, so the directory can safely come last.
pub(crate) const LIST_FORMAT: &str = "{{.ImportPath}} {{.Name}} {{.Dir}}";

/// One package `go list` reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Import path, e.g. `example.com/multi/cmd/api`.
    pub import_path: String,
    /// Package name (`main` for commands).
    pub name: String,
    /// Directory relative to the app root, `/`-separated, `""` for the root itself.
    pub rel_dir: String,
}

/// A main package to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binary {
    /// Binary and process name.
    pub name: String,
    /// What to pass to `go build`.
    pub import_path: String,
}

/// The binaries to build and which one starts by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Binaries, sorted by name.
    pub binaries: Vec<Binary>,
    /// Name of the default process.
    pub default: String,
}

/// Returns the packages of `go list -f LIST_FORMAT` output whose directory is under `app_dir`.
pub(crate) fn parse_list(stdout: &str, app_dir: &Path) -> Vec<Listed> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (import_path, name, dir) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = Path::new(dir).strip_prefix(app_dir).ok()?;
            let rel_dir = rel
                .components()
                .map(|c| match c {
                    Component::Normal(n) => Some(n.to_string_lossy()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?
                .join("/");
            Some(Listed {
                import_path: import_path.to_owned(),
                name: name.to_owned(),
                rel_dir,
            })
        })
        .collect()
}

/// Returns the binary name `go build` would give the package `import_path`: its last element,
/// or the one before a major-version suffix (`example.com/tool/v2` → `tool`).
pub(crate) fn command_name(import_path: &str) -> &str {
    let mut elems = import_path.rsplit('/');
    let last = elems.next().unwrap_or(import_path);
    let is_major =
        last.len() > 1 && last.starts_with('v') && last[1..].bytes().all(|b| b.is_ascii_digit());
    match elems.next() {
        Some(prev) if is_major => prev,
        _ => last,
    }
}

/// Chooses what to build among `listed`: the root package if it is `main`; else the main
/// packages in `cmd/<name>/`; else every main package, named after its directory. Several
/// binaries are all built; the default is `wanted` (the user's choice), else the binary named
/// like the module (`module`'s last element), else the choice is the user's to make.
pub(crate) fn choose(
    listed: &[Listed],
    module: Option<&str>,
    wanted: Option<&str>,
) -> Result<Selection, BuildpackError> {
    let mains: Vec<&Listed> = listed.iter().filter(|p| p.name == "main").collect();
    let root = mains.iter().find(|p| p.rel_dir.is_empty());
    let in_cmd = |p: &&&Listed| {
        p.rel_dir
            .strip_prefix("cmd/")
            .is_some_and(|n| !n.contains('/'))
    };
    let mut binaries: Vec<Binary> = if let Some(root) = root {
        vec![Binary {
            name: command_name(&root.import_path).to_owned(),
            import_path: root.import_path.clone(),
        }]
    } else {
        let tier: Vec<&&Listed> = match mains.iter().filter(in_cmd).collect::<Vec<_>>() {
            cmd if !cmd.is_empty() => cmd,
            _ => mains.iter().collect(),
        };
        tier.iter()
            .map(|p| Binary {
                name: p.rel_dir.rsplit('/').next().unwrap_or_default().to_owned(),
                import_path: p.import_path.clone(),
            })
            .collect()
    };
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    if binaries.is_empty() {
        return Err(BuildpackError::App {
            message: "building the Go app: no `package main` at the module root, under `cmd/`, or anywhere else"
                .to_owned(),
            hint: Some("add a `main` package (e.g. `main.go` or `cmd/<name>/main.go`) with a `func main()`".to_owned()),
        });
    }
    if let Some(dup) = binaries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(BuildpackError::App {
            message: format!(
                "building the Go app: main packages `{}` and `{}` would both be called `{}`",
                dup[0].import_path, dup[1].import_path, dup[0].name
            ),
            hint: Some("move the command to run into `cmd/<name>/`".to_owned()),
        });
    }
    let names = || {
        binaries
            .iter()
            .map(|b| format!("`{}`", b.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pick_hint =
        "pick one with `--process NAME` or `[io.kiln] process = \"NAME\"` in project.toml";
    let default = match wanted {
        Some(w) if binaries.iter().any(|b| b.name == w) => w.to_owned(),
        Some(w) => {
            return Err(BuildpackError::Usage {
                message: format!("unknown process `{w}`: this Go app has {}", names()),
                hint: Some(pick_hint.to_owned()),
            });
        }
        None if binaries.len() == 1 => binaries[0].name.clone(),
        None => match module
            .map(command_name)
            .filter(|m| binaries.iter().any(|b| b.name == *m))
        {
            Some(m) => m.to_owned(),
            None => {
                return Err(BuildpackError::Usage {
                    message: format!(
                        "this Go app has several commands ({}) and none is chosen as the default process",
                        names()
                    ),
                    hint: Some(pick_hint.to_owned()),
                });
            }
        },
    };
    Ok(Selection { binaries, default })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(import_path: &str, name: &str, rel_dir: &str) -> Listed {
        Listed {
            import_path: import_path.into(),
            name: name.into(),
            rel_dir: rel_dir.into(),
        }
    }

    fn multi() -> Vec<Listed> {
        vec![
            pkg("example.com/multi/cmd/worker", "main", "cmd/worker"),
            pkg("example.com/multi/cmd/api", "main", "cmd/api"),
            pkg(
                "example.com/multi/internal/greet",
                "greet",
                "internal/greet",
            ),
            pkg("example.com/multi/tools/gen", "main", "tools/gen"),
        ]
    }

    fn names(s: &Selection) -> Vec<&str> {
        s.binaries.iter().map(|b| b.name.as_str()).collect()
    }

    #[test]
    fn parses_go_list_lines_under_the_app_dir() {
        let out = "example.com/goweb main /src/app\nexample.com/goweb/cmd/x main /src/app/cmd/x\n\
                   example.com/sp main /src/app/with space\nfmt fmt /usr/local/go/src/fmt\nbad line\n";
        let got = parse_list(out, Path::new("/src/app"));
        assert_eq!(
            got,
            [
                pkg("example.com/goweb", "main", ""),
                pkg("example.com/goweb/cmd/x", "main", "cmd/x"),
                pkg("example.com/sp", "main", "with space"),
            ]
        );
    }

    #[test]
    fn command_names_follow_go_build() {
        assert_eq!(command_name("example.com/goweb"), "goweb");
        assert_eq!(command_name("example.com/tool/v2"), "tool");
        assert_eq!(command_name("example.com/v2"), "example.com");
        assert_eq!(command_name("v2"), "v2");
        assert_eq!(command_name("example.com/tool/vx"), "vx");
    }

    #[test]
    fn root_main_package_wins() {
        let mut listed = multi();
        listed.push(pkg("example.com/multi", "main", ""));
        let s = choose(&listed, Some("example.com/multi"), None).unwrap();
        assert_eq!(names(&s), ["multi"]);
        assert_eq!(s.default, "multi");
        assert_eq!(s.binaries[0].import_path, "example.com/multi");
    }

    #[test]
    fn several_cmds_need_a_choice() {
        let err = choose(&multi(), Some("example.com/multi"), None).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        assert!(err.to_string().contains("`api`, `worker`"), "{err}");
        assert!(err.hint().unwrap().contains("--process NAME"));

        let s = choose(&multi(), Some("example.com/multi"), Some("worker")).unwrap();
        assert_eq!(names(&s), ["api", "worker"], "tools/gen is not under cmd/");
        assert_eq!(s.default, "worker");
    }

    #[test]
    fn the_command_named_like_the_module_is_the_default() {
        let s = choose(&multi(), Some("example.com/api"), None).unwrap();
        assert_eq!(s.default, "api");
    }

    #[test]
    fn unknown_process_lists_the_valid_ones() {
        let err = choose(&multi(), None, Some("web")).unwrap_err();
        assert!(matches!(err, BuildpackError::Usage { .. }));
        assert!(err.to_string().contains("unknown process `web`"));
        assert!(err.to_string().contains("`api`, `worker`"));
        let one = [pkg("example.com/goweb", "main", "")];
        assert!(matches!(
            choose(&one, None, Some("web")),
            Err(BuildpackError::Usage { .. })
        ));
    }

    #[test]
    fn a_single_cmd_or_other_main_package_is_used() {
        let one = [
            pkg("m/cmd/serve", "main", "cmd/serve"),
            pkg("m/lib", "lib", "lib"),
        ];
        assert_eq!(choose(&one, Some("m"), None).unwrap().default, "serve");
        let elsewhere = [pkg("m/server", "main", "server")];
        assert_eq!(
            choose(&elsewhere, Some("m"), None).unwrap().default,
            "server"
        );
    }

    #[test]
    fn no_main_package_is_an_app_error() {
        let err = choose(&[pkg("m", "lib", "")], Some("m"), None).unwrap_err();
        assert!(matches!(err, BuildpackError::App { .. }));
        let dup = [
            pkg("m/a/gen", "main", "a/gen"),
            pkg("m/b/gen", "main", "b/gen"),
        ];
        assert!(matches!(
            choose(&dup, None, Some("gen")),
            Err(BuildpackError::App { .. })
        ));
    }
}
