//! The build phase: check the host Go, pick the main packages, compile them, lay out the layers.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kiln_lifecycle::{BuildContext, BuildOutput, BuildpackError, LaunchLayer, Plan, Process};

use crate::detect::{MANIFEST, MODULE, TOOLCHAIN, VERSION, WORK_USE};
use crate::link_cache::LinkCache;
use crate::memo::Memo;
use crate::packages::{self, LIST_FORMAT, Selection};
use crate::toolchain::Go;
use crate::version::GoVersion;
use crate::workspace;

/// Flags that make the binary depend on the source and the Go version only: no checkout path
/// (`-trimpath`), no VCS stamp, no content-hash build ID. `-modcacherw` leaves kiln's module
/// cache deletable by kiln (the go tool makes it read-only otherwise).
const BUILD_FLAGS: [&str; 4] = [
    "-trimpath",
    "-buildvcs=false",
    "-ldflags=-buildid=",
    "-modcacherw",
];

/// Builds the app described by `plan` and returns its launch layers and processes.
///
/// Layers go in the order `workspace` (the non-code files), then `app` (the binaries):
/// every code change changes the binaries, while assets change more rarely, so the layer that
/// changes least comes first and stays reusable more often. An app without non-code files gets
/// no `workspace` layer.
pub(crate) fn build(ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
    let fact = |key: &str| plan.facts.get(key).map(String::as_str);
    let required = fact(VERSION);
    let go = Go::locate(ctx, required)?;
    check_version(
        &go,
        fact(MANIFEST).unwrap_or("go.mod"),
        required,
        fact(TOOLCHAIN),
    )?;

    let patterns: Vec<String> = match fact(WORK_USE) {
        Some(uses) => uses
            .lines()
            .map(|dir| format!("{}/...", dir.trim_end_matches('/')))
            .collect(),
        None => vec!["./...".to_owned()],
    };
    // -e: packages that do not compile are still listed; `go build` then reports their errors.
    let mut args: Vec<String> = vec![
        "list".into(),
        "-e".into(),
        "-modcacherw".into(),
        "-f".into(),
        LIST_FORMAT.into(),
    ];
    args.extend(patterns);
    // An unchanged source gets the answers the go tool gave last time (see `memo`).
    let memo = ctx
        .source_stamp
        .and_then(|stamp| Memo::new(ctx.cache_dir, &go, stamp));
    let question = args.join("\0");
    let listed = match memo.as_ref().and_then(|m| m.get(&question)) {
        Some(listed) => listed,
        None => {
            let listed = go.run("`go list`", &args, false)?;
            if let Some(m) = &memo {
                m.put(&question, &listed);
            }
            listed
        }
    };
    let listed = packages::parse_list(&listed, go.app_dir());
    let selection = packages::choose(&listed, fact(MODULE), ctx.default_process)?;

    let workspace_rel = ctx.workspace.trim_start_matches('/');
    let app_layer = ctx.layers_dir.join("app");
    let bin_dir = app_layer.join(workspace_rel).join("bin");
    let links = LinkCache::new(ctx.cache_dir);
    for binary in &selection.binaries {
        let out = bin_dir.join(&binary.name);
        let question = format!(
            "link key\0{}\0{}",
            binary.import_path,
            BUILD_FLAGS.join("\0")
        );
        let key = match memo.as_ref().and_then(|m| m.get(&question)) {
            Some(key) => Some(key),
            None => {
                let key = LinkCache::key(&go, &binary.import_path, &BUILD_FLAGS);
                if let (Some(m), Some(key)) = (&memo, &key) {
                    m.put(&question, key);
                }
                key
            }
        };
        if let Some(key) = &key
            && links.restore(&binary.import_path, key, &out)
        {
            (ctx.output)(&format!(
                "kiln: `{}` is up to date; reusing its last link",
                binary.import_path
            ));
            continue;
        }
        go.run(
            &format!("`go build` of `{}`", binary.import_path),
            build_args(&out, &binary.import_path),
            true,
        )?;
        if let Some(key) = &key {
            links.store(&binary.import_path, key, &out);
        }
    }

    let mut layers = Vec::new();
    let workspace_layer = ctx.layers_dir.join("workspace");
    if workspace::copy(ctx.app_dir, &workspace_layer.join(workspace_rel))? > 0 {
        layers.push(LaunchLayer {
            name: "workspace".to_owned(),
            dir: workspace_layer,
            cache_key: None,
            ..Default::default()
        });
    }
    layers.push(LaunchLayer {
        name: "app".to_owned(),
        dir: app_layer,
        cache_key: None,
        ..Default::default()
    });
    Ok(BuildOutput {
        layers,
        processes: processes(&selection, ctx.workspace),
        env: BTreeMap::new(),
        warnings: Vec::new(),
        working_dir: None,
        packages: Vec::new(),
        platform_neutral: false,
        native: Vec::new(),
    })
}

/// Fails with an app error naming both versions when the host Go is older than `required`.
fn check_version(
    go: &Go<'_>,
    manifest: &str,
    required: Option<&str>,
    toolchain: Option<&str>,
) -> Result<(), BuildpackError> {
    let Some(want) = required.and_then(GoVersion::parse) else {
        return Ok(());
    };
    let Some(host) = go.version()? else {
        return Ok(());
    };
    if host >= want {
        return Ok(());
    }
    let also = toolchain
        .map(|t| format!(" (it prefers toolchain {t})"))
        .unwrap_or_default();
    Err(BuildpackError::App {
        message: format!("`{manifest}` requires go {want} but the host has go {host}{also}"),
        hint: Some(format!(
            "install Go {want} or newer on the build machine; kiln builds with the host's Go and never downloads one"
        )),
    })
}

/// Returns the `go build` arguments that compile `import_path` into `out`.
fn build_args(out: &Path, import_path: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["build".into()];
    args.extend(BUILD_FLAGS.iter().map(OsString::from));
    args.extend(["-o".into(), out.as_os_str().to_owned(), import_path.into()]);
    args
}

/// Returns one process per binary, `<workspace>/bin/<name>`, the selection's default marked.
fn processes(selection: &Selection, workspace: &str) -> Vec<Process> {
    let bin: PathBuf = Path::new(workspace).join("bin");
    selection
        .binaries
        .iter()
        .map(|b| Process {
            name: b.name.clone(),
            command: vec![bin.join(&b.name).display().to_string()],
            default: b.name == selection.default,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Binary;

    #[test]
    fn one_process_per_binary_under_workspace_bin() {
        let selection = Selection {
            binaries: ["api", "worker"]
                .map(|n| Binary {
                    name: n.into(),
                    import_path: format!("m/cmd/{n}"),
                })
                .to_vec(),
            default: "worker".into(),
        };
        let got = processes(&selection, "/workspace");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].command, ["/workspace/bin/api"]);
        assert!(!got[0].default);
        assert_eq!(got[1].name, "worker");
        assert!(got[1].default);
    }

    #[test]
    fn build_args_are_reproducible_ones() {
        let args = build_args(Path::new("/l/app/workspace/bin/x"), "m/cmd/x");
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "build",
                "-trimpath",
                "-buildvcs=false",
                "-ldflags=-buildid=",
                "-modcacherw",
                "-o",
                "/l/app/workspace/bin/x",
                "m/cmd/x"
            ]
        );
    }
}
