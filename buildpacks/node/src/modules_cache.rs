//! The installed dependency trees of earlier builds, in kiln's cache, keyed by everything
//! that decides them: lockfile, package.json files, package manager and its settings,
//! Node.js version, platform and build environment. An entry holds the production tree,
//! laid out as the `node_modules` layer, and (for apps with a build script) the full tree
//! the build script runs against. A hit skips the install: nothing is installed, pruned,
//! re-tarred or re-uploaded.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use kiln_lifecycle::FileLock;

use crate::native::Addon;

/// Entries kept (a few apps or lockfile versions); older ones are removed after a build.
const KEEP: usize = 6;
/// The file that makes an entry complete; written last.
const MANIFEST: &str = "kiln-modules.json";
/// Variables that only say where a build runs, never what it installs.
const VOLATILE_ENV: &[&str] = &["HOME", "USER", "TMPDIR", "LANG", "LC_ALL", "TZ"];
/// Project files that change what a package manager installs, besides lockfiles and
/// package.json files.
const CONFIG_FILES: &[&str] = &[
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    "pnpm-workspace.yaml",
    ".pnpmfile.cjs",
];
/// Directories of patches applied at install time (pnpm/Yarn `patch:`, patch-package).
const PATCH_DIRS: &[&str] = &["patches", ".yarn/patches"];

/// What an entry holds, written when it is complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The project directories (relative, `""` for the root) that have a `node_modules`.
    pub module_dirs: Vec<String>,
    /// Whether the full tree (devDependencies included) is kept beside the production one.
    pub has_full: bool,
    /// The project directories whose full `node_modules` the entry keeps (pruning may have
    /// emptied some of them out of `module_dirs`).
    #[serde(default)]
    pub full_dirs: Vec<String>,
    /// The native addons of the production tree.
    pub addons: Vec<Addon>,
}

/// What decides an installed tree, besides the project's files.
pub struct KeyInputs<'a> {
    /// The package manager and version (`pnpm@9.15.9`).
    pub manager: &'a str,
    /// The host's Node.js version.
    pub node: &'a str,
    /// The build environment (allow-listed variables and the user's).
    pub env: &'a BTreeMap<String, String>,
    /// The image directory the project goes to, and the app's path in the project.
    pub layout: (&'a str, &'a str),
}

/// Returns the key of the tree that installing the project at `root` with `lockfile`
/// gives: a hex SHA-256 of the inputs and of every file that decides it.
pub fn key(root: &Path, lockfile: &str, inputs: &KeyInputs<'_>) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("kiln", env!("CARGO_PKG_VERSION").as_bytes());
    field("manager", inputs.manager.as_bytes());
    field("node", inputs.node.as_bytes());
    let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
    field("platform", platform.as_bytes());
    field("workspace", inputs.layout.0.as_bytes());
    field("member", inputs.layout.1.as_bytes());
    for (k, v) in inputs.env {
        if !VOLATILE_ENV.contains(&k.as_str()) {
            field(&format!("env:{k}"), v.as_bytes());
        }
    }
    // The user's npm settings (registry, nodedir) change what is installed. A build step's
    // home is kiln's: the CLI points npm at the user's file.
    let user_config = ["npm_config_userconfig", "NPM_CONFIG_USERCONFIG"]
        .iter()
        .find_map(|k| inputs.env.get(*k));
    if let Some(file) = user_config
        && let Ok(bytes) = std::fs::read(file)
    {
        field("~/.npmrc", &bytes);
    }
    field(
        lockfile,
        &kiln_lifecycle::read_bounded(&root.join(lockfile), kiln_lifecycle::LOCKFILE_LIMIT)?,
    );
    for rel in project_files(root)? {
        // Patches (`patches/`, `.yarn/patches/`) may be as large as lockfiles.
        let name = rel.rsplit('/').next().unwrap_or_default();
        let limit = if name == "package.json" || CONFIG_FILES.contains(&name) {
            kiln_lifecycle::MANIFEST_LIMIT
        } else {
            kiln_lifecycle::LOCKFILE_LIMIT
        };
        field(
            &rel,
            &kiln_lifecycle::read_bounded(&root.join(&rel), limit)?,
        );
    }
    Ok(hex::encode(h.finalize()))
}

