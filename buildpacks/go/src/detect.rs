//! Detection: a Go app has a `go.mod` or a `go.work` at its root. Files only, no programs.
//! An app that refers to directories above its own asks for their common ancestor as the
//! build's source root ([`crate::reach`]).

use std::path::Path;

use kiln_lifecycle::{BuildpackError, Plan, SOURCE_ROOT_FACT, SOURCE_ROOT_REASON_FACT};

use crate::gomod::GoMod;
use crate::reach::{Reach, reach};
use crate::version::GoVersion;

/// Plan fact: the file the app was detected by (`go.mod` or `go.work`, the one the `go` tool obeys).
pub(crate) const MANIFEST: &str = "go.manifest";
/// Plan fact: the root module's path.
pub(crate) const MODULE: &str = "go.module";
/// Plan fact: the minimum Go version the root `go.mod` / `go.work` asks for (the higher of the two).
pub(crate) const VERSION: &str = "go.version";
/// Plan fact: the `toolchain` directive, recorded only (kiln builds with the host's Go).
pub(crate) const TOOLCHAIN: &str = "go.toolchain";
/// Plan fact: the `go.work` `use` directories, one a line.
pub(crate) const WORK_USE: &str = "go.work.use";

/// Returns a plan if `app_dir` holds a `go.mod` or `go.work`, `None` if it holds neither.
pub(crate) fn detect(app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
    let module = read(app_dir, "go.mod")?;
    let work = read(app_dir, "go.work")?;
    if module.is_none() && work.is_none() {
        return Ok(None);
    }
    let mut plan = Plan::default();
    let mut fact = |key: &str, value: &str| {
        plan.facts.insert(key.to_owned(), value.to_owned());
    };
    // With a go.work at the root the go tool runs in workspace mode, so go.work governs.
    fact(MANIFEST, if work.is_some() { "go.work" } else { "go.mod" });
    let reached = reach(
        app_dir,
        module.as_ref().unwrap_or(&GoMod::default()),
        work.as_ref(),
    );
    if let Some(Reach { levels, reason }) = &reached {
        fact(SOURCE_ROOT_FACT, &vec![".."; *levels].join("/"));
        fact(SOURCE_ROOT_REASON_FACT, reason);
    }
    let (module, work) = (module.unwrap_or_default(), work.unwrap_or_default());
    if let Some(path) = &module.module {
        fact(MODULE, path);
    }
    let newest = [&module.go, &work.go]
        .into_iter()
        .flatten()
        .max_by(|a, b| GoVersion::parse(a).cmp(&GoVersion::parse(b)));
    if let Some(version) = newest {
        fact(VERSION, version);
    }
    if let Some(toolchain) = work.toolchain.as_ref().or(module.toolchain.as_ref()) {
        fact(TOOLCHAIN, toolchain);
    }
    if !work.uses.is_empty() {
        fact(WORK_USE, &work.uses.join("\n"));
    }
    Ok(Some(plan))
}

/// Returns the parsed `name` under `dir`, `None` if there is no such file.
fn read(dir: &Path, name: &str) -> Result<Option<GoMod>, BuildpackError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = kiln_lifecycle::read_bounded(&path, kiln_lifecycle::MANIFEST_LIMIT)
        .map_err(|e| BuildpackError::reading(&path, e))?;
    Ok(Some(GoMod::parse(&String::from_utf8_lossy(&bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn facts(files: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let dir = dir_with(files);
        detect(dir.path())
            .unwrap()
            .map(|p| p.facts.into_iter().collect())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn go_mod_passes_with_facts() {
        let got = facts(&[(
            "go.mod",
            "module example.com/goweb\n\ngo 1.22\n\ntoolchain go1.23.4\n",
        )]);
        let want = pairs(&[
            (MANIFEST, "go.mod"),
            (MODULE, "example.com/goweb"),
            (TOOLCHAIN, "go1.23.4"),
            (VERSION, "1.22"),
        ]);
        assert_eq!(got, Some(want));
    }

    #[test]
    fn go_work_passes_and_governs() {
        let got = facts(&[
            ("go.mod", "module example.com/root\ngo 1.21\n"),
            ("go.work", "go 1.22.1\nuse (\n\t.\n\t./tools\n)\n"),
        ]);
        let want = pairs(&[
            (MANIFEST, "go.work"),
            (MODULE, "example.com/root"),
            (VERSION, "1.22.1"),
            (WORK_USE, ".\n./tools"),
        ]);
        assert_eq!(got, Some(want));
    }

    #[test]
    fn go_work_alone_passes() {
        let got = facts(&[("go.work", "go 1.23\nuse ./api\n")]).unwrap();
        assert!(got.contains(&(MANIFEST.to_owned(), "go.work".to_owned())));
        assert!(!got.iter().any(|(k, _)| k == MODULE));
    }

    #[test]
    fn other_dirs_fail() {
        assert_eq!(facts(&[("README.txt", "not an app")]), None);
        assert_eq!(facts(&[("main.go", "package main")]), None);
        assert_eq!(facts(&[]), None);
    }

    #[test]
    fn a_go_mod_directory_is_not_a_go_mod() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("go.mod")).unwrap();
        assert_eq!(detect(dir.path()).unwrap(), None);
    }

    /// B04: bytes that are not UTF-8 in `go.mod` (the go tool accepts them in comments) do not
    /// stop detection or change what is read; the go tool judges the rest when it builds.
    #[test]
    fn b04_a_go_mod_that_is_not_utf8_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("go.mod"),
            b"module example.com/x // caf\xe9\n\ngo 1.22\n// \xff\xfe\n",
        )
        .unwrap();
        let plan = detect(dir.path()).unwrap().unwrap();
        let facts: Vec<(String, String)> = plan.facts.into_iter().collect();
        assert_eq!(
            facts,
            pairs(&[
                (MANIFEST, "go.mod"),
                (MODULE, "example.com/x"),
                (VERSION, "1.22")
            ])
        );
    }
}
