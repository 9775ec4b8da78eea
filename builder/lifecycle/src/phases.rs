//! The detect and build phases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::SourceRoot;
use crate::context::{ContextError, source_root};
use crate::source::{CopyStats, SourceError};
use crate::stage::sync_source;
use crate::{
    BuildContext, BuildOutput, Buildpack, BuildpackError, Confinement, Plan, ProjectDescriptor,
    RunImageInfo, Sandbox, SandboxError, SandboxMode, SandboxSettings, SandboxSupport,
};
use kiln_oci::Digest;

/// Host variables a toolchain may see. Everything else — registry credentials,
/// `DOCKER_CONFIG`, cloud tokens — never reaches a build step. `HOME` and `TMPDIR` are not
/// among them: steps get the build's own.
pub const ALLOWED_ENV: &[&str] = &[
    "PATH",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    // The toolchains' own settings files, which the CLI points at the user's (a step's home
    // is kiln's, so they would not find them there): npm's `~/.npmrc`, Go's `go env -w` file.
    "NPM_CONFIG_USERCONFIG",
    "npm_config_userconfig",
    "GOENV",
    "GOPROXY",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOSUMDB",
    "GOFLAGS",
    "GOINSECURE",
    "JAVA_HOME",
    "MAVEN_OPTS",
    // Where npm, pnpm and yarn find their registry and its CA: settings, never credentials
    // (tokens live in `.npmrc` / `.yarnrc.yml`, which the package managers read themselves).
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "YARN_NPM_REGISTRY_SERVER",
    "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Returns `: it looks like a Python app (`requirements.txt`), which kiln does not build yet`
/// for what detect saw instead, or nothing.
fn seen_instead(seen: &[(String, &'static str)]) -> String {
    let mut kinds: Vec<String> = Vec::new();
    for (file, what) in seen {
        match kinds.iter_mut().find(|k| k.starts_with(what)) {
            Some(k) => k.insert_str(k.len() - 1, &format!(", `{file}`")),
            None => kinds.push(format!("{what} (`{file}`)")),
        }
    }
    match kinds.len() {
        0 => String::new(),
        _ => format!(
            ": it looks like {}, which kiln does not build yet",
            kinds.join(" and ")
        ),
    }
}

/// Why detect or build failed.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// No buildpack recognised the app (exit 20).
    #[error("no buildpack detected an app in `{}`{}", dir.display(), seen_instead(seen))]
    NothingDetected {
        /// The app directory.
        dir: PathBuf,
        /// Per buildpack: id and what it looks for.
        looked_for: Vec<(&'static str, &'static str)>,
        /// What kiln saw instead: files of languages (or a Dockerfile) it does not build.
        seen: Vec<(String, &'static str)>,
    },
    /// Several buildpacks passed and none was chosen (exit 2).
    #[error("several buildpacks detected an app in `{}`: {}", dir.display(), ids.join(", "))]
    Ambiguous {
        /// The app directory.
        dir: PathBuf,
        /// The ids that passed.
        ids: Vec<&'static str>,
    },
    /// The buildpack failed.
    #[error(transparent)]
    Buildpack(#[from] BuildpackError),
    /// Preparing the scratch copy failed (exit 52).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Scratch directory handling failed (exit 52).
    #[error("preparing the build directory `{}`", path.display())]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The build steps cannot be confined as asked (exit 52).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The build context named does not hold the app, or not what the app needs (exit 2).
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// The detect phase: asks each buildpack whether it recognises the app.
pub struct Detect<'a> {
    /// kiln's buildpacks, in the order they are asked.
    pub buildpacks: &'a [Box<dyn Buildpack>],
    /// The app's directory (only its files are looked at; nothing runs).
    pub app_dir: &'a Path,
    /// The buildpack id to use when several pass (the others are not asked).
    pub choose: Option<&'a str>,
}

impl<'a> Detect<'a> {
    /// Returns the one buildpack that passed and its plan.
    pub fn run(&self) -> Result<(&'a dyn Buildpack, Plan), PhaseError> {
        let mut passed = Vec::new();
        for bp in self.buildpacks {
            if self.choose.is_some_and(|c| c != bp.id()) {
                continue;
            }
            if let Some(plan) = bp.detect(self.app_dir)? {
                passed.push((bp.as_ref(), plan));
            }
        }
        match passed.len() {
            0 => Err(PhaseError::NothingDetected {
                dir: self.app_dir.to_path_buf(),
                seen: crate::unsupported::unsupported_markers(self.app_dir),
                looked_for: self
                    .buildpacks
                    .iter()
                    .map(|b| (b.id(), b.looks_for()))
                    .collect(),
            }),
            1 => Ok(passed.pop().expect("one element")),
            _ => Err(PhaseError::Ambiguous {
                dir: self.app_dir.to_path_buf(),
                ids: passed.iter().map(|(b, _)| b.id()).collect(),
            }),
        }
    }
}

/// Returns the toolchain environment: allow-listed host variables, then the project
/// descriptor's build env, then the user's `--env` values.
pub fn build_env(
    host: &BTreeMap<String, String>,
    project: &ProjectDescriptor,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = host
        .iter()
        .filter(|(k, _)| ALLOWED_ENV.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(
        project
            .build_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Inputs of the build phase.
pub struct Build<'a> {
    /// The user's source tree.
    pub source_dir: &'a Path,
    /// The directory to copy, when the user named one (`--context`): an ancestor of
    /// `source_dir` holding what it refers to outside itself. Else the source dir, or the
    /// ancestor the buildpack asked for ([`crate::SOURCE_ROOT_FACT`]).
    pub context_dir: Option<&'a Path>,
    /// Directories never copied, even inside the context: kiln's cache dir (the work and
    /// buildpack cache dirs are never copied either).
    pub keep_out: &'a [PathBuf],
    /// This build's own directory (a [`crate::Scratch`]) for the scratch copy, the layers and
    /// the steps' home and temp dir; each is emptied first, and kept afterwards so toolchain
    /// caches keyed by path stay warm.
    pub work_dir: &'a Path,
    /// The buildpack's persistent cache directory.
    pub cache_dir: &'a Path,
    /// The project descriptor.
    pub project: &'a ProjectDescriptor,
    /// The toolchain environment (see [`build_env`]).
    pub env: &'a BTreeMap<String, String>,
    /// The default process the user asked for.
    pub default_process: Option<&'a str>,
    /// The image working directory.
    pub workspace: &'a str,
    /// Toolchain output sink.
    pub output: &'a (dyn Fn(&str) + Sync),
    /// The run image, when known before the build.
    pub run_image: Option<&'a RunImageInfo>,
    /// How the build steps are confined.
    pub sandbox: &'a SandboxSettings,
}

/// What the build phase produced.
pub struct BuildResult {
    /// The buildpack's output (layers live under the work dir).
    pub output: BuildOutput,
    /// What the scratch copy held.
    pub copied: CopyStats,
    /// How the build steps were confined.
    pub confinement: Confinement,
    /// This build's work dir (its scratch copy, layers and caches of file hashes).
    pub work_dir: PathBuf,
}

impl Build<'_> {
    /// Copies the source (ignored files left out) and runs `buildpack`'s build in the copy,
    /// its steps in the sandbox with the build's own `HOME` and `TMPDIR`.
    pub fn run(&self, buildpack: &dyn Buildpack, plan: &Plan) -> Result<BuildResult, PhaseError> {
        let app_dir = self.work_dir.join("app");
        let layers_dir = self.work_dir.join("layers");
        let home = self.work_dir.join("home");
        let tmp = self.work_dir.join("tmp");
        for dir in [&layers_dir, &home, &tmp] {
            reset_dir(dir)?;
        }
        std::fs::create_dir_all(self.cache_dir).map_err(|source| PhaseError::Scratch {
            path: self.cache_dir.to_path_buf(),
            source,
        })?;
        let mut project = self.project.clone();
        project
            .exclude
            .extend(buildpack.scratch_excludes().iter().map(|p| (*p).to_owned()));
        let copy = source_root(self.source_dir, plan, self.context_dir)?;
        let mut keep_out = self.keep_out.to_vec();
        keep_out.extend([self.work_dir.to_path_buf(), self.cache_dir.to_path_buf()]);
        let staging = std::time::Instant::now();
        let mut copied = self.stage(buildpack, &copy, &project, &keep_out)?;
        copied.took = staging.elapsed();
        let app_dir = app_dir.join(&copy.member);
        let support = match self.sandbox.mode {
            SandboxMode::Off => SandboxSupport::Unavailable {
                reason: crate::sandbox::SANDBOX_OFF.to_owned(),
            },
            _ => crate::probe(),
        };
        let sandbox = Sandbox::for_build(self.sandbox, &support, &[self.work_dir, self.cache_dir])?;
        let mut env = self.env.clone();
        env.insert("HOME".to_owned(), home.display().to_string());
        env.insert("TMPDIR".to_owned(), tmp.display().to_string());
        let no_settings = toml::Table::new();
        let language = buildpack.id().rsplit('/').next().unwrap_or_default();
        let ctx = BuildContext {
            settings: self
                .project
                .buildpack_settings
                .get(language)
                .unwrap_or(&no_settings),
            app_dir: &app_dir,
            layers_dir: &layers_dir,
            cache_dir: self.cache_dir,
            env: &env,
            sandbox: &sandbox,
            default_process: self.default_process,
            workspace: self.workspace,
            output: self.output,
            run_image: self.run_image,
            source_stamp: copied.stamp.as_deref(),
        };
        let output = buildpack.build(&ctx, plan)?;
        Ok(BuildResult {
            output,
            copied,
            confinement: sandbox.confinement().clone(),
            work_dir: self.work_dir.to_path_buf(),
        })
    }

    /// Brings the scratch copy (`app` in the work dir) up to date with the source in
    /// O(changed) ([`sync_source`]), and empties the buildpack's kept directories when
    /// their toolchain might not notice what changed (see [`Buildpack::scratch_keeps`]).
    fn stage(
        &self,
        buildpack: &dyn Buildpack,
        copy: &SourceRoot,
        project: &ProjectDescriptor,
        keep_out: &[PathBuf],
    ) -> Result<CopyStats, PhaseError> {
        let app_dir = self.work_dir.join("app");
        let keeps: Vec<PathBuf> = buildpack
            .scratch_keeps()
            .iter()
            .map(|k| copy.member.join(k))
            .collect();
        let index = self.work_dir.join("source.index");
        // A kept directory in the user's tree is theirs, never the build's.
        let mut keep_out = keep_out.to_vec();
        keep_out.extend(keeps.iter().map(|k| copy.root.join(k)));
        let copied = sync_source(
            &copy.root,
            &app_dir,
            project,
            &keep_out,
            &keeps,
            Some(&index),
        )?;
        if keeps.is_empty() {
            return Ok(copied);
        }
        // Everything that decides the build but is not a file of the copy.
        let settings = Digest::of(
            format!(
                "kiln {}\0{}\0{}\0{:?}\0{:?}\0{:?}",
                env!("CARGO_PKG_VERSION"),
                buildpack.id(),
                copy.root.display(),
                self.env,
                self.project,
                self.run_image.map(|r| (&r.name, &r.architecture)),
            )
            .as_bytes(),
        );
        let stamp = self.work_dir.join("keeps.settings");
        let inputs = buildpack.incremental_inputs();
        let stale = copied.vanished > 0
            || std::fs::read_to_string(&stamp).ok().as_deref() != Some(settings.hex())
            || copied.copied.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| inputs.iter().any(|i| n == *i))
            });
        if stale {
            for k in &keeps {
                let dir = app_dir.join(k);
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(PhaseError::Scratch {
                            path: dir,
                            source: e,
                        });
                    }
                    _ => {}
                }
            }
            kiln_layer::write_atomic(&stamp, settings.hex().as_bytes()).map_err(|source| {
                PhaseError::Scratch {
                    path: stamp.clone(),
                    source,
                }
            })?;
        }
        Ok(copied)
    }
}

