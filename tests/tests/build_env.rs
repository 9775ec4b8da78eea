//! What the toolchain sees: only the allow-listed environment, never registry credentials.

mod common;

use common::Kiln;

/// `go build -toolexec` runs a script of ours for every compile and link step, with exactly
/// the environment kiln gave the go tool; the script records it.
#[test]
fn toolchain_gets_no_credentials_or_docker_config() {
    let kiln = Kiln::new();
    // A tiny app: -toolexec defeats the build cache, so keep what gets compiled small.
    kiln.ws
        .write("app/go.mod", "module example.com/tiny\n\ngo 1.22\n");
    kiln.ws
        .write("app/main.go", "package main\n\nfunc main() {}\n");
    let app = kiln.ws.join("app");
    let dumps = kiln.ws.mkdir("dumps");
    let script = kiln.ws.write(
        "toolexec.sh",
        "#!/bin/sh\nenv > \"$KILN_ENV_DUMP/$$.env\"\nexec \"$@\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = kiln.ws.mkdir("cache");
    let goflags = format!("GOFLAGS=-toolexec={}", script.display());
    let dump_env = format!("KILN_ENV_DUMP={}", dumps.display());
    let run = kiln.run_with(
        &[
            "build",
            "local/env:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--env",
            &goflags,
            "--env",
            &dump_env,
        ],
        None,
        &[
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
    assert!(!envs.is_empty(), "the toolexec script never ran");
    for env in &envs {
        for secret in [
            "hunter2-canary",
            "aws-canary",
            "DOCKER_CONFIG=",
            "REGISTRY_AUTH_FILE=",
            "XDG_RUNTIME_DIR=",
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
