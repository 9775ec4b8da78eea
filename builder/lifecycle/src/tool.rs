//! Running a build tool (`go`, `mvn`, `npm`, ...) the way every buildpack must: found on the
//! allow-listed `PATH`, started inside the build's [`Sandbox`] with exactly the allow-listed
//! environment (nothing inherited, registry credentials above all), no stdin, and its output
//! streamed line by line.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;

use crate::Sandbox;

/// Returns the first executable file called `name` in the absolute directories of `path`
/// (a `PATH` value); relative entries are skipped, as they would depend on the directory
/// the tool runs in.
pub fn find_executable(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|c| {
            c.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Calls `f` with each line of `pipe` (lossily decoded, without its line ending) until the
/// pipe ends or fails.
pub fn for_each_line(pipe: impl Read, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => f(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r'])),
        }
    }
}

/// Returns what a line of a tool's output says went wrong with the machine rather than the
/// app (a full disk, a file system kiln cannot write, the working directory gone), if it
/// says so: a failure of kiln's own or the machine's is never reported as the app's compile
/// error.
pub fn environment_failure(line: &str) -> Option<&'static str> {
    const MARKERS: &[(&str, &str)] = &[
        ("no space left on device", "the disk is full"),
        ("disk quota exceeded", "the disk quota is used up"),
        (
            "read-only file system",
            "a file system the build writes is read-only",
        ),
        (
            "too many open files",
            "the build ran out of file descriptors",
        ),
        (
            "cannot determine current directory",
            "the build's directory was removed under it",
        ),
    ];
    let lower = line.to_ascii_lowercase();
    MARKERS
        .iter()
        .find(|(marker, _)| lower.contains(marker))
        .map(|(_, why)| *why)
}

/// A program to run in one directory with exactly one environment.
pub struct Tool<'a> {
    /// The executable.
    pub exe: PathBuf,
    /// The whole environment of the process: nothing else is inherited.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub dir: PathBuf,
    /// Receives every line the tool prints (stdout unless captured, and stderr).
    pub output: &'a (dyn Fn(&str) + Sync),
    /// The sandbox the tool runs in ([`crate::BuildContext::sandbox`]).
    pub sandbox: &'a Sandbox,
}

/// How a tool run ended.
#[derive(Debug)]
pub struct ToolRun {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output, when it was captured rather than streamed.
    pub stdout: String,
    /// The last lines the tool printed (streamed stdout and stderr, interleaved as read),
    /// for an error message.
    pub tail: Vec<String>,
}

impl ToolRun {
    /// Returns the first [`environment_failure`] the tail shows.
    pub fn environment_failure(&self) -> Option<&'static str> {
        self.tail.iter().find_map(|l| environment_failure(l))
    }

    /// Returns the tail joined by newlines, or a note that the tool printed nothing.
    pub fn quoted_tail(&self) -> String {
        if self.tail.iter().all(|l| l.trim().is_empty()) {
            format!("({}, no output)", self.status)
        } else {
            self.tail.join("\n")
        }
    }
}

impl Tool<'_> {
    /// Returns a command for the tool, in its sandbox, with its environment, directory and
    /// no stdin.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.sandbox.command(&self.exe);
        cmd.args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the tool with `args`, streaming stderr (and stdout unless `capture_stdout`) to
    /// the output, and keeps the last `tail_lines` streamed lines. Only a failure to start or
    /// wait for the tool is an error; a non-zero exit is in the returned status.
    pub fn run<I, S>(
        &self,
        args: I,
        capture_stdout: bool,
        tail_lines: usize,
    ) -> std::io::Result<ToolRun>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let tail = Mutex::new(VecDeque::with_capacity(tail_lines));
        let keep = |line: &str| {
            (self.output)(line);
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail_lines > 0 {
                if tail.len() == tail_lines {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
            }
        };
        let captured = std::thread::scope(|s| {
            s.spawn(|| {
                if let Some(pipe) = stderr {
                    for_each_line(pipe, keep);
                }
            });
            let mut captured = String::new();
            if let Some(pipe) = stdout {
                if capture_stdout {
                    let _ = BufReader::new(pipe).read_to_string(&mut captured);
                } else {
                    for_each_line(pipe, keep);
                }
            }
            captured
        });
        let status = child.wait()?;
        Ok(ToolRun {
            status,
            stdout: captured,
            tail: tail.into_inner().unwrap_or_else(|e| e.into_inner()).into(),
        })
    }
}

