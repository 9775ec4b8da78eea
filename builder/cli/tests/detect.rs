//! `kiln build`'s detection on a hostile project (RELIABILITY.md B04): a directory that is a
//! Go, a Maven and a Node app at once, whose files try to run code (npm lifecycle scripts, a
//! Maven wrapper) and to read a file outside the project (an XML external entity). Detection
//! reads files only: nothing runs, nothing outside is read, the source is left as it was,
//! and the ambiguity is a usage error naming every candidate in a fixed order and the flag
//! that picks one.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `kiln build local/b04:1 --path APP` with a bare environment and its own HOME.
fn build(app: &Path, home: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["build", "local/b04:1", "--path"])
        .arg(app)
        .args(extra)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .output()
        .expect("running kiln")
}

/// Returns every path under `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path);
                out.push((name, Vec::new()));
            } else {
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn b04_a_go_java_and_node_app_at_once_asks_which_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    let outside = tmp.path().join("outside-secret.txt");
    std::fs::create_dir_all(app.join(".mvn/wrapper")).unwrap();
    std::fs::write(&outside, "21").unwrap();
    let ran = tmp.path().join("ran");
    let touch = format!("touch {}", ran.display());
    let files = [
        ("go.mod", "module example.com/both\n\ngo 1.22\n".to_owned()),
        (
            "package.json",
            format!(
                "{{\"name\":\"both\",\"scripts\":{{\"preinstall\":\"{touch}\",\"install\":\"{touch}\",\"prepare\":\"{touch}\"}}}}"
            ),
        ),
        (
            "pom.xml",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE project [<!ENTITY r SYSTEM \"file://{}\">]>\n\
                 <project><properties><maven.compiler.release>&r;</maven.compiler.release>\
                 </properties></project>\n",
                outside.display()
            ),
        ),
        ("mvnw", format!("#!/bin/sh\n{touch}\n")),
        (
            ".mvn/wrapper/maven-wrapper.properties",
            "distributionUrl=https://repo.example/maven.zip\n".to_owned(),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(app.join(name), text).unwrap();
    }
    std::fs::set_permissions(app.join("mvnw"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = snapshot(&app);
    let home = tmp.path().join("home");

    let first = build(&app, &home, &[]);
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert_eq!(first.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "several buildpacks detected an app in `{}`: kiln/go, kiln/java, kiln/node",
            app.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--buildpack kiln/go"), "{stderr}");
    let again = build(&app, &home, &[]);
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        stderr,
        "the same answer every time"
    );
    let unknown = build(&app, &home, &["--buildpack", "kiln/rust"]);
    assert_eq!(unknown.status.code(), Some(2));

    assert!(!ran.exists(), "detection ran project code");
    assert_eq!(snapshot(&app), before, "detection changed the source");
}
