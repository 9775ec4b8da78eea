//! The host's `go` command, run with exactly the allow-listed environment plus kiln's settings.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_lifecycle::{
    BuildContext, BuildpackError, RunImageInfo, Sandbox, find_executable, for_each_line,
};

use crate::failure::{self, Stderr};
use crate::version::GoVersion;

/// How many trailing stderr lines a failure message quotes.
const TAIL_LINES: usize = 50;

/// The `go` command of the host, ready to run in the app directory.
pub(crate) struct Go<'a> {
    exe: PathBuf,
    env: BTreeMap<String, String>,
    app_dir: PathBuf,
    output: &'a (dyn Fn(&str) + Sync),
    sandbox: &'a Sandbox,
}

impl<'a> Go<'a> {
    /// Returns the first `go` on the PATH of `ctx.env`, or a kiln error whose hint asks to install
    /// Go `required` or newer.
    pub(crate) fn locate(
        ctx: &BuildContext<'a>,
        required: Option<&str>,
    ) -> Result<Self, BuildpackError> {
        let path = ctx.env.get("PATH").map(String::as_str).unwrap_or("");
        let Some(exe) = find_executable(path, "go") else {
            let hint = match required {
                Some(v) => format!("install Go ≥ {v} and put it on PATH"),
                None => "install Go and put it on PATH".to_owned(),
            };
            return Err(BuildpackError::Kiln {
                message: "building the Go app: `go` not found on PATH".to_owned(),
                hint: Some(hint),
                source: None,
            });
        };
        // The go tool reports package directories by the real path of its working directory.
        let app_dir = ctx.app_dir.canonicalize().map_err(|e| {
            BuildpackError::io(
                format!("resolving the app directory `{}`", ctx.app_dir.display()),
                e,
            )
        })?;
        check_target(ctx.env, ctx.run_image)?;
        let cache = ctx.cache_dir;
        let mut env = ctx.env.clone();
        // Cross-compiled for the run image's platform: the host toolchain builds any.
        if let Some(run) = ctx.run_image {
            env.insert("GOOS".to_owned(), run.os.clone());
            env.insert("GOARCH".to_owned(), run.architecture.clone());
        }
        for (key, value) in [
            // Static binaries run on any base; the golden base has no C toolchain to link against.
            ("CGO_ENABLED", "0".to_owned()),
            // The host's Go builds, never one downloaded because go.mod names a newer toolchain.
            ("GOTOOLCHAIN", "local".to_owned()),
            ("GOCACHE", cache.join("go-build").display().to_string()),
            ("GOMODCACHE", cache.join("go-mod").display().to_string()),
        ] {
            env.insert(key.to_owned(), value);
        }
        Ok(Self {
            exe,
            env,
            app_dir,
            output: ctx.output,
            sandbox: ctx.sandbox,
        })
    }

    /// Returns the real app directory (symlinks resolved) the tool runs in.
    pub(crate) fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// Returns the path of the `go` executable.
    pub(crate) fn exe(&self) -> &Path {
        &self.exe
    }

    /// Returns the environment the tool runs with (exactly this, nothing inherited).
    pub(crate) fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// Runs `go args…` in the app directory without showing anything; returns stdout, or
    /// `None` if the tool failed (its own words are left for a later, visible run).
    pub(crate) fn run_quiet(&self, args: &[&str]) -> Option<String> {
        let out = self
            .sandbox
            .command(&self.exe)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.app_dir)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Returns the host Go's version, `None` for a development build (which has none).
    pub(crate) fn version(&self) -> Result<Option<GoVersion>, BuildpackError> {
        let out = self.run("go env GOVERSION", ["env", "GOVERSION"], false)?;
        // e.g. `go1.26.8`, or `go1.24.0 X:nocoverageredesign` with experiments enabled.
        Ok(out.split_whitespace().next().and_then(GoVersion::parse))
    }

    /// Runs `go args…` in the app directory. Stderr always goes to the build output; stdout goes
    /// there when `stream_stdout`, else it is returned. A failed run becomes an app error.
    pub(crate) fn run<I, S>(
        &self,
        doing: &str,
        args: I,
        stream_stdout: bool,
    ) -> Result<String, BuildpackError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.sandbox.command(&self.exe);
        // env_clear: nothing but the allow-list reaches the tool, credentials above all.
        cmd.args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.app_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_err = |e| {
            BuildpackError::io(
                format!("running `{doing}` with `{}`", self.exe.display()),
                e,
            )
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let output = self.output;
        let (captured, log) = std::thread::scope(|s| {
            let err_reader = s.spawn(move || {
                let mut log = Stderr::new(TAIL_LINES);
                if let Some(pipe) = stderr {
                    for_each_line(pipe, |line| {
                        output(line);
                        log.push(line);
                    });
                }
                log
            });
            let mut captured = String::new();
            if let Some(pipe) = stdout {
                for_each_line(pipe, |line| {
                    if stream_stdout {
                        output(line);
                    } else {
                        captured.push_str(line);
                        captured.push('\n');
                    }
                });
            }
            (
                captured,
                err_reader.join().unwrap_or_else(|_| Stderr::new(0)),
            )
        });
        let status = child.wait().map_err(spawn_err)?;
        if status.success() {
            Ok(captured)
        } else {
            Err(failure::classify(doing, &status.to_string(), &log))
        }
    }
}

/// Refuses a `GOOS` or `GOARCH` in the build environment that is not the run image's
/// platform: the binary would not run there, yet the image would say it does.
fn check_target(
    env: &BTreeMap<String, String>,
    run: Option<&RunImageInfo>,
) -> Result<(), BuildpackError> {
    let Some(run) = run else { return Ok(()) };
    for (key, platform) in [("GOOS", &run.os), ("GOARCH", &run.architecture)] {
        match env.get(key).map(|v| v.trim()) {
            Some(value) if !value.is_empty() && value != platform => {
                return Err(BuildpackError::Usage {
                    message: format!(
                        "the build environment sets {key}={value}, but the run image `{}` is {}/{}: the binary would not run on it",
                        run.name, run.os, run.architecture
                    ),
                    hint: Some(format!(
                        "leave {key} out of the build environment, or build on a run image for that platform"
                    )),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(arch: &str) -> RunImageInfo {
        RunImageInfo {
            name: "kiln-base/static".to_owned(),
            os: "linux".to_owned(),
            architecture: arch.to_owned(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn a_goarch_other_than_the_run_images_is_refused() {
        let env = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let err = check_target(&env("GOARCH", "arm64"), Some(&run("amd64"))).unwrap_err();
        let BuildpackError::Usage { message, hint } = err else {
            panic!("not a usage error: {err:?}");
        };
        assert!(
            message.contains("GOARCH=arm64") && message.contains("linux/amd64"),
            "{message}"
        );
        assert!(hint.unwrap().contains("GOARCH"));
        assert!(check_target(&env("GOOS", "darwin"), Some(&run("amd64"))).is_err());
        assert!(check_target(&env("GOARCH", "arm64"), Some(&run("arm64"))).is_ok());
        assert!(check_target(&env("GOARCH", ""), Some(&run("amd64"))).is_ok());
        assert!(check_target(&BTreeMap::new(), Some(&run("amd64"))).is_ok());
    }
}
