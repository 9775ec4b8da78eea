//! Base definitions: `golden-base/<name>.toml`, what a golden base is made of. A definition
//! names a Debian suite, the packages wanted, extra exclusions, users and groups, files and
//! directories, environment and labels, and the keyrings that verify the archive; it may
//! `include` another definition of the same directory (`base` includes `static`).
//!
//! Merging an include: the included definition comes first. Lists (`packages`, `exclude`,
//! `keyrings`... ) are concatenated without duplicates; users, groups, files and directories
//! with the same name or path are replaced by the including definition's; `env` and
//! `labels` are merged key by key, the including definition winning. `suite`, `components`
//! and `architectures` are inherited unless set, and a different `suite` is an error (an
//! include must describe the same archive); `extra-suites` are concatenated like lists.
//!
//! Keyring paths are relative to the definition's directory (`keyrings/…gpg` next to
//! `golden-base/*.toml`); [`Definition::keyrings`] holds them joined to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::deb::{DEFAULT_MAX_EXPANSION_PERCENT, MERGED_USR_ALIASES, PackageRules};

/// A base definition with its includes merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The name: the file stem (`static` for `golden-base/static.toml`).
    pub name: String,
    /// A one-line description, if given.
    pub description: Option<String>,
    /// The included definitions, the deepest first (`["static"]` for `base`).
    pub includes: Vec<String>,
    /// The Debian suite or codename (`trixie`).
    pub suite: String,
    /// Suites layered over `suite`, named `<suite>-<kind>` (`trixie-security`,
    /// `trixie-updates`): a package's newest version across all of them is locked.
    pub extra_suites: Vec<String>,
    /// The archive components (`main`).
    pub components: Vec<String>,
    /// The Debian architectures (`amd64`, `arm64`).
    pub architectures: Vec<String>,
    /// The keyring files that verify `InRelease`, joined to the definition's directory.
    pub keyrings: Vec<PathBuf>,
    /// Per suite, the keyring files (a subset of `keyrings`) that alone may sign its
    /// `InRelease`, so the security archive's key cannot sign the release and the other
    /// way round; a suite not listed is verified with all of `keyrings`.
    pub suite_keyrings: BTreeMap<String, Vec<PathBuf>>,
    /// The packages wanted; always locked, whatever the exclusion rule says.
    pub packages: Vec<String>,
    /// Packages never pulled in by a dependency (on top of the built-in install-time set).
    pub exclude: Vec<String>,
    /// `/etc/group` entries.
    pub groups: Vec<Group>,
    /// `/etc/passwd` entries.
    pub users: Vec<User>,
    /// Extra regular files.
    pub files: Vec<FileSpec>,
    /// Extra directories.
    pub directories: Vec<DirSpec>,
    /// Extra symbolic links (what `update-alternatives` would make).
    pub links: Vec<LinkSpec>,
    /// The Java trust store to generate from the CA certificates, if any.
    pub java_keystore: Option<KeystoreSpec>,
    /// The image config's `User`, if set (`65532`).
    pub user: Option<String>,
    /// The image config's environment.
    pub env: BTreeMap<String, String>,
    /// The image config's labels.
    pub labels: BTreeMap<String, String>,
    /// How far a package's `data.tar` may expand, in percent of its `Installed-Size`
    /// (default [`DEFAULT_MAX_EXPANSION_PERCENT`]).
    pub max_expansion_percent: u64,
    /// Absolute paths of package files that keep their setuid and setgid bits; every other
    /// file loses them.
    pub setuid: Vec<String>,
    /// The `Release` fields (`Origin`, `Label`, `Suite`, `Codename`) that may differ from
    /// those the previous lock recorded; any other change refuses a relock.
    pub allow_release_info_change: Vec<String>,
}

/// The `Release` fields that identify an archive: a relock refuses a change of any of them
/// that [`Definition::allow_release_info_change`] does not list.
pub const RELEASE_INFO_FIELDS: [&str; 4] = ["Origin", "Label", "Suite", "Codename"];

/// What [`Definition::for_arch`] replaces with the Debian architecture.
pub const ARCH_PLACEHOLDER: &str = "{arch}";

