//! Self-tests of the e2e harness against the real parts, without kiln: the registry in
//! each auth/TLS mode, the token issuer, skopeo, umoci, podman + runc, and Go.

use std::fs;
use std::time::Duration;

use crate::common;
use kiln_e2e::{
    Registry, TokenIssuer, UmociImage, Workspace, copy_dir, free_port, go_build_static,
    skopeo_copy, skopeo_copy_with, skopeo_inspect, skopeo_inspect_config, skopeo_inspect_raw,
    skopeo_inspect_with, wait_http,
};

/// A one-layer image holding `/hello.txt`, user 65532, in an OCI layout under `ws`.
fn tiny_image(ws: &Workspace) -> UmociImage {
    let file = ws.write("hello.txt", "hello from kiln-e2e\n");
    let image = UmociImage::new(&ws.join("layout"), "v1");
    image
        .insert(&file, "/hello.txt")
        .config(&["--config.user", "65532"]);
    image
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_lowercase()
}

fn assert_refused(out: &std::process::Output, what: &str, needles: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "{what} should have been refused");
    assert!(
        needles.iter().any(|n| err.contains(n)),
        "{what}: refusal should mention one of {needles:?}, got: {err}"
    );
}

pub(crate) fn anonymous_registry_takes_a_push_and_serves_it_back() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let registry = Registry::anonymous();
    assert!(registry.url().starts_with("http://127.0.0.1:"));
    let reference = registry.reference("e2e/tiny:v1");

    skopeo_copy(&image.oci_ref(), &reference);

    let inspect = skopeo_inspect(&reference, false);
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
    let config = skopeo_inspect_config(&reference, false);
    assert_eq!(config["config"]["User"], "65532", "{config}");
    let manifest = skopeo_inspect_raw(&reference, false);
    assert_eq!(manifest["schemaVersion"], 2, "{manifest}");
    assert!(
        registry
            .data_dir()
            .join("docker/registry/v2/blobs")
            .is_dir()
    );
}

pub(crate) fn htpasswd_registry_refuses_anonymous_pushes() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let registry = Registry::htpasswd("alice", "s3cret");
    let dst = format!("docker://{}", registry.reference("e2e/basic:v1"));

    let anonymous = skopeo_copy_with(&image.oci_ref(), &dst, &["--dest-tls-verify=false"]);
    assert_refused(
        &anonymous,
        "an anonymous push",
        &["unauthorized", "authentication required"],
    );
    let creds = format!("--dest-creds={}", registry.creds_arg());
    let wrong = skopeo_copy_with(
        &image.oci_ref(),
        &dst,
        &["--dest-tls-verify=false", "--dest-creds=alice:wrong"],
    );
    assert_refused(
        &wrong,
        "a push with a wrong password",
        &["unauthorized", "authentication required"],
    );

    let pushed = skopeo_copy_with(&image.oci_ref(), &dst, &["--dest-tls-verify=false", &creds]);
    assert!(
        pushed.status.success(),
        "push with credentials: {}",
        stderr(&pushed)
    );
    let creds = format!("--creds={}", registry.creds_arg());
    let inspect = skopeo_inspect_with(&dst, &["--tls-verify=false", &creds]);
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
}

pub(crate) fn tls_registry_is_trusted_only_with_its_ca() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let registry = Registry::tls();
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    assert!(registry.ca_cert_path().is_file());
    let dst = format!("docker://{}", registry.reference("e2e/tls:v1"));

    let untrusted = skopeo_copy_with(&image.oci_ref(), &dst, &[]);
    assert_refused(
        &untrusted,
        "a push without the CA",
        &["x509", "certificate"],
    );

    let cert_dir = format!("--dest-cert-dir={}", registry.cert_dir().display());
    let pushed = skopeo_copy_with(&image.oci_ref(), &dst, &[&cert_dir]);
    assert!(
        pushed.status.success(),
        "push trusting the CA: {}",
        stderr(&pushed)
    );
    let cert_dir = format!("--cert-dir={}", registry.cert_dir().display());
    let inspect = skopeo_inspect_with(&dst, &[&cert_dir]);
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
}

