//! The library's errors as the CLI reports them: each phase's failure gets its exit code,
//! and a hint in the terms of the command line (flags, commands), which the library never
//! uses.

use kiln_buildpack_go::OUTSIDE_COPY_HINT;
use kiln_buildpack_java::gradle_hint;
use kiln_image::ImageError;
use kiln_lifecycle::{
    BuildpackError, ContextError, PhaseError, RebaseError, SandboxError, SourceError,
};
use kiln_pipeline::{
    BaseError, CURATED_PREFIX, CreateError, CuratedError, DeliverError, PreflightError,
    RebaseAppError, RunImageError, SessionError, StreamError,
};
use kiln_registry::{RegistryError, TransportKind};

use crate::failure::{Failure, exit};

/// How to write a base registry.
pub const BASE_REGISTRY_HINT: &str =
    "write it as `host[:port]/path`: the registry your platform team publishes kiln's bases to";

/// Returns how to get the stack's curated base `run_image`, or use another.
pub fn curated_base_hint(run_image: &str) -> String {
    let name = run_image.strip_prefix(CURATED_PREFIX).unwrap_or(run_image);
    format!(
        "build the curated one once: kiln base build {name}\n  \
         or pull it from your platform team's base registry: --base-registry HOST/PATH (or KILN_BASE_REGISTRY)\n  \
         or name one: --run-image REF, or [io.kiln] run-image = \"REF\" in project.toml"
    )
}

/// Returns the next step after a registry failure, in the command line's terms: the
/// `kiln login`, `--registry-ca`, `--insecure-registry` and `--allow-http-credentials`
/// the library's own hints leave unnamed.
pub fn registry_hint(e: &RegistryError) -> Option<String> {
    Some(match e {
        RegistryError::Status(s) if s.status == 401 && !s.action.starts_with("logging in") => {
            format!(
                "log in with `kiln login {}` (kiln also reads docker and podman credentials)",
                s.registry
            )
        }
        RegistryError::Status(s) if s.status == 403 || s.code.as_deref() == Some("DENIED") => {
            format!(
                "your credentials for `{0}` may not do this: check the repository name, or `kiln login {0}` as another user",
                s.registry
            )
        }
        RegistryError::Status(s) if s.status == 429 => format!(
            "{}; `kiln login {}` gets a higher limit",
            e.hint()?,
            s.registry
        ),
        RegistryError::Transport {
            registry,
            kind: TransportKind::Tls,
            ..
        } => format!(
            "if `{registry}` uses a private CA, pass `--registry-ca FILE` or put it in `/etc/containers/certs.d/{registry}/ca.crt`"
        ),
        RegistryError::InsecureHttp { host, .. } => {
            format!("to allow plain http, pass `--insecure-registry {host}`")
        }
        RegistryError::CredentialsOverHttp { registry, .. } => format!(
            "serve `{registry}` over https: kiln sends credentials over plain http only to registries on this machine, or with `--allow-http-credentials`, where anyone on the network can read them"
        ),
        RegistryError::InsufficientScope { registry, .. } => format!(
            "your credentials for `{registry}` may not do this: `kiln login {registry}` as a user who may, or check the repository name"
        ),
        _ => return e.hint(),
    })
}

/// Returns the next step after an image could not be read or written.
pub fn image_hint(e: &ImageError) -> Option<String> {
    match e {
        ImageError::Registry(e) => registry_hint(e),
        ImageError::CorruptBlob(_) => Some(
            "run the command again: kiln rebuilds what it built itself; an image it only has locally (a base in its store) is rebuilt with `kiln base build` or copied in again"
                .to_owned(),
        ),
        _ => e.hint(),
    }
}

/// Returns the next step when the build sandbox is required and unavailable.
pub fn sandbox_hint(e: &SandboxError) -> String {
    format!("{} (`--sandbox auto`)", e.hint())
}

/// A session that did not open; a store that did not open fails with `store_code`.
pub fn session_failure(e: SessionError, store_code: u8) -> Failure {
    match e {
        SessionError::Client(e) => {
            let hint = registry_hint(&e);
            Failure::new(exit::FAILURE, e).hint(hint)
        }
        SessionError::Store(_) => {
            Failure::new(store_code, e).hint(Some("check that `--cache-dir` is writable".into()))
        }
        SessionError::Runtime(_) | SessionError::Mirror(_) => Failure::new(exit::FAILURE, e),
    }
}

