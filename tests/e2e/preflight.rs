//! The push check before a build (issue 22): with `--publish`, a registry that does not
//! answer, missing credentials, rejected credentials and a user without the push right
//! each stop `kiln build` before it detects anything, with a message and an exit code of
//! their own (snapshots); `--no-preflight` skips the check.

use base64::Engine as _;
use kiln_e2e::{READER, Registry, TokenIssuer, free_port};

use crate::cli_errors::{build, hello, rendered};
use crate::common::{Kiln, Run};

/// Stores `user:password` for `host` in the docker config kiln reads, as `docker login`
/// would.
fn store_credentials(kiln: &Kiln, host: &str, user: &str, password: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({ "auths": { host: { "auth": auth } } });
    kiln.ws
        .write("docker/config.json", serde_json::to_vec(&config).unwrap());
}

/// Panics unless the build stopped before detecting the app.
fn stopped_before_building(run: &Run) {
    assert!(
        !run.stderr.contains("DETECTING"),
        "the build started: {}",
        run.stderr
    );
}

pub(crate) fn preflight_stops_a_push_that_cannot_succeed_before_building() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "hello");

    let down = format!("127.0.0.1:{}", free_port());
    let run = build(&kiln, &format!("{down}/team/app:1"), &app, &["--publish"]);
    stopped_before_building(&run);
    insta::assert_snapshot!(
        "preflight_registry_down",
        rendered(&kiln, &run, Some(&down))
    );

    let htpasswd = Registry::htpasswd("builder", "s3cret-pass");
    let image = htpasswd.reference("team/app:1");
    let run = build(&kiln, &image, &app, &["--publish"]);
    stopped_before_building(&run);
    let host = htpasswd.host();
    insta::assert_snapshot!(
        "preflight_no_credentials",
        rendered(&kiln, &run, Some(&host))
    );

    store_credentials(&kiln, &host, "builder", "not-the-password");
    let run = build(&kiln, &image, &app, &["--publish"]);
    stopped_before_building(&run);
    insta::assert_snapshot!(
        "preflight_rejected_credentials",
        rendered(&kiln, &run, Some(&host))
    );

    // `--no-preflight`: the same refusal, only after the build.
    let late = build(&kiln, &image, &app, &["--publish", "--no-preflight"]);
    assert_eq!(late.code, 77, "{}", late.stderr);
    assert!(late.stderr.contains("DETECTING"), "{}", late.stderr);

    // With the right credentials the check passes and the build pushes; the report of a
    // success carries the same schema.
    store_credentials(&kiln, &host, "builder", "s3cret-pass");
    let report = kiln.ws.join("pushed.json");
    let args = ["--publish", "--report", report.to_str().unwrap()];
    build(&kiln, &image, &app, &args).ok();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["schema"], "kiln.build-report/v1", "{report}");
    assert_eq!(report["status"], "succeeded", "{report}");

    // A user the token server grants `pull` only.
    let issuer = TokenIssuer::new("builder", "s3cret-pass");
    let token = Registry::token(&issuer);
    let host = token.host();
    store_credentials(&kiln, &host, READER.0, READER.1);
    let denied = kiln.ws.join("denied.json");
    let args = ["--publish", "--report", denied.to_str().unwrap()];
    let run = build(&kiln, &token.reference("team/app:1"), &app, &args);
    stopped_before_building(&run);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&denied).unwrap()).unwrap();
    assert_eq!(
        (&report["phase"], &report["exit_code"]),
        (&"preflight".into(), &77.into()),
        "{report}"
    );
    insta::assert_snapshot!(
        "preflight_no_push_right",
        rendered(&kiln, &run, Some(&host))
    );
}
