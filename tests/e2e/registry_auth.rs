//! `kiln build --publish` and `kiln login` against real registries behind htpasswd, TLS with a
//! private CA, and token auth; run images from a registry (mounted) and from an OCI layout.

use crate::common;
use crate::common::{Kiln, client, label_json, validate_pushed};
use kiln_e2e::{Registry, TokenIssuer, skopeo_inspect_config};

fn publish(kiln: &Kiln, image: &str, fixture_dir: &std::path::Path, extra: &[&str]) -> common::Run {
    let cache = common::warm_cache(kiln, "cache");
    let mut args = vec![
        "build",
        image,
        "--path",
        fixture_dir.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kiln.run(&args)
}

pub(crate) fn htpasswd_registry_needs_login_and_login_stores_docker_credentials() {
    let registry = Registry::htpasswd("builder", "s3cret-pass");
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "app");
    let image = registry.reference("auth/app:1");

    let denied = publish(&kiln, &image, &app, &["--process", "api"]);
    // C06: missing credentials are an auth failure (77), not worth a retry.
    assert_eq!(denied.code, 77, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("UNAUTHORIZED") || denied.stderr.contains("401"),
        "{}",
        denied.stderr
    );
    assert!(
        denied
            .stderr
            .contains(&format!("kiln login {}", registry.host())),
        "{}",
        denied.stderr
    );

    let bad = kiln.run_with(
        &[
            "login",
            &registry.host(),
            "-u",
            "builder",
            "--password-stdin",
        ],
        Some("wrong\n"),
        &[],
    );
    assert_ne!(bad.code, 0, "{}", bad.stderr);
    assert!(
        !bad.stderr.contains("wrong"),
        "password echoed: {}",
        bad.stderr
    );

    let login = kiln.run_with(
        &[
            "login",
            &registry.host(),
            "-u",
            "builder",
            "--password-stdin",
        ],
        Some("s3cret-pass\n"),
        &[],
    );
    assert_eq!(login.code, 0, "{}", login.stderr);
    let config_path = kiln.ws.join("docker/config.json");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("builder:s3cret-pass");
    assert_eq!(config["auths"][registry.host()]["auth"], auth.as_str());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let ok = publish(&kiln, &image, &app, &["--process", "api"]);
    let pinned = ok.ok();
    for out in [&ok.stdout, &ok.stderr] {
        assert!(
            !out.contains("s3cret-pass") && !out.contains(&auth),
            "credentials leaked"
        );
    }
    validate_pushed(&client(Some(&kiln.ws.join("docker")), None), &pinned);

    // `kiln logout` removes the entry (and keeps the rest of the file); then the push
    // check finds no credentials, before building.
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["auths"]["other.example"] = serde_json::json!({"auth": "b3RoZXI6eA=="});
    std::fs::write(&config_path, config.to_string()).unwrap();
    let logout = kiln.run(&["logout", &registry.host()]);
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert!(
        logout.stderr.contains("Removed login credentials"),
        "{}",
        logout.stderr
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert!(config["auths"].get(registry.host()).is_none(), "{config}");
    assert_eq!(config["auths"]["other.example"]["auth"], "b3RoZXI6eA==");
    let again = kiln.run(&["logout", &registry.host()]);
    assert!(again.stderr.contains("Not logged in"), "{}", again.stderr);
    let denied = publish(&kiln, &image, &app, &["--process", "api"]);
    assert_eq!(denied.code, 77, "{}", denied.stderr);
    assert!(denied.stderr.contains("kiln has none"), "{}", denied.stderr);

    // podman's auth.json works the same way.
    let podman_style = Kiln::new();
    std::fs::write(
        podman_style.ws.join("auth.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    publish(
        &podman_style,
        &registry.reference("auth/podman:1"),
        &app,
        &["--process", "api"],
    )
    .ok();
}

pub(crate) fn tls_registry_with_private_ca() {
    let registry = Registry::tls();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "app");
    let image = registry.reference("tls/app:1");

    let untrusted = publish(&kiln, &image, &app, &["--process", "api"]);
    // C06: an untrusted certificate is the configuration's to fix (exit 2), not a network fault.
    assert_eq!(untrusted.code, 2, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr
    );

    let ca = registry.ca_cert_path().to_str().unwrap().to_string();
    let pinned = publish(
        &kiln,
        &image,
        &app,
        &["--process", "api", "--registry-ca", &ca],
    )
    .ok();
    validate_pushed(&client(None, Some(registry.ca_cert_path())), &pinned);

    // docker's certs.d/<host:port>/ layout (under DOCKER_CONFIG here) works without the flag.
    let certs = kiln.ws.mkdir(format!("docker/certs.d/{}", registry.host()));
    std::fs::copy(registry.ca_cert_path(), certs.join("ca.crt")).unwrap();
    publish(
        &kiln,
        &registry.reference("tls/app:2"),
        &app,
        &["--process", "api"],
    )
    .ok();
}

pub(crate) fn token_registry_bearer_flow_with_scopes_and_mounts() {
    let issuer = TokenIssuer::new("ci", "tok-pass");
    let registry = Registry::token(&issuer);
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "app");

    let login = kiln.run_with(
        &["login", &registry.host(), "-u", "ci", "--password-stdin"],
        Some("tok-pass\n"),
        &[],
    );
    assert_eq!(login.code, 0, "{}", login.stderr);
    let base = publish(
        &kiln,
        &registry.reference("team/base:1"),
        &app,
        &["--process", "api"],
    )
    .ok();
    let scopes = issuer.scopes_requested();
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("repository:team/base:pull,push")
                || s.contains("repository:team/base:push,pull")),
        "{scopes:?}"
    );

    // The first image becomes the run image of the second: its layers are mounted, not re-sent.
    issuer.clear_requests();
    let report = kiln.ws.join("report.json");
    let web = kiln.fixture("go-web", "web");
    let pinned = publish(
        &kiln,
        &registry.reference("team/app:1"),
        &web,
        &["--run-image", &base, "--report", report.to_str().unwrap()],
    )
    .ok();
    let scopes = issuer.scopes_requested();
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("repository:team/base:pull")),
        "mount needs pull on the source: {scopes:?}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let outcomes: Vec<&str> = report["push"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[1]["how"].as_str().unwrap())
        .collect();
    assert_eq!(&outcomes[..2], &["mounted", "mounted"], "{report}");
    let client = client(Some(&kiln.ws.join("docker")), None);
    let validated = validate_pushed(&client, &pinned);
    assert_eq!(validated.layers, 4, "base (static + app) + workspace + app");

    // Rebase tooling can find the base.
    let base_digest = base.rsplit_once('@').unwrap().1;
    let config = serde_json::to_value(&validated.config).unwrap();
    let lifecycle = label_json(&config, "io.buildpacks.lifecycle.metadata");
    assert_eq!(lifecycle["runImage"]["reference"], base_digest);
    let base_config = validate_pushed(&client, &base).config;
    assert_eq!(
        lifecycle["runImage"]["topLayer"].as_str().unwrap(),
        base_config.rootfs().diff_ids().last().unwrap()
    );
}

pub(crate) fn run_image_from_oci_layout() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("go-multi", "app");
    let cache = common::warm_cache(&kiln, "cache");
    kiln.run(&[
        "build",
        "local/base:1",
        "--path",
        app.to_str().unwrap(),
        "--process",
        "api",
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .ok();
    let run_image = format!("oci:{}:local/base:1", cache.join("oci").display());
    let web = kiln.fixture("go-web", "web");
    let pinned = publish(
        &kiln,
        &registry.reference("from-layout:1"),
        &web,
        &["--run-image", &run_image],
    )
    .ok();
    assert_eq!(validate_pushed(&client(None, None), &pinned).layers, 4);
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    assert_eq!(
        label_json(&config, "io.buildpacks.lifecycle.metadata")["runImage"]["image"],
        run_image.as_str()
    );
}
