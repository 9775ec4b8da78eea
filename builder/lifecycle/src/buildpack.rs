//! The buildpack API: what a language buildpack implements and what the lifecycle hands it.
//!
//! Shaped after the CNB buildpack API (<https://github.com/buildpacks/spec/blob/main/buildpack.md>):
//! `detect` looks at files only and returns a plan; `build` runs the real toolchain in a
//! scratch copy of the source and contributes launch layers and processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Sandbox, Tool};

/// A language buildpack.
pub trait Buildpack: Send + Sync {
    /// Returns the buildpack id, e.g. `kiln/go`.
    fn id(&self) -> &'static str;

    /// Returns what the buildpack looks for, for the "nothing detected" hint (e.g. `go.mod or go.work`).
    fn looks_for(&self) -> &'static str;

    /// Looks at files under `app_dir` only (never runs project code) and returns a plan if this
    /// buildpack can build the app, `None` if it cannot.
    fn detect(&self, app_dir: &Path) -> Result<Option<Plan>, BuildpackError>;

    /// Builds the app described by `plan` and returns the launch layers and processes.
    fn build(&self, ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError>;

    /// Returns gitignore-style patterns kept out of the scratch copy on top of the project's
    /// own ignore files: what the toolchain makes itself and must never take from the
    /// developer's checkout (`node_modules/`, built for the developer's machine).
    fn scratch_excludes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Returns directories of the scratch copy (relative to the app's directory in it) that
    /// the next build of the same source finds again, for the toolchain's incremental
    /// builds (Maven's `target/`). The user's own directories at these paths never enter
    /// the copy: only builds write them. The lifecycle empties them whenever a file left the source, a file named in
    /// [`incremental_inputs`](Self::incremental_inputs) changed, or the build's settings did:
    /// what a toolchain's own change detection may not see.
    fn scratch_keeps(&self) -> &'static [&'static str] {
        &[]
    }

    /// Returns the file names (at any depth) whose change empties the
    /// [`scratch_keeps`](Self::scratch_keeps) directories (`pom.xml`).
    fn incremental_inputs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether one build may serve every platform of a multi-platform image: then it runs
    /// once, and again per platform only when its output is not
    /// [`BuildOutput::platform_neutral`]. `false` (a compiler that targets one CPU) builds
    /// each platform at once, side by side.
    fn may_serve_all_platforms(&self) -> bool {
        true
    }
}

/// The directory of a buildpack's cache dir where builds sharing it keep their lock files
/// ([`crate::FileLock`]): hidden, so never an entry of a cache image.
pub const CACHE_LOCKS: &str = ".locks";

/// The plan fact in which a buildpack names the run image the app needs (`kiln-base/java21`
/// for a Java 21 project), in place of its stack's default; `--run-image` still wins.
pub const RUN_IMAGE_FACT: &str = "run-image";

/// The plan fact in which a buildpack asks for an ancestor of the source directory to be
/// the scratch copy's root (a workspace member whose lockfile lives at the workspace root):
/// a relative path of `..` components only (`../..`). The build then runs in the member's
/// directory inside that copy.
pub const SOURCE_ROOT_FACT: &str = "source-root";

/// Plan fact: why the buildpack asked for [`SOURCE_ROOT_FACT`], in words the user knows
/// (`go.mod replaces example.com/lib with ../../lib`).
pub const SOURCE_ROOT_REASON_FACT: &str = "source-root.reason";

/// What detection found: free-form facts the buildpack passes itself from detect to build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Facts, e.g. `go.version = 1.22`.
    pub facts: BTreeMap<String, String>,
}

