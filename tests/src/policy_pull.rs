//! `policy-pull`: what `podman pull` does with a `policy.json`, built from upstream
//! containers/image (`go.podman.io/image/v5`) once per Cargo target dir.
//!
//! Debian's podman and skopeo (bookworm) are built with sigstore verification patched out
//! ("Debian-local change: sigstore disabled"), so they cannot check a `sigstoreSigned`
//! requirement at all. `tests/tools/policy-pull` runs the same engine podman uses for a
//! pull, `copy.Image` under a policy context with registries.d configuration, without
//! that patch.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::cmd::{run_checked, run_output};
use crate::go::go_bin;
use crate::kiln::{target_dir, workspace_root};

/// The containers/image release the tool is built against (see its go.mod).
pub const CONTAINERS_IMAGE_VERSION: &str = "v5.42.1";

/// Returns the `policy-pull` binary, building it first when missing (half a minute, once).
pub fn policy_pull_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = target_dir()
            .join("kiln-tools")
            .join(format!("policy-pull-{CONTAINERS_IMAGE_VERSION}"));
        let bin = root.join("policy-pull");
        if bin.is_file() {
            return bin;
        }
        let build = root.join(format!("build-{}", std::process::id()));
        fs::create_dir_all(&build).expect("creating the policy-pull build dir");
        let src = workspace_root().join("tests/tools/policy-pull");
        for file in ["go.mod", "main.go"] {
            fs::copy(src.join(file), build.join(file)).expect("copying policy-pull's source");
        }
        run_checked(
            Command::new(go_bin())
                .args([
                    "build",
                    "-trimpath",
                    "-ldflags=-s -w",
                    // Pure Go: no gpgme, btrfs or devicemapper headers needed.
                    "-tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper",
                    "-o",
                    "policy-pull",
                    ".",
                ])
                .current_dir(&build)
                .env("CGO_ENABLED", "0")
                .env("GOTOOLCHAIN", "local")
                // No go.sum committed: let the go command record the hashes it checks.
                .env("GOFLAGS", "-mod=mod -buildvcs=false"),
        );
        fs::rename(build.join("policy-pull"), &bin).expect("moving policy-pull into place");
        let _ = fs::remove_dir_all(&build);
        bin
    })
    .clone()
}

/// Copies `image` (`docker://…`) into the OCI layout `dest` (`oci:DIR:NAME`) under
/// `policy`, reading registries.d from `registries_d`, with `creds` (`user:password`);
/// returns the output, whatever its status.
pub fn policy_pull(
    policy: &Path,
    registries_d: &Path,
    creds: &str,
    image: &str,
    dest: &str,
) -> Output {
    run_output(
        Command::new(policy_pull_bin())
            .arg(policy)
            .arg(registries_d)
            .arg(creds)
            .arg(image)
            .arg(dest),
    )
}