/// Puts `dir` first on the `PATH` of `env` (for tools a buildpack installs itself, like a
/// pinned package manager, which the project's own scripts call by name).
pub fn prepend_path(env: &mut BTreeMap<String, String>, dir: &Path) {
    let joined = match env.get("PATH").filter(|p| !p.is_empty()) {
        Some(rest) => format!("{}:{rest}", dir.display()),
        None => dir.display().to_string(),
    };
    env.insert("PATH".to_owned(), joined);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_only_on_absolute_path_entries() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = format!("relative:{}", dir.path().display());
        assert_eq!(find_executable(&path, "tool"), None, "not executable yet");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_executable(&path, "tool"), Some(tool));
        assert_eq!(find_executable("", "tool"), None);
    }

    fn sh<'a>(dir: &Path, env: &[(&str, &str)], output: &'a (dyn Fn(&str) + Sync)) -> Tool<'a> {
        Tool {
            exe: "/bin/sh".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir: dir.to_path_buf(),
            output,
            sandbox: Sandbox::unconfined(),
        }
    }

    #[test]
    fn runs_with_exactly_the_given_environment_and_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let lines = Mutex::new(Vec::new());
        let out = |l: &str| lines.lock().unwrap().push(l.to_owned());
        let tool = sh(dir.path(), &[("ONLY", "this")], &out);
        let run = tool
            .run(["-c", "env | sort; pwd; echo err >&2; exit 3"], false, 50)
            .unwrap();
        assert_eq!(run.status.code(), Some(3));
        let seen = lines.into_inner().unwrap();
        assert!(seen.contains(&"ONLY=this".to_owned()), "{seen:?}");
        assert!(!seen.iter().any(|l| l.starts_with("HOME=")), "{seen:?}");
        let real = dir.path().canonicalize().unwrap();
        assert!(seen.contains(&real.display().to_string()), "{seen:?}");
        // Both streams reach the output and the tail (in the order the readers got them).
        assert!(seen.contains(&"err".to_owned()), "{seen:?}");
        let mut tail = run.tail.clone();
        let mut all = seen.clone();
        tail.sort();
        all.sort();
        assert_eq!(tail, all);
        assert!(run.stdout.is_empty());

        let out = |_: &str| {};
        let tool = sh(dir.path(), &[], &out);
        let run = tool
            .run(["-c", "for i in 1 2 3 4 5; do echo line$i; done"], false, 3)
            .unwrap();
        assert_eq!(run.tail, ["line3", "line4", "line5"]);
    }

    #[test]
    fn captures_stdout_when_asked_and_notes_silence() {
        let dir = tempfile::tempdir().unwrap();
        let out = |_: &str| {};
        let tool = sh(dir.path(), &[], &out);
        let run = tool.run(["-c", "printf 'a\\nb\\n'"], true, 10).unwrap();
        assert!(run.status.success());
        assert_eq!(run.stdout, "a\nb\n");
        assert!(run.tail.is_empty());
        assert!(
            run.quoted_tail().contains("no output"),
            "{}",
            run.quoted_tail()
        );
    }

    #[test]
    fn machine_failures_are_told_from_app_failures() {
        assert_eq!(
            environment_failure("write /k/cache/go-build/ab: No space left on device"),
            Some("the disk is full")
        );
        assert!(environment_failure("open x: read-only file system").is_some());
        assert_eq!(environment_failure("./main.go:5:2: undefined: x"), None);
        let run = ToolRun {
            status: std::process::ExitStatus::default(),
            stdout: String::new(),
            tail: vec!["ok".into(), "ENOSPC: no space left on device, write".into()],
        };
        assert_eq!(run.environment_failure(), Some("the disk is full"));
    }

    #[test]
    fn prepends_to_path() {
        let mut env = BTreeMap::new();
        prepend_path(&mut env, Path::new("/opt/a/bin"));
        assert_eq!(env["PATH"], "/opt/a/bin");
        prepend_path(&mut env, Path::new("/opt/b/bin"));
        assert_eq!(env["PATH"], "/opt/b/bin:/opt/a/bin");
    }
}
