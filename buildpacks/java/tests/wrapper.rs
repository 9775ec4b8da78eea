//! The Java buildpack and the project's Maven wrapper (RELIABILITY.md B03): `./mvnw` runs
//! only when `distributionSha256Sum` pins the Maven it downloads. The wrapper here is a stand-in
//! script that records that it ran, so nothing is downloaded whatever happens.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use kiln_buildpack_java::{JavaBuildpack, WRAPPER_PROPERTIES};
use kiln_lifecycle::{BuildContext, Buildpack, BuildpackError};

const URL: &str = "https://ci:s3cret@repo.example/maven2/org/apache/maven/apache-maven/3.9.9/apache-maven-3.9.9-bin.zip";
const SHA: &str = "4ec3f26fb1a692473aea0235c300bd20f0f9fe741947c82c1234cefd76ac3a3c";

/// Writes a Maven app with a stand-in `mvnw` (it touches `ran`, then fails) and `properties`
/// as its wrapper settings; returns the app directory.
fn app(root: &Path, properties: &str) -> std::path::PathBuf {
    let app = root.join("app");
    std::fs::create_dir_all(app.join(".mvn/wrapper")).unwrap();
    std::fs::write(
        app.join("pom.xml"),
        "<project><modelVersion>4.0.0</modelVersion></project>\n",
    )
    .unwrap();
    let mvnw = app.join("mvnw");
    std::fs::write(
        &mvnw,
        "#!/bin/sh\ntouch \"$(dirname \"$0\")/ran\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&mvnw, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(app.join(WRAPPER_PROPERTIES), properties).unwrap();
    app
}

/// Detects and builds the app at `app`; returns the error and the lines the build printed.
fn build(root: &Path, app: &Path) -> (BuildpackError, Vec<String>) {
    let plan = JavaBuildpack.detect(app).unwrap().expect("a Maven app");
    let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
    let lines = Mutex::new(Vec::new());
    let output = |line: &str| lines.lock().unwrap().push(line.to_owned());
    let ctx = BuildContext {
        app_dir: app,
        layers_dir: &root.join("layers"),
        cache_dir: &root.join("cache"),
        env: &env,
        default_process: None,
        workspace: "/workspace",
        output: &output,
        settings: &Default::default(),
        sandbox: kiln_lifecycle::Sandbox::unconfined(),
        run_image: None,
        source_stamp: None,
    };
    let err = JavaBuildpack
        .build(&ctx, &plan)
        .expect_err("the stand-in wrapper never builds");
    (err, lines.into_inner().unwrap())
}

/// An unpinned `distributionUrl` is a usage error naming the file and the missing key, with
/// the URL's credentials redacted, and `mvnw` never runs; pinned, the same wrapper runs.
#[test]
fn b03_an_unpinned_maven_wrapper_is_refused_before_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app(tmp.path(), &format!("distributionUrl={URL}\n"));
    let (err, lines) = build(tmp.path(), &app);
    let BuildpackError::Usage { message, hint } = &err else {
        panic!("want a usage error, got {err:?}")
    };
    assert!(
        message.contains("maven-wrapper.properties")
            && message.contains("`distributionSha256Sum`")
            && message.contains("https://***@repo.example/"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("distributionSha256Sum=")),
        "{hint:?}"
    );
    assert!(!app.join("ran").exists(), "mvnw ran: {lines:?}");

    std::fs::write(
        app.join(WRAPPER_PROPERTIES),
        format!("distributionUrl={URL}\ndistributionSha256Sum={SHA}\n"),
    )
    .unwrap();
    let (err, _) = build(tmp.path(), &app);
    assert!(matches!(err, BuildpackError::App { .. }), "{err:?}");
    assert!(app.join("ran").exists(), "a pinned wrapper runs");
}
