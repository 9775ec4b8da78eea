//! The `build` golden base: the toolchains kiln drives (Go, JDK + Maven, Node + npm) for
//! Kubernetes build pods, runnable as nonroot; syft lists exactly its locked Debian packages.

mod common;

use common::Kiln;
use kiln_e2e::{Podman, ensure_containers_conf};

#[test]
fn build_image_runs_every_toolchain_as_nonroot() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("golden-base", &["static", "base", "java21", "build"]);
    let def = defs.join("build.toml");
    kiln.lock_base(&def);
    kiln.committed_locks(&defs, &["static", "base", "java21"]);
    let (archive, _) = kiln.build_base(&def, &kiln.ws.mkdir("cache"));
    kiln.assert_syft_matches_lock(&archive, &defs.join("build.lock"));

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
