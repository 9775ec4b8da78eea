//! The build step: Maven in the scratch copy → the app's jar → launch layers and a `java`
//! process that runs straight from the base (no shell).
//!
//! A layered Spring Boot jar is exploded by its `BOOT-INF/layers.idx` (dependencies,
//! spring-boot-loader, snapshot-dependencies, application: one image layer each, so a code
//! change only replaces the last) and run with its launcher class. Any other jar goes in as
//! `/workspace/app.jar`, its runtime dependencies (those it does not bundle, from Maven's
//! dependency plugin) under `/workspace/lib` in layers of their own, and runs with
//! `java -jar`, or `java -cp` with the classpath in Maven's order.

use std::path::{Path, PathBuf};

use kiln_lifecycle::{
    BuildContext, BuildOutput, BuildpackError, DeclaredPackage, LaunchLayer, Plan, Process,
};

use crate::cds::Cds;
use crate::classpath::{
    Dependency, build_classpath_args, classpath_coordinates, maven_coordinates,
    repository_coordinates, runtime_dependencies, spring_boot_plugin_coordinates,
};
use crate::detect::VERSION;
use crate::explode::{Limits, explode};
use crate::failure::with_causes;
use crate::incremental;
use crate::jar::{JarError, JarKind, inspect};
use crate::jdk::check_host_jdk;
use crate::maven::Maven;
use crate::select::select_jar;
use crate::settings::JavaSettings;

/// The JVM options of the image, container-aware; a `JAVA_TOOL_OPTIONS` given at run time
/// replaces them.
pub const JVM_OPTIONS: &str = "-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError";
/// Where the golden bases put `java` (a link made by the base definition).
const JAVA: &str = "/usr/bin/java";
/// Jar times when the project sets none, so Maven's own archives are reproducible.
const OUTPUT_TIMESTAMP: &str = "1980-01-01T00:00:02Z";

/// Builds the app: see the module docs.
pub(crate) fn build(ctx: &BuildContext<'_>, plan: &Plan) -> Result<BuildOutput, BuildpackError> {
    let settings = JavaSettings::of(ctx)?;
    if let Some(needed) = plan.facts.get(VERSION).and_then(|v| v.parse::<u32>().ok()) {
        check_host_jdk(ctx.env, ctx.sandbox, needed)?;
    }
    let mut env = maven_env(ctx.env);
    // The Maven wrapper keeps the distributions it downloads in `MAVEN_USER_HOME` (else
    // `~/.m2`, which is emptied with the build's home each build).
    env.insert(
        "MAVEN_USER_HOME".to_owned(),
        ctx.cache_dir.join("maven-user-home").display().to_string(),
    );
    let maven = Maven::find(ctx, &env)?;
    let repo = ctx.cache_dir.join("repository");
    let mut args = vec![
        "-B".to_owned(),
        format!("-Dmaven.repo.local={}", repo.display()),
        format!("-Dproject.build.outputTimestamp={OUTPUT_TIMESTAMP}"),
    ];
    if let Some(file) = settings.maven_settings_file(ctx.app_dir)? {
        args.extend(["--settings".to_owned(), file.display().to_string()]);
    }
    let default_goals = settings.maven_args.is_none();
    if default_goals && let Some(out) = incremental_build(ctx, &maven, &args)? {
        return Ok(out);
    }
    args.extend(settings.goals());
    args.extend(build_classpath_args());
    run_maven(ctx, &maven, &args, false)?;

    let jar = select_jar(ctx.app_dir, settings.jar.as_deref())?;
    let main_class = match inspect(&jar).map_err(jar_error)? {
        JarKind::SpringBoot { launcher, .. } => {
            return boot_build(ctx, &jar, launcher, &repo, default_goals);
        }
        JarKind::Executable { main_class } => settings.main_class.clone().unwrap_or(main_class),
        JarKind::Plain => settings.main_class.clone().ok_or_else(|| BuildpackError::Usage {
            message: format!(
                "`{}` has no `Main-Class`: kiln cannot tell how to run it",
                jar.strip_prefix(ctx.app_dir).unwrap_or(&jar).display()
            ),
            hint: Some("set `<mainClass>` in the maven-jar-plugin's manifest configuration, or name the class: `[io.kiln.java] main-class = \"com.example.Main\"` in project.toml".to_owned()),
        })?,
    };
    // Class files and jars run on every platform's JRE: one build serves them all.
    let mut out = BuildOutput {
        platform_neutral: true,
        ..Default::default()
    };
    out.env
        .insert("JAVA_TOOL_OPTIONS".to_owned(), JVM_OPTIONS.to_owned());
    let module_dir = jar.parent().and_then(Path::parent).unwrap_or(ctx.app_dir);
    let deps = runtime_dependencies(&jar, module_dir, &repo)?;
    jar_layers(ctx, &jar, &deps, &mut out)?;
    let home = ctx.workspace.trim_end_matches('/');
    for d in &deps {
        if let Some((g, a, v)) = maven_coordinates(&d.path, &repo) {
            out.packages
                .push(maven_package(&g, &a, &v, format!("{home}/lib/{}", d.name)));
        }
    }
    let app_jar = format!("{home}/app.jar");
    let command = if deps.is_empty() && settings.main_class.is_none() {
        vec![JAVA.into(), "-jar".into(), app_jar]
    } else {
        let classpath: Vec<String> = std::iter::once(app_jar)
            .chain(deps.iter().map(|d| format!("{home}/lib/{}", d.name)))
            .collect();
        vec![JAVA.into(), "-cp".into(), classpath.join(":"), main_class]
    };
    out.processes.push(Process {
        name: "app".to_owned(),
        command,
        default: true,
    });
    Ok(out)
}

