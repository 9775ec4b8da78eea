//! Running external tools with failures that say what was run and what it printed.

use std::process::{Command, Output, Stdio};

/// Returns `cmd` as a shell-like line (program and arguments) for failure messages.
pub fn command_line(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with stdin closed and returns its output, whatever its exit status.
///
/// Panics only when the program cannot be started (e.g. it is not installed).
pub fn run_output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match cmd.output() {
        Ok(output) => output,
        Err(err) => panic!(
            "starting `{}`: {err} (is it installed? run `.ci/setup`)",
            command_line(cmd)
        ),
    }
}

/// Runs `cmd` and returns its output; panics with the command line, exit status,
/// stdout and stderr when it does not exit 0.
pub fn run_checked(cmd: &mut Command) -> Output {
    let output = run_output(cmd);
    if !output.status.success() {
        panic!(
            "`{}` failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            command_line(cmd),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Returns the last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
