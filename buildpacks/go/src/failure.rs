//! Turning a failed `go` run into an app error that quotes the tool and says what to do.

use std::collections::VecDeque;

use kiln_lifecycle::{BuildpackError, environment_failure};

/// The hint for missing or stale `go.sum` entries: the go tool's own remedy.
pub(crate) const GO_MOD_TIDY: &str = "run go mod tidy";

/// The hint for a `replace` or `go.work` directory missing from the scratch copy.
pub const OUTSIDE_COPY_HINT: &str = "kiln copies the app's directory, or the ancestor holding every local `replace` and `go.work` directory up to 8 levels up; a directory left out by .gitignore, .dockerignore or project.toml excludes, an absolute path or one farther up is not copied: name a build context that holds it";

/// What kiln keeps of a `go` run's stderr: its tail, and the lines that identify known failures.
pub(crate) struct Stderr {
    tail: VecDeque<String>,
    max: usize,
    go_sum: bool,
    needs_newer_go: bool,
    outside_copy: bool,
    machine: Option<&'static str>,
}

impl Stderr {
    /// Returns an empty log keeping the last `max` lines.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            tail: VecDeque::new(),
            max,
            go_sum: false,
            needs_newer_go: false,
            outside_copy: false,
            machine: None,
        }
    }

    /// Records one line of stderr.
    pub(crate) fn push(&mut self, line: &str) {
        // The markers are checked on every line, so a long error list cannot push them out of the tail.
        self.go_sum |=
            line.contains("missing go.sum entry") || line.contains("updates to go.sum needed");
        self.needs_newer_go |= line.contains("requires go >=");
        // `replacement directory ../lib does not exist`, or a `go.work` `use` of one.
        self.outside_copy |= (line.contains("replacement directory") || line.contains("go.work"))
            && (line.contains("does not exist") || line.contains("no such file or directory"));
        self.machine = self.machine.or_else(|| environment_failure(line));
        push_bounded(&mut self.tail, line, self.max);
    }
}

/// Keeps the last lines of a stream.
fn push_bounded(lines: &mut VecDeque<String>, line: &str, max: usize) {
    if max == 0 {
        return;
    }
    if lines.len() == max {
        lines.pop_front();
    }
    lines.push_back(line.to_owned());
}

/// Returns the error for a `go` run (`doing`, e.g. ``go build` of `example.com/x``) that
/// exited with `status`: the app's, unless the go tool says the machine failed.
pub(crate) fn classify(doing: &str, status: &str, log: &Stderr) -> BuildpackError {
    let quoted = log
        .tail
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    let quoted = if quoted.trim().is_empty() {
        format!("({status}, no output)")
    } else {
        quoted
    };
    if let Some(why) = log.machine {
        return BuildpackError::Kiln {
            message: format!("{doing} failed: {why}:\n{quoted}"),
            hint: Some(
                "free space or fix the file system, then build again; kiln's cache dir (`--cache-dir`) holds the toolchain caches and the build's scratch copy".to_owned(),
            ),
            source: None,
        };
    }
    let (what, hint) = if log.go_sum {
        ("go.sum is missing entries", GO_MOD_TIDY.to_owned())
    } else if log.needs_newer_go {
        (
            "the module needs a newer Go",
            "install the Go version named above (kiln builds with GOTOOLCHAIN=local)".to_owned(),
        )
    } else if log.outside_copy {
        (
            "a directory the module refers to is not in the build's copy",
            OUTSIDE_COPY_HINT.to_owned(),
        )
    } else {
        (
            "the go tool reported errors",
            "fix the errors above; `go build ./...` in the source directory shows them too, unless they come from files kiln leaves out of its copy (.gitignore, .dockerignore, project.toml excludes)"
                .to_owned(),
        )
    };
    BuildpackError::App {
        message: format!("{doing} failed: {what}:\n{quoted}"),
        hint: Some(hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Stderr {
        let mut log = Stderr::new(3);
        for line in lines {
            log.push(line);
        }
        log
    }

    #[test]
    fn missing_go_sum_asks_for_tidy_even_when_the_marker_left_the_tail() {
        let err = classify(
            "`go build` of `example.com/goweb`",
            "exit status: 1",
            &log(&[
                "main.go:11:2: missing go.sum entry for module providing package github.com/google/uuid (imported by example.com/goweb); to add:",
                "\tgo get example.com/goweb",
                "a",
                "b",
            ]),
        );
        assert_eq!(err.hint(), Some(GO_MOD_TIDY));
        let BuildpackError::App { message, .. } = err else {
            panic!("want an app error")
        };
        assert!(
            message.starts_with(
                "`go build` of `example.com/goweb` failed: go.sum is missing entries:\n"
            )
        );
        assert!(
            message.ends_with("\tgo get example.com/goweb\na\nb"),
            "{message}"
        );
    }

    #[test]
    fn compile_errors_are_quoted() {
        let err = classify(
            "`go build` of `example.com/broken`",
            "exit status: 1",
            &log(&[
                "# example.com/broken",
                "./main.go:5:2: undefined: undefinedThing",
            ]),
        );
        let BuildpackError::App { message, hint } = err else {
            panic!("want an app error")
        };
        assert!(message.contains("./main.go:5:2: undefined: undefinedThing"));
        assert!(hint.unwrap().contains("go build ./..."));

        let err = classify(
            "`go list`",
            "exit status: 1",
            &log(&["go: example.com/lib@v0.0.0: replacement directory ../lib does not exist"]),
        );
        assert_eq!(err.hint(), Some(OUTSIDE_COPY_HINT));
    }

    #[test]
    fn a_full_disk_is_kilns_failure_not_the_apps() {
        let err = classify(
            "`go build` of `example.com/x`",
            "exit status: 1",
            &log(&["go: writing /c/go-build/ab: no space left on device"]),
        );
        assert!(matches!(err, BuildpackError::Kiln { .. }), "{err:?}");
        assert!(err.to_string().contains("the disk is full"), "{err}");
    }

    #[test]
    fn silent_failures_say_how_the_tool_ended() {
        let err = classify("`go list`", "signal: 9 (SIGKILL)", &log(&[]));
        assert!(err.to_string().contains("signal: 9 (SIGKILL), no output"));
    }

    #[test]
    fn keeps_only_the_last_lines() {
        let mut lines = VecDeque::new();
        for i in 0..5 {
            push_bounded(&mut lines, &i.to_string(), 3);
        }
        assert_eq!(lines, ["2", "3", "4"]);
    }
}