fn reset_dir(dir: &Path) -> Result<(), PhaseError> {
    let err = |source| PhaseError::Scratch {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(dir).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn build_env_allow_lists_host_and_layers_project_then_user() {
        let host = map(&[
            ("PATH", "/usr/bin"),
            ("GOPROXY", "https://proxy.example"),
            ("GOFLAGS", "-mod=mod"),
            ("HOME", "/home/u"),
            ("REGISTRY_PASSWORD", "KILN_CANARY_1"),
            ("DOCKER_CONFIG", "/home/u/.docker"),
            ("AWS_SECRET_ACCESS_KEY", "KILN_CANARY_2"),
            ("KILN_REGISTRY_TOKEN", "KILN_CANARY_3"),
            ("CGO_ENABLED", "1"),
        ]);
        let project = ProjectDescriptor {
            build_env: map(&[("GOFLAGS", "-tags=prod"), ("CGO_ENABLED", "0"), ("A", "p")]),
            ..Default::default()
        };
        let user = map(&[("A", "u"), ("B", "u")]);
        let env = build_env(&host, &project, &user);
        assert_eq!(
            env,
            map(&[
                ("A", "u"),
                ("B", "u"),
                ("CGO_ENABLED", "0"),
                ("GOFLAGS", "-tags=prod"),
                ("GOPROXY", "https://proxy.example"),
                ("PATH", "/usr/bin"),
            ])
        );
        assert!(!env.values().any(|v| v.contains("KILN_CANARY")), "{env:?}");
        for secret in [
            "REGISTRY_PASSWORD",
            "DOCKER_CONFIG",
            "AWS_SECRET_ACCESS_KEY",
            "HOME",
            "TMPDIR",
        ] {
            assert!(!ALLOWED_ENV.contains(&secret));
        }
        // Without a project or user value, the host's allow-listed value passes through.
        let env = build_env(&host, &ProjectDescriptor::default(), &BTreeMap::new());
        assert_eq!(env["GOFLAGS"], "-mod=mod");
        assert!(!env.contains_key("CGO_ENABLED"));
    }

    /// A buildpack that passes when `marker` exists in the app dir.
    struct Fake {
        id: &'static str,
        marker: &'static str,
    }

    impl Buildpack for Fake {
        fn id(&self) -> &'static str {
            self.id
        }
        fn looks_for(&self) -> &'static str {
            self.marker
        }
        fn detect(&self, app_dir: &Path) -> Result<Option<Plan>, BuildpackError> {
            Ok(app_dir.join(self.marker).exists().then(|| Plan {
                facts: [("by".to_string(), self.id.to_string())].into(),
            }))
        }
        fn build(&self, _: &BuildContext<'_>, _: &Plan) -> Result<BuildOutput, BuildpackError> {
            unreachable!("detect tests never build")
        }
    }

    fn fakes() -> Vec<Box<dyn Buildpack>> {
        vec![
            Box::new(Fake {
                id: "kiln/go",
                marker: "go.mod",
            }),
            Box::new(Fake {
                id: "kiln/node",
                marker: "package.json",
            }),
        ]
    }

    #[test]
    fn detect_reports_nothing_ambiguity_and_honours_choice() {
        let bps = fakes();
        let dir = tempfile::tempdir().unwrap();
        match (Detect {
            buildpacks: &bps,
            app_dir: dir.path(),
            choose: None,
        })
        .run()
        {
            Err(PhaseError::NothingDetected {
                dir: d, looked_for, ..
            }) => {
                assert_eq!(d, dir.path());
                assert_eq!(
                    looked_for,
                    vec![("kiln/go", "go.mod"), ("kiln/node", "package.json")]
                );
            }
            other => panic!(
                "expected NothingDetected, got {:?}",
                other.map(|(b, _)| b.id())
            ),
        }

        std::fs::write(dir.path().join("go.mod"), "module x\n").unwrap();
        let (bp, plan) = Detect {
            buildpacks: &bps,
            app_dir: dir.path(),
            choose: None,
        }
        .run()
        .unwrap();
        assert_eq!(bp.id(), "kiln/go");
        assert_eq!(plan.facts["by"], "kiln/go");

        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        match (Detect {
            buildpacks: &bps,
            app_dir: dir.path(),
            choose: None,
        })
        .run()
        {
            Err(e @ PhaseError::Ambiguous { .. }) => {
                let PhaseError::Ambiguous { ids, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(ids, &["kiln/go", "kiln/node"]);
                assert!(e.to_string().contains("kiln/go, kiln/node"), "{e}");
            }
            other => panic!("expected Ambiguous, got {:?}", other.map(|(b, _)| b.id())),
        }
        let (bp, plan) = Detect {
            buildpacks: &bps,
            app_dir: dir.path(),
            choose: Some("kiln/node"),
        }
        .run()
        .unwrap();
        assert_eq!(bp.id(), "kiln/node");
        assert_eq!(plan.facts["by"], "kiln/node");

        // Choosing a buildpack that does not pass is "nothing detected", listing them all.
        std::fs::remove_file(dir.path().join("package.json")).unwrap();
        assert!(matches!(
            Detect { buildpacks: &bps, app_dir: dir.path(), choose: Some("kiln/node") }.run(),
            Err(PhaseError::NothingDetected { looked_for, .. }) if looked_for.len() == 2
        ));
    }
}
