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
    // `kiln 0.1.0 (0123456789ab 2026-12-07)`: the commit it was built from, and its date.
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let detail = version
        .strip_prefix(&format!("kiln {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    let (commit, date) = detail
        .split_once(' ')
        .unwrap_or_else(|| panic!("{version}"));
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    if head.status.success() {
        assert_eq!(
            commit,
            String::from_utf8_lossy(&head.stdout).trim(),
            "{version}"
        );
        assert!(date.len() == 10 && date.starts_with("20"), "{version}");
    }
    let help = kiln(&["--help"]);
    assert!(help.status.success(), "{}", text(&help));
    let help = text(&help);
    for command in [
        "build", "rebase", "login", "logout", "base", "sign", "verify", "inspect", "key",
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

/// Returns the subcommands a help page lists under `Commands:`, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every help page, `kiln --help` and each subcommand's found by walking the `Commands:`
/// lists, is an insta snapshot (`tests/snapshots/`): a changed flag, default or wording
/// shows in review, and a new subcommand fails here until its page is accepted.
#[test]
fn every_help_page_matches_its_snapshot() {
    let mut pending = vec![Vec::<String>::new()];
    let mut pages = Vec::new();
    while let Some(path) = pending.pop() {
        let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&path)
            .arg("--help")
            .env_clear()
            .assert()
            .success();
        let help = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let name = std::iter::once("kiln".to_owned())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        insta::assert_snapshot!(name.clone(), help);
        for sub in subcommands(&help) {
            pending.push(path.iter().cloned().chain([sub]).collect());
        }
        pages.push(name);
    }
    pages.sort();
    assert_eq!(
        pages,
        [
            "kiln",
            "kiln-base",
            "kiln-base-build",
            "kiln-base-lock",
            "kiln-base-update",
            "kiln-build",
            "kiln-cache",
            "kiln-cache-du",
            "kiln-cache-prune",
            "kiln-completions",
            "kiln-images",
            "kiln-inspect",
            "kiln-key",
            "kiln-key-generate",
            "kiln-login",
            "kiln-logout",
            "kiln-man",
            "kiln-rebase",
            "kiln-rm",
            "kiln-sign",
            "kiln-verify",
        ]
    );
}

/// `kiln completions SHELL` prints a script the shell reads, naming every subcommand.
#[test]
fn completion_scripts_parse_and_name_the_subcommands() {
    let script = |shell: &str| {
        let out = kiln(&["completions", shell]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script("bash");
    for command in ["build", "rebase", "logout", "completions"] {
        assert!(bash.contains(command), "`{command}` missing");
    }
    let mut check = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("running bash -n");
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(bash.as_bytes())
        .unwrap();
    assert!(check.wait().unwrap().success(), "bash refuses the script");
    assert!(script("zsh").starts_with("#compdef kiln"));
    assert!(script("fish").contains("complete -c kiln"));
    assert_eq!(kiln(&["completions", "tcsh"]).status.code(), Some(2));
}

/// `kiln man` prints a man page that names every subcommand.
#[test]
fn man_page_is_roff_naming_the_subcommands() {
    let out = kiln(&["man"]);
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    assert!(page.contains(".TH kiln 1"), "{page}");
    for command in ["build", "rebase", "logout", "completions"] {
        assert!(page.contains(command), "`{command}` missing");
    }
}
