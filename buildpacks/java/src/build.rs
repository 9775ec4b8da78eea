//! The build step: Maven in the scratch copy → the app's jar → launch layers and a `java`
//! process that runs straight from the base (no shell).
//!
//! A layered Spring Boot jar is exploded by its `BOOT-INF/layers.idx` (dependencies,
//! spring-boot-loader, snapshot-dependencies, application: one image layer each, so a code
//! change only replaces the last) and run with its launcher class. Any other executable jar
//! goes in as `/workspace/app.jar`, with the `target/lib` its `Class-Path` points into as a
//! layer of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_lifecycle::{BuildContext, BuildOutput, BuildpackError, LaunchLayer, Plan, Process};

use crate::detect::VERSION;
use crate::explode::{Limits, explode};
use crate::jar::{JarError, JarKind, inspect};
use crate::maven::Maven;

/// The JVM options of the image, container-aware; a `JAVA_TOOL_OPTIONS` given at run time
/// replaces them.
pub const JVM_OPTIONS: &str = "-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError";
/// Where the golden bases put `java` (a link made by the base definition).
const JAVA: &str = "/usr/bin/java";
/// Jar times when the project sets none, so Maven's own archives are reproducible.
const OUTPUT_TIMESTAMP: &str = "1980-01-01T00:00:02Z";

/// Builds the app: see the module docs.
pub(crate) fn build(ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
    if let Some(needed) = plan.facts.get(VERSION).and_then(|v| v.parse::<u32>().ok()) {
        check_host_java(ctx, needed)?;
    }
    let maven = Maven::find(ctx.app_dir, ctx.env, ctx.output)?;
    let repo = ctx.cache_dir.join("repository");
    maven.run(&[
        "-B".to_owned(),
        "-DskipTests".to_owned(),
        format!("-Dmaven.repo.local={}", repo.display()),
        format!("-Dproject.build.outputTimestamp={OUTPUT_TIMESTAMP}"),
        "package".to_owned(),
    ])?;
    let jar = find_app_jar(ctx.app_dir)?;
    let workspace = ctx.workspace.trim_start_matches('/');
    let mut out = BuildOutput::default();
    out.env
        .insert("JAVA_TOOL_OPTIONS".to_owned(), JVM_OPTIONS.to_owned());
    match inspect(&jar).map_err(|e| jar_error(&jar, e))? {
        JarKind::SpringBoot { launcher, .. } => {
            let dest = |layer: &str| ctx.layers_dir.join(layer).join(workspace);
            for layer in explode(&jar, dest, &Limits::default()).map_err(|e| jar_error(&jar, e))? {
                out.layers.push(LaunchLayer {
                    dir: ctx.layers_dir.join(&layer.name),
                    name: layer.name,
                });
            }
            out.processes.push(Process {
                name: "web".to_owned(),
                command: vec![JAVA.into(), "-cp".into(), ctx.workspace.into(), launcher],
                default: true,
            });
        }
        JarKind::Executable { .. } => {
            let lib = jar.parent().map(|d| d.join("lib"));
            if let Some(lib) = lib.filter(|l| l.is_dir()) {
                let dir = ctx.layers_dir.join("dependencies");
                copy_tree(&lib, &dir.join(workspace).join("lib"))?;
                out.layers.push(LaunchLayer {
                    name: "dependencies".to_owned(),
                    dir,
                });
            }
            let dir = ctx.layers_dir.join("application");
            std::fs::create_dir_all(dir.join(workspace))
                .map_err(|e| BuildpackError::io("creating the application layer", e))?;
            std::fs::copy(&jar, dir.join(workspace).join("app.jar"))
                .map_err(|e| BuildpackError::io(format!("copying `{}`", jar.display()), e))?;
            out.layers.push(LaunchLayer {
                name: "application".to_owned(),
                dir,
            });
            let app_jar = format!("{}/app.jar", ctx.workspace.trim_end_matches('/'));
            out.processes.push(Process {
                name: "app".to_owned(),
                command: vec![JAVA.into(), "-jar".into(), app_jar],
                default: true,
            });
        }
        JarKind::Plain => {
            return Err(BuildpackError::Usage {
                message: format!(
                    "`{}` has no `Main-Class`: kiln cannot tell how to run it",
                    jar.display()
                ),
                hint: Some("make the jar executable: set `<mainClass>` in the maven-jar-plugin's manifest configuration, or use spring-boot-maven-plugin".to_owned()),
            });
        }
    }
    Ok(out)
}