/// A group of `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The group name.
    pub name: String,
    /// The numeric group ID.
    pub gid: u32,
    /// Supplementary members.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A user of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The numeric user ID.
    pub uid: u32,
    /// The primary group ID; a group with this ID must be defined.
    pub gid: u32,
    /// The home directory (not created by itself: list it in `directories`).
    pub home: String,
    /// The login shell.
    #[serde(default = "default_shell")]
    pub shell: String,
    /// The GECOS field.
    #[serde(default)]
    pub gecos: String,
}

/// A regular file the base adds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The absolute path in the image.
    pub path: String,
    /// The permission bits (`0o644`).
    #[serde(default = "default_file_mode")]
    pub mode: u32,
    /// The owner's user ID.
    #[serde(default)]
    pub uid: u32,
    /// The owner's group ID.
    #[serde(default)]
    pub gid: u32,
    /// The content (empty when absent).
    #[serde(default)]
    pub content: String,
}

/// A directory the base adds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    /// The absolute path in the image.
    pub path: String,
    /// The permission bits (`0o1777` for `/tmp`).
    #[serde(default = "default_dir_mode")]
    pub mode: u32,
    /// The owner's user ID.
    #[serde(default)]
    pub uid: u32,
    /// The owner's group ID.
    #[serde(default)]
    pub gid: u32,
}

/// A symbolic link the base adds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The absolute path of the link in the image.
    pub path: String,
    /// What it points to, stored verbatim.
    pub target: String,
}

/// A Java KeyStore (JKS) of the CA certificates the base trusts, as `ca-certificates-java`
/// would build it: every certificate of the CA bundle, aliased `debian:<file>`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreSpec {
    /// The absolute path in the image (`/etc/ssl/certs/java/cacerts`).
    pub path: String,
    /// The store password (`changeit`, the JDK's and Debian's).
    #[serde(default = "default_store_password")]
    pub password: String,
}

fn default_store_password() -> String {
    "changeit".to_owned()
}
fn default_shell() -> String {
    "/usr/sbin/nologin".to_owned()
}
fn default_file_mode() -> u32 {
    0o644
}
fn default_dir_mode() -> u32 {
    0o755
}

/// The file as written: everything optional, nothing merged yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDefinition {
    description: Option<String>,
    include: Option<String>,
    suite: Option<String>,
    #[serde(default)]
    extra_suites: Vec<String>,
    components: Option<Vec<String>>,
    architectures: Option<Vec<String>>,
    #[serde(default)]
    keyrings: Vec<String>,
    #[serde(default)]
    suite_keyrings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    files: Vec<FileSpec>,
    #[serde(default)]
    directories: Vec<DirSpec>,
    #[serde(default)]
    links: Vec<LinkSpec>,
    java_keystore: Option<KeystoreSpec>,
    user: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    max_expansion_percent: Option<u64>,
    #[serde(default)]
    setuid: Vec<String>,
    #[serde(default)]
    allow_release_info_change: Vec<String>,
}

/// Why a definition was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The file could not be read.
    #[error("reading base definition `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown or mistyped field.
    #[error("parsing base definition `{path}`")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The TOML error (it names the line and the field).
        source: toml::de::Error,
    },
    /// A value breaks a rule of the format.
    #[error("base definition `{path}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The includes form a cycle.
    #[error("base definition `{path}`: `include` forms a cycle through {chain}")]
    IncludeCycle {
        /// The file.
        path: PathBuf,
        /// The names in the cycle, formatted.
        chain: String,
    },
}

impl Definition {
    /// Loads `path` (`golden-base/<name>.toml`) and its includes from the same directory.
    pub fn load(path: &Path) -> Result<Definition, DefinitionError> {
        let mut seen = Vec::new();
        Self::load_inner(path, &mut seen)
    }

