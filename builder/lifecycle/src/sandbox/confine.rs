//! Landlock itself: finding out whether this machine can confine, and the launcher's side,
//! which restricts itself and `exec`s the step.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus,
    Scope,
};

use super::{Policy, SandboxSupport};

/// The newest Landlock ABI whose rights kiln asks for; older kernels enforce what they know.
const ABI_WANTED: ABI = ABI::V9;

/// Finds out, once per process, whether this machine can confine build steps: the
/// restriction is tried for real, on a thread of its own that ends right after (a Landlock
/// domain and `no_new_privs` belong to the thread that asked for them), so kiln itself stays
/// unconfined.
pub fn probe() -> SandboxSupport {
    static SUPPORT: OnceLock<SandboxSupport> = OnceLock::new();
    SUPPORT
        .get_or_init(|| {
            let attempt = std::thread::spawn(|| ruleset(&Policy::default())?.restrict_self());
            match attempt.join() {
                Ok(Ok(status)) => support(&status),
                Ok(Err(e)) => SandboxSupport::Unavailable {
                    reason: format!("Landlock refused: {e}"),
                },
                Err(_) => SandboxSupport::Unavailable {
                    reason: "the Landlock probe panicked".to_owned(),
                },
            }
        })
        .clone()
}

fn support(status: &RestrictionStatus) -> SandboxSupport {
    match (&status.ruleset, &status.landlock) {
        (RulesetStatus::NotEnforced, LandlockStatus::NotEnabled) => SandboxSupport::Unavailable {
            reason: "Landlock is built into this kernel but not enabled (`lsm=` boot parameter)"
                .to_owned(),
        },
        (RulesetStatus::NotEnforced, _) => SandboxSupport::Unavailable {
            reason: "this kernel has no Landlock, or a seccomp profile hides it".to_owned(),
        },
        (
            _,
            LandlockStatus::Available {
                kernel_abi,
                effective_abi,
            },
        ) => SandboxSupport::Landlock {
            abi: kernel_abi.unwrap_or(*effective_abi as i32).clamp(0, 255) as u8,
        },
        (_, _) => SandboxSupport::Landlock { abi: 0 },
    }
}

/// Returns the ruleset of `policy`: every file system right handled (so anything not
/// granted is denied), signals and abstract unix sockets scoped to the sandbox.
fn ruleset(policy: &Policy) -> Result<landlock::RulesetCreated, RulesetError> {
    let all = AccessFs::from_all(ABI_WANTED);
    let mut rules = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .scope(Scope::from_all(ABI_WANTED))?
        .create()?;
    let device = AccessFs::ReadFile | AccessFs::WriteFile;
    for (paths, access) in [
        (&policy.read, AccessFs::from_read(ABI_WANTED)),
        (&policy.write, all),
        (&policy.devices, device),
    ] {
        for path in paths {
            // A path that vanished since the policy was made is simply not granted.
            let Ok(fd) = PathFd::new(path) else { continue };
            rules = rules.add_rule(PathBeneath::new(fd, rights(path, access)))?;
        }
    }
    Ok(rules)
}

/// Returns `access` as it applies to `path`: a file takes file rights only.
fn rights(path: &std::path::Path, access: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    if path.is_dir() {
        access
    } else {
        access & AccessFs::from_file(ABI_WANTED)
    }
}

/// The sandbox launcher: reads the policy and the program from `args` (what follows
/// [`super::SANDBOX_EXEC_ARG`]), restricts this process to the policy and replaces it with
/// the program, which inherits its environment, directory and standard streams. The launcher
/// only runs when kiln decided to confine, so a restriction that cannot be made is an error,
/// never a step run unconfined. Returns only on failure, with the message; the caller prints
/// it and exits with 127, as a shell does for a program it cannot run.
pub fn confine_and_exec(args: impl IntoIterator<Item = OsString>) -> String {
    let (policy, program) = match Policy::from_args(args) {
        Ok(parsed) => parsed,
        Err(e) => return format!("kiln sandbox: {e}"),
    };
    let Some((exe, rest)) = program.split_first() else {
        return "kiln sandbox: no program to run".to_owned();
    };
    match ruleset(&policy).and_then(|r| r.restrict_self()) {
        Ok(status) if status.ruleset != RulesetStatus::NotEnforced => {}
        Ok(_) => return "kiln sandbox: Landlock is not enforced on this machine".to_owned(),
        Err(e) => return format!("kiln sandbox: applying the Landlock rules: {e}"),
    }
    let err = Command::new(exe).args(rest).exec();
    format!(
        "kiln sandbox: running `{}`: {err}",
        PathBuf::from(exe).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_leaves_this_process_unconfined() {
        let _ = probe();
        // Were the probe's restriction on this thread, nothing could be read any more.
        assert!(std::fs::read_dir("/").is_ok());
        assert!(std::fs::metadata(env!("CARGO_MANIFEST_DIR")).is_ok());
        assert!(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).is_ok());
    }
}
