//! The Go buildpack of kiln: detects a Go module (`go.mod`) or workspace (`go.work`),
//! builds its main package(s) with the host's `go` into static, reproducible binaries,
//! and contributes them plus the app's non-code files as launch layers.
//!
//! It implements the [`kiln_lifecycle::Buildpack`] API, itself shaped after the CNB
//! buildpack spec (<https://github.com/buildpacks/spec/blob/main/buildpack.md>).
//! Synchronous throughout: the `go` tool does the heavy lifting in a child process.

mod build;
mod detect;
mod failure;
mod gomod;
mod link_cache;
mod memo;
mod packages;
mod reach;
mod toolchain;
mod version;
mod workspace;

use std::path::Path;

use kiln_lifecycle::{BuildContext, BuildOutput, Buildpack, BuildpackError, Plan};

pub use failure::OUTSIDE_COPY_HINT;
pub use gomod::GoMod;
pub use version::GoVersion;
pub use workspace::is_excluded;

/// The Go buildpack (`kiln/go`).
#[derive(Clone, Copy, Debug, Default)]
pub struct GoBuildpack;

impl Buildpack for GoBuildpack {
    fn id(&self) -> &'static str {
        "kiln/go"
    }

    fn looks_for(&self) -> &'static str {
        "go.mod or go.work"
    }

    fn detect(&self, app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
        detect::detect(app_dir)
    }

    fn build(&self, ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
        build::build(ctx, plan)
    }

    /// A Go binary runs on one CPU: each platform is cross-compiled, side by side.
    fn may_serve_all_platforms(&self) -> bool {
        false
    }
}