    fn load_inner(path: &Path, seen: &mut Vec<String>) -> Result<Definition, DefinitionError> {
        let invalid = |reason: String| DefinitionError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|_| path.extension().is_some_and(|e| e == "toml"))
            .ok_or_else(|| invalid("the file name must be `<name>.toml`".into()))?
            .to_owned();
        if seen.contains(&name) {
            seen.push(name);
            return Err(DefinitionError::IncludeCycle {
                path: path.to_owned(),
                chain: seen
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" → "),
            });
        }
        seen.push(name.clone());
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: RawDefinition = toml::from_str(&text).map_err(|source| DefinitionError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let base = match &raw.include {
            Some(inc) => {
                if inc.contains(['/', '\\']) || inc.is_empty() {
                    return Err(invalid(format!(
                        "`include = \"{inc}\"` must name a definition of the same directory, without `.toml`"
                    )));
                }
                Some(Self::load_inner(&dir.join(format!("{inc}.toml")), seen)?)
            }
            None => None,
        };
        let def = merge(name, dir, base, raw).map_err(invalid)?;
        def.validate().map_err(invalid)?;
        Ok(def)
    }

    /// Parses a definition without includes from `text`; `name` is its name and `dir` the
    /// directory its keyring paths are relative to. For tests and tools; files use [`load`].
    ///
    /// [`load`]: Definition::load
    pub fn parse(name: &str, dir: &Path, text: &str) -> Result<Definition, DefinitionError> {
        let path = dir.join(format!("{name}.toml"));
        let raw: RawDefinition = toml::from_str(text).map_err(|source| DefinitionError::Toml {
            path: path.clone(),
            source,
        })?;
        let invalid = |reason| DefinitionError::Invalid {
            path: path.clone(),
            reason,
        };
        if raw.include.is_some() {
            return Err(invalid("`include` needs `Definition::load`".into()));
        }
        let def = merge(name.to_owned(), dir, None, raw).map_err(invalid)?;
        def.validate().map_err(invalid)?;
        Ok(def)
    }

    /// Returns the definition as it applies to the Debian architecture `arch`: `{arch}` in
    /// link paths and targets, `env` values and `labels` values replaced by `arch`
    /// (`JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-{arch}"`), since Debian puts some
    /// architecture names into paths.
    pub fn for_arch(&self, arch: &str) -> Definition {
        let sub = |s: &str| s.replace(ARCH_PLACEHOLDER, arch);
        let mut def = self.clone();
        for l in &mut def.links {
            l.path = sub(&l.path);
            l.target = sub(&l.target);
        }
        for v in def.env.values_mut().chain(def.labels.values_mut()) {
            *v = sub(v);
        }
        def
    }

    /// Returns the rules package contents follow in this base's layers.
    pub fn package_rules(&self) -> PackageRules {
        PackageRules {
            max_expansion_percent: self.max_expansion_percent,
            keep_setuid: self
                .setuid
                .iter()
                .map(|p| p.trim_start_matches('/').to_owned())
                .collect(),
        }
    }

    /// Returns the lower-case hex SHA-256 of what the definition says about resolution: suites,
    /// components, architectures, and the package and exclusion sets. Recorded in the lock, so
    /// a build notices a definition edited since (users, files or env may change freely).
    pub fn lock_inputs_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.join(" ")
        };
        let text = format!(
            "suite {}\nextra-suites {}\ncomponents {}\narchitectures {}\npackages {}\nexclude {}\n",
            self.suite,
            self.extra_suites.join(" "),
            self.components.join(" "),
            self.architectures.join(" "),
            sorted(&self.packages),
            sorted(&self.exclude),
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn validate(&self) -> Result<(), String> {
        if self.keyrings.is_empty() {
            return Err("`keyrings` is empty: name the Debian archive keyrings that sign the suite (e.g. `keyrings/debian-archive-trixie-automatic.gpg`)".into());
        }
        if self.packages.is_empty() {
            return Err("`packages` is empty".into());
        }
        for (suite, files) in &self.suite_keyrings {
            if *suite != self.suite && !self.extra_suites.contains(suite) {
                return Err(format!(
                    "`suite-keyrings` names `{suite}`, which is neither `suite` nor in `extra-suites`"
                ));
            }
            if files.is_empty() {
                return Err(format!("`suite-keyrings.{suite}` is empty"));
            }
            if let Some(f) = files.iter().find(|f| !self.keyrings.contains(f)) {
                return Err(format!(
                    "`suite-keyrings.{suite}` names `{}`, which `keyrings` does not list",
                    f.display()
                ));
            }
        }
        for extra in &self.extra_suites {
            let kind = extra
                .strip_prefix(self.suite.as_str())
                .and_then(|k| k.strip_prefix('-'));
            if !kind.is_some_and(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase())) {
                return Err(format!(
                    "extra suite `{extra}` must be `{}-<kind>`, like `{}-security` or `{}-updates`",
                    self.suite, self.suite, self.suite
                ));
            }
        }
        for p in self.packages.iter().chain(&self.exclude) {
            if !is_package_name(p) {
                return Err(format!("`{p}` is not a Debian package name"));
            }
        }
        if let Some(p) = self.packages.iter().find(|p| self.exclude.contains(p)) {
            return Err(format!("`{p}` is both in `packages` and in `exclude`"));
        }
        for arch in &self.architectures {
            if arch.is_empty() || !arch.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("`{arch}` is not a Debian architecture"));
            }
        }
        if self.architectures.is_empty() || self.components.is_empty() {
            return Err("`architectures` and `components` must not be empty".into());
        }
        for g in &self.groups {
            check_account_name(&g.name)?;
        }
        for u in &self.users {
            check_account_name(&u.name)?;
            if !self.groups.iter().any(|g| g.gid == u.gid) {
                return Err(format!(
                    "user `{}` has gid {} but no group has it; add a `[[groups]]` entry",
                    u.name, u.gid
                ));
            }
            check_path(&u.home)?;
        }
        unique(self.users.iter().map(|u| u.uid.to_string()), "uid")?;
        unique(self.groups.iter().map(|g| g.gid.to_string()), "gid")?;
        for f in &self.files {
            check_path(&f.path)?;
            if f.mode > 0o7777 {
                return Err(format!(
                    "file `{}` has mode {:o} beyond 0o7777",
                    f.path, f.mode
                ));
            }
            if f.path == "/etc/passwd" || f.path == "/etc/group" {
                return Err(format!(
                    "file `{}` is generated from `users` and `groups`; remove it",
                    f.path
                ));
            }
        }
        for l in &self.links {
            check_path(&l.path.replace(ARCH_PLACEHOLDER, "arch"))?;
            if l.target.is_empty() || l.target.contains(['\0', '\n']) {
                return Err(format!(
                    "link `{}` needs a target without NUL or newline",
                    l.path
                ));
            }
        }
        if let Some(k) = &self.java_keystore {
            check_path(&k.path)?;
        }
        if !(100..=10_000).contains(&self.max_expansion_percent) {
            return Err(format!(
                "`max-expansion-percent = {}` must be between 100 and 10000",
                self.max_expansion_percent
            ));
        }
        for p in &self.setuid {
            check_path(p)?;
        }
        for f in &self.allow_release_info_change {
            if !RELEASE_INFO_FIELDS.contains(&f.as_str()) {
                return Err(format!(
                    "`allow-release-info-change` lists `{f}`; it takes {}",
                    RELEASE_INFO_FIELDS.map(|f| format!("`{f}`")).join(", ")
                ));
            }
        }
        let own_paths = self.files.iter().map(|f| f.path.as_str());
        let own_paths = own_paths
            .chain(self.directories.iter().map(|d| d.path.as_str()))
            .chain(self.links.iter().map(|l| l.path.as_str()))
            .chain(self.java_keystore.iter().map(|k| k.path.as_str()))
            .chain(self.setuid.iter().map(String::as_str));
        for p in own_paths {
            check_merged_usr(p)?;
        }
        for d in &self.directories {
            check_path(&d.path)?;
            if d.mode > 0o7777 {
                return Err(format!(
                    "directory `{}` has mode {:o} beyond 0o7777",
                    d.path, d.mode
                ));
            }
        }
        Ok(())
    }
}

