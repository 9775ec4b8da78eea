//! The failures users meet most, as the real `kiln` binary renders them: the exit code,
//! `error:`, each cause once under `Caused by:`, and the hint, kept as insta snapshots
//! (`e2e/snapshots/`). Paths, ports and digests are replaced by placeholders; everything
//! else must match, so a cause printed twice, a lost hint or a changed exit code fails.

use kiln_e2e::{Registry, free_port};

use crate::common::{self, Kiln, Run};

/// Returns the exit code and stderr from its `error:` line on, with this test's paths
/// and `registry`'s address replaced.
pub(crate) fn rendered(kiln: &Kiln, run: &Run, registry: Option<&str>) -> String {
    let from = run
        .stderr
        .find("error:")
        .unwrap_or_else(|| panic!("no `error:` in:\n{}", run.stderr));
    let mut text = format!("exit code: {}\n{}", run.code, &run.stderr[from..]);
    text = text.replace(&kiln.ws.path().display().to_string(), "[WS]");
    if let Some(host) = registry {
        text = text.replace(host, "[REGISTRY]");
    }
    without_digests(&text)
}

/// Replaces each `sha256:<64 hex>` with `sha256:[DIGEST]`: which blob a push tried first,
/// and the bytes the local Go toolchain compiled, differ between runs and machines.
fn without_digests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let (head, tail) = rest.split_at(i + "sha256:".len());
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str("[DIGEST]");
            rest = &tail[64..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// A Go app of one file, with no dependencies.
pub(crate) fn hello(kiln: &Kiln, dir: &str) -> String {
    kiln.ws.write(
        format!("{dir}/go.mod"),
        "module example.com/hello\n\ngo 1.21\n",
    );
    kiln.ws.write(
        format!("{dir}/main.go"),
        "package main\n\nfunc main() { println(\"hello\") }\n",
    );
    kiln.ws.join(dir).display().to_string()
}

/// `kiln build IMAGE --path APP --cache-dir CACHE EXTRA...` in a warm cache.
pub(crate) fn build(kiln: &Kiln, image: &str, app: &str, extra: &[&str]) -> Run {
    let cache = common::warm_cache(kiln, "cache");
    let mut args = vec![
        "build",
        image,
        "--path",
        app,
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kiln.run(&args)
}

/// Nothing detected, a language kiln does not build, two languages at once, a compile error, a missing run image and a
/// bad image name: each exit code, error and hint as the user sees them.
pub(crate) fn c06_build_failures_render_their_cause_once_with_a_hint() {
    let kiln = Kiln::new();
    let not_an_app = kiln.fixture("not-an-app", "not-an-app");
    let run = build(&kiln, "app:1", not_an_app.to_str().unwrap(), &[]);
    insta::assert_snapshot!("nothing_detected", rendered(&kiln, &run, None));

    // A language kiln does not build: detection says what it saw.
    kiln.ws.write("python/requirements.txt", "flask==3.0.0\n");
    kiln.ws.write("python/Dockerfile", "FROM python:3.12\n");
    let python = kiln.ws.join("python");
    let run = build(&kiln, "app:1", python.to_str().unwrap(), &[]);
    insta::assert_snapshot!("unsupported_language", rendered(&kiln, &run, None));

    let both = hello(&kiln, "both");
    kiln.ws
        .write("both/package.json", r#"{"name":"both","version":"1.0.0"}"#);
    let run = build(&kiln, "app:1", &both, &[]);
    insta::assert_snapshot!("ambiguous_language", rendered(&kiln, &run, None));

    // `--report` is written on failure too: the phase, the exit code, the error chain.
    let broken = kiln.fixture("go-broken", "go-broken");
    let report = kiln.ws.join("failed.json");
    let run = build(
        &kiln,
        "app:1",
        broken.to_str().unwrap(),
        &["--report", report.to_str().unwrap()],
    );
    insta::assert_snapshot!("compile_error", rendered(&kiln, &run, None));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("a report of the failure")).unwrap();
    assert_eq!(report["schema"], "kiln.build-report/v1", "{report}");
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["image"], "app:1", "{report}");
    assert_eq!(report["phase"], "build", "{report}");
    assert_eq!(report["exit_code"], 51, "{report}");
    let error = report["error"].as_array().unwrap();
    assert!(
        error[0]
            .as_str()
            .unwrap()
            .contains("`go build` of `example.com/broken` failed"),
        "{report}"
    );
    assert!(
        report["hint"].as_str().unwrap().contains("fix the errors"),
        "{report}"
    );

    // A run image named in an OCI layout that does not hold it.
    let node = kiln.fixture("node-express", "node");
    kiln.ws
        .write("bases/oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#);
    kiln.ws
        .write("bases/index.json", r#"{"schemaVersion":2,"manifests":[]}"#);
    let missing = format!("oci:{}:kiln-base/nodejs", kiln.ws.join("bases").display());
    let run = build(
        &kiln,
        "app:1",
        node.to_str().unwrap(),
        &["--run-image", &missing],
    );
    insta::assert_snapshot!("missing_run_image", rendered(&kiln, &run, None));

    // A base registry that does not have the base: publish it there, or build without one.
    let registry = Registry::anonymous();
    let bases = format!("{}/bases", registry.host());
    let run = build(
        &kiln,
        "app:1",
        node.to_str().unwrap(),
        &["--base-registry", &bases],
    );
    insta::assert_snapshot!(
        "base_not_in_base_registry",
        rendered(&kiln, &run, Some(&registry.host()))
    );
    let run = build(
        &kiln,
        "app:1",
        node.to_str().unwrap(),
        &["--base-registry", "https://bases"],
    );
    insta::assert_snapshot!("bad_base_registry", rendered(&kiln, &run, None));

    let app = hello(&kiln, "hello");
    let run = build(&kiln, "Bad Name:1", &app, &["--publish"]);
    insta::assert_snapshot!("bad_reference", rendered(&kiln, &run, None));
}

/// A registry that is not there (transient, 75) and one that wants credentials kiln does
/// not have (auth, 77), with the push check skipped: the push fails after the build with
/// the registry's own words ([`crate::preflight`] covers the check).
pub(crate) fn c06_push_failures_render_their_cause_once_with_a_hint() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "hello");

    let nowhere = format!("127.0.0.1:{}", free_port());
    let run = build(
        &kiln,
        &format!("{nowhere}/team/app:1"),
        &app,
        &["--publish", "--no-preflight"],
    );
    insta::assert_snapshot!(
        "registry_unreachable",
        rendered(&kiln, &run, Some(&nowhere))
    );

    let registry = Registry::htpasswd("builder", "s3cret-pass");
    let run = build(
        &kiln,
        &registry.reference("team/app:1"),
        &app,
        &["--publish", "--no-preflight"],
    );
    insta::assert_snapshot!(
        "unauthorized",
        rendered(&kiln, &run, Some(&registry.host()))
    );
}