/// Returns the project's package.json files, install config files and patches (relative,
/// sorted), outside `node_modules`, `.git` and `.yarn/cache`.
fn project_files(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ty = entry.file_type()?;
            let in_patches = PATCH_DIRS
                .iter()
                .any(|d| path.starts_with(&format!("{d}/")));
            if ty.is_dir() {
                if !matches!(name.as_str(), "node_modules" | ".git") && path != ".yarn/cache" {
                    stack.push(path);
                }
            } else if ty.is_file()
                && (name == "package.json" || CONFIG_FILES.contains(&name.as_str()) || in_patches)
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The entries under `<cache>/modules`, shared by builds that share the cache dir. An
/// entry's lock (`<cache>/.locks/modules/<key>.lock`, outside the entries, so a cache image
/// never carries it) is held exclusively by the one build that installs into it, and
/// shared by every build that uses a complete one, until that build ends (its layer is
/// exported after the buildpack returns); an entry is removed only under the exclusive lock,
/// so never while in use. A complete entry is never changed in place but for its full tree,
/// which builds running a build script against it take turns at (`<key>.full.lock`).
pub struct ModulesCache {
    root: PathBuf,
    locks: PathBuf,
}

/// One key's entry, held by this build (see [`ModulesCache::lock_entry`]).
pub struct Entry {
    dir: PathBuf,
    lock: FileLock,
    full_lock: PathBuf,
    /// Whether this build holds it exclusively, to install into (it was not complete).
    owned: bool,
}

/// How long a build waits between looks at an entry another build is installing.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl ModulesCache {
    /// Returns the cache under the buildpack's cache directory.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            root: cache_dir.join("modules"),
            locks: cache_dir.join(kiln_lifecycle::CACHE_LOCKS).join("modules"),
        }
    }

    /// Returns the entry of `key`: complete and shared with other builds, or, when nobody
    /// has completed it, this build's own to install into ([`Entry::is_owned`]). While
    /// another build installs into it, waits for that build to complete it (or give up).
    pub fn lock_entry(&self, key: &str) -> io::Result<Entry> {
        let dir = self.root.join(key);
        let path = self.locks.join(format!("{key}.lock"));
        let full_lock = self.locks.join(format!("{key}.full.lock"));
        loop {
            if let Some(lock) = FileLock::try_exclusive(&path)? {
                let owned = !complete(&dir);
                if !owned {
                    lock.downgrade()?;
                }
                return Ok(Entry {
                    dir,
                    lock,
                    full_lock,
                    owned,
                });
            }
            if complete(&dir) {
                // Shared holders only, or the installer is just done: a shared lock waits
                // out the latter.
                let lock = FileLock::shared(&path)?;
                if complete(&dir) {
                    return Ok(Entry {
                        dir,
                        lock,
                        full_lock,
                        owned: false,
                    });
                }
                continue;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Removes all but the [`KEEP`] most recently used complete entries, and incomplete
    /// ones, other than `keep` (the current build's) and those another build holds.
    pub fn gc(&self, keep: &Entry) {
        let Ok(read) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut used: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for dir in read.flatten().map(|e| e.path()) {
            if dir == keep.dir || !dir.is_dir() {
                continue;
            }
            match std::fs::metadata(dir.join(MANIFEST)).and_then(|m| m.modified()) {
                Ok(t) => used.push((t, dir)),
                Err(_) => self.remove_unheld(&dir),
            }
        }
        used.sort();
        used.reverse();
        // `keep` is one of the most recently used, whose count it takes.
        for (_, dir) in used.into_iter().skip(KEEP.saturating_sub(1)) {
            self.remove_unheld(&dir);
        }
    }

    /// Removes the entry at `dir` and its lock files, unless a build holds it.
    fn remove_unheld(&self, dir: &Path) {
        let Some(key) = dir.file_name().map(|k| k.to_string_lossy().into_owned()) else {
            return;
        };
        let lock = self.locks.join(format!("{key}.lock"));
        if let Ok(Some(held)) = FileLock::try_exclusive(&lock) {
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::remove_file(self.locks.join(format!("{key}.full.lock")));
            let _ = held.remove();
        }
    }
}

/// Returns whether the entry at `dir` is complete.
fn complete(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

impl Entry {
    /// Returns whether this build holds the entry to install into (else it is complete and
    /// shared, never to be changed but for its full tree).
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Holds the full tree for this build until the returned lock is dropped.
    pub fn lock_full_tree(&self) -> io::Result<FileLock> {
        FileLock::exclusive(&self.full_lock)
    }

    /// Returns the manifest when the entry is complete (and marks it used).
    pub fn manifest(&self) -> Option<Manifest> {
        let path = self.dir.join(MANIFEST);
        let manifest = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let _ = std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(manifest)
    }

    /// Returns the `node_modules` layer's directory (laid out as the image root).
    pub fn layer_dir(&self) -> PathBuf {
        self.dir.join("layer")
    }

    /// Returns where the full tree's `node_modules` directories are kept.
    pub fn full_dir(&self) -> PathBuf {
        self.dir.join("full")
    }

    /// Empties the entry for a new tree.
    pub fn begin(&self) -> io::Result<()> {
        crate::tree::remove_any(&self.dir)?;
        std::fs::create_dir_all(&self.dir)
    }

    /// Marks the entry complete.
    pub fn commit(&self, manifest: &Manifest) -> io::Result<()> {
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(manifest)?)?;
        std::fs::rename(tmp, self.dir.join(MANIFEST))
    }

    /// Lets other builds use the entry too, while this build keeps it from removal until it
    /// ends (its layer is exported after the buildpack returns).
    pub fn share_until_exit(self) -> io::Result<()> {
        if self.owned {
            self.lock.downgrade()?;
        }
        self.lock.keep_until_exit();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn key_of(dir: &Path, env: &[(&str, &str)]) -> String {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let inputs = KeyInputs {
            manager: "npm@11.0.0",
            node: "20.20.2",
            env: &env,
            layout: ("/workspace", ""),
        };
        key(dir, "package-lock.json", &inputs).unwrap()
    }

    #[test]
    fn the_key_follows_what_decides_the_tree_and_nothing_else() {
        let p = project(&[
            ("package.json", "{}"),
            ("package-lock.json", "{\"a\":1}"),
            ("server.js", "one"),
            ("packages/x/package.json", "{}"),
            ("node_modules/y/package.json", "{}"),
        ]);
        let d = p.path();
        let base = key_of(d, &[("PATH", "/usr/bin"), ("HOME", "/h1")]);
        assert_eq!(
            base,
            key_of(d, &[("PATH", "/usr/bin"), ("HOME", "/h2")]),
            "HOME's path does not count"
        );
        std::fs::write(d.join("server.js"), "two").unwrap();
        std::fs::write(d.join("node_modules/y/package.json"), "{\"v\":2}").unwrap();
        assert_eq!(
            base,
            key_of(d, &[("PATH", "/usr/bin"), ("HOME", "/h1")]),
            "app code does not count"
        );
        assert_ne!(base, key_of(d, &[("PATH", "/opt/bin"), ("HOME", "/h1")]));
        for (file, text) in [
            ("package-lock.json", "{\"a\":2}"),
            ("packages/x/package.json", "{\"v\":1}"),
            (".npmrc", "legacy-peer-deps=true"),
            ("patches/y+1.0.0.patch", "diff"),
        ] {
            let before = key_of(d, &[("PATH", "/usr/bin")]);
            std::fs::write(d.join(file), text).unwrap_or_else(|_| {
                std::fs::create_dir_all(d.join(file).parent().unwrap()).unwrap();
                std::fs::write(d.join(file), text).unwrap();
            });
            assert_ne!(before, key_of(d, &[("PATH", "/usr/bin")]), "{file}");
        }
    }

    #[test]
    fn entries_complete_on_commit_and_old_ones_go_unless_a_build_holds_them() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ModulesCache::new(tmp.path());
        let mut busy = None;
        for i in 0..KEEP + 2 {
            let e = cache.lock_entry(&format!("k{i}")).unwrap();
            e.begin().unwrap();
            assert_eq!(e.manifest(), None);
            let m = Manifest {
                module_dirs: vec![String::new()],
                has_full: i % 2 == 0,
                full_dirs: vec![String::new()],
                addons: Vec::new(),
            };
            e.commit(&m).unwrap();
            assert_eq!(e.manifest(), Some(m));
            std::thread::sleep(std::time::Duration::from_millis(20));
            if i == 0 {
                // The oldest, but another build still exports its layer.
                e.lock.downgrade().unwrap();
                busy = Some(e);
            }
        }
        let reused = cache.lock_entry("k1").unwrap();
        assert!(!reused.is_owned(), "a complete entry is shared");
        drop(reused);
        let half = cache.lock_entry("half").unwrap();
        assert!(half.is_owned());
        half.begin().unwrap();
        drop(half);
        let current = cache.lock_entry("current").unwrap();
        current.begin().unwrap();
        cache.gc(&current);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path().join("modules"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = vec!["current".into(), "k0".into()];
        expected.extend((3..KEEP + 2).map(|i| format!("k{i}")));
        assert_eq!(left, expected);
        assert!(!tmp.path().join(".locks/modules/half.lock").exists());
        assert!(tmp.path().join(".locks/modules/current.lock").exists());
        drop(busy);
    }

    #[test]
    fn a_second_build_of_one_key_waits_for_the_first_to_complete_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ModulesCache::new(tmp.path());
        let first = cache.lock_entry("k").unwrap();
        assert!(first.is_owned());
        first.begin().unwrap();
        let waiter = {
            let root = tmp.path().to_path_buf();
            std::thread::spawn(move || {
                let e = ModulesCache::new(&root).lock_entry("k").unwrap();
                (e.is_owned(), e.manifest())
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        let m = Manifest::default();
        first.commit(&m).unwrap();
        // The first build still holds the entry (until it exits): the second uses it too.
        first.share_until_exit().unwrap();
        assert_eq!(waiter.join().unwrap(), (false, Some(m)));
    }

    #[test]
    fn an_entry_given_up_half_done_goes_to_the_next_build() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ModulesCache::new(tmp.path());
        let first = cache.lock_entry("k").unwrap();
        first.begin().unwrap();
        drop(first);
        assert!(cache.lock_entry("k").unwrap().is_owned());
    }
}
