//! syft, Anchore's SBOM generator, as the outside scanner that checks what a golden base
//! declares: built from source with the Go toolchain once per Cargo target dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cmd::run_checked;
use crate::go::go_bin;
use crate::kiln::target_dir;

/// The syft release the tests build.
pub const SYFT_VERSION: &str = "v1.57.0";

/// Modules that syft's `go.mod` names at versions the Go module proxy here refuses, pinned
/// to ones it serves (same API for what syft uses). `go install pkg@version` ignores
/// replacements, so syft is installed from a small wrapper module that holds them.
const REPLACE: &[(&str, &str)] = &[
    ("github.com/github/go-spdx/v2", "v2.3.3"),
    ("github.com/docker/cli", "v29.9.3+incompatible"),
];

/// Returns `<target>/kiln-tools/syft-<SYFT_VERSION>/bin/syft`, building it first when it is
/// missing (a few minutes, once; later test runs reuse it).
///
/// Once per process (a `OnceLock`); concurrent processes each build in their own
/// `build-<pid>` dir and move the binary into place with one atomic rename.
pub fn syft_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = target_dir()
            .join("kiln-tools")
            .join(format!("syft-{SYFT_VERSION}"));
        let bin = root.join("bin").join("syft");
        if bin.is_file() {
            return bin;
        }
        let build = root.join(format!("build-{}", std::process::id()));
        fs::create_dir_all(&build).expect("creating the syft build dir");
        fs::create_dir_all(root.join("bin")).expect("creating the syft bin dir");
        let mut go_mod = format!(
            "module kiln.invalid/tools/syft\n\ngo 1.25\n\nrequire github.com/anchore/syft {SYFT_VERSION}\n"
        );
        for (module, version) in REPLACE {
            go_mod.push_str(&format!("\nreplace {module} => {module} {version}\n"));
        }
        fs::write(build.join("go.mod"), go_mod).expect("writing the syft wrapper go.mod");
        run_checked(
            Command::new(go_bin())
                .args([
                    "install",
                    "-trimpath",
                    &format!("-ldflags=-s -w -X main.version={SYFT_VERSION}"),
                    "github.com/anchore/syft/cmd/syft",
                ])
                .current_dir(&build)
                .env("GOBIN", build.join("bin"))
                .env("CGO_ENABLED", "0")
                .env("GOTOOLCHAIN", "local")
                // No go.sum yet: let the go command record the hashes it checks.
                .env("GOFLAGS", "-mod=mod -buildvcs=false"),
        );
        fs::rename(build.join("bin").join("syft"), &bin).expect("moving syft into place");
        let _ = fs::remove_dir_all(&build);
        bin
    })
    .clone()
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
