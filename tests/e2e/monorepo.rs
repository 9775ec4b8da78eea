//! Monorepos (issue 22): an app that refers to directories above its `--path` builds as it
//! does on the developer's machine. kiln copies the ancestor that holds them (a Go module's
//! `replace ../../lib`, an enclosing `go.work`, a Maven parent POM; npm workspaces are
//! `node_build::workspace_member_builds_from_the_root_lockfile`), or the one `--context`
//! names, and says which.

use std::path::Path;

use kiln_e2e::Registry;

use crate::common::{self, Kiln, bases::cache_with_base};

/// Writes a Go library module at `dir` (`example.com/lib`, package `greet`).
fn go_lib(kiln: &Kiln, dir: &str) {
    kiln.ws.write(
        format!("{dir}/go.mod"),
        "module example.com/lib\n\ngo 1.21\n",
    );
    kiln.ws.write(
        format!("{dir}/greet/greet.go"),
        "package greet\n\nfunc Hello() string { return \"hello from the library\" }\n",
    );
}

/// Writes a Go app at `dir` (`example.com/<name>`) that prints the library's greeting,
/// with `extra` lines in its go.mod.
fn go_app(kiln: &Kiln, dir: &str, name: &str, extra: &str) {
    kiln.ws.write(
        format!("{dir}/go.mod"),
        format!("module example.com/{name}\n\ngo 1.21\n\nrequire example.com/lib v0.0.0\n{extra}"),
    );
    kiln.ws.write(
        format!("{dir}/main.go"),
        "package main\n\nimport \"example.com/lib/greet\"\n\nfunc main() { println(greet.Hello()) }\n",
    );
}

/// Loads the archive of image `name` (written with `--output`) into podman, runs it and
/// returns what it printed.
fn run_archive(archive: &Path, name: &str) -> String {
    let podman = common::suite::podman();
    podman.load(archive);
    // podman names an OCI archive's image after its ref.name annotation.
    let out = podman.run_once(&format!("localhost/{name}"), &[]);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A Go module that replaces a library with `../../lib`, and one used by an enclosing
/// `go.work`, build from their own directories; `--context` may name a wider root, not a
/// narrower one.
pub(crate) fn go_replace_and_go_work_outside_the_path_build() {
    let kiln = Kiln::new();
    let cache = common::warm_cache(&kiln, "cache");
    let cache_arg = cache.to_str().unwrap();
    kiln.ws.mkdir("repo/.git");
    go_lib(&kiln, "repo/lib");
    go_app(
        &kiln,
        "repo/services/api",
        "api",
        "\nreplace example.com/lib => ../../lib\n",
    );
    let api = kiln.ws.join("repo/services/api");
    let archive = |name: &str| kiln.ws.join(format!("{}.tar", name.replace(':', "-")));
    let build = |name: &str, path: &Path, extra: &[&str]| {
        let out = archive(name);
        let mut args = vec![
            "build",
            name,
            "--path",
            path.to_str().unwrap(),
            "--cache-dir",
            cache_arg,
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        kiln.run(&args)
    };
    let built = build("api:1", &api, &[]);
    built.ok();
    let repo = kiln.ws.join("repo").canonicalize().unwrap();
    let said = format!(
        "building from `{}`, the app being `services/api` in it (go.mod replaces example.com/lib with ../../lib)",
        repo.display()
    );
    assert!(built.stderr.contains(&said), "{}", built.stderr);
    assert!(run_archive(&archive("api:1"), "api:1").contains("hello from the library"));

    // A wider context builds the same image; a narrower one says what it lacks.
    let wider = build(
        "api:2",
        &api,
        &["--context", kiln.ws.path().to_str().unwrap()],
    );
    assert_eq!(
        wider.ok().split('@').nth(1),
        built.ok().split('@').nth(1),
        "the same app, whatever else the copy holds"
    );
    let services = kiln.ws.join("repo/services");
    let narrow = build("api:3", &api, &["--context", services.to_str().unwrap()]);
    assert_eq!(narrow.code, 2, "{}", narrow.stderr);
    assert!(
        narrow.stderr.contains("above the build context")
            && narrow
                .stderr
                .contains(&format!("--context {}", repo.display())),
        "{}",
        narrow.stderr
    );

    // An enclosing go.work that uses the app: the go tool finds it, in the copy as here.
    kiln.ws.write(
        "repo/go.work",
        "go 1.21\n\nuse (\n\t./lib\n\t./cmd/web\n)\n",
    );
    go_app(&kiln, "repo/cmd/web", "web", "");
    let web = build("web:1", &kiln.ws.join("repo/cmd/web"), &[]);
    web.ok();
    assert!(
        web.stderr
            .contains("the app being `cmd/web` in it (../../go.work uses the app)"),
        "{}",
        web.stderr
    );
    assert!(run_archive(&archive("web:1"), "web:1").contains("hello from the library"));
}

/// A Maven module whose parent POM is one directory up builds from the module's directory:
/// the parent's properties (the Java release, the greeting the jar's manifest carries)
/// reach the build.
pub(crate) fn maven_module_with_a_parent_pom_above_the_path_builds() {
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let app = kiln.fixture("java-plain", "mono/app");
    let pom = std::fs::read_to_string(app.join("pom.xml")).unwrap();
    let start = pom.find("  <properties>").unwrap();
    let end = pom.find("</properties>").unwrap() + "</properties>\n".len();
    let properties =
        pom[start..end].replace("<greeting>plain</greeting>", "<greeting>parent</greeting>");
    let module = pom[..start].replace(
        "<modelVersion>4.0.0</modelVersion>",
        "<modelVersion>4.0.0</modelVersion>\n  <parent>\n    <groupId>dev.kiln.fixture</groupId>\n    \
         <artifactId>mono-parent</artifactId>\n    <version>0.0.1</version>\n  </parent>",
    ) + &pom[end..];
    std::fs::write(app.join("pom.xml"), module).unwrap();
    kiln.ws.write(
        "mono/pom.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  \
             <modelVersion>4.0.0</modelVersion>\n  <groupId>dev.kiln.fixture</groupId>\n  \
             <artifactId>mono-parent</artifactId>\n  <version>0.0.1</version>\n  <packaging>pom</packaging>\n  \
             <modules>\n    <module>app</module>\n  </modules>\n{properties}</project>\n"
        ),
    );
    let image = registry.reference("team/mono-app:1");
    let built = kiln.run(&[
        "build",
        &image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    let pinned = built.ok();
    assert!(
        built
            .stderr
            .contains("the app being `app` in it (the parent POM `mono-parent` is in ../pom.xml)"),
        "{}",
        built.stderr
    );
    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let out = podman.run_once(&pinned, &[]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("parent ok Kiln"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
