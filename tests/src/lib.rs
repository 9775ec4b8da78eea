//! End-to-end test harness for kiln.
//!
//! Everything here drives real parts, the way DESIGN.md §4 "Tests" asks: Debian's
//! `docker-registry` (distribution 2.8) on a free 127.0.0.1 port, a small bearer-token
//! issuer that the registry trusts, podman + runc with private storage, skopeo and umoci,
//! and the Go toolchain. Every process a helper starts is stopped by its PID when the
//! helper is dropped, and every file lives in a temporary directory.
//!
//! The e2e tests in `tests/e2e/` use this library; `tests/e2e/harness.rs` proves
//! each part works without kiln.

mod cmd;
mod go;
mod http;
mod kiln;
mod noise;
mod oci_image;
mod openssl;
mod podman;
mod policy_pull;
mod registry;
mod sbom_tools;
mod skopeo;
mod stall_proxy;
mod syft;
mod token;
mod tools;
mod workspace;

pub use cmd::{command_line, run_checked, run_output};
pub use go::{go_bin, go_build_static};
pub use http::{HttpResponse, http_get, wait_http};
pub use kiln::{
    containers_conf_problems, ensure_containers_conf, kiln_bin, target_dir, workspace_root,
};
pub use noise::noise;
pub use oci_image::UmociImage;
pub use podman::{Podman, RunningContainer};
pub use policy_pull::{policy_pull, policy_pull_bin};
pub use registry::{Registry, RegistryBuilder};
pub use sbom_tools::{sbom_tools_python, validate_cyclonedx, validate_spdx};
pub use skopeo::{
    skopeo, skopeo_copy, skopeo_copy_with, skopeo_inspect, skopeo_inspect_config,
    skopeo_inspect_raw, skopeo_inspect_with,
};
pub use stall_proxy::StallProxy;
pub use syft::{syft_bin, syft_scan};
pub use token::{Access, READER, TokenIssuer, TokenRequest};
pub use tools::{download_cache, machine_cache, tool};
pub use workspace::{Workspace, copy_dir, free_port};
