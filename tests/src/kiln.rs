//! The `kiln` binary under test, the workspace root, and the machine checks tests need.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cmd::run_checked;

/// Where podman reads the settings the harness relies on.
const CONTAINERS_CONF: &str = "/etc/containers/containers.conf";

/// Returns the Cargo workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the workspace")
        .to_path_buf()
}

/// Returns the Cargo target dir the running test binary lives in
/// (`<target>/<profile>/deps/<test>`); panics when the test was not started by cargo.
pub fn target_dir() -> PathBuf {
    let exe = env::current_exe().expect("locating the test binary");
    exe.ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .unwrap_or_else(|| {
            panic!(
                "`{}` is not under `<target>/<profile>/deps`; run the tests with cargo",
                exe.display()
            )
        })
        .to_path_buf()
}

/// Builds `kiln` once per test process (`$CARGO build -p kiln-cli --bin kiln`) and
/// returns `<target dir>/debug/kiln`.
///
/// The target dir is the one the running test binary lives in
/// (`<target>/<profile>/deps/<test>`), passed as `--target-dir` so the build lands there.
pub fn kiln_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target_dir = target_dir();
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(
            Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "kiln-cli",
                    "--bin",
                    "kiln",
                    "--target-dir",
                ])
                .arg(&target_dir)
                .current_dir(workspace_root()),
        );
        let bin = target_dir.join("debug").join("kiln");
        assert!(bin.is_file(), "`{}` missing after the build", bin.display());
        bin
    })
    .clone()
}

/// Panics with a hint to run `.ci/setup` unless `/etc/containers/containers.conf` sets
/// `runtime = "runc"` under `[engine]` and `default_ulimits = []` under `[containers]`.
///
/// Tests never change `/etc` themselves.
pub fn ensure_containers_conf() {
    let text = fs::read_to_string(CONTAINERS_CONF).unwrap_or_default();
    let problems = containers_conf_problems(&text);
    assert!(
        problems.is_empty(),
        "`{CONTAINERS_CONF}` is not set up for the e2e tests: {}.\n\
         hint: run `.ci/setup` (as root) once; it writes those settings",
        problems.join("; ")
    );
}

/// Returns what `text` (a containers.conf) lacks: `runtime = "runc"` under `[engine]`,
/// `default_ulimits = []` under `[containers]`. Empty when it has both.
pub fn containers_conf_problems(text: &str) -> Vec<String> {
    let mut section = String::new();
    let (mut runtime, mut ulimits) = (false, false);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.replace(char::is_whitespace, ""));
        match (section.as_str(), key) {
            ("engine", "runtime") => runtime = value == "\"runc\"",
            ("containers", "default_ulimits") => ulimits = value == "[]",
            _ => {}
        }
    }
    let mut problems = Vec::new();
    if !runtime {
        problems.push("no `runtime = \"runc\"` under `[engine]`".to_string());
    }
    if !ulimits {
        problems.push("no `default_ulimits = []` under `[containers]`".to_string());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_containers_conf_sections() {
        let good = "[containers]\n# default_ulimits = [\"nproc=1\"]\ndefault_ulimits = [ ]\n\n\
                    [engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"  # why\n";
        assert!(containers_conf_problems(good).is_empty());
        let wrong_section = "[engine]\ndefault_ulimits = []\n[containers]\nruntime = \"runc\"\n";
        assert_eq!(containers_conf_problems(wrong_section).len(), 2);
        assert_eq!(containers_conf_problems("").len(), 2);
        let crun = "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"crun\"\n";
        assert_eq!(containers_conf_problems(crun).len(), 1);
    }
}
