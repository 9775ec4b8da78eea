//! `kiln build` on real Maven apps (host JDK 17 and Maven, dependencies from Maven Central
//! through Maven's own configuration), on the `java17` golden base, pushed to a real registry
//! and run by podman + runc.

use std::time::Duration;

use crate::common;
use crate::common::cache_with_base;
use crate::common::{Kiln, client, validate_pushed};
use crate::common::{publish, reuse};
use kiln_e2e::{
    Registry, ensure_containers_conf, free_port, http_get, skopeo_inspect_config, wait_http,
};

/// The headline Java path: a Spring Boot web app becomes the layers of its `layers.idx` on
/// `java17`, runs as nonroot with a heap sized from the container's memory limit, rebuilds
/// to the same digest, and a one-line code change replaces only the application layer.
/// Checks the SBOM kiln attached to the Spring Boot image `pinned`: every dependency jar
/// the image ships (`BOOT-INF/lib/<artifact>-<version>.jar`) is a Maven package of the
/// SBOM, read from the jar's `pom.properties`, and the JDK's Debian packages are there.
fn assert_sbom_lists_the_jars(client: &kiln_registry::Client, pinned: &str) {
    let cdx = common::attached_sbom(client, pinned, "application/vnd.cyclonedx+json");
    let cdx: serde_json::Value = serde_json::from_slice(&cdx).unwrap();
    let maven = common::sbom_components(&cdx, "maven");
    let as_files: std::collections::BTreeSet<String> = maven
        .iter()
        .map(|(name, version)| {
            let artifact = name.rsplit_once('/').map_or(name.as_str(), |(_, a)| a);
            format!("{artifact}-{version}.jar")
        })
        .collect();
    let jars: Vec<String> = common::layer_files(client, pinned)
        .into_iter()
        .filter_map(|(path, _)| {
            let name = path.strip_prefix("workspace/BOOT-INF/lib/")?;
            name.ends_with(".jar").then(|| name.to_owned())
        })
        .collect();
    assert!(jars.len() > 10, "{jars:?}");
    let missing: Vec<&String> = jars.iter().filter(|j| !as_files.contains(*j)).collect();
    assert!(
        missing.is_empty(),
        "jars the SBOM does not list: {missing:?}\nlisted: {maven:?}"
    );
    assert!(
        maven
            .iter()
            .any(|(n, _)| n == "org.springframework.boot/spring-boot")
    );
    let debs = common::sbom_components(&cdx, "deb");
    assert!(
        debs.iter().any(|(n, _)| n.starts_with("openjdk-17-jre")),
        "{debs:?}"
    );
}

