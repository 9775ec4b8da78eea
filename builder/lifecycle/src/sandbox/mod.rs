//! The build sandbox: every build step (the toolchains and the project's own scripts) runs
//! with a kiln-owned `HOME` and temp dir and, where the kernel offers it, under a Landlock
//! ruleset (<https://docs.kernel.org/userspace-api/landlock.html>) that lets it write only
//! its scratch copy, its buildpack's cache and that private home and temp dir, and read only
//! the system's directories and the toolchains the user's `PATH` names. The user's home,
//! registry credentials, signing keys, kiln's store and other builds' scratch copies stay out
//! of reach (RELIABILITY.md B01). Unprivileged: no root, no capabilities, no namespaces, so it
//! also works in a locked-down build pod.
//!
//! A step is confined by starting it through a launcher (kiln itself, see
//! [`SANDBOX_EXEC_ARG`]) that restricts itself and then `exec`s the step: the restriction is
//! made in a fresh single-threaded process and is inherited by everything the step starts.

mod confine;
mod grants;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use confine::{confine_and_exec, probe};
pub use grants::{HOME_SECRETS, SYSTEM_READ, SYSTEM_SECRETS, toolchain_dirs};

/// The first argument that makes kiln act as the sandbox launcher:
/// `kiln __sandbox-exec [--read P]... [--write P]... [--device P]... -- PROGRAM ARGS...`.
pub const SANDBOX_EXEC_ARG: &str = "__sandbox-exec";

/// How strictly build steps are confined (`kiln build --sandbox`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Confine with Landlock where the kernel allows it; where it does not, say so and build
    /// unconfined.
    #[default]
    Auto,
    /// Confine with Landlock, or fail the build.
    Require,
    /// Do not confine (steps still get a kiln-owned `HOME` and temp dir).
    Off,
}

/// What the CLI resolves for the sandbox. Only trusted inputs go in here (the user's
/// environment and flags), never anything the project's files say.
#[derive(Clone, Debug, Default)]
pub struct SandboxSettings {
    /// How strictly to confine.
    pub mode: SandboxMode,
    /// The program that confines a step and runs it: kiln itself (see [`SANDBOX_EXEC_ARG`]).
    /// `None` builds unconfined.
    pub launcher: Option<PathBuf>,
    /// What steps may read and execute besides [`SYSTEM_READ`]: the toolchains on the user's
    /// `PATH` ([`toolchain_dirs`]), `JAVA_HOME`, the toolchains' own config files.
    pub read: Vec<PathBuf>,
    /// What steps may write besides their scratch copy and cache (shared toolchain caches the
    /// user links into kiln's cache).
    pub write: Vec<PathBuf>,
    /// The user's home directories: never readable as a whole (toolchains installed inside
    /// them are, through [`SandboxSettings::read`]), and their [`HOME_SECRETS`] never at all.
    pub homes: Vec<PathBuf>,
    /// Never readable or writable, even inside a granted directory: registry credentials,
    /// signing keys, kiln's own cache and store, the original source tree.
    pub secrets: Vec<PathBuf>,
}

/// Whether this machine can confine build steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxSupport {
    /// Landlock works, at this ABI version.
    Landlock {
        /// The kernel's Landlock ABI version (as far as kiln knows them).
        abi: u8,
    },
    /// It does not; why, in words for the user.
    Unavailable {
        /// The reason (no Landlock in the kernel, refused by a seccomp profile, ...).
        reason: String,
    },
}

/// How a build's steps were confined, for output and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confinement {
    /// Under Landlock at this ABI version.
    Landlock {
        /// The kernel's Landlock ABI version.
        abi: u8,
    },
    /// Not confined (a kiln-owned `HOME` and temp dir only).
    None {
        /// Why: `--sandbox off`, or what the kernel said.
        reason: String,
    },
}

impl Confinement {
    /// Returns a short description: `landlock (ABI 7)` or `none (why)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Landlock { abi } => format!("landlock (ABI {abi})"),
            Self::None { reason } => format!("none ({reason})"),
        }
    }
}

/// Why steps run unconfined when the sandbox is turned off.
pub const SANDBOX_OFF: &str = "the sandbox is turned off";

/// Why build steps cannot run as asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `--sandbox require` on a machine without Landlock.
    #[error("the build sandbox is required, but this machine cannot confine build steps: {reason}")]
    Unavailable {
        /// What the kernel said.
        reason: String,
    },
}

impl SandboxError {
    /// Returns what the user can do next.
    pub fn hint(&self) -> String {
        "build on a Linux kernel with Landlock enabled (5.13 or newer, `lsm=landlock` at boot) and a seccomp profile that allows its system calls, or let build steps run unconfined there".to_owned()
    }
}

/// One build's confinement: the launcher and the rules its steps start with.
#[derive(Clone, Debug)]
pub struct Sandbox {
    launcher: Option<PathBuf>,
    args: Vec<OsString>,
    confinement: Confinement,
}