fn merge(
    name: String,
    dir: &Path,
    base: Option<Definition>,
    raw: RawDefinition,
) -> Result<Definition, String> {
    let mut def = base.unwrap_or_else(|| Definition {
        name: String::new(),
        description: None,
        includes: Vec::new(),
        suite: raw.suite.clone().unwrap_or_else(|| "trixie".to_owned()),
        extra_suites: Vec::new(),
        components: vec!["main".to_owned()],
        architectures: vec!["amd64".to_owned()],
        keyrings: Vec::new(),
        suite_keyrings: BTreeMap::new(),
        packages: Vec::new(),
        exclude: Vec::new(),
        groups: Vec::new(),
        users: Vec::new(),
        files: Vec::new(),
        directories: Vec::new(),
        links: Vec::new(),
        java_keystore: None,
        user: None,
        env: BTreeMap::new(),
        labels: BTreeMap::new(),
        max_expansion_percent: DEFAULT_MAX_EXPANSION_PERCENT,
        setuid: Vec::new(),
        allow_release_info_change: Vec::new(),
    });
    if !def.name.is_empty() {
        def.includes.push(std::mem::take(&mut def.name));
    }
    if let Some(suite) = raw.suite
        && suite != def.suite
    {
        if def.includes.is_empty() {
            def.suite = suite;
        } else {
            return Err(format!(
                "`suite = \"{suite}\"` differs from the included definition's `{}`",
                def.suite
            ));
        }
    }
    def.name = name;
    def.description = raw.description.or(def.description);
    if let Some(c) = raw.components {
        def.components = c;
    }
    if let Some(a) = raw.architectures {
        def.architectures = a;
    }
    extend_unique(
        &mut def.keyrings,
        raw.keyrings.into_iter().map(|k| dir.join(k)),
    );
    for (suite, files) in raw.suite_keyrings {
        def.suite_keyrings
            .insert(suite, files.into_iter().map(|k| dir.join(k)).collect());
    }
    extend_unique(&mut def.extra_suites, raw.extra_suites);
    extend_unique(&mut def.packages, raw.packages);
    extend_unique(&mut def.exclude, raw.exclude);
    replace_by(&mut def.groups, raw.groups, |g| g.name.clone());
    replace_by(&mut def.users, raw.users, |u| u.name.clone());
    replace_by(&mut def.files, raw.files, |f| f.path.clone());
    replace_by(&mut def.directories, raw.directories, |d| d.path.clone());
    replace_by(&mut def.links, raw.links, |l| l.path.clone());
    def.java_keystore = raw.java_keystore.or(def.java_keystore);
    def.user = raw.user.or(def.user);
    def.env.extend(raw.env);
    def.labels.extend(raw.labels);
    if let Some(p) = raw.max_expansion_percent {
        def.max_expansion_percent = p;
    }
    extend_unique(&mut def.setuid, raw.setuid);
    extend_unique(
        &mut def.allow_release_info_change,
        raw.allow_release_info_change,
    );
    Ok(def)
}