pub(crate) fn token_registry_does_the_bearer_flow_against_the_issuer() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let issuer = TokenIssuer::new("bob", "hunter2");
    let registry = Registry::token(&issuer);
    let dst = format!("docker://{}", registry.reference("e2e/token:v1"));
    let plain = "--dest-tls-verify=false";

    let wrong = skopeo_copy_with(&image.oci_ref(), &dst, &[plain, "--dest-creds=bob:nope"]);
    assert!(
        !wrong.status.success(),
        "a push with a wrong password should fail"
    );
    assert!(
        issuer
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.auth_present),
        "the issuer should have refused the wrong password: {:?}",
        issuer.requests()
    );
    let anonymous = skopeo_copy_with(&image.oci_ref(), &dst, &[plain]);
    assert!(!anonymous.status.success(), "an anonymous push should fail");
    issuer.clear_requests();

    let pushed = skopeo_copy_with(&image.oci_ref(), &dst, &[plain, "--dest-creds=bob:hunter2"]);
    assert!(
        pushed.status.success(),
        "push with a token: {}",
        stderr(&pushed)
    );
    let requests = issuer.requests();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.user.as_deref() == Some("bob")
            && r.service.as_deref() == Some(issuer.service())
            && r.scopes
                .iter()
                .any(|s| s == "repository:e2e/token:pull,push")),
        "the issuer should have seen `repository:e2e/token:pull,push` from bob: {requests:?}"
    );

    // Anonymous clients may pull (the issuer's documented policy).
    let inspect = skopeo_inspect(&dst, false);
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));

    // A copy to another repository on the same registry asks to mount from the first.
    issuer.clear_requests();
    let other = format!("docker://{}", registry.reference("e2e/other:v1"));
    let copied = skopeo_copy_with(
        &dst,
        &other,
        &[
            "--src-tls-verify=false",
            plain,
            "--src-creds=bob:hunter2",
            "--dest-creds=bob:hunter2",
        ],
    );
    assert!(
        copied.status.success(),
        "copy between repositories: {}",
        stderr(&copied)
    );
    let scopes = issuer.scopes_requested();
    assert!(
        scopes.iter().any(|s| s == "repository:e2e/other:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:e2e/token:pull"),
        "{scopes:?}"
    );
}

pub(crate) fn podman_runs_a_static_go_server_as_the_image_user() {
    let ws = Workspace::new();
    let src = ws.write(
        "src/main.go",
        r#"package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from kiln-e2e uid=%d", os.Getuid())
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
"#,
    );
    ws.write("src/go.mod", "module example.com/hello\n\ngo 1.22\n");
    let rootfs = ws.mkdir("rootfs");
    go_build_static(src.parent().unwrap(), &rootfs.join("server"));
    let image = UmociImage::new(&ws.join("layout"), "v1");
    image.insert(&rootfs.join("server"), "/server").config(&[
        "--config.user",
        "65532",
        "--config.entrypoint",
        "/server",
    ]);
    let registry = Registry::anonymous();
    let reference = registry.reference("e2e/server:v1");
    skopeo_copy(&image.oci_ref(), &reference);

    let podman = common::suite::podman();
    let id = podman.pull(&reference, false);
    assert!(!id.is_empty());
    let config = podman.image_config(&reference);
    assert_eq!(config["User"], "65532", "{config}");

    let port = free_port();
    let container = podman.run_detached(&reference, &["-e", &format!("PORT={port}")]);
    let body = wait_http(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(20),
    );
    assert_eq!(body, "hello from kiln-e2e uid=65532");
    assert_eq!(container.process_uid(), 65532);
    assert_eq!(container.process_uids(), [65532; 4]);
    assert_eq!(container.process_gid(), 0);
    let pid = container.pid();
    container.remove();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // The PID may be reused by then; it must at least not be our server any more.
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                != "server"
        }
    );
}

pub(crate) fn podman_loads_an_oci_archive_and_runs_it_once() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let archive = ws.join("tiny.tar");
    skopeo_copy(
        &image.oci_ref(),
        &format!("oci-archive:{}:localhost/e2e/tiny:v1", archive.display()),
    );
    let podman = common::suite::podman();
    let loaded = podman.load(&archive);
    assert!(loaded.contains("localhost/e2e/tiny:v1"), "{loaded}");
    assert_eq!(
        podman.image_config("localhost/e2e/tiny:v1")["User"],
        "65532"
    );
    // The image has no binaries, so running it fails in the runtime: proves runc was used.
    let out = podman.run_once("localhost/e2e/tiny:v1", &["/hello.txt"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("runc") && err.contains("permission denied"),
        "{err}"
    );
}

pub(crate) fn workspace_and_copy_dir_keep_the_tree() {
    let ws = Workspace::new();
    ws.write("a/b/c.txt", "c");
    std::os::unix::fs::symlink("b/c.txt", ws.join("a/link")).unwrap();
    let copy = ws.copy_in(ws.join("a"), "copy");
    assert_eq!(fs::read_to_string(copy.join("b/c.txt")).unwrap(), "c");
    assert_eq!(
        fs::read_link(copy.join("link")).unwrap().to_str(),
        Some("b/c.txt")
    );
    let other = Workspace::new();
    copy_dir(&copy, &other.join("x")).unwrap();
    assert!(other.join("x/b/c.txt").is_file());
    assert_ne!(free_port(), 0);
}

pub(crate) fn builder_combines_tls_and_htpasswd() {
    let ws = Workspace::new();
    let image = tiny_image(&ws);
    let registry = Registry::builder().tls().htpasswd("carol", "pw").start();
    let dst = format!("docker://{}", registry.reference("e2e/both:v1"));
    let cert_dir = format!("--dest-cert-dir={}", registry.cert_dir().display());

    let anonymous = skopeo_copy_with(&image.oci_ref(), &dst, &[&cert_dir]);
    assert_refused(
        &anonymous,
        "an anonymous push",
        &["unauthorized", "authentication required"],
    );
    let creds = format!("--dest-creds={}", registry.creds_arg());
    let pushed = skopeo_copy_with(&image.oci_ref(), &dst, &[&cert_dir, &creds]);
    assert!(
        pushed.status.success(),
        "push over TLS with credentials: {}",
        stderr(&pushed)
    );
}
