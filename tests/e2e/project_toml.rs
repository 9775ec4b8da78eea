//! pack's `project.toml` schemas (issue 22): a file excluded in the older 0.1 format stays
//! out of the image, a table kiln does not implement is named in a warning, and an
//! exclude-like key kiln does not read stops the build.

use kiln_e2e::Registry;

use crate::cli_errors::{build, hello};
use crate::common::{Kiln, client, layer_files};

pub(crate) fn pack_schemas_are_read_and_what_kiln_ignores_is_named() {
    let kiln = Kiln::new();
    let app = hello(&kiln, "app");
    kiln.ws.write("app/secret.txt", "do-not-ship");
    kiln.ws.write("app/notes.txt", "ship me");
    kiln.ws.write(
        "app/project.toml",
        r#"
[project]
id = "io.example.hello"

[build]
exclude = ["secret.txt"]

[[io.buildpacks.group]]
uri = "docker://example/buildpack"
"#,
    );
    let registry = Registry::anonymous();
    let run = build(
        &kiln,
        &registry.reference("project/app:1"),
        &app,
        &["--publish"],
    );
    let pinned = run.ok();
    assert!(
        run.stderr
            .contains("project.toml: kiln does not honour `io.buildpacks.group`"),
        "{}",
        run.stderr
    );
    let files: Vec<String> = layer_files(&client(None, None), &pinned)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(
        files.contains(&"workspace/notes.txt".to_owned()),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.ends_with("secret.txt")),
        "the excluded file shipped: {files:?}"
    );

    kiln.ws.write(
        "app/project.toml",
        "[io.buildpacks.build]\nexclude = [\"secret.txt\"]\n",
    );
    let refused = build(
        &kiln,
        &registry.reference("project/app:2"),
        &app,
        &["--publish"],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("sets `io.buildpacks.build.exclude`, which kiln does not honour"),
        "{}",
        refused.stderr
    );
}
