//! What the toolchain sees: only the allow-listed environment, never registry credentials.

use crate::common;
use crate::common::Kiln;

/// The `go` kiln finds on the allow-listed `PATH` is a script of ours that records its
/// environment, then runs the real go: what it records is exactly what kiln gave the go
/// tool, and every compiler and linker go starts inherits it.
pub(crate) fn toolchain_gets_no_credentials_or_docker_config() {
    let kiln = Kiln::new();
    kiln.ws
        .write("app/go.mod", "module example.com/tiny\n\ngo 1.22\n");
    kiln.ws
        .write("app/main.go", "package main\n\nfunc main() {}\n");
    let app = kiln.ws.join("app");
    let dumps = kiln.ws.mkdir("dumps");
    let bin = kiln.ws.mkdir("wrapper");
    let script = kiln.ws.write(
        "wrapper/go",
        format!(
            "#!/bin/sh\nenv > \"$KILN_ENV_DUMP/$$.env\"\nexec {} \"$@\"\n",
            kiln_e2e::go_bin().display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = common::warm_cache(&kiln, "cache");
    let dump_env = format!("KILN_ENV_DUMP={}", dumps.display());
    // The wrapper runs in the build sandbox: the user grants it the dump dir.
    let writable = format!("{}:{}", kiln.env["KILN_SANDBOX_WRITE"], dumps.display());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = kiln.run_with(
        &[
            "build",
            "local/env:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--env",
            &dump_env,
        ],
        None,
        &[
            ("PATH", &path),
            ("KILN_SANDBOX_WRITE", &writable),
            ("REGISTRY_PASSWORD", "hunter2-canary"),
            ("AWS_SECRET_ACCESS_KEY", "aws-canary"),
            ("GOPRIVATE", "example.com/private"),
        ],
    );
    run.ok();
    let envs: Vec<String> = std::fs::read_dir(&dumps)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!envs.is_empty(), "the go wrapper never ran");
    for env in &envs {
        for secret in [
            "hunter2-canary",
            "aws-canary",
            "DOCKER_CONFIG=",
            "REGISTRY_AUTH_FILE=",
            "XDG_RUNTIME_DIR=",
            "KILN_SANDBOX_WRITE=",
        ] {
            assert!(
                !env.contains(secret),
                "`{secret}` reached the toolchain:\n{env}"
            );
        }
        for expected in [
            "CGO_ENABLED=0",
            "GOTOOLCHAIN=local",
            "GOPRIVATE=example.com/private",
            "KILN_ENV_DUMP=",
        ] {
            assert!(
                env.contains(expected),
                "`{expected}` missing from the toolchain env:\n{env}"
            );
        }
    }
}
