//! The `kiln` binary as a user meets it before any build: `--version`, `--help` naming
//! every subcommand, and usage errors exiting 2 with clap's hint. (An integration test of
//! this package, so `cargo test` builds the binary in its own build, the one the e2e suite
//! then runs: `tests/src/kiln.rs`.)

use std::process::{Command, Output};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("running kiln")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn version_and_help_name_every_subcommand() {
    let version = kiln(&["--version"]);
    assert!(version.status.success(), "{}", text(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("kiln {}", env!("CARGO_PKG_VERSION"))
    );
    let help = kiln(&["--help"]);
    assert!(help.status.success(), "{}", text(&help));
    let help = text(&help);
    for command in [
        "build", "rebase", "login", "base", "sign", "verify", "inspect", "key",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_to_try() {
    for args in [&["frobnicate"][..], &["build"], &["base", "build"]] {
        let out = kiln(args);
        assert_eq!(out.status.code(), Some(2), "kiln {args:?}: {}", text(&out));
        assert!(
            text(&out).contains("--help"),
            "kiln {args:?} names no next step: {}",
            text(&out)
        );
    }
}
