//! The CLI as a terminal user and a CI job meet it (issue 22): colour and a spinner with
//! elapsed time on a terminal (none with `NO_COLOR` or `--color never`), the full toolchain
//! output when a build fails there, one JSON object a line with `--log-format json`, and a
//! password prompt that does not echo for `kiln login` on a terminal.

use std::process::{Command, Stdio};

use kiln_e2e::{Registry, kiln_bin};

use crate::cli_errors::hello;
use crate::common::{self, Kiln};

/// Runs `kiln ARGS` on a pseudo-terminal (util-linux `script`), typing each of `input`
/// after a pause (a prompt turns echo off first); returns the exit code and the transcript.
fn on_terminal(kiln: &Kiln, args: &[&str], env: &[(&str, &str)], input: &[&str]) -> (i32, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(kiln_bin().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .map(|a| quote(&a))
        .collect();
    let mut child = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env_remove("NO_COLOR")
        .envs(&kiln.env)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running `script` (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    for text in input {
        std::thread::sleep(std::time::Duration::from_millis(700));
        use std::io::Write;
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let transcript =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), transcript)
}

/// Whether `text` holds an SGR colour sequence.
fn coloured(text: &str) -> bool {
    text.contains("\x1b[1;3")
}

/// On a terminal: a coloured phase header, a spinner with the elapsed time, and the pinned
/// reference as the last line, whole; `NO_COLOR` and `--color never` turn colour off. A
/// failing build prints the toolchain output its spinner showed a line of.
pub(crate) fn a_terminal_gets_colour_a_spinner_and_the_reference_last() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    let cache = common::warm_cache(&kiln, "cache");
    let build = |name: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "build",
            name,
            "--path",
            &app,
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        on_terminal(&kiln, &args, env, &[])
    };
    let (code, transcript) = build("app:1", &[], &[]);
    assert_eq!(code, 0, "{transcript}");
    assert!(
        transcript.contains("\x1b[1;36m===>\x1b[0m BUILDING"),
        "{transcript:?}"
    );
    let spinner_ticks = transcript
        .split("\r\x1b[2K")
        .filter(|frame| frame.contains(" BUILDING ") && frame.trim_end().ends_with('s'))
        .count();
    assert!(
        spinner_ticks > 0,
        "no spinner with elapsed time: {transcript:?}"
    );
    // The spinner's line is cleared first, then the reference written whole.
    let last = transcript.trim_end().rsplit(['\n', '\r']).next().unwrap();
    let last = last.trim_start_matches("\x1b[2K");
    assert!(
        last.starts_with("app:1@sha256:"),
        "the last line is {last:?}"
    );

    let (_, no_color) = build("app:2", &[], &[("NO_COLOR", "1")]);
    let (_, never) = build("app:3", &["--color", "never"], &[]);
    for transcript in [&no_color, &never] {
        assert!(!coloured(transcript), "{transcript:?}");
        assert!(transcript.contains("===> BUILDING"), "{transcript:?}");
    }

    let broken = kiln.fixture("go-broken", "go-broken");
    let (code, failed) = on_terminal(
        &kiln,
        &[
            "build",
            "broken:1",
            "--path",
            broken.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[],
        &[],
    );
    assert_eq!(code, 51, "{failed}");
    let dumped = failed
        .find("last lines of toolchain output:")
        .expect("the output on failure");
    let error = failed.find("error:").unwrap();
    assert!(dumped < error, "{failed:?}");
    assert!(failed[dumped..error].contains("undefined"), "{failed:?}");
}

/// `--log-format json`: every line on stderr is one JSON object with a time, a level and a
/// message, phases included; a failure ends with its exit code, causes and hint. Off a
/// terminal, `--color always` still colours text.
pub(crate) fn log_format_json_writes_one_event_a_line() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    let cache = common::warm_cache(&kiln, "cache");
    let cache_arg = cache.to_str().unwrap();
    let built = kiln.run(&[
        "build",
        "app:1",
        "--path",
        &app,
        "--cache-dir",
        cache_arg,
        "--log-format",
        "json",
    ]);
    assert!(built.ok().starts_with("app:1@sha256:"));
    let events: Vec<serde_json::Value> = built
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for e in &events {
        assert!(
            e["time"].is_string() && e["level"].is_string() && e["message"].is_string(),
            "{e}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["level"] == "phase" && e["phase"] == "BUILDING")
    );

    let broken = kiln.fixture("go-broken", "go-broken");
    let failed = kiln.run(&[
        "build",
        "broken:1",
        "--path",
        broken.to_str().unwrap(),
        "--cache-dir",
        cache_arg,
        "--log-format",
        "json",
    ]);
    assert_eq!(failed.code, 51);
    let last: serde_json::Value =
        serde_json::from_str(failed.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{last}");
    assert_eq!(last["exit_code"], 51, "{last}");
    assert!(
        last["hint"].as_str().unwrap().contains("fix the errors"),
        "{last}"
    );
    assert!(
        failed
            .stderr
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );

    let always = kiln.run(&[
        "build",
        "app:2",
        "--path",
        &app,
        "--cache-dir",
        cache_arg,
        "--color",
        "always",
    ]);
    always.ok();
    assert!(coloured(&always.stderr), "{}", always.stderr);
}

/// `kiln login` on a terminal asks for the user name and the password, does not echo the
/// password, and stores what the registry accepted; off a terminal it still wants
/// `--password-stdin`.
pub(crate) fn login_asks_for_the_password_on_a_terminal_without_echo() {
    let kiln = Kiln::new();
    let registry = Registry::htpasswd("builder", "s3cret-pass");
    let (code, transcript) = on_terminal(
        &kiln,
        &["login", &registry.host()],
        &[],
        &["builder\n", "s3cret-pass\n"],
    );
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("Username: builder"), "{transcript:?}");
    assert!(transcript.contains("Password:"), "{transcript:?}");
    assert!(
        !transcript.contains("s3cret-pass"),
        "the password was echoed: {transcript:?}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kiln.ws.join("docker/config.json")).unwrap())
            .unwrap();
    assert!(
        config["auths"][registry.host()]["auth"].is_string(),
        "{config}"
    );

    let piped = kiln.run(&["login", &registry.host(), "-u", "builder"]);
    assert_eq!(piped.code, 2, "{}", piped.stderr);
    assert!(
        piped.stderr.contains("--password-stdin"),
        "{}",
        piped.stderr
    );
}
