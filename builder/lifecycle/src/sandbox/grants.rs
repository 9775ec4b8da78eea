//! What a confined build step may touch: the system's directories and the user's toolchains
//! to read, its own scratch dir and cache to write, with every secret carved out.

use std::path::{Path, PathBuf};

use super::{Policy, SandboxSettings};

/// Directories every step may read and execute from: the system's programs, libraries and
/// configuration, and the kernel's views of the process. Not among them: `/home`, `/root`,
/// `/tmp`, `/var`, `/run`, `/mnt`, `/media`, `/srv`.
pub const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/nix/store",
    "/proc",
    "/sys",
];

/// Files under [`SYSTEM_READ`] that hold the host's secrets, never readable by a step.
pub const SYSTEM_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssl/private",
    "/etc/ssh",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/docker",
    "/etc/containers/auth.json",
    "/etc/kubernetes",
];

/// Where tools keep credentials in a home directory, never readable by a step even when a
/// toolchain installed in the home is.
pub const HOME_SECRETS: &[&str] = &[
    ".docker",
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".password-store",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/containers",
    ".config/gcloud",
    ".config/gh",
    ".config/kiln",
    ".local/share/keyrings",
    ".m2/settings-security.xml",
];

/// Device files a step may read and write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Files under `/etc` that are often links into `/run` or elsewhere (systemd-resolved's
/// `resolv.conf`, the time zone): their targets are readable too.
const LINKED_SYSTEM_FILES: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/localtime"];

/// Returns the directories the programs on `path` (a `PATH` value) need: each absolute
/// entry, its install prefix when it is a `bin`, `sbin` or `shims` directory (a Go, Node.js
/// or JDK install's root, a version manager's), and where symlinked programs in entries
/// outside [`SYSTEM_READ`] lead (`~/bin/go -> /opt/go/bin/go`). A prefix is never one of
/// `homes` or `/` itself.
pub fn toolchain_dirs(path: &str, homes: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for entry in std::env::split_paths(path).filter(|p| p.is_absolute()) {
        let Ok(dir) = entry.canonicalize() else {
            continue;
        };
        if !under_system(&dir) {
            for target in linked_programs(&dir) {
                push_with_prefix(&mut dirs, target, homes);
            }
        }
        push_with_prefix(&mut dirs, dir, homes);
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

fn push_with_prefix(dirs: &mut Vec<PathBuf>, dir: PathBuf, homes: &[PathBuf]) {
    let is_bin = dir
        .file_name()
        .is_some_and(|n| n == "bin" || n == "sbin" || n == "shims");
    if is_bin
        && let Some(prefix) = dir.parent()
        && prefix != Path::new("/")
        && !homes.iter().any(|h| h == prefix)
    {
        dirs.push(prefix.to_path_buf());
    }
    dirs.push(dir);
}

/// Returns the directories the symlinked programs in `dir` resolve into.
fn linked_programs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| e.path().canonicalize().ok())
        .filter_map(|target| target.parent().map(Path::to_path_buf))
        .filter(|parent| parent != dir)
        .collect()
}

fn under_system(path: &Path) -> bool {
    SYSTEM_READ.iter().any(|s| path.starts_with(s))
}

/// Returns the policy of a build whose steps may write `writable`.
pub(super) fn policy(settings: &SandboxSettings, writable: &[&Path]) -> Policy {
    let mut secrets: Vec<PathBuf> = SYSTEM_SECRETS.iter().map(PathBuf::from).collect();
    for home in &settings.homes {
        secrets.extend(HOME_SECRETS.iter().map(|s| home.join(s)));
    }
    secrets.extend(settings.secrets.iter().cloned());
    let secrets = with_real_paths(secrets);
    let homes = with_real_paths(settings.homes.clone());

    let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
    read.extend(
        LINKED_SYSTEM_FILES
            .iter()
            .filter_map(|f| Path::new(f).canonicalize().ok()),
    );
    read.extend(settings.read.iter().cloned());
    let read = outermost(carve(existing(read), &secrets, &homes));

    // The build's own dirs are kiln's (inside its cache, itself a secret): granted as they
    // are. Links in them are not followed (an earlier build may have planted one); what the
    // user adds is granted unless it is a secret.
    let mut write: Vec<PathBuf> = existing(writable.iter().map(|p| p.to_path_buf()).collect());
    write.extend(carve(existing(settings.write.clone()), &secrets, &homes));
    Policy {
        read,
        write: outermost(write),
        devices: existing(DEVICES.iter().map(PathBuf::from).collect()),
    }
}

/// Returns `paths` plus the real path of each that is reached through a symlink.
fn with_real_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut all = paths.clone();
    all.extend(paths.iter().filter_map(|p| p.canonicalize().ok()));
    all.sort();
    all.dedup();
    all
}

/// Returns the paths of `paths` that exist, sorted and deduplicated.
fn existing(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.retain(|p| p.exists());
    paths.sort();
    paths.dedup();
    paths
}

