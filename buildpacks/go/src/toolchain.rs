//! The host's `go` command, run with exactly the allow-listed environment plus kiln's settings.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_lifecycle::{BuildContext, BuildpackError, Sandbox, find_executable, for_each_line};

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
        let cache = ctx.cache_dir;
        let mut env = ctx.env.clone();
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
