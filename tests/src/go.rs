//! The Go toolchain, for building small static test binaries.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run_checked;

/// Returns the `go` binary: the first on `PATH`, else `/usr/local/go/bin/go`, else
/// `/usr/lib/go/bin/go`; panics with a hint when there is none.
pub fn go_bin() -> PathBuf {
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("go"));
    let fixed = ["/usr/local/go/bin/go", "/usr/lib/go/bin/go"].map(PathBuf::from);
    on_path
        .chain(fixed)
        .find(|p| p.is_file())
        .expect("no `go` on PATH, in /usr/local/go/bin or /usr/lib/go/bin; hint: run `.ci/setup`")
}

/// Builds the Go main package in `src_dir` into a static binary at `out`
/// (`CGO_ENABLED=0`, stripped, no network: `GOPROXY=off`, `GOTOOLCHAIN=local`).
///
/// The package must need no third-party modules.
pub fn go_build_static(src_dir: &Path, out: &Path) {
    run_checked(
        Command::new(go_bin())
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(out)
            .arg(".")
            .current_dir(src_dir)
            .env("CGO_ENABLED", "0")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", ""),
    );
}
