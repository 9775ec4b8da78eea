//! Credential helpers that misbehave (RELIABILITY.md C01), and credential scoping (C04),
//! against a fake registry that asks for Basic auth and records what it is sent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_registry::RegistrySettings;

use crate::fake::{Fake, Reply};
use crate::{reference, settings};

/// Writes the executable `dir/docker-credential-<name>` running `script` (sh).
fn helper(dir: &Path, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Settings whose `config.json` (in `dir`) names helper `name` for `host`.
fn helper_settings(dir: &Path, host: &str, name: &str, timeout: Duration) -> RegistrySettings {
    let json = serde_json::json!({"credHelpers": {host: name}});
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    RegistrySettings {
        docker_config_dir: Some(dir.to_path_buf()),
        helper_dirs: vec![dir.to_path_buf()],
        helper_timeout: timeout,
        ..settings()
    }
}

/// A registry that wants Basic auth for everything.
async fn basic_registry() -> Fake {
    Fake::start(|req, _| match req.header("authorization") {
        Some(_) => Reply::status(404),
        None => Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
    })
    .await
}

/// Returns whether a process whose command line holds `marker` is alive.
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

/// C01: a helper that hangs (and starts a child that would outlive it) costs one timeout:
/// the error names helper and registry, the helper ran once for several requests, nothing
/// went out anonymously, and its whole process group is gone afterwards.
#[tokio::test]
async fn c01_a_hanging_helper_times_out_once_and_its_children_die() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = basic_registry().await;
    let marker = format!("kiln-c01-{}", std::process::id());
    let log = tmp.path().join("runs");
    helper(
        tmp.path(),
        "hang",
        &format!(
            "echo run >> '{}'\nsh -c 'sleep 300; : {marker}' &\nsleep 300",
            log.display()
        ),
    );
    let settings = helper_settings(tmp.path(), &registry.host, "hang", Duration::from_secs(1));
    let client = kiln_registry::Client::new(settings).unwrap();
    let started = Instant::now();
    for repo in ["a", "b", "a"] {
        let err = client
            .get_manifest(&reference(&registry.host, repo), "v1")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("docker-credential-hang") && text.contains(&registry.host),
            "{text}"
        );
        assert!(text.contains("did not answer within 1 s"), "{text}");
        assert!(err.hint().unwrap().contains("docker-credential-hang"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "three requests took {:?}",
        started.elapsed()
    );
    let runs = std::fs::read_to_string(&log).unwrap();
    assert_eq!(runs.lines().count(), 1, "the helper ran {runs:?}");
    // Only the unauthenticated first probe: no request went on without the credentials.
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&marker) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!running(&marker), "the helper's child outlived it");
}

/// C01: a helper that crashes, and one that prints garbage, fail with errors naming the
/// helper and the registry and never the garbage (it might be a secret).
#[tokio::test]
async fn c01_a_crashing_or_garbage_helper_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = basic_registry().await;
    helper(
        tmp.path(),
        "crash",
        "echo 'segmentation fault' >&2; exit 139",
    );
    helper(tmp.path(), "garbage", "echo 'not json: s3cr3t-canary'");
    for (name, expect) in [
        ("crash", "exited with"),
        ("garbage", "not the expected JSON"),
    ] {
        let settings = helper_settings(tmp.path(), &registry.host, name, Duration::from_secs(5));
        let err = kiln_registry::Client::new(settings)
            .unwrap()
            .get_manifest(&reference(&registry.host, "app"), "v1")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("docker-credential-{name}")) && text.contains(&registry.host),
            "{text}"
        );
        assert!(text.contains(expect), "{text}");
        assert!(!text.contains("s3cr3t-canary"), "{text}");
    }
}

