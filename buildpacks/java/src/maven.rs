//! Running Maven: `./mvnw` when the app has a pinned wrapper, else the host `mvn`, with only
//! the allow-listed environment, the local repository in kiln's cache, and the output
//! streamed; a failed build becomes an app error carrying Maven's last lines.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kiln_lifecycle::{BuildContext, BuildpackError, find_executable};

use crate::failure::with_causes;
use crate::wrapper::read_wrapper;

/// Lines of Maven's output kept for the error message.
const TAIL_LINES: usize = 40;

/// A Maven to run in one app directory.
pub(crate) struct Maven<'a, 'c> {
    exe: PathBuf,
    ctx: &'a BuildContext<'c>,
    env: &'a BTreeMap<String, String>,
}

impl<'a, 'c> Maven<'a, 'c> {
    /// Returns `./mvnw` when the app has one (after checking that its distribution is
    /// pinned by SHA-256), else the first `mvn` on the allow-listed `PATH`; it runs in the
    /// app directory of `ctx` with `env`.
    pub(crate) fn find(
        ctx: &'a BuildContext<'c>,
        env: &'a BTreeMap<String, String>,
    ) -> Result<Self, BuildpackError> {
        let app_dir: &Path = ctx.app_dir;
        let wrapper = app_dir.join("mvnw");
        let exe = if wrapper.is_file() {
            read_wrapper(app_dir).map_err(|e| BuildpackError::Usage {
                hint: e.hint(),
                message: with_causes(&e),
            })?;
            let mut perms = std::fs::metadata(&wrapper)
                .map_err(|e| BuildpackError::io("reading `mvnw`", e))?
                .permissions();
            perms.set_mode(perms.mode() | 0o755);
            std::fs::set_permissions(&wrapper, perms)
                .map_err(|e| BuildpackError::io("making `mvnw` executable", e))?;
            wrapper
        } else {
            let path = env.get("PATH").map(String::as_str).unwrap_or_default();
            find_executable(path, "mvn").ok_or_else(|| BuildpackError::Kiln {
                message: "no `mvn` on PATH to build this Maven project".to_owned(),
                hint: Some("install Maven (Debian: `apt install maven`), or add a Maven wrapper (`mvnw`) to the project".to_owned()),
                source: None,
            })?
        };
        Ok(Self { exe, ctx, env })
    }

    /// Returns the Maven executable (`mvnw` or `mvn`).
    pub(crate) fn exe(&self) -> &Path {
        &self.exe
    }

    /// Runs Maven with `args` in the app directory. Every line goes to the build output; a
    /// failure is an app error (exit 51) quoting the last lines.
    pub(crate) fn run(&self, args: &[String]) -> Result<(), BuildpackError> {
        self.run_with_jvm_flags(args, "")
    }

    /// Like [`run`](Self::run), with `flags` for Maven's JVM before those in `MAVEN_OPTS`.
    pub(crate) fn run_with_jvm_flags(
        &self,
        args: &[String],
        flags: &str,
    ) -> Result<(), BuildpackError> {
        let mut env = self.env.clone();
        if !flags.is_empty() {
            let opts = env.get("MAVEN_OPTS").map_or("", String::as_str);
            let opts = format!("{flags} {opts}").trim_end().to_owned();
            env.insert("MAVEN_OPTS".to_owned(), opts);
        }
        let tool = self
            .ctx
            .tool(self.exe.clone(), env, self.ctx.app_dir.to_path_buf());
        let run = tool
            .run(args, false, TAIL_LINES)
            .map_err(|e| BuildpackError::io(format!("running `{}`", self.exe.display()), e))?;
        if run.status.success() {
            return Ok(());
        }
        if let Some(why) = run.environment_failure() {
            return Err(BuildpackError::Kiln {
                message: format!("the Maven build failed: {why}:\n{}", run.quoted_tail()),
                hint: Some("free space or fix the file system, then build again; kiln's cache dir (`--cache-dir`) holds the Maven repository and the build's scratch copy".to_owned()),
                source: None,
            });
        }
        Err(BuildpackError::App {
            message: format!(
                "the Maven build failed ({}):\n{}",
                run.status,
                run.quoted_tail()
            ),
            hint: Some("fix the build error above; `mvn -B -DskipTests package` in the project reproduces it".to_owned()),
        })
    }
}
