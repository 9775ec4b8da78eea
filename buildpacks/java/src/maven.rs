//! Running Maven: `./mvnw` when the app has a pinned wrapper, else the host `mvn`, with only
//! the allow-listed environment, the local repository in kiln's cache, and the output
//! streamed; a failed build becomes an app error carrying Maven's last lines.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_lifecycle::BuildpackError;

use crate::wrapper::read_wrapper;

/// Lines of Maven's output kept for the error message.
const TAIL_LINES: usize = 40;

/// A Maven to run in one app directory.
pub(crate) struct Maven<'a> {
    exe: PathBuf,
    app_dir: &'a Path,
    env: &'a BTreeMap<String, String>,
    output: &'a (dyn Fn(&str) + Sync),
}

impl<'a> Maven<'a> {
    /// Returns `./mvnw` when the app has one (after checking that its distribution is
    /// pinned by SHA-256), else the first `mvn` on the allow-listed `PATH`.
    pub(crate) fn find(
        app_dir: &'a Path,
        env: &'a BTreeMap<String, String>,
        output: &'a (dyn Fn(&str) + Sync),
    ) -> Result<Self, BuildpackError> {
        let wrapper = app_dir.join("mvnw");
        let exe = if wrapper.is_file() {
            read_wrapper(app_dir).map_err(|e| BuildpackError::Usage {
                hint: e.hint(),
                message: e.to_string(),
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
        Ok(Self {
            exe,
            app_dir,
            env,
            output,
        })
    }

    /// Runs Maven with `args` in the app directory. Every line goes to the build output; a
    /// failure is an app error (exit 51) quoting the last lines.
    pub(crate) fn run(&self, args: &[String]) -> Result<(), BuildpackError> {
        let mut cmd = Command::new(&self.exe);
        // env_clear: nothing but the allow-list reaches Maven, credentials above all.
        cmd.args(args)
            .env_clear()
            .envs(self.env)
            .current_dir(self.app_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let doing = format!("running `{}`", self.exe.display());
        let mut child = cmd
            .spawn()
            .map_err(|e| BuildpackError::io(doing.clone(), e))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let output = self.output;
        let tail = std::thread::scope(|s| {
            let err = s.spawn(move || {
                let mut tail = VecDeque::new();
                if let Some(pipe) = stderr {
                    lines(pipe, |l| keep(&mut tail, l, output));
                }
                tail
            });
            let mut tail = VecDeque::new();
            if let Some(pipe) = stdout {
                lines(pipe, |l| keep(&mut tail, l, output));
            }
            tail.extend(err.join().unwrap_or_default());
            tail
        });
        let status = child
            .wait()
            .map_err(|e| BuildpackError::io(doing.clone(), e))?;
        if status.success() {
            return Ok(());
        }
        let quoted: Vec<String> = tail.into_iter().collect();
        Err(BuildpackError::App {
            message: format!(
                "the Maven build failed ({status}):\n{}",
                quoted.join("\n")
            ),
            hint: Some("fix the build error above; `mvn -B -DskipTests package` in the project reproduces it".to_owned()),
        })
    }
}

fn keep(tail: &mut VecDeque<String>, line: &str, output: &(dyn Fn(&str) + Sync)) {
    output(line);
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_owned());
}

/// Calls `f` with each line of `pipe` (lossily decoded, without its line ending).
fn lines(pipe: impl Read, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut buf) {
        if n == 0 {
            break;
        }
        f(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']));
        buf.clear();
    }
}

/// Returns the first executable file called `name` in the absolute directories of `path`.
fn find_executable(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|c| {
            c.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