/// Explodes a Spring Boot jar into its layers and returns the build's output. A jar from
/// the root module of a build with kiln's default goals is exploded into the incremental
/// template, and recorded as one when its classes can stand in for it (see
/// [`crate::incremental`]).
fn boot_build(
    ctx: &BuildContext<'_>,
    jar: &Path,
    launcher: String,
    repo: &Path,
    default_goals: bool,
) -> Result<BuildOutput, BuildpackError> {
    let workspace = ctx.workspace.trim_start_matches('/');
    let template = incremental::fresh_root(ctx.app_dir)
        .map_err(|e| BuildpackError::io("emptying the incremental build's template", e))?;
    let module_dir = jar.parent().and_then(Path::parent).unwrap_or(ctx.app_dir);
    let templated = default_goals && module_dir == ctx.app_dir;
    let layer_root = |layer: &str| match templated {
        true => template.join(layer),
        false => ctx.layers_dir.join(layer),
    };
    let mut coordinates = classpath_coordinates(module_dir, repo);
    let mut walked = false;
    let mut layers = Vec::new();
    let mut packages = Vec::new();
    for layer in
        explode(jar, |l| layer_root(l).join(workspace), &Limits::default()).map_err(jar_error)?
    {
        let lib = layer.dir.join("BOOT-INF/lib");
        for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if !coordinates.contains_key(&file) && !walked {
                walked = true;
                for (k, v) in repository_coordinates(repo) {
                    coordinates.entry(k).or_insert(v);
                }
            }
            let found = coordinates
                .get(&file)
                .cloned()
                .or_else(|| spring_boot_plugin_coordinates(&file, repo));
            if let Some((g, a, v)) = found {
                packages.push((g, a, v, format!("/{workspace}/BOOT-INF/lib/{file}")));
            }
        }
        layers.push(layer.name);
    }
    if templated {
        // Without a template the next build packages the jar again: nothing more.
        let recorded = incremental::record(
            ctx.app_dir,
            ctx.workspace,
            &launcher,
            &layers,
            packages.clone(),
        );
        if let Err(e) = recorded {
            (ctx.output)(&format!("kiln: no incremental build next time: {e}"));
        }
    }
    let layers = layers
        .into_iter()
        .map(|name| (layer_root(&name), name))
        .collect();
    Ok(boot_output(ctx, layers, launcher, &packages))
}

