//! The Node.js buildpack of kiln (`kiln/node`): detects a `package.json`, picks the package
//! manager from the lockfile and `packageManager` (npm, pnpm, Yarn 1 and 4+, the latter two
//! fetched at the pinned version), checks the Node.js the app asks for against the host's
//! and the run image's, installs every dependency, runs the build script, prunes to
//! production dependencies, and lays out a `node_modules` layer (reused while the lockfile,
//! package manager, Node.js and platform stay the same) and an app layer, run by `node`
//! directly. Settings come from `[io.kiln.node]` of `project.toml` ([`NodeSettings`]).
//!
//! It implements the [`kiln_lifecycle::Buildpack`] API, itself shaped after the CNB
//! buildpack spec (<https://github.com/buildpacks/spec/blob/main/buildpack.md>).
//! Synchronous throughout.

mod build;
mod detect;
mod lockfile;
mod manager;
mod modules_cache;
mod native;
mod node_version;
mod package_json;
mod package_manager;
mod provision;
mod semver;
mod settings;
mod start;
mod tree;
mod workspace_root;

use std::path::Path;

use kiln_lifecycle::{BuildContext, BuildOutput, Buildpack, BuildpackError, Plan};

pub use detect::{LOCKFILE, MEMBER, PACKAGE_MANAGER, PINNED};
pub use lockfile::Lockfile;
pub use package_json::PackageJson;
pub use package_manager::{Kind, ManagerSpec, PinnedHash};
pub use semver::{Range, RangeError, Version, VersionError, max_satisfying};
pub use settings::{Command, DEFAULT_BUILD_SCRIPT, NodeSettings};
pub use start::NODE;

/// The Node.js buildpack (`kiln/node`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeBuildpack;

impl Buildpack for NodeBuildpack {
    fn id(&self) -> &'static str {
        "kiln/node"
    }

    fn looks_for(&self) -> &'static str {
        "package.json"
    }

    fn detect(&self, app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
        detect::detect(app_dir)
    }

    fn build(&self, ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
        build::build(ctx, plan)
    }

    /// The developer's own `node_modules` is built for their machine, and package manager
    /// state is rebuilt from the lockfile: neither enters the scratch copy.
    fn scratch_excludes(&self) -> &'static [&'static str] {
        &[
            "node_modules/",
            ".pnpm-store/",
            ".yarn/cache/",
            ".yarn/unplugged/",
            ".yarn/install-state.gz",
            ".yarn/build-state.yml",
            ".pnp.cjs",
            ".pnp.loader.mjs",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity() {
        assert_eq!(NodeBuildpack.id(), "kiln/node");
        assert_eq!(NodeBuildpack.looks_for(), "package.json");
        assert!(NodeBuildpack.scratch_excludes().contains(&"node_modules/"));
    }
}