/// C04: the push check and the push use the most specific entry for the repository; the
/// entry of another namespace of the same registry is never sent.
#[tokio::test]
async fn c04_requests_carry_the_most_specific_entrys_credentials() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let registry = basic_registry().await;
    let b64 = |u: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:pw"));
    let host = &registry.host;
    let json = serde_json::json!({"auths": {
        format!("{host}/team"): {"auth": b64("team")},
        host.clone(): {"auth": b64("host")},
        format!("{host}/other"): {"auth": b64("other")},
    }});
    std::fs::write(tmp.path().join("config.json"), json.to_string()).unwrap();
    let client = kiln_registry::Client::new(RegistrySettings {
        docker_config_dir: Some(tmp.path().to_path_buf()),
        ..settings()
    })
    .unwrap();
    for (repo, user) in [
        ("team/app", "team"),
        ("web", "host"),
        ("teamster/x", "host"),
    ] {
        let _ = client
            .get_manifest(&reference(host, repo), "v1")
            .await
            .unwrap_err();
        let sent: Vec<String> = registry
            .requests()
            .iter()
            .filter(|r| r.path().starts_with(&format!("/v2/{repo}/")))
            .filter_map(|r| r.header("authorization").map(str::to_owned))
            .collect();
        assert!(!sent.is_empty(), "{repo}: no authenticated request");
        assert!(
            sent.iter().all(|a| *a == format!("Basic {}", b64(user))),
            "{repo}: sent {sent:?}, expected {user}'s"
        );
    }
}

/// C04: a long build outlives a rotated credential: once the credentials' time to live is
/// over, `config.json` and the credential helper are read again, and the next requests
/// carry the new secret (while within it, one lookup serves every request).
#[tokio::test]
async fn c04_rotated_credentials_are_looked_up_again() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let registry = basic_registry().await;
    let host = registry.host.clone();
    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(format!("ci:{p}"));
    let write = |password: &str| {
        let json = serde_json::json!({"auths": {host.clone(): {"auth": b64(password)}}});
        std::fs::write(tmp.path().join("config.json"), json.to_string()).unwrap();
    };
    write("before");
    // The helper answers what its secret file holds, and counts its runs.
    let helpers = tempfile::tempdir().unwrap();
    let secret = helpers.path().join("secret");
    let runs = helpers.path().join("runs");
    std::fs::write(&secret, "h1").unwrap();
    helper(
        helpers.path(),
        "rotating",
        &format!(
            "echo run >> {runs}\nprintf '{{\"Username\":\"ci\",\"Secret\":\"%s\"}}' \"$(cat {secret})\"",
            runs = runs.display(),
            secret = secret.display()
        ),
    );
    let other = helpers.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let json = serde_json::json!({"credHelpers": {host.clone(): "rotating"}});
    std::fs::write(other.join("config.json"), json.to_string()).unwrap();
    let ttl = Duration::from_millis(300);
    let client = |dir: &Path| {
        kiln_registry::Client::new(RegistrySettings {
            docker_config_dir: Some(dir.to_path_buf()),
            helper_dirs: vec![helpers.path().to_path_buf()],
            credential_ttl: ttl,
            ..settings()
        })
        .unwrap()
    };
    let sent = |repo: &str| -> Vec<String> {
        registry
            .requests()
            .iter()
            .filter(|r| r.path().starts_with(&format!("/v2/{repo}/")))
            .filter_map(|r| r.header("authorization").map(str::to_owned))
            .collect()
    };

    let files = client(tmp.path());
    let _ = files.get_manifest(&reference(&host, "a"), "v1").await;
    write("after");
    let _ = files.get_manifest(&reference(&host, "a"), "v2").await;
    assert_eq!(
        sent("a").last(),
        Some(&format!("Basic {}", b64("before"))),
        "within the time to live"
    );
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let _ = files.get_manifest(&reference(&host, "a"), "v3").await;
    assert_eq!(
        sent("a").last(),
        Some(&format!("Basic {}", b64("after"))),
        "{:?}",
        sent("a")
    );

    let helped = client(&other);
    let _ = helped.get_manifest(&reference(&host, "b"), "v1").await;
    std::fs::write(&secret, "h2").unwrap();
    let _ = helped.get_manifest(&reference(&host, "b"), "v2").await;
    assert_eq!(sent("b").last(), Some(&format!("Basic {}", b64("h1"))));
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let _ = helped.get_manifest(&reference(&host, "b"), "v3").await;
    assert_eq!(
        sent("b").last(),
        Some(&format!("Basic {}", b64("h2"))),
        "{:?}",
        sent("b")
    );
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        2,
        "one run per time to live"
    );
}
