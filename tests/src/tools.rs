//! The outside tools the tests check kiln's output with (syft, `policy-pull`, the SBOM
//! validators), installed once per machine by `tests/tools/install.sh` into the machine
//! cache ([`machine_cache`]), which `.ci/setup` runs; a tool missing there is installed the
//! same way on first use.

use std::collections::BTreeMap;
use std::env;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::cmd::run_checked;
use crate::kiln::workspace_root;

/// Returns the cache the e2e suite keeps outside the clone, shared by every run on this
/// machine: `$KILN_E2E_CACHE`, else `$XDG_CACHE_HOME/kiln-e2e`, else `~/.cache/kiln-e2e`.
/// It holds the tools, the verified `.deb` cache and the warm download caches of the
/// toolchains; deleting it costs the next run the downloads and tool builds, nothing else.
pub fn machine_cache() -> PathBuf {
    if let Some(dir) = env::var_os("KILN_E2E_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("neither KILN_E2E_CACHE, XDG_CACHE_HOME nor HOME is set");
    base.join("kiln-e2e")
}

/// Returns `<machine cache>/downloads/<name>`, created if missing: a toolchain's download
/// cache (Go's build and module caches, npm's, the Maven repository) that every test build
/// on this machine shares.
pub fn download_cache(name: &str) -> PathBuf {
    let dir = machine_cache().join("downloads").join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating `{}`: {e}", dir.display()));
    dir
}

/// Returns the path of `tool` (`syft`, `policy-pull`, or `sbom-validators` for the
/// virtualenv's python), installing it first when the machine cache lacks it. Once per
/// process and tool; concurrent processes wait for each other inside the script.
pub fn tool(tool: &str) -> PathBuf {
    static FOUND: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = found.get(tool) {
        return path.clone();
    }
    let script = workspace_root().join("tests/tools/install.sh");
    let out = run_checked(
        Command::new("bash")
            .arg(&script)
            .arg(tool)
            .env("KILN_E2E_CACHE", machine_cache()),
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "`{} {tool}` printed `{}`, which is not a file",
        script.display(),
        path.display()
    );
    found.insert(tool.to_owned(), path.clone());
    path
}