/// A failed `kiln build` of the app in `source_dir`.
pub fn build_failure(e: CreateError, source_dir: &std::path::Path) -> Failure {
    match e {
        CreateError::UnknownBuildpack { ref known, .. } => {
            let hint = format!("kiln's buildpacks: {}", known.join(", "));
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        CreateError::Detect(e) => {
            let failure = phase_failure(e);
            match gradle_hint(source_dir) {
                Some(why) if failure.code == exit::NOTHING_DETECTED => failure.hint(Some(why)),
                _ => failure,
            }
        }
        CreateError::Build(e) => phase_failure(e),
        CreateError::RunImage(e) => run_image_failure(*e),
        CreateError::Preflight(e) => preflight_failure(*e),
        CreateError::Scratch { .. } => Failure::new(exit::KILN_BUILD, e)
            .hint(Some("check that `--cache-dir` is writable".into())),
        CreateError::Deliver(e) => deliver_failure(*e, exit::EXPORT),
        CreateError::Export(_) | CreateError::Assemble(_) | CreateError::Attest(_) => {
            Failure::new(exit::EXPORT, e)
        }
    }
}

fn run_image_failure(e: RunImageError) -> Failure {
    match e {
        RunImageError::NotInStore { ref name } => {
            let hint = curated_base_hint(name);
            Failure::new(exit::EXPORT, e).hint(Some(hint))
        }
        RunImageError::Reference { .. } => Failure::new(exit::USAGE, e),
        RunImageError::Read(ref read) => {
            let hint = match &read.source {
                ImageError::NotInLayout { .. } => Some(
                    "name an image the layout holds, or another run image: --run-image REF"
                        .to_owned(),
                ),
                source => image_hint(source),
            };
            Failure::new(exit::EXPORT, e).hint(hint)
        }
        RunImageError::BaseRegistrySetting(_) => {
            Failure::new(exit::USAGE, e).hint(Some(BASE_REGISTRY_HINT.into()))
        }
        RunImageError::BaseRegistry {
            base,
            ref registry,
            ref source,
        } => {
            let publish = format!(
                "publish it there once: kiln base build {base} --publish --base-registry {registry}\n  \
                 or build without a base registry (kiln then builds `{base}` from the lock it carries)"
            );
            let hint = match &source.source {
                ImageError::Registry(r) if r.status() == Some(404) => Some(publish),
                other => image_hint(other).or(Some(publish)),
            };
            Failure::new(exit::EXPORT, e).hint(hint)
        }
        RunImageError::OtherPlatform { ref wanted, .. } => {
            let hint = format!(
                "use a run image published for every platform of the build: `kiln base build BASE --platform {wanted},… --publish --base-registry REGISTRY`, then build with `--base-registry REGISTRY` (or name one with `--run-image`); or leave `{wanted}` out of `--platform`"
            );
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        RunImageError::Curated(curated) => curated_failure(*curated),
        RunImageError::Generate(_) | RunImageError::Assemble(_) => Failure::new(exit::EXPORT, e),
    }
}

/// A push check that failed before the build; the registry's error in its chain sets the
/// exit code (75 for a registry that does not answer, 77 for credentials and rights).
fn preflight_failure(e: PreflightError) -> Failure {
    let hint = match &e {
        PreflightError::Unreachable { source, .. } | PreflightError::Other { source, .. } => {
            registry_hint(source)
        }
        PreflightError::NoCredentials { registry, .. } => Some(format!(
            "log in with `kiln login {registry}` (kiln also reads docker and podman credentials)"
        )),
        PreflightError::Rejected { registry, .. } => Some(format!(
            "the credentials kiln has for `{registry}` are wrong or expired: `kiln login {registry}` again"
        )),
        PreflightError::Denied {
            registry,
            repository,
            ..
        } => Some(format!(
            "ask for the right to push to `{repository}`, `kiln login {registry}` as a user who has it, or publish elsewhere"
        )),
    };
    Failure::new(exit::EXPORT, e).hint(hint)
}

/// A curated base that could not be built from kiln's embedded lock.
fn curated_failure(e: CuratedError) -> Failure {
    match e {
        CuratedError::Stale { ref name, .. } => {
            let hint = format!(
                "update kiln: a newer kiln carries a newer lock;\n  \
                 or pull the bases from your platform team's base registry: --base-registry HOST/PATH (or KILN_BASE_REGISTRY);\n  \
                 or build the base from a fresh lock yourself: `kiln base lock` and `kiln base build` with golden-base/{name}.toml from kiln's repository"
            );
            Failure::new(exit::KILN_BUILD, e).hint(Some(hint))
        }
        CuratedError::Build {
            source: BaseError::NoMirror(_),
            ..
        } => Failure::new(exit::USAGE, e).hint(Some(no_mirror_hint())),
        CuratedError::Save(e) => deliver_failure(*e, exit::KILN_BUILD),
        _ => Failure::new(exit::KILN_BUILD, e),
    }
}

/// A failed push, save or attachment; `code` is the command's export code.
pub fn deliver_failure(e: DeliverError, code: u8) -> Failure {
    match e {
        DeliverError::Push { ref source, .. } | DeliverError::Write { ref source, .. } => {
            let hint = image_hint(source);
            Failure::new(code, e).hint(hint)
        }
        DeliverError::Attach { .. } => Failure::new(code, e).hint(Some(
            "the image itself was pushed; run the build again, or `kiln sign` it".into(),
        )),
    }
}

/// Maps a detect or build failure to its exit code and hint.
pub fn phase_failure(e: PhaseError) -> Failure {
    match e {
        PhaseError::NothingDetected { ref seen, .. } if !seen.is_empty() => {
            let hint = "kiln builds Go, Java (Maven) and Node.js apps; if one of those is in a subdirectory, point `--path` at it";
            Failure::new(exit::NOTHING_DETECTED, e).hint(Some(hint.to_owned()))
        }
        PhaseError::NothingDetected { ref looked_for, .. } => {
            let list: Vec<String> = looked_for
                .iter()
                .map(|(id, what)| format!("{what} ({id})"))
                .collect();
            let hint = format!(
                "kiln looks for: {}; point `--path` at the app's root directory",
                list.join("; ")
            );
            Failure::new(exit::NOTHING_DETECTED, e).hint(Some(hint))
        }
        PhaseError::Ambiguous { ref ids, .. } => {
            let hint = format!(
                "pick one with `--buildpack {}` (or `[io.kiln] buildpack = \"{}\"` in project.toml)",
                ids[0], ids[0]
            );
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        PhaseError::Buildpack(bp) => {
            let hint = bp.hint().map(|hint| match hint {
                OUTSIDE_COPY_HINT => format!("{hint}: --context DIR"),
                other => other.to_owned(),
            });
            let code = match bp {
                BuildpackError::App { .. } => exit::APP_BUILD,
                BuildpackError::Usage { .. } => exit::USAGE,
                BuildpackError::Kiln { .. } => exit::KILN_BUILD,
            };
            Failure::new(code, bp).hint(hint)
        }
        // What to copy is the project's to say: a bad pattern or an unreadable `.dockerignore`
        // is its input error, not kiln's failure.
        PhaseError::Source(
            ref source @ (SourceError::Pattern { .. } | SourceError::Read { .. }),
        ) => {
            let hint = match source {
                SourceError::Read { path, .. } => {
                    format!("check `{}`: no real one is that large", path.display())
                }
                _ => "fix the pattern; `.dockerignore` and `project.toml` use docker's pattern syntax"
                    .to_owned(),
            };
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        PhaseError::Context(ref context) => {
            let hint = match context {
                ContextError::TooNarrow { needed, .. } => format!(
                    "name a context that holds it: --context {}",
                    needed.display()
                ),
                ContextError::OutsideContext { .. } => {
                    "name an ancestor of `--path` with `--context DIR`".to_owned()
                }
                _ => "check `--path` and `--context`".to_owned(),
            };
            Failure::new(exit::USAGE, e).hint(Some(hint))
        }
        PhaseError::Sandbox(e) => {
            let hint = sandbox_hint(&e);
            Failure::new(exit::KILN_BUILD, e).hint(Some(hint))
        }
        other => Failure::new(exit::KILN_BUILD, other),
    }
}

/// A failed rebase of one app.
pub fn rebase_failure(e: RebaseAppError) -> Failure {
    let new_run_image = || Some("name the new run image with `--run-image REF`".to_owned());
    match e {
        RebaseAppError::Reference { .. } => Failure::new(exit::USAGE, e),
        RebaseAppError::Read { ref source, .. } => {
            let hint = image_hint(source);
            Failure::new(exit::REBASE, e).hint(hint)
        }
        RebaseAppError::NoRecordedBase | RebaseAppError::UnknownBase { .. } => {
            Failure::new(exit::REBASE, e).hint(new_run_image())
        }
        RebaseAppError::RunImage(ref read) => {
            let hint = image_hint(&read.source);
            Failure::new(exit::REBASE, e).hint(hint)
        }
        RebaseAppError::Stream(StreamError::Tags { ref source, .. }) => {
            let hint = registry_hint(source);
            Failure::new(exit::REBASE, e).hint(hint)
        }
        RebaseAppError::Stream(StreamError::Empty { .. }) => Failure::new(exit::REBASE, e)
            .hint(Some("name the run image with `--run-image REF`".to_owned())),
        RebaseAppError::Refused { ref source, .. } => {
            let hint = refusal_hint(source);
            Failure::new(exit::REBASE, e).hint(Some(hint.to_owned()))
        }
        RebaseAppError::Assemble(_) => Failure::new(exit::REBASE, e),
        RebaseAppError::Deliver(e) => deliver_failure(e, exit::REBASE),
    }
}

fn refusal_hint(e: &RebaseError) -> &'static str {
    match e {
        RebaseError::BaseMismatch { .. } => {
            "if that run image is right for this app anyway, pass `--force`"
        }
        RebaseError::NoMetadata(_) => {
            "only images built by kiln or a CNB platform (pack) can be rebased; rebuild with `kiln build`"
        }
        RebaseError::BadBase { .. } => "rebuild the run image, or name another with `--run-image`",
        RebaseError::NotRebasable | RebaseError::NotPrefix(_) | RebaseError::NotBasedOn { .. } => {
            "rebuild the app on the new run image with `kiln build`"
        }
    }
}

/// A base image that could not be assembled.
pub fn base_failure(e: BaseError) -> Failure {
    match e {
        BaseError::NoMirror(_) => Failure::new(exit::USAGE, e).hint(Some(no_mirror_hint())),
        BaseError::Fetch(_) => Failure::new(exit::FAILURE, e),
        BaseError::Build(kiln_debian::base_image::BaseImageError::NoArchitecture {
            ref arch,
            ..
        }) => {
            let hint = format!(
                "add `{arch}` to the definition's architectures and lock it again with `kiln base lock`"
            );
            Failure::new(exit::EXPORT, e).hint(Some(hint))
        }
        BaseError::Build(_) | BaseError::Assemble(_) => Failure::new(exit::EXPORT, e),
    }
}

/// How to name a security mirror.
pub fn no_mirror_hint() -> String {
    "pass `--security-mirror URL`, set `KILN_DEBIAN_SECURITY_MIRROR`, or add a `-security` suite to the apt sources".into()
}

#[cfg(test)]
mod tests {
    use kiln_registry::StatusError;

    use super::*;

    fn status(status: u16, code: Option<&str>) -> RegistryError {
        RegistryError::Status(Box::new(StatusError {
            action: "pushing".into(),
            registry: "127.0.0.1:5000".into(),
            status,
            code: code.map(Into::into),
            message: None,
            url: None,
            retry_after: None,
        }))
    }

    /// The library's hints name no flag or command; the CLI's name the ones that help.
    #[test]
    fn registry_hints_name_the_command_line_remedy() {
        let hint = |e: &RegistryError| registry_hint(e).unwrap();
        assert!(hint(&status(401, None)).contains("`kiln login 127.0.0.1:5000`"));
        assert!(hint(&status(403, Some("DENIED"))).contains("`kiln login 127.0.0.1:5000`"));
        let limited = hint(&status(429, None));
        assert!(limited.contains("rate limiting") && limited.contains("kiln login"));
        let tls = RegistryError::Transport {
            action: "pushing".into(),
            registry: "r.example".into(),
            url: "https://r.example/v2/".into(),
            kind: TransportKind::Tls,
            detail: "invalid peer certificate".into(),
        };
        assert!(hint(&tls).contains("--registry-ca FILE"));
        let image = ImageError::Registry(status(401, None));
        assert!(image_hint(&image).unwrap().contains("kiln login"));
        for e in [status(401, None), status(429, None), tls] {
            let library = e.hint().unwrap();
            assert!(
                !library.contains("--") && !library.contains("kiln login"),
                "{library}"
            );
        }
        // Hints without a command-line remedy are the library's.
        let failed = status(503, None);
        assert_eq!(registry_hint(&failed), failed.hint());
    }
}
