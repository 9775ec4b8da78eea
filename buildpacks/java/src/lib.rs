//! The Java buildpack of kiln (`kiln/java`): detects a Maven app (`pom.xml`), reads the Java
//! release it needs and the golden base that runs it, vets the Maven wrapper's download,
//! runs Maven, and turns the jar it produced into launch layers: a layered Spring Boot jar
//! exploded (confined) by its `layers.idx`, any other jar beside the runtime dependencies
//! it does not bundle. Settings come from `[io.kiln.java]` of `project.toml` ([`JavaSettings`]).
//!
//! It implements the [`kiln_lifecycle::Buildpack`] API, itself shaped after the CNB
//! buildpack spec (<https://github.com/buildpacks/spec/blob/main/buildpack.md>).
//! Synchronous throughout.

mod build;
mod cds;
mod classpath;
mod detect;
mod explode;
mod failure;
mod incremental;
mod jar;
mod jdk;
mod layers_idx;
mod maven;
mod native_libs;
mod parent;
mod pom;
mod select;
mod settings;
mod wrapper;

#[cfg(test)]
mod explode_tests;
#[cfg(test)]
mod testzip;

use std::path::Path;

use kiln_lifecycle::{BuildContext, BuildOutput, Buildpack, BuildpackError, Plan};

pub use build::JVM_OPTIONS;
pub use classpath::{
    CLASSPATH_FILE, Dependency, build_classpath_args, classpath_coordinates, maven_coordinates,
    repository_coordinates, runtime_dependencies, spring_boot_plugin_coordinates,
};
pub use detect::{BUILD_TOOL, VERSION, gradle_hint};
pub use explode::{DEFAULT_LAYER, ExplodedLayer, Limits, explode};
pub use jar::{JarError, JarKind, LAYERS_IDX, MANIFEST, inspect};
pub use layers_idx::LayersIdx;
pub use pom::{BaseError, JAVA17_BASE, JAVA21_BASE, base_for, java_release};
pub use settings::{DEFAULT_MAVEN_ARGS, JavaSettings};
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

    fn build(&self, ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
        let mut out = build::build(ctx, plan)?;
        out.native = native_libs::native_code(&out.layers);
        Ok(out)
    }

    /// Maven's `target/` survives from build to build, so Maven compiles only what changed
    /// and skips what is up to date; the developer's own `target/` never enters the copy.
    fn scratch_keeps(&self) -> &'static [&'static str] {
        &["target"]
    }

    /// What changes the build itself: the POMs and Maven's own configuration.
    fn incremental_inputs(&self) -> &'static [&'static str] {
        &[
            "pom.xml",
            "maven-wrapper.properties",
            "settings.xml",
            "extensions.xml",
            "maven.config",
            "jvm.config",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity() {
        assert_eq!(JavaBuildpack.id(), "kiln/java");
        assert_eq!(JavaBuildpack.looks_for(), "pom.xml");
    }
}