/// Builds a Spring Boot app from its incremental template, if it has one: `mvn
/// process-classes`, then the application layer from `target/classes`. Returns `None` when
/// the jar has to be packaged after all.
fn incremental_build(
    ctx: &BuildContext<'_>,
    maven: &Maven<'_, '_>,
    args: &[String],
) -> Result<Option<BuildOutput>, BuildpackError> {
    let Some(template) = incremental::load(ctx.app_dir, ctx.workspace) else {
        return Ok(None);
    };
    let mut args = args.to_vec();
    args.extend(["-DskipTests".to_owned(), "process-classes".to_owned()]);
    run_maven(ctx, maven, &args, true)?;
    let dest = ctx.layers_dir.join(incremental::APPLICATION);
    match incremental::application_layer(ctx.app_dir, &template, &dest) {
        Ok(true) => {}
        laid_out => {
            let _ = std::fs::remove_dir_all(&dest);
            let why = match laid_out {
                Err(e) => format!("laying out target/classes failed ({e})"),
                _ => "a file of target/classes belongs in another layer".to_owned(),
            };
            (ctx.output)(&format!("kiln: {why}: packaging the jar"));
            return Ok(None);
        }
    }
    (ctx.output)(
        "kiln: incremental build: the application layer comes from target/classes (no jar)",
    );
    let layers = template
        .layers
        .iter()
        .map(|name| match name.as_str() {
            incremental::APPLICATION => (dest.clone(), name.clone()),
            _ => (incremental::layer_dir(ctx.app_dir, name), name.clone()),
        })
        .collect();
    Ok(Some(boot_output(
        ctx,
        layers,
        template.launcher,
        &template.packages,
    )))
}

/// Runs Maven with `args` and its class-data sharing archive, which this run dumps when
/// there is none yet and `may_dump` (see [`crate::cds`]).
fn run_maven(
    ctx: &BuildContext<'_>,
    maven: &Maven<'_, '_>,
    args: &[String],
    may_dump: bool,
) -> Result<(), BuildpackError> {
    let Some(cds) = Cds::new(ctx.cache_dir, maven.exe(), ctx.env, may_dump) else {
        return maven.run(args);
    };
    let ran = maven.run_with_jvm_flags(args, &cds.flags());
    cds.finish(ran.is_ok());
    ran
}

/// Returns the output of a Spring Boot app: its `(directory, name)` layers, its packages
/// as `(group, artifact, version, location)`, and a `java` process running `launcher`.
fn boot_output(
    ctx: &BuildContext<'_>,
    layers: Vec<(PathBuf, String)>,
    launcher: String,
    packages: &[(String, String, String, String)],
) -> BuildOutput {
    // Class files and jars run on every platform's JRE: one build serves them all.
    let mut out = BuildOutput {
        platform_neutral: true,
        ..Default::default()
    };
    out.env
        .insert("JAVA_TOOL_OPTIONS".to_owned(), JVM_OPTIONS.to_owned());
    out.layers = layers
        .into_iter()
        .map(|(dir, name)| LaunchLayer {
            dir,
            name,
            cache_key: None,
            ..Default::default()
        })
        .collect();
    out.packages = packages
        .iter()
        .map(|(g, a, v, location)| maven_package(g, a, v, location.clone()))
        .collect();
    out.processes.push(Process {
        name: "web".to_owned(),
        command: vec![JAVA.into(), "-cp".into(), ctx.workspace.into(), launcher],
        default: true,
    });
    out
}

/// Returns the SBOM entry of a Maven artifact the image ships at `location`.
fn maven_package(group: &str, artifact: &str, version: &str, location: String) -> DeclaredPackage {
    DeclaredPackage {
        purl_type: "maven".to_owned(),
        namespace: Some(group.to_owned()),
        name: artifact.to_owned(),
        version: version.to_owned(),
        location,
    }
}

/// JVM flags for Maven's own JVM: a build is a short run, which the C1 compiler alone and
/// the serial collector finish about a quarter sooner. They come first in `MAVEN_OPTS`, so
/// the user's own (say `-XX:TieredStopAtLevel=4`) win.
pub const MAVEN_JVM_FLAGS: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

