//! syft, Anchore's SBOM generator, as the outside scanner that checks what a golden base
//! declares: installed once per machine by `tests/tools/install.sh` (see [`crate::tool`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run_checked;
use crate::tools::tool;

/// Returns the syft binary (the version `tests/tools/install.sh` pins), installing it into
/// the machine cache first when it is missing (a few minutes, once per machine).
pub fn syft_bin() -> PathBuf {
    tool("syft")
}

/// Runs `syft scan SOURCE -o json` (e.g. `oci-archive:/path/base.tar`) with update checks
/// and every network look-up off, its cache and temporary files under `scratch`, and
/// returns the parsed SBOM.
pub fn syft_scan(source: &str, scratch: &Path) -> serde_json::Value {
    let tmp = scratch.join("syft-tmp");
    fs::create_dir_all(&tmp).expect("creating syft's temp dir");
    let out = run_checked(
        Command::new(syft_bin())
            .args(["scan", source, "-o", "json", "-q"])
            .current_dir(scratch)
            .env("TMPDIR", &tmp)
            .env("SYFT_CACHE_DIR", scratch.join("syft-cache"))
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .env("SYFT_GOLANG_SEARCH_REMOTE_LICENSES", "false")
            .env("SYFT_JAVA_USE_NETWORK", "false")
            .env("SYFT_JAVASCRIPT_SEARCH_REMOTE_LICENSES", "false")
            .env("SYFT_PYTHON_SEARCH_REMOTE_LICENSES", "false"),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "syft printed no JSON SBOM ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