impl Sandbox {
    /// Returns the sandbox that confines nothing (for library users and tests that build
    /// without kiln's launcher).
    pub fn unconfined() -> &'static Self {
        static UNCONFINED: std::sync::LazyLock<Sandbox> = std::sync::LazyLock::new(|| Sandbox {
            launcher: None,
            args: Vec::new(),
            confinement: Confinement::None {
                reason: "no sandbox launcher".to_owned(),
            },
        });
        &UNCONFINED
    }

    /// Returns the sandbox of one build whose steps may write `writable` (its scratch dir and
    /// its buildpack's cache), on a machine with `support`.
    pub fn for_build(
        settings: &SandboxSettings,
        support: &SandboxSupport,
        writable: &[&Path],
    ) -> Result<Self, SandboxError> {
        let reason = match (settings.mode, support, &settings.launcher) {
            (SandboxMode::Off, _, _) => SANDBOX_OFF.to_owned(),
            (_, SandboxSupport::Landlock { abi }, Some(launcher)) => {
                let policy = grants::policy(settings, writable);
                return Ok(Self {
                    launcher: Some(launcher.clone()),
                    args: policy.to_args(),
                    confinement: Confinement::Landlock { abi: *abi },
                });
            }
            (_, SandboxSupport::Unavailable { reason }, _) => reason.clone(),
            (_, _, None) => "no sandbox launcher".to_owned(),
        };
        if settings.mode == SandboxMode::Require {
            return Err(SandboxError::Unavailable { reason });
        }
        Ok(Self {
            launcher: None,
            args: Vec::new(),
            confinement: Confinement::None { reason },
        })
    }

    /// Returns a command that runs `program` inside the sandbox; the caller adds the
    /// program's arguments, environment and working directory as usual.
    pub fn command(&self, program: &Path) -> Command {
        match &self.launcher {
            Some(launcher) => {
                let mut cmd = Command::new(launcher);
                cmd.arg(SANDBOX_EXEC_ARG)
                    .args(&self.args)
                    .arg("--")
                    .arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Returns how the steps are confined.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }
}

/// The rules a confined step starts with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Readable and executable (directories: everything beneath).
    pub read: Vec<PathBuf>,
    /// Readable, writable and executable.
    pub write: Vec<PathBuf>,
    /// Device files that may be read and written (`/dev/null`, ...).
    pub devices: Vec<PathBuf>,
}

impl Policy {
    /// Returns the launcher's arguments for this policy (before `--`).
    fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        for (flag, paths) in [
            ("--read", &self.read),
            ("--write", &self.write),
            ("--device", &self.devices),
        ] {
            for p in paths {
                args.push(flag.into());
                args.push(p.clone().into_os_string());
            }
        }
        args
    }

    /// Parses the launcher's arguments: the policy, and the program with its arguments
    /// (after `--`).
    fn from_args(
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<(Self, Vec<OsString>), String> {
        let mut policy = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let list = match arg.to_str() {
                Some("--") => return Ok((policy, args.collect())),
                Some("--read") => &mut policy.read,
                Some("--write") => &mut policy.write,
                Some("--device") => &mut policy.devices,
                _ => return Err(format!("unexpected argument `{}`", arg.to_string_lossy())),
            };
            let path = args
                .next()
                .ok_or_else(|| format!("`{}` needs a path", arg.to_string_lossy()))?;
            list.push(PathBuf::from(path));
        }
        Err("no `--` before the program".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_the_launcher_arguments() {
        let policy = Policy {
            read: vec!["/usr".into(), "/opt/a b".into()],
            write: vec!["/w".into()],
            devices: vec!["/dev/null".into()],
        };
        let mut args = policy.to_args();
        args.extend(["--".into(), "/bin/sh".into(), "-c".into(), "--read".into()]);
        let (back, program) = Policy::from_args(args).unwrap();
        assert_eq!(back, policy);
        assert_eq!(program, ["/bin/sh", "-c", "--read"]);
        assert!(Policy::from_args(["--read".into()]).is_err());
        assert!(Policy::from_args(["--bogus".into(), "--".into()]).is_err());
        assert!(Policy::from_args(Vec::<OsString>::new()).is_err());
    }

    #[test]
    fn off_and_unavailable_build_unconfined_unless_required() {
        let support = SandboxSupport::Unavailable {
            reason: "no landlock".into(),
        };
        let mut settings = SandboxSettings {
            launcher: Some("/usr/bin/kiln".into()),
            ..Default::default()
        };
        let sandbox = Sandbox::for_build(&settings, &support, &[]).unwrap();
        assert_eq!(
            sandbox.confinement(),
            &Confinement::None {
                reason: "no landlock".into()
            }
        );
        assert_eq!(
            sandbox.command(Path::new("/bin/go")).get_program(),
            "/bin/go"
        );

        settings.mode = SandboxMode::Require;
        let err = Sandbox::for_build(&settings, &support, &[]).unwrap_err();
        assert!(err.to_string().contains("no landlock"), "{err}");

        let landlock = SandboxSupport::Landlock { abi: 7 };
        settings.mode = SandboxMode::Off;
        let sandbox = Sandbox::for_build(&settings, &landlock, &[]).unwrap();
        assert!(matches!(sandbox.confinement(), Confinement::None { .. }));

        settings.mode = SandboxMode::Auto;
        let sandbox = Sandbox::for_build(&settings, &landlock, &[Path::new("/w")]).unwrap();
        assert_eq!(sandbox.confinement(), &Confinement::Landlock { abi: 7 });
        let cmd = sandbox.command(Path::new("/bin/go"));
        assert_eq!(cmd.get_program(), "/usr/bin/kiln");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args[0], SANDBOX_EXEC_ARG);
        assert_eq!(&args[args.len() - 2..], ["--", "/bin/go"]);
    }
}
