//! No-op means no-op (issue 23): a rebuild of unchanged source, published again, gives the
//! same digest and writes nothing to the registry, signature, SBOM and provenance included
//! (their bytes no longer carry wall-clock times, and ECDSA is deterministic).

use kiln_e2e::Registry;

use crate::cli_errors::hello;
use crate::common::{self, Kiln};
use crate::sandbox::generate_key;

/// Returns the access-log lines of `log` from line `from` on that write something: a
/// `PUT` or `PATCH`, or a `POST` other than the push check's upload session (which the
/// check cancels).
fn writes(log: &str, from: usize) -> Vec<String> {
    log.lines()
        .skip(from)
        .filter(|l| l.contains("\"PUT ") || l.contains("\"PATCH ") || l.contains("\"POST "))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn an_unchanged_rebuild_publishes_nothing_and_keeps_its_digest() {
    let kiln = Kiln::new();
    let registry = Registry::builder().access_log().start();
    let app = hello(&kiln, "app");
    let cache = common::warm_cache(&kiln, "cache");
    let key = generate_key(&kiln);
    let image = registry.reference("team/app:1");
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "build",
            &image,
            "--path",
            &app,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--publish",
            "--sign-key",
            key.to_str().unwrap(),
            "--no-preflight",
        ];
        args.extend_from_slice(extra);
        kiln.run_with(&args, None, &[("KILN_KEY_PASSWORD", "pw")])
    };
    let first = publish(&[]);
    let pinned = first.ok();
    let after_first = registry.log().lines().count();
    assert!(
        !writes(&registry.log(), 0).is_empty(),
        "the access log shows no push at all"
    );

    let again = publish(&[]);
    assert_eq!(again.ok(), pinned, "same source, same digest");
    let log = registry.log();
    let written = writes(&log, after_first);
    assert!(
        written.is_empty(),
        "the no-op rebuild wrote to the registry:\n{}",
        written.join("\n")
    );
    let requests = log.lines().skip(after_first).count();
    eprintln!("no-op publish: {requests} requests, 0 writes");

    // With wall-clock times the provenance changes, and only the provenance goes up again.
    let before_timed = log.lines().count();
    let timed = publish(&["--provenance-times"]);
    assert_eq!(timed.ok(), pinned);
    let log = registry.log();
    let manifests: Vec<String> = writes(&log, before_timed)
        .into_iter()
        .filter(|l| l.contains("/manifests/"))
        .collect();
    assert!(
        !manifests.is_empty() && manifests.iter().all(|l| !l.contains("/manifests/1 ")),
        "{manifests:?}"
    );
}