/// Returns the one runnable jar the build produced: under `target/` of the app, else of its
/// modules, leaving out sources, javadoc and test jars and Spring Boot's `.original`.
fn find_app_jar(app_dir: &Path) -> Result<PathBuf, BuildpackError> {
    let mut candidates = jars_in(&app_dir.join("target"));
    if candidates.is_empty() {
        let mut modules: Vec<PathBuf> = std::fs::read_dir(app_dir)
            .map_err(|e| BuildpackError::io("listing the project", e))?
            .flatten()
            .map(|e| e.path().join("target"))
            .filter(|t| t.is_dir())
            .collect();
        modules.sort();
        candidates = modules.iter().flat_map(|t| jars_in(t)).collect();
        // Of a multi-module build, only a module that makes an app counts.
        candidates.retain(|j| !matches!(inspect(j), Ok(JarKind::Plain)));
    }
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(BuildpackError::App {
            message: "the Maven build produced no jar under `target/`".to_owned(),
            hint: Some("check `<packaging>jar</packaging>` (the default) in pom.xml".to_owned()),
        }),
        many => Err(BuildpackError::Usage {
            message: format!(
                "the Maven build produced several jars, and kiln cannot tell which is the app: {}",
                many.iter()
                    .map(|p| format!("`{}`", p.strip_prefix(app_dir).unwrap_or(p).display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: Some("build one executable jar (a single module with spring-boot-maven-plugin or a `<mainClass>`)".to_owned()),
        }),
    }
}

fn jars_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut jars: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            p.is_file()
                && name.ends_with(".jar")
                && ![
                    "-sources.jar",
                    "-javadoc.jar",
                    "-tests.jar",
                    "-test-sources.jar",
                ]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .collect();
    jars.sort();
    jars
}

/// Refuses a host JDK older than the release the project compiles for.
fn check_host_java(ctx: &BuildContext<'_>, needed: u32) -> Result<(), BuildpackError> {
    let mut cmd = Command::new("java");
    cmd.args(["-XshowSettings:properties", "-version"])
        .env_clear()
        .envs(ctx.env)
        .stdin(Stdio::null());
    let Ok(out) = cmd.output() else {
        return Ok(()); // No `java` on PATH: Maven's own error (JAVA_HOME) says it better.
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let host = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.specification.version = "))
        .and_then(|v| crate::pom::normalize_release(v.trim()));
    match host {
        Some(host) if host < needed => Err(BuildpackError::Usage {
            message: format!(
                "the project compiles for Java {needed}, but the host JDK is Java {host}"
            ),
            hint: Some(format!(
                "install a JDK {needed} or newer and put it first on PATH (or set JAVA_HOME)"
            )),
        }),
        _ => Ok(()),
    }
}

fn jar_error(jar: &Path, e: JarError) -> BuildpackError {
    BuildpackError::App {
        message: format!("reading the built jar `{}`: {e}", jar.display()),
        hint: None,
    }
}

/// Copies the regular files of `src` (one level: Maven's `target/lib`) into `dest`.
fn copy_tree(src: &Path, dest: &Path) -> Result<(), BuildpackError> {
    std::fs::create_dir_all(dest).map_err(|e| BuildpackError::io("creating a layer", e))?;
    for entry in
        std::fs::read_dir(src).map_err(|e| BuildpackError::io("listing `target/lib`", e))?
    {
        let path = entry
            .map_err(|e| BuildpackError::io("listing `target/lib`", e))?
            .path();
        if path.is_file() {
            let name = path.file_name().unwrap_or_default();
            std::fs::copy(&path, dest.join(name))
                .map_err(|e| BuildpackError::io(format!("copying `{}`", path.display()), e))?;
        }
    }
    Ok(())
}
