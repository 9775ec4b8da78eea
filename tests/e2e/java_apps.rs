//! `kiln build` on the Java apps beyond the single-module Spring Boot one: a multi-module
//! project, `[io.kiln.java]` settings (the jar, a Maven `settings.xml` whose password must
//! not ship), hostile jars, and a Java 21 app on the `java21` base.

use std::io::Write;
use std::path::Path;

use crate::common;
use crate::common::cache_with_base;
use crate::common::{Kiln, client, layer_files, secrets, validate_pushed};
use crate::common::{publish, reuse};
use kiln_e2e::{Registry, ensure_containers_conf, skopeo_inspect_config};

/// Runs a pushed web image with podman under a 512 MiB limit and returns `GET path` for
/// each of `paths`.
fn run_web(pinned: &str, paths: &[&str]) -> Vec<String> {
    common::run_web(pinned, &["--memory", "512m"], paths).0
}

fn entrypoint(pinned: &str) -> Vec<String> {
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    serde_json::from_value(config["config"]["Entrypoint"].clone()).unwrap()
}

/// A library module and a server module: the server's jar is found among the modules, its
/// sibling module goes in `snapshot-dependencies` (it changes with the code), commons-lang3
/// in `dependencies`, and `java -cp` runs it in Maven's classpath order.
pub(crate) fn multi_module_web_app_runs_with_module_and_dependency_layers() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let app = kiln.fixture("java-multi", "src/multi");
    let image = registry.reference("team/multi:1");
    let (pinned, report) = publish(&kiln, &image, &app, &cache, "r1.json");
    let names: Vec<String> = reuse(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["dependencies", "snapshot-dependencies", "application"]
    );
    validate_pushed(&client(None, None), &pinned);
    assert_eq!(
        entrypoint(&pinned),
        [
            "/usr/bin/java",
            "-cp",
            "/workspace/app.jar:/workspace/lib/greeting-1.0.0.jar:/workspace/lib/commons-lang3-3.20.0.jar",
            "dev.kiln.fixture.server.Server",
        ]
    );
    let got = run_web(&pinned, &["/", "/user", "/heap"]);
    assert_eq!(got[0], "hello Kiln from a kiln multi-module app");
    assert_eq!(got[1], "65532");
    let mib = got[2].parse::<u64>().unwrap() >> 20;
    assert!(
        (320..=384).contains(&mib),
        "max heap {mib} MiB under 512 MiB"
    );

    // Same source again: same digest.
    let (again, _) = publish(&kiln, &image, &app, &cache, "r2.json");
    assert_eq!(again, pinned);
}

/// `[io.kiln.java]`: with two runnable jars the build names both and the `jar` setting;
/// `jar` picks one; `maven-settings` (or `KILN_MAVEN_SETTINGS`) reaches Maven, whose
/// server password (B02) appears in no layer, config (`Env`, labels, history), SBOM, output,
/// report or cache image.
pub(crate) fn b02_settings_pick_the_jar_and_a_settings_xml_password_stays_out_of_everything() {
    ensure_containers_conf();
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let app = kiln.fixture("java-plain", "src/plain");
    // A second runnable jar: the build makes one with a classifier (a developer's own
    // `target/` never enters the scratch copy).
    let pom = app.join("pom.xml");
    let text = std::fs::read_to_string(&pom).unwrap();
    let tool = "</configuration>\n        <executions>\n          <execution>\n            <id>tool</id>\n            <goals><goal>jar</goal></goals>\n            <configuration><classifier>tool</classifier></configuration>\n          </execution>\n        </executions>\n      </plugin>\n    </plugins>";
    let two = text.replace("</configuration>\n      </plugin>\n    </plugins>", tool);
    assert_ne!(two, text, "the fixture's pom moved; update this test");
    std::fs::write(&pom, two).unwrap();
    let image = registry.reference("team/plain:1");
    let cache_image = registry.reference("team/plain-cache:1");
    let build = |extra: &[(&str, &str)]| {
        kiln.run_with(
            &[
                "build",
                &image,
                "--path",
                app.to_str().unwrap(),
                "--publish",
                "--cache-dir",
                cache.to_str().unwrap(),
                "--cache-image",
                &cache_image,
                "--report",
                kiln.ws.join("report.json").to_str().unwrap(),
            ],
            None,
            extra,
        )
    };
    let several = build(&[]);
    assert_eq!(several.code, 2, "{}", several.stderr);
    for jar in [
        "`target/java-plain-0.0.1.jar`",
        "`target/java-plain-0.0.1-tool.jar`",
    ] {
        assert!(several.stderr.contains(jar), "{}", several.stderr);
    }
    assert!(
        several.stderr.contains("[io.kiln.java] jar = "),
        "{}",
        several.stderr
    );

    std::fs::write(
        app.join("project.toml"),
        "[io.kiln.java]\njar = \"target/java-plain-0.0.1.jar\"\n",
    )
    .unwrap();
    let password = "kiln-maven-canary-5d21e8";
    let settings = kiln.ws.join("m2-settings.xml");
    std::fs::write(
        &settings,
        format!(
            "<settings>\n  <servers>\n    <server>\n      <id>kiln-private</id>\n      <username>ci</username>\n      <password>{password}</password>\n    </server>\n  </servers>\n  <profiles>\n    <profile>\n      <id>kiln</id>\n      <properties><greeting>settings</greeting></properties>\n    </profile>\n  </profiles>\n  <activeProfiles><activeProfile>kiln</activeProfile></activeProfiles>\n</settings>\n"
        ),
    )
    .unwrap();
    let run = build(&[("KILN_MAVEN_SETTINGS", settings.to_str().unwrap())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pinned = run.stdout.trim().to_owned();
    let report = std::fs::read_to_string(kiln.ws.join("report.json")).unwrap();

    // settings.xml was honoured: its profile's property is the app's first word.
    let podman = common::suite::podman();
    podman.pull(&pinned, false);
    let out = podman.run_once(&pinned, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "settings ok Kiln"
    );

    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false).to_string();
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("report", &report),
        ("config", &config),
    ] {
        assert!(!text.contains(password), "the password is in the {what}");
    }
    let client = client(None, None);
    secrets::assert_not_in_files(&layer_files(&client, &pinned), password, "image");
    secrets::assert_not_in_sboms(&client, &pinned, password);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    secrets::assert_not_in_cache_image(&client, &report, password);
}

