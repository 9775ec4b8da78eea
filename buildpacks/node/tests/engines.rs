//! The Node.js buildpack against an app whose `engines.node` nothing satisfies
//! (RELIABILITY.md B03): a usage error naming the range, where it was written, the host's
//! Node.js and the run image's, before any package manager runs. Needs `node` and `npm` on
//! PATH (only their versions are read).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use kiln_buildpack_node::NodeBuildpack;
use kiln_lifecycle::{BASE_PACKAGES_LABEL, BuildContext, Buildpack, BuildpackError, RunImageInfo};

#[test]
fn b03_an_unsatisfiable_engines_node_is_a_clear_mismatch_before_any_install() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let ran = tmp.path().join("ran");
    std::fs::write(
        app.join("package.json"),
        format!(
            "{{\"name\":\"engines\",\"engines\":{{\"node\":\">=99\"}},\
             \"scripts\":{{\"preinstall\":\"touch {0}\",\"build\":\"touch {0}\"}}}}",
            ran.display()
        ),
    )
    .unwrap();
    std::fs::write(app.join("package-lock.json"), "{\"lockfileVersion\":3}").unwrap();
    let plan = NodeBuildpack.detect(&app).unwrap().expect("a Node app");
    let env = BTreeMap::from([
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_owned(), tmp.path().display().to_string()),
    ]);
    let run = RunImageInfo {
        name: "kiln-base/node".to_owned(),
        os: "linux".to_owned(),
        architecture: "amd64".to_owned(),
        labels: BTreeMap::from([(
            BASE_PACKAGES_LABEL.to_owned(),
            r#"{"nodejs":"20.19.2+dfsg-1+deb13u3"}"#.to_owned(),
        )]),
    };
    let lines = Mutex::new(Vec::new());
    let output = |line: &str| lines.lock().unwrap().push(line.to_owned());
    let layers = tmp.path().join("layers");
    let ctx = BuildContext {
        app_dir: &app,
        layers_dir: &layers,
        cache_dir: &tmp.path().join("cache"),
        env: &env,
        default_process: None,
        workspace: "/workspace",
        output: &output,
        settings: &Default::default(),
        sandbox: kiln_lifecycle::Sandbox::unconfined(),
        run_image: Some(&run),
        source_stamp: None,
    };
    let err = NodeBuildpack.build(&ctx, &plan).unwrap_err();
    let BuildpackError::Usage { message, hint } = &err else {
        panic!("want a usage error, got {err:?}")
    };
    for part in [
        "the app needs Node.js `>=99` (engines.node in package.json)",
        "the host has Node.js ",
        "the run image `kiln-base/node` has Node.js 20.19.2",
        "neither the host nor the run image has it",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert!(
        hint.as_deref().is_some_and(|h| h.contains("--run-image")),
        "{hint:?}"
    );
    assert!(!ran.exists(), "a script ran: {:?}", lines.lock().unwrap());
    assert!(!Path::new(&layers).join("node_modules").exists());
    assert!(!app.join("node_modules").exists());
}
