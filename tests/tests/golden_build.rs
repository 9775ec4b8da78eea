//! The `build` golden base: the toolchains kiln drives (Go, JDK + Maven, Node + npm) for
//! Kubernetes build pods, runnable as nonroot.

mod common;

use common::Kiln;
use kiln_e2e::{Podman, ensure_containers_conf, workspace_root};

#[test]
fn build_image_runs_every_toolchain_as_nonroot() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let defs = kiln.ws.mkdir("golden-base");
    kiln_e2e::copy_dir(
        &workspace_root().join("golden-base/keyrings"),
        &defs.join("keyrings"),
    )
    .unwrap();
    for name in ["static", "base", "java21", "build"] {
        std::fs::copy(
            workspace_root().join(format!("golden-base/{name}.toml")),
            defs.join(format!("{name}.toml")),
        )
        .unwrap();
    }
    let def = defs.join("build.toml");
    let lock = kiln.run(&["base", "lock", def.to_str().unwrap()]);
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    for name in ["static", "base", "java21"] {
        std::fs::copy(
            workspace_root().join(format!("golden-base/{name}.lock")),
            defs.join(format!("{name}.lock")),
        )
        .unwrap();
    }
    let cache = kiln.ws.mkdir("cache");
    let archive = kiln.ws.join("build.tar");
    kiln.run(&[
        "base",
        "build",
        def.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--output",
        archive.to_str().unwrap(),
    ])
    .ok();
    kiln_image::validate_layout(&cache.join("oci"), "kiln-base/build").unwrap();

    let podman = Podman::new();
    podman.load(&archive);
    let image = "localhost/kiln-base/build";
    assert_eq!(podman.image_config(image)["User"], "65532:65532");
    for (cmd, expect) in [
        (&["go", "version"][..], "go version go1."),
        (&["mvn", "-v"][..], "Apache Maven"),
        (&["javac", "-version"][..], "javac 21."),
        (
            &["node", "-e", "console.log('node', process.getuid())"][..],
            "node 65532",
        ),
        (&["npm", "-v"][..], "."),
        (
            &["sh", "-c", "id -u && echo $HOME"][..],
            "65532\n/home/nonroot",
        ),
    ] {
        let out = podman.run_once(image, cmd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd:?}: {text}");
        assert!(
            text.contains(expect),
            "{cmd:?}: expected `{expect}` in {text}"
        );
    }
}