/// A Spring-Boot-shaped jar with a `..` entry, and one with a zip bomb entry, named by the
/// `jar` setting: each is refused (exit 51) with an error naming the entry.
pub(crate) fn b05_zip_slip_and_zip_bomb_jars_are_refused_naming_the_entry() {
    let kiln = Kiln::new();
    let cache = cache_with_base(&kiln, "cache", "java17");
    let manifest: &[u8] = b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\r\nStart-Class: x.App\r\n";
    let index: &[u8] = b"- \"application\":\n  - \"BOOT-INF/\"\n  - \"META-INF/\"\n";
    let zeros = vec![0u8; 64 << 20];
    let cases: [(&str, &str, Vec<u8>); 2] = [
        (
            "slip",
            "BOOT-INF/classes/../../../../etc/kiln-slip",
            b"owned".to_vec(),
        ),
        ("bomb", "BOOT-INF/classes/zeros.bin", zeros),
    ];
    for (name, entry, data) in cases {
        let app = kiln.fixture("java-plain", &format!("src/{name}"));
        write_jar(
            &app.join(format!("evil/{name}.jar")),
            &[
                ("META-INF/MANIFEST.MF", manifest),
                ("BOOT-INF/layers.idx", index),
                (entry, &data),
            ],
        );
        std::fs::write(
            app.join("project.toml"),
            format!("[io.kiln.java]\njar = \"evil/{name}.jar\"\n"),
        )
        .unwrap();
        let run = kiln.run(&[
            "build",
            "local/evil:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 51, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("refusing entry `{entry}`")),
            "{name}: {}",
            run.stderr
        );
    }
}

/// A Java 21 project: with a JDK 17 as JAVA_HOME the build stops naming both versions (and
/// a JDK that would do); with a JDK 21+ it builds onto `java21` and answers from Java 21.
pub(crate) fn java21_app_needs_a_new_enough_jdk_and_runs_on_the_java21_base() {
    ensure_containers_conf();
    let jdk17 = "/usr/lib/jvm/java-17-openjdk-amd64";
    let newer = newer_jdk(21).expect(
        "a JDK 21 or newer under /usr/lib/jvm (the machine's Temurin JDK; .ci/setup checks it)",
    );
    let registry = Registry::anonymous();
    let kiln = Kiln::new();
    let app = kiln.fixture("java21-web", "src/java21");
    let image = registry.reference("team/java21:1");
    let args = |cache: &Path| {
        [
            "build".to_owned(),
            image.clone(),
            "--path".to_owned(),
            app.display().to_string(),
            "--publish".to_owned(),
            "--cache-dir".to_owned(),
            cache.display().to_string(),
        ]
    };
    let cache = cache_with_base(&kiln, "cache", "java21");
    let a = args(&cache);
    let old = kiln.run_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &[("JAVA_HOME", jdk17)],
    );
    assert_eq!(old.code, 2, "{}", old.stderr);
    assert!(
        old.stderr
            .contains("compiles for Java 21, but the host JDK")
            && old.stderr.contains("is Java 17"),
        "{}",
        old.stderr
    );
    assert!(old.stderr.contains("JAVA_HOME="), "{}", old.stderr);

    let a = args(&cache);
    let run = kiln.run_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &[("JAVA_HOME", newer.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pinned = run.stdout.trim().to_owned();
    validate_pushed(&client(None, None), &pinned);
    assert_eq!(
        entrypoint(&pinned),
        ["/usr/bin/java", "-jar", "/workspace/app.jar"]
    );
    let config = skopeo_inspect_config(&format!("docker://{pinned}"), false);
    let env = config["config"]["Env"].to_string();
    assert!(
        env.contains("JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64"),
        "{env}"
    );
    assert_eq!(
        run_web(&pinned, &["/"]),
        ["hello from java 21 on a virtual thread"]
    );
}

/// A JDK home under /usr/lib/jvm whose `release` says Java `min` or newer.
fn newer_jdk(min: u32) -> Option<std::path::PathBuf> {
    let mut homes: Vec<_> = std::fs::read_dir("/usr/lib/jvm")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|h| h.join("bin/javac").is_file() && !h.is_symlink())
        .filter(|h| {
            std::fs::read_to_string(h.join("release")).is_ok_and(|t| {
                t.lines()
                    .filter_map(|l| l.strip_prefix("JAVA_VERSION=\""))
                    .filter_map(|v| v.split(['.', '"']).next()?.parse::<u32>().ok())
                    .any(|v| v >= min)
            })
        })
        .collect();
    homes.sort();
    homes.into_iter().next()
}

fn write_jar(path: &Path, entries: &[(&str, &[u8])]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}