fn extend_unique<T: PartialEq>(list: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

fn replace_by<T>(list: &mut Vec<T>, items: Vec<T>, key: impl Fn(&T) -> String) {
    for item in items {
        match list.iter().position(|x| key(x) == key(&item)) {
            Some(i) => list[i] = item,
            None => list.push(item),
        }
    }
}

fn unique(keys: impl Iterator<Item = String>, what: &str) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for k in keys {
        if !seen.insert(k.clone()) {
            return Err(format!("{what} {k} is used twice"));
        }
    }
    Ok(())
}

/// Returns whether `name` follows Policy §5.6.1: lower case, digits, `+-.`, two or more
/// characters, starting with an alphanumeric.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn check_account_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid user or group name"))
    }
}

/// Refuses a path under a merged-usr root link (`/bin/x`, `/lib64/y`): the image has a
/// symlink there, and a layer entry under it would replace the link.
fn check_merged_usr(path: &str) -> Result<(), String> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if MERGED_USR_ALIASES.contains(&first) {
        return Err(format!(
            "`{path}` is under `/{first}`, a symlink to `/usr/{first}` in a merged-usr image; \
             write `/usr{path}` instead"
        ));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with(".wh."))
        && !path.contains(['\0', '\n']);
    if ok || path == "/" {
        Ok(())
    } else {
        Err(format!(
            "`{path}` must be an absolute, normalized path (no `.`, `..`, `//`, trailing `/` or `.wh.` names)"
        ))
    }
}

#[cfg(test)]
#[path = "definition_tests.rs"]
mod tests;