pub(crate) fn spring_boot_app_runs_layered_and_a_code_change_pushes_only_its_layer() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let app = kiln.fixture("java-spring", "src/spring");
    let image = registry.reference("team/spring:1");

    let (pinned, r1) = publish(&kiln, &image, &app, &cache, "r1.json");
    assert_eq!(
        reuse(&r1),
        [
            ("dependencies".to_owned(), false),
            ("spring-boot-loader".to_owned(), false),
            ("application".to_owned(), false),
        ],
        "the empty snapshot-dependencies layer is left out: {r1}"
    );
    let client = client(None, None);
    validate_pushed(&client, &pinned);
    assert_sbom_lists_the_jars(&client, &pinned);
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["WorkingDir"], "/workspace");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!([
            "/usr/bin/java",
            "-cp",
            "/workspace",
            "org.springframework.boot.loader.launch.JarLauncher"
        ])
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"),
        "{env:?}"
    );
    assert!(
        env.contains(&"JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"),
        "{env:?}"
    );

    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let port = free_port().to_string();
    let ctr = podman.run_detached(
        &pinned,
        &["--memory", "512m", "-e", &format!("PORT={port}")],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/"), Duration::from_secs(90));
    let get = |path: &str| {
        http_get(&format!("{base}{path}"))
            .unwrap()
            .text()
            .trim()
            .to_owned()
    };
    assert_eq!(get("/"), "hello from kiln java");
    assert_eq!(get("/user"), "65532");
    assert_eq!(ctr.process_uid(), 65532);
    // 75% of 512 MiB is 384 MiB; the JVM reports a little less (one survivor space).
    let heap: u64 = get("/heap").parse().unwrap();
    let mib = heap >> 20;
    assert!(
        (320..=384).contains(&mib),
        "max heap {mib} MiB under a 512 MiB limit"
    );
    drop(ctr);

    // Unchanged source: same digest, nothing uploaded.
    let (again, r2) = publish(&kiln, &image, &app, &cache, "r2.json");
    assert_eq!(again, pinned, "same source, same digest");
    assert_eq!(r2["push"]["uploaded_bytes"], 0, "{r2}");

    // The scratch copy kept Maven's target/ with the jar exploded as the incremental
    // template: the builds below only compile, and lay out target/classes.
    let work = cache.join("work");
    let target = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|slot| slot.path().join("app/target"))
        .find(|t| t.join("kiln-incremental/template.json").is_file())
        .unwrap_or_else(|| panic!("no scratch copy under {} kept a template", work.display()));
    let jar = target.join("java-spring-0.0.1.jar");
    let packaged = std::fs::metadata(&jar).unwrap().modified().unwrap();

    // One line of application code, a class in a new package and resources at the places
    // Spring Boot's repackaging treats apart: only the application layer is rebuilt and
    // uploaded, and no jar is packaged.
    let greeting = app.join("src/main/java/dev/kiln/fixture/Greeting.java");
    let text = std::fs::read_to_string(&greeting).unwrap();
    let changed = text.replace("hello from kiln java", "hello again from kiln java");
    assert_ne!(
        changed, text,
        "the fixture's greeting moved; update this test"
    );
    std::fs::write(&greeting, changed).unwrap();
    for (path, text) in [
        (
            "src/main/java/dev/kiln/fixture/extra/Extra.java",
            "package dev.kiln.fixture.extra;\n\npublic final class Extra {}\n",
        ),
        ("src/main/resources/META-INF/spring/extra.imports", "x\n"),
        ("src/main/resources/META-INF/services/dev.Extra", "y\n"),
        ("src/main/resources/static/extra.txt", "z\n"),
    ] {
        let path = app.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let (third, r3) = publish(&kiln, &image, &app, &cache, "r3.json");
    assert_ne!(third, pinned);
    assert_eq!(
        reuse(&r3),
        [
            ("dependencies".to_owned(), true),
            ("spring-boot-loader".to_owned(), true),
            ("application".to_owned(), false),
        ]
    );
    let uploaded = r3["push"]["uploaded_bytes"].as_u64().unwrap();
    assert!(
        uploaded > 0 && uploaded < 64 * 1024,
        "a one-line change uploaded {uploaded} bytes"
    );
    assert_eq!(
        std::fs::metadata(&jar).unwrap().modified().unwrap(),
        packaged,
        "the incremental build packaged the jar"
    );

    // The incremental build gives, file by file, what packaging and exploding the jar in a
    // fresh copy gives.
    std::fs::remove_dir_all(&work).unwrap();
    let (clean, r4) = publish(&kiln, &image, &app, &cache, "r4.json");
    let incremental = common::app_layer_files(&client, &third, &r3);
    let packaged = common::app_layer_files(&client, &clean, &r4);
    let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
        files.iter().map(|(p, _)| p.clone()).collect()
    };
    assert_eq!(names(&incremental), names(&packaged));
    for ((path, a), (_, b)) in incremental.iter().zip(&packaged) {
        assert!(a == b, "`{path}` differs between the two paths");
    }
    assert!(
        names(&packaged)
            .iter()
            .any(|p| p.ends_with("BOOT-INF/classes/dev/kiln/fixture/extra/Extra.class")),
        "{:?}",
        names(&packaged)
    );
    assert_eq!(
        clean, third,
        "an incremental build differs from a clean one"
    );
}

/// A plain Maven app with a `Main-Class` and one dependency it does not bundle: Maven's
/// dependency plugin names the runtime classpath, the dependency goes in its own layer, and
/// `java -cp` runs the main class with it.
pub(crate) fn executable_jar_runs_with_its_dependencies_layer() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let app = kiln.fixture("java-plain", "src/plain");
    let archive = kiln.ws.join("plain.tar");
    let report = kiln.ws.join("report.json");
    kiln.run(&[
        "build",
        "local/plain:1",
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--output",
        archive.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
    .ok();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let names: Vec<String> = reuse(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["dependencies", "application"]);
    let podman = common::suite::podman();
    podman.load(&archive);
    let out = podman.run_once("localhost/local/plain:1", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "plain ok Kiln");
}

/// A compile error is the app's failure (exit 51) with Maven's words; a Gradle project is not
/// detected (exit 20) and says Gradle is not supported yet.
pub(crate) fn broken_and_gradle_projects_fail_with_their_exit_codes() {
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let build = |fixture: &str| {
        let app = kiln.fixture(fixture, &format!("src/{fixture}"));
        kiln.run(&[
            "build",
            "local/x:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
    };
    let broken = build("java-broken");
    assert_eq!(broken.code, 51, "{}", broken.stderr);
    assert!(broken.stderr.contains("';' expected"), "{}", broken.stderr);
    let gradle = build("java-gradle");
    assert_eq!(gradle.code, 20, "{}", gradle.stderr);
    assert!(gradle.stderr.contains("Gradle"), "{}", gradle.stderr);
    assert!(gradle.stderr.contains("build.gradle"), "{}", gradle.stderr);
}