/// Everything a buildpack may use during build. Built by the lifecycle from plain settings.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// The scratch copy of the source (ignored files already left out). The toolchain runs here.
    /// With [`SOURCE_ROOT_FACT`], the member's directory inside the copy of the ancestor.
    pub app_dir: &'a Path,
    /// An empty directory for this build's layers. Each launch layer is a sub-directory laid
    /// out as the image's root (`<layer dir>/workspace/bin/app` ends up at `/workspace/bin/app`).
    pub layers_dir: &'a Path,
    /// A directory that persists between builds for this buildpack (toolchain caches). Never
    /// shipped. Each top-level directory is one entry of a cache image (`--cache-image`);
    /// lock files go under [`CACHE_LOCKS`], which no cache image carries.
    pub cache_dir: &'a Path,
    /// The allow-listed environment for toolchain processes: nothing else may reach them.
    /// `HOME` and `TMPDIR` are the build's own (empty at the start of each build).
    pub env: &'a BTreeMap<String, String>,
    /// The sandbox every toolchain process runs in: start them through [`Sandbox::command`]
    /// or [`BuildContext::tool`], never with `std::process::Command::new`.
    pub sandbox: &'a Sandbox,
    /// The process the user asked to be the default (`--process` or project file), if any.
    pub default_process: Option<&'a str>,
    /// The image directory the app runs in (`/workspace`).
    pub workspace: &'a str,
    /// Receives the toolchain's output, line by line, as it runs.
    pub output: &'a (dyn Fn(&str) + Sync),
    /// The buildpack's own settings: the `[io.kiln.<language>]` table of `project.toml` for
    /// the buildpack `kiln/<language>`, with the CLI's overrides; empty when there is none.
    pub settings: &'a BuildpackSettings,
    /// The run image the app will go on, when the lifecycle knows it before the build: its
    /// platform and labels, for buildpacks that must check what the base provides.
    pub run_image: Option<&'a RunImageInfo>,
    /// A digest of the source as the copy was made from it: every file's path, size, mode,
    /// inode and times. The same stamp means no file of the source changed, so a buildpack
    /// may reuse what it worked out from the same source before, keyed by this and by
    /// whatever else decides it (toolchain, environment); `None` when a file changed too
    /// recently to tell.
    pub source_stamp: Option<&'a str>,
}

/// What a buildpack may know of the run image: enough to check that the app can run on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunImageInfo {
    /// How the user named it (`kiln-base/node`, `registry.example.com/bases/node:20`).
    pub name: String,
    /// OCI operating system (`linux`).
    pub os: String,
    /// OCI architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// The image config's labels (a kiln golden base lists its packages in
    /// [`BASE_PACKAGES_LABEL`]).
    pub labels: BTreeMap<String, String>,
}

/// The label in which a kiln golden base lists the Debian packages its definition asked
/// for, as a JSON object of name → version (`{"nodejs": "20.19.2+dfsg-1+deb13u3"}`).
pub const BASE_PACKAGES_LABEL: &str = "io.kiln.base.packages";

impl RunImageInfo {
    /// Returns the version of Debian package `name` the run image says it holds, if it is a
    /// kiln golden base that lists it.
    pub fn package_version(&self, name: &str) -> Option<String> {
        let listed: BTreeMap<String, String> =
            serde_json::from_str(self.labels.get(BASE_PACKAGES_LABEL)?).ok()?;
        listed.get(name).cloned()
    }
}

/// A buildpack's settings table (`[io.kiln.<language>]` of `project.toml`).
pub type BuildpackSettings = toml::Table;

impl<'a> BuildContext<'a> {
    /// Returns a [`Tool`] running `exe` in `dir` with exactly `env`, in this build's sandbox,
    /// its output going to the build's output.
    pub fn tool(&self, exe: PathBuf, env: BTreeMap<String, String>, dir: PathBuf) -> Tool<'a> {
        Tool {
            exe,
            env,
            dir,
            output: self.output,
            sandbox: self.sandbox,
        }
    }

    /// Returns the buildpack's settings read into `T` (a serde struct, usually with
    /// `deny_unknown_fields`), or a usage error naming `[io.kiln.<language>]` and the problem.
    pub fn settings_as<T: serde::de::DeserializeOwned>(
        &self,
        language: &str,
    ) -> Result<T, BuildpackError> {
        toml::Value::Table(self.settings.clone())
            .try_into()
            .map_err(|e: toml::de::Error| BuildpackError::Usage {
                message: format!(
                    "reading `[io.kiln.{language}]` of project.toml: {}",
                    e.message()
                ),
                hint: Some(format!(
                    "README.md lists the keys of `[io.kiln.{language}]`; fix or remove this one"
                )),
            })
    }
}

