//! `policy-pull`: what `podman pull` does with a `policy.json`, built from upstream
//! containers/image (`go.podman.io/image/v5`, at the version `tests/tools/policy-pull/go.mod`
//! pins) once per machine by `tests/tools/install.sh`.
//!
//! Debian's podman and skopeo (bookworm) are built with sigstore verification patched out
//! ("Debian-local change: sigstore disabled"), so they cannot check a `sigstoreSigned`
//! requirement at all. `tests/tools/policy-pull` runs the same engine podman uses for a
//! pull, `copy.Image` under a policy context with registries.d configuration, without
//! that patch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cmd::run_output;
use crate::tools::tool;

/// Returns the `policy-pull` binary, building it into the machine cache first when it is
/// missing (half a minute, once per machine and source).
pub fn policy_pull_bin() -> PathBuf {
    tool("policy-pull")
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
