//! B01: build steps cannot read your secrets. A hostile build script in each language (an
//! npm `build` script, a Go `-toolexec` program named by `project.toml`, a Maven plugin)
//! tries to read the user's docker config, a credential in the user's home, the signing key,
//! kiln's store and another project's scratch copy, and to write outside its scratch dir.
//! Under kiln's sandbox each attempt is refused (Landlock: "Permission denied", so the target
//! is there and was kept out), and the canaries appear nowhere: not in kiln's output, not in
//! any layer. The same npm script under `--sandbox off` reads them all, which shows the
//! script would see a leak.

use std::path::{Path, PathBuf};

use kiln_e2e::{Registry, ensure_containers_conf};

use crate::common::{Kiln, Run, bases, cache_with_base, client, layer_files, suite, warm_cache};

/// The secret every target holds.
const CANARY: &str = "KILN-SANDBOX-CANARY-3f9e1c";

/// What a hostile script tries, each reported on a line of its own:
/// `kiln-sandbox-probe: NAME read|denied|wrote|refused DETAIL`.
struct Targets {
    /// `(name, file)` to read.
    reads: Vec<(&'static str, PathBuf)>,
    /// `(name, file)` to create.
    writes: Vec<(&'static str, PathBuf)>,
}

/// A user with secrets, and a cache dir with a base in its store and another project's
/// scratch copy in it.
struct Victim {
    kiln: Kiln,
    cache: PathBuf,
    key: PathBuf,
    targets: Targets,
}

impl Drop for Victim {
    /// Removes what an unconfined step wrote outside the test's workspace (`$TMPDIR`).
    fn drop(&mut self) {
        let tmp = std::env::temp_dir();
        for (_, file) in &self.targets.writes {
            if file.parent() == Some(tmp.as_path()) {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

impl Victim {
    fn new(base: &str) -> Self {
        let mut kiln = Kiln::new();
        // The user's home: a docker config under `~/.docker` (kiln's own, DOCKER_CONFIG, is
        // elsewhere) and a file of their own, both holding the canary.
        let home = kiln.ws.mkdir("home");
        let home_docker = kiln.ws.write(
            "home/.docker/config.json",
            format!(r#"{{"auths":{{"r.example":{{"auth":"{CANARY}"}}}}}}"#),
        );
        let notes = kiln.ws.write("home/notes.txt", CANARY);
        kiln.env.insert("HOME".into(), home.display().to_string());
        let docker = kiln.ws.write(
            "docker/config.json",
            format!(r#"{{"auths":{{"r.example":{{"auth":"{CANARY}"}}}}}}"#),
        );
        let cache = cache_with_base(&kiln, "cache", base);
        // Another project's scratch copy, as its build left it.
        let other = kiln
            .ws
            .write("cache/work/0123456789abcdef-0/app/.env", CANARY);
        let store_index = cache.join("oci/index.json");
        let key = generate_key(&kiln);
        let targets = Targets {
            reads: vec![
                ("docker-config", docker),
                ("home-docker-config", home_docker),
                ("home-file", notes),
                ("signing-key", key.clone()),
                ("kiln-store", store_index),
                ("other-scratch", other),
            ],
            writes: vec![
                ("home", home.join("pwned")),
                ("workspace", kiln.ws.join("pwned")),
                ("cache-dir", cache.join("pwned")),
                (
                    "tmp",
                    std::env::temp_dir().join(format!("kiln-pwned-{}", std::process::id())),
                ),
            ],
        };
        Self {
            kiln,
            cache,
            key,
            targets,
        }
    }

    /// Returns a POSIX shell script that makes every attempt and reports it on stderr.
    fn script(&self) -> String {
        let mut s = String::from(
            "#!/bin/sh\n# Tries to reach what a build step must not.\nprobe() { echo \"kiln-sandbox-probe: $*\" >&2; }\n",
        );
        for (name, file) in &self.targets.reads {
            s.push_str(&format!(
                "if out=$(cat '{f}' 2>&1); then probe {name} read \"$out\"; else probe {name} denied \"$out\"; fi\n",
                f = file.display()
            ));
        }
        for (name, file) in &self.targets.writes {
            s.push_str(&format!(
                "if out=$( (echo pwned > '{f}') 2>&1); then probe {name} wrote; else probe {name} refused \"$out\"; fi\n",
                f = file.display()
            ));
        }
        s
    }

    /// Runs `kiln build --publish` of `app` signed with the key, in this cache, with
    /// `extra` arguments and environment.
    fn build(&self, registry: &Registry, app: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let image = registry.reference("team/hostile:1");
        let mut args = vec![
            "build",
            &image,
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            self.cache.to_str().unwrap(),
            "--publish",
            "--sign-key",
            self.key.to_str().unwrap(),
        ];
        args.extend(extra);
        let mut all_env = vec![("KILN_KEY_PASSWORD", "pw")];
        all_env.extend(env);
        self.kiln.run_with(&args, None, &all_env)
    }

    /// Asserts that every attempt was made and refused by the sandbox, that nothing was
    /// written, and that the canary is nowhere in kiln's output or the image's layers.
    fn assert_refused(&self, run: &Run, what: &str) {
        let pinned = run.ok();
        let output = format!("{}\n{}", run.stdout, run.stderr);
        assert!(
            !output.contains("build steps run unconfined"),
            "{what}: the sandbox did not apply:\n{output}"
        );
        for (name, _) in &self.targets.reads {
            let line = probe_line(&output, name, what);
            assert!(
                line.contains(&format!("{name} denied")) && line.contains("Permission denied"),
                "{what}: reading {name} was not refused by the sandbox: {line}"
            );
        }
        for (name, file) in &self.targets.writes {
            let line = probe_line(&output, name, what);
            assert!(
                line.contains(&format!("{name} refused")),
                "{what}: writing {name} was not refused: {line}"
            );
            assert!(!file.exists(), "{what}: `{}` was written", file.display());
        }
        assert!(
            !output.contains(CANARY),
            "{what}: the canary is in kiln's output"
        );
        for (path, bytes) in layer_files(&client(None, None), &pinned) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "{what}: the canary is in layer file `{path}`"
            );
        }
    }
}

/// Returns the probe report of `name` in `output`.
fn probe_line<'a>(output: &'a str, name: &str, what: &str) -> &'a str {
    let tag = format!("kiln-sandbox-probe: {name} ");
    output
        .lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("{what}: the script never tried {name}:\n{output}"))
}

/// Generates a signing key (password `pw`) outside the home and returns its path.
pub(crate) fn generate_key(kiln: &Kiln) -> PathBuf {
    let dir = kiln.ws.mkdir("keys");
    let prefix = dir.join("cosign");
    kiln.run_with(
        &[
            "key",
            "generate",
            "--output-prefix",
            prefix.to_str().unwrap(),
        ],
        None,
        &[("KILN_KEY_PASSWORD", "pw")],
    )
    .ok();
    dir.join("cosign.key")
}

/// B01, Node: an npm `build` script. The same script under `--sandbox off` reads every
/// secret, so this test would see a leak.
pub(crate) fn b01_a_hostile_npm_script_reaches_no_secret() {
    let registry = Registry::anonymous();
    let victim = Victim::new("node");
    let app = victim.kiln.fixture("node-nodeps", "src/hostile");
    std::fs::write(app.join("hostile.sh"), victim.script()).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"hostile","version":"1.0.0","private":true,
            "scripts":{"build":"sh hostile.sh","start":"node server.js"}}"#,
    )
    .unwrap();
    let run = victim.build(&registry, &app, &[], &[]);
    victim.assert_refused(&run, "npm build script");

    let unconfined = victim.build(&registry, &app, &["--sandbox", "off"], &[]);
    let output = format!("{}\n{}", unconfined.stdout, unconfined.stderr);
    assert_eq!(unconfined.code, 0, "{output}");
    let line = probe_line(&output, "docker-config", "--sandbox off");
    assert!(
        line.contains("docker-config read") && line.contains(CANARY),
        "without the sandbox the script reads the docker config: {line}"
    );
}

/// B01, Go: `project.toml` makes a hostile program the `-toolexec` of every compile.
pub(crate) fn b01_a_hostile_go_toolexec_reaches_no_secret() {
    let registry = Registry::anonymous();
    let mut victim = Victim::new("static");
    // The program lives outside the project, where `KILN_SANDBOX_READ` lets steps read it;
    // it makes its attempts in the first compile (not in the go tool's `-V=full` queries,
    // whose output it drops), then runs the tool it was given.
    let tools = victim.kiln.ws.mkdir("tools");
    let exec = tools.join("hostile-exec.sh");
    let script = victim.script().replace(
        "#!/bin/sh\n",
        "#!/bin/sh\ncase \" $* \" in *\" -V=full \"*) exec \"$@\";; esac\n\
         if [ ! -e \"$TMPDIR/tried\" ]; then : > \"$TMPDIR/tried\"\n",
    ) + "fi\nexec \"$@\"\n";
    std::fs::write(&exec, script).unwrap();
    std::fs::set_permissions(&exec, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    victim
        .kiln
        .env
        .insert("KILN_SANDBOX_READ".into(), tools.display().to_string());
    let app = victim.kiln.ws.mkdir("src/hostile-go");
    std::fs::write(
        app.join("go.mod"),
        "module example.com/hostile\n\ngo 1.22\n",
    )
    .unwrap();
    std::fs::write(app.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
    std::fs::write(
        app.join("project.toml"),
        format!(
            "[[io.buildpacks.build.env]]\nname = \"GOFLAGS\"\nvalue = \"-toolexec={}\"\n",
            exec.display()
        ),
    )
    .unwrap();
    let run = victim.build(&registry, &app, &[], &[]);
    victim.assert_refused(&run, "go -toolexec");
}

/// B01, Java: a Maven plugin (exec-maven-plugin in the `validate` phase) runs the script.
pub(crate) fn b01_a_hostile_maven_plugin_reaches_no_secret() {
    let registry = Registry::anonymous();
    let victim = Victim::new("java17");
    let app = victim.kiln.fixture("java-plain", "src/hostile-java");
    std::fs::write(app.join("hostile.sh"), victim.script()).unwrap();
    let pom = std::fs::read_to_string(app.join("pom.xml")).unwrap();
    let plugin = r#"      <plugin>
        <groupId>org.codehaus.mojo</groupId>
        <artifactId>exec-maven-plugin</artifactId>
        <version>3.5.0</version>
        <executions>
          <execution>
            <id>hostile</id>
            <phase>validate</phase>
            <goals><goal>exec</goal></goals>
            <configuration>
              <executable>sh</executable>
              <arguments><argument>hostile.sh</argument></arguments>
            </configuration>
          </execution>
        </executions>
      </plugin>
    </plugins>"#;
    std::fs::write(
        app.join("pom.xml"),
        pom.replacen("    </plugins>", plugin, 1),
    )
    .unwrap();
    let run = victim.build(&registry, &app, &[], &[]);
    victim.assert_refused(&run, "maven plugin");
}

/// B01: where a seccomp profile hides Landlock (as some container runtimes' profiles do),
/// kiln says once that the build steps run unconfined, builds, and records it in the
/// report; `--sandbox require` refuses to build there. Run in a podman container on the
/// node base with the host's Go mounted and a profile that answers Landlock's system calls
/// with ENOSYS.
pub(crate) fn b01_without_landlock_kiln_says_so_once_and_require_refuses() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let podman = suite::podman();
    podman.load(&bases::archive("node"));
    let profile = kiln.ws.write(
        "seccomp.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["landlock_create_ruleset",
            "landlock_add_rule", "landlock_restrict_self"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    );
    let app = kiln.ws.mkdir("src/app");
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.22\n").unwrap();
    std::fs::write(app.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
    let out = kiln.ws.mkdir("out");
    // The suite's warm Go caches, linked from a kiln cache dir, at the same paths inside.
    let cache = warm_cache(&kiln, "cache");
    let downloads = kiln_e2e::machine_cache().join("downloads");
    let goroot = kiln_e2e::go_bin()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let mounts = [
        format!("seccomp={}", profile.display()),
        format!("{}:/usr/local/bin/kiln:ro", kiln_e2e::kiln_bin().display()),
        format!("{}:/go:ro", goroot.display()),
        format!("{}:/src:ro", app.display()),
        format!("{}:/out", out.display()),
        format!("{0}:{0}", cache.display()),
        format!("{0}:{0}", downloads.display()),
    ];
    let build = |extra: &[&str]| {
        let mut options = vec!["--security-opt", &mounts[0]];
        for m in &mounts[1..] {
            options.extend(["-v", m.as_str()]);
        }
        options.extend([
            "-e",
            "HOME=/root",
            "-e",
            "PATH=/go/bin:/usr/bin:/bin",
            "--user",
            "0",
        ]);
        let mut cmd = vec![
            "/usr/local/bin/kiln",
            "build",
            "local/app:1",
            "--path",
            "/src",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--no-sbom",
        ];
        cmd.extend(extra);
        podman.run_once_with("localhost/kiln-base/node", &options, &cmd)
    };

    let auto = build(&["--report", "/out/report.json"]);
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("build steps run unconfined").count(),
        1,
        "said once: {stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["sandbox"]["confinement"], "none", "{report}");
    assert!(
        report["sandbox"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("seccomp")),
        "{report}"
    );

    let required = build(&["--sandbox", "require"]);
    let stderr = String::from_utf8_lossy(&required.stderr);
    assert_eq!(required.status.code(), Some(52), "{stderr}");
    assert!(stderr.contains("the build sandbox is required"), "{stderr}");
    assert!(
        stderr.contains("--sandbox auto"),
        "the hint names the way out: {stderr}"
    );
    assert!(!stderr.contains("BUILDING"), "it built: {stderr}");
}
