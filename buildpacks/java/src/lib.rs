//! The Java buildpack of kiln (`kiln/java`), first slice: detects a Maven app (`pom.xml`),
//! reads the Java release it needs and the golden base that runs it, vets the Maven
//! wrapper's download, and inspects and explodes (confined) the jar a build produces.
//! Building itself is not implemented yet: [`JavaBuildpack`]'s `build` returns an error.
//!
//! It implements the [`kiln_lifecycle::Buildpack`] API, itself shaped after the CNB
//! buildpack spec (<https://github.com/buildpacks/spec/blob/main/buildpack.md>).
//! Synchronous throughout.

mod detect;
mod explode;
mod jar;
mod layers_idx;
mod pom;
mod wrapper;

#[cfg(test)]
mod explode_tests;
#[cfg(test)]
mod testzip;

use std::path::Path;

use kiln_lifecycle::{BuildContext, BuildOutput, Buildpack, BuildpackError, Plan};

pub use detect::{BUILD_TOOL, VERSION, gradle_hint};
pub use explode::{DEFAULT_LAYER, ExplodedLayer, Limits, explode};
pub use jar::{JarError, JarKind, LAYERS_IDX, MANIFEST, inspect};
pub use layers_idx::LayersIdx;
pub use pom::{BaseError, JAVA17_BASE, JAVA21_BASE, base_for, java_release};
pub use wrapper::{MavenWrapper, WRAPPER_PROPERTIES, WrapperError, parse_wrapper, read_wrapper};

/// The Java buildpack (`kiln/java`).
#[derive(Clone, Copy, Debug, Default)]
pub struct JavaBuildpack;

impl Buildpack for JavaBuildpack {
    fn id(&self) -> &'static str {
        "kiln/java"
    }

    fn looks_for(&self) -> &'static str {
        "pom.xml"
    }

    fn detect(&self, app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
        detect::detect(app_dir)
    }

    /// Returns an error: building Java apps is not implemented yet.
    fn build(&self, _ctx: &BuildContext<'_>, _plan: &Plan) -> Result<BuildOutput, BuildpackError> {
        Err(BuildpackError::Kiln {
            message: "building a java app: the `kiln/java` build step is not implemented yet"
                .to_owned(),
            hint: Some("build the image of a java app with another tool for now".to_owned()),
            source: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn build_is_an_error_not_a_fake_success() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::new();
        let ctx = BuildContext {
            app_dir: dir.path(),
            layers_dir: dir.path(),
            cache_dir: dir.path(),
            env: &env,
            default_process: None,
            workspace: "/workspace",
            output: &|_| {},
        };
        let err = JavaBuildpack.build(&ctx, &Plan::default()).unwrap_err();
        assert!(matches!(err, BuildpackError::Kiln { .. }), "{err:?}");
        assert!(err.to_string().contains("not implemented"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn identity() {
        assert_eq!(JavaBuildpack.id(), "kiln/java");
        assert_eq!(JavaBuildpack.looks_for(), "pom.xml");
    }
}