/// Returns `paths` without those inside another one of them.
fn outermost(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    let mut kept: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !kept.iter().any(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    kept
}

/// Returns `grants` with the secrets and homes carved out: a grant inside a secret, or equal
/// to a home, is dropped; a grant that contains one is replaced by its entries, each carved
/// the same way (so only the directories along the way to a secret are split up).
fn carve(grants: Vec<PathBuf>, secrets: &[PathBuf], homes: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for grant in grants {
        carve_one(grant, secrets, homes, &mut out);
    }
    out
}

fn carve_one(grant: PathBuf, secrets: &[PathBuf], homes: &[PathBuf], out: &mut Vec<PathBuf>) {
    if secrets.iter().any(|s| grant.starts_with(s)) || homes.iter().any(|h| h == &grant) {
        return;
    }
    let splits = secrets
        .iter()
        .chain(homes)
        .any(|s| s.starts_with(&grant) && s != &grant);
    if !splits {
        out.push(grant);
        return;
    }
    // Only a directory can contain another path; one that cannot be listed is dropped.
    let Ok(entries) = std::fs::read_dir(&grant) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    children.sort();
    for child in children {
        carve_one(child, secrets, homes, out);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn carving_splits_only_the_way_to_a_secret_and_drops_homes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        for d in [
            "a/b/secret",
            "a/b/other",
            "a/c",
            "home/u/.docker",
            "home/u/go/bin",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("a/file"), "x").unwrap();
        let secrets = [root.join("a/b/secret"), root.join("home/u/.docker")];
        let homes = [root.join("home/u")];
        let got = carve(
            vec![root.join("a"), root.join("home"), root.join("home/u/go")],
            &secrets,
            &homes,
        );
        let rel: Vec<_> = got.iter().map(|p| p.strip_prefix(&root).unwrap()).collect();
        assert_eq!(
            rel,
            [
                Path::new("a/b/other"),
                Path::new("a/c"),
                Path::new("a/file"),
                Path::new("home/u/go"),
            ]
        );
        // A grant inside a secret is dropped, a home as a whole too.
        assert!(carve(vec![root.join("home/u/.docker")], &secrets, &homes).is_empty());
        assert!(carve(vec![root.join("home/u")], &secrets, &homes).is_empty());
    }

    #[test]
    fn toolchain_dirs_take_install_prefixes_and_link_targets_but_never_a_home() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        for d in ["home/bin", "home/.nvm/v20/bin", "opt/go/bin", "home/tools"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("opt/go/bin/go"), "").unwrap();
        std::os::unix::fs::symlink(root.join("opt/go/bin/go"), root.join("home/bin/go")).unwrap();
        let path = format!(
            "relative/bin:{}:{}:{}:{}",
            root.join("home/bin").display(),
            root.join("home/.nvm/v20/bin").display(),
            root.join("home/tools").display(),
            root.join("missing/bin").display(),
        );
        let got = toolchain_dirs(&path, std::slice::from_ref(&home));
        let rel: Vec<_> = got.iter().map(|p| p.strip_prefix(&root).unwrap()).collect();
        assert_eq!(
            rel,
            [
                Path::new("home/.nvm/v20"),
                Path::new("home/.nvm/v20/bin"),
                Path::new("home/bin"),
                Path::new("home/tools"),
                Path::new("opt/go"),
                Path::new("opt/go/bin"),
            ]
        );
    }

    #[test]
    fn the_policy_keeps_secrets_out_and_grants_the_builds_own_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (home, cache, shared) = (root.join("home"), root.join("cache"), root.join("shared"));
        for d in [
            "home/.docker",
            "home/.pyenv/shims",
            "cache/work/1",
            "cache/bp",
            "cache/oci",
            "shared/go-build",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(shared.join("go-build"), cache.join("bp/go-build")).unwrap();
        std::os::unix::fs::symlink(home.join(".docker"), cache.join("bp/planted")).unwrap();
        let settings = SandboxSettings {
            read: vec![home.join(".pyenv"), home.join(".docker/cli-plugins")],
            write: vec![shared.join("go-build"), home.join(".docker")],
            homes: vec![home.clone()],
            secrets: vec![cache.clone()],
            ..Default::default()
        };
        let (scratch, bp) = (cache.join("work/1"), cache.join("bp"));
        let p = policy(&settings, &[&scratch, &bp]);
        assert!(p.read.contains(&home.join(".pyenv")));
        assert!(p.read.contains(&PathBuf::from("/usr")));
        for denied in [&home, &home.join(".docker"), &cache, &cache.join("oci")] {
            assert!(
                !p.read.iter().chain(&p.write).any(|g| denied.starts_with(g)),
                "{} is reachable: {p:?}",
                denied.display()
            );
        }
        assert_eq!(
            p.write,
            [bp.clone(), scratch.clone(), shared.join("go-build")],
            "links in the build's dirs are not followed; the user's grants are, but no secret"
        );
        assert!(p.devices.contains(&PathBuf::from("/dev/null")));
    }
}