/// Returns the build environment with [`MAVEN_JVM_FLAGS`] before the user's `MAVEN_OPTS`,
/// preceded by the build's own home and temp dir as the JVM's `user.home` and
/// `java.io.tmpdir` (a JVM takes them from the password database and `/tmp`, not from `HOME`
/// and `TMPDIR`; the build's steps may not read the user's home nor write `/tmp`).
fn maven_env(
    env: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut env = env.clone();
    let mut opts: Vec<String> = Vec::new();
    if let Some(home) = env.get("HOME") {
        opts.push(format!("-Duser.home={home}"));
    }
    if let Some(tmp) = env.get("TMPDIR") {
        opts.push(format!("-Djava.io.tmpdir={tmp}"));
    }
    opts.push(MAVEN_JVM_FLAGS.to_owned());
    if let Some(user) = env
        .get("MAVEN_OPTS")
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        opts.push(user.to_owned());
    }
    env.insert("MAVEN_OPTS".to_owned(), opts.join(" "));
    env
}

/// Lays out an executable or plain jar: released dependencies, then snapshot and module
/// dependencies (each layer only when it has files), then the jar as `app.jar`.
fn jar_layers(
    ctx: &BuildContext<'_>,
    jar: &Path,
    deps: &[Dependency],
    out: &mut BuildOutput,
) -> Result<(), BuildpackError> {
    let workspace = ctx.workspace.trim_start_matches('/');
    for (layer, snapshot) in [("dependencies", false), ("snapshot-dependencies", true)] {
        let files: Vec<&Dependency> = deps.iter().filter(|d| d.snapshot == snapshot).collect();
        if files.is_empty() {
            continue;
        }
        let dir = ctx.layers_dir.join(layer);
        let lib = dir.join(workspace).join("lib");
        std::fs::create_dir_all(&lib).map_err(|e| BuildpackError::io("creating a layer", e))?;
        for dep in files {
            copy(&dep.path, &lib.join(&dep.name))?;
        }
        out.layers.push(LaunchLayer {
            name: layer.to_owned(),
            dir,
            cache_key: None,
            ..Default::default()
        });
    }
    let dir = ctx.layers_dir.join("application");
    std::fs::create_dir_all(dir.join(workspace))
        .map_err(|e| BuildpackError::io("creating the application layer", e))?;
    copy(jar, &dir.join(workspace).join("app.jar"))?;
    out.layers.push(LaunchLayer {
        name: "application".to_owned(),
        dir,
        cache_key: None,
        ..Default::default()
    });
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), BuildpackError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| BuildpackError::io(format!("copying `{}`", from.display()), e))
}

/// Returns the app's failure for a jar its build produced that kiln cannot use; the jar
/// error names the jar and says what was being done.
fn jar_error(e: JarError) -> BuildpackError {
    BuildpackError::App {
        message: with_causes(&e),
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn maven_gets_quick_jvm_flags_before_the_users() {
        let none = maven_env(&BTreeMap::new());
        assert_eq!(none["MAVEN_OPTS"], MAVEN_JVM_FLAGS);
        let user = BTreeMap::from([("MAVEN_OPTS".to_owned(), "-Xmx2g".to_owned())]);
        assert_eq!(
            maven_env(&user)["MAVEN_OPTS"],
            format!("{MAVEN_JVM_FLAGS} -Xmx2g")
        );
    }

    #[test]
    fn mavens_jvm_takes_the_builds_home_and_temp_dir() {
        let env = BTreeMap::from([
            ("HOME".to_owned(), "/k/home".to_owned()),
            ("TMPDIR".to_owned(), "/k/tmp".to_owned()),
            ("MAVEN_OPTS".to_owned(), "-Xmx2g".to_owned()),
        ]);
        assert_eq!(
            maven_env(&env)["MAVEN_OPTS"],
            format!("-Duser.home=/k/home -Djava.io.tmpdir=/k/tmp {MAVEN_JVM_FLAGS} -Xmx2g")
        );
    }
}