/// A layer that goes into the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchLayer {
    /// Layer name, unique within the buildpack (e.g. `app`, `workspace`).
    pub name: String,
    /// Host directory whose contents go into the layer at [`prefix`](Self::prefix).
    pub dir: PathBuf,
    /// Where in the image `dir` goes: `""` (the image root) or a path like `workspace`.
    pub prefix: String,
    /// Paths below `dir` (components joined by `/`) left out of the layer with everything
    /// below them: what another layer of the buildpack carries (static assets apart from
    /// code, say). A buildpack may so lay out its layers straight from the scratch copy,
    /// whose unchanged files keep their identity from build to build, so the exporter
    /// knows them without reading them.
    pub except: Vec<String>,
    /// What fully determines the directory's contents (say, a digest of the lockfile, the
    /// toolchain version and the platform), when the buildpack knows it. The exporter then
    /// reuses the blob written for the same key without reading the directory again; `None`
    /// makes it fingerprint every file.
    pub cache_key: Option<String>,
}

/// A process the image can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Process type name (e.g. `web`, or the binary's name).
    pub name: String,
    /// Absolute command and arguments inside the image.
    pub command: Vec<String>,
    /// Whether this is the image's entrypoint.
    pub default: bool,
}

/// What a build produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOutput {
    /// Launch layers, in the order they go into the image.
    pub layers: Vec<LaunchLayer>,
    /// Processes; exactly one has `default = true` when there are any.
    pub processes: Vec<Process>,
    /// Environment variables for the image config.
    pub env: BTreeMap<String, String>,
    /// Things the user should know about the build (it is not reproducible, a setting was
    /// ignored), one sentence each.
    pub warnings: Vec<String>,
    /// The image's working directory when it is not the workspace itself (a workspace
    /// member's directory under it).
    pub working_dir: Option<String>,
    /// Packages the buildpack knows it shipped, for the SBOM, where the files themselves
    /// do not say (a jar without `pom.properties` is still known from Maven's resolved
    /// dependency list). The SBOM prefers what it reads in a file over these.
    pub packages: Vec<DeclaredPackage>,
    /// Whether the layers hold nothing tied to a CPU or OS (class files, JavaScript), so one
    /// build serves every platform of a multi-platform image. `false` (the default) builds
    /// again for each platform.
    pub platform_neutral: bool,
    /// Native code in the layers that the buildpack found (a jar's JNI libraries), with
    /// the architectures it has: an image for a platform one lacks gets a warning.
    pub native: Vec<crate::NativeCode>,
}

/// A package a buildpack declares it put into the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeclaredPackage {
    /// The package URL type: `maven`, `npm`, `golang`.
    pub purl_type: String,
    /// The namespace: a Maven groupId, an npm scope.
    pub namespace: Option<String>,
    /// The name (a Maven artifactId).
    pub name: String,
    /// The version.
    pub version: String,
    /// Its file in the image, absolute (`/workspace/BOOT-INF/lib/x-1.0.jar`).
    pub location: String,
}

/// Why a buildpack failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    /// The app itself does not build (compile error, missing dependency): exit code 51.
    #[error("{message}")]
    App {
        /// What failed, with the toolchain's own words.
        message: String,
        /// What the user can do next.
        hint: Option<String>,
    },
    /// The user asked for something this app cannot do (unknown process, ...): exit code 2.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What the user can do next.
        hint: Option<String>,
    },
    /// kiln itself failed while building (I/O, toolchain missing): exit code 52.
    #[error("{message}")]
    Kiln {
        /// What failed.
        message: String,
        /// What the user can do next.
        hint: Option<String>,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl BuildpackError {
    /// Returns the hint for the user, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::App { hint, .. } | Self::Usage { hint, .. } | Self::Kiln { hint, .. } => {
                hint.as_deref()
            }
        }
    }

    /// Returns a kiln-side failure wrapping an I/O error, naming what was being done.
    pub fn io(doing: impl Into<String>, err: std::io::Error) -> Self {
        Self::Kiln {
            message: doing.into(),
            hint: None,
            source: Some(Box::new(err)),
        }
    }

    /// Returns the failure of reading the project file `path` (see
    /// [`crate::read_bounded`]): a file too large or not text is the project's (a usage
    /// error, exit 2, naming the file and the cap); anything else is kiln's.
    pub fn reading(path: &std::path::Path, err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidData => Self::Usage {
                message: format!("reading `{}`: {err}", path.display()),
                hint: Some(
                    "check that the file is what its name says; kiln reads project files only up to a size no real one reaches"
                        .to_owned(),
                ),
            },
            _ => Self::io(format!("reading `{}`", path.display()), err),
        }
    }
}
