//! Dependency resolution: the closure of the wanted packages over `Pre-Depends` and
//! `Depends` (never `Recommends` or `Suggests`) in one suite's `Packages` index of one
//! architecture, where each package has exactly one version.
//!
//! # The exclusion rule
//!
//! A golden base is never "installed": kiln runs no maintainer scripts, so packages that
//! only exist to run them are not wanted. A dependency group (one comma-separated item of
//! `Depends`/`Pre-Depends`) is **dropped** — not followed, not locked — when:
//!
//! 1. one of its alternatives is in the install-time set [`INSTALL_TIME`] **and** the archive
//!    itself marks that package `Essential: yes` or `Priority: required` (for a virtual name
//!    such as `awk` or `debconf-2.0`: one of its providers is so marked). The group's need is
//!    then met, on a real Debian system, by the base system's install machinery; or
//! 2. every one of its alternatives is listed in the definition's `exclude`. An excluded
//!    alternative is otherwise just skipped when choosing among alternatives.
//!
//! Packages named in the definition's `packages` are always locked, whatever the rule says.
//! The restriction to `Essential`/`required` packages keeps the set honest: should Debian
//! demote one of them, kiln stops dropping it and the lock diff shows the new package.
//!
//! # Choices
//!
//! - Alternatives `a | b`: the group is satisfied by an alternative already selected if there
//!   is one, else by the first alternative that exists (real or virtual) and satisfies its
//!   version constraint. Groups without alternatives are resolved first (to a fixpoint), then
//!   alternative groups one at a time in discovery order, so that "already selected" sees as
//!   much as possible and the outcome does not depend on hash order.
//! - A name that is a real package is that package; when its version does not satisfy the
//!   constraint, a provider with a matching versioned `Provides` may satisfy it instead.
//! - A virtual name (only `Provides`): an already selected provider, else the only provider;
//!   several providers are an error naming them, to be settled by listing one in `packages`.
//! - Version constraints are checked with Debian's ordering ([`crate::version`]); an
//!   unsatisfiable constraint is an error naming both packages and the archive's version.
//! - Architecture qualifiers `:any` and `:native` and the target architecture itself are
//!   accepted (the index holds one architecture plus `all`); any other is an error.
//!
//! Spec: Debian Policy §7 "Declaring relationships between packages"
//! (<https://www.debian.org/doc/debian-policy/ch-relationships.html>).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::depends::{Dependency, DependsError, parse_depends, parse_provides};
use crate::packages::{PackageEntry, PackageIndex};
use crate::version::Version;

/// Names whose dependencies only matter while installing: the package manager and
/// configuration system (`dpkg`, `debconf` and its virtual `debconf-2.0`), the interpreters
/// and tools maintainer scripts run (`perl-base`, `bash`, `dash`, `awk`/`mawk`,
/// `debianutils`), the service hooks (`init-system-helpers`, `sysvinit-utils`), the dynamic
/// linker cache tool run by dpkg triggers (`libc-bin`), and the account tools and databases
/// kiln replaces with the definition's `users` and `groups` (`base-passwd`, `passwd`, `login`).
pub const INSTALL_TIME: &[&str] = &[
    "awk",
    "base-passwd",
    "bash",
    "dash",
    "debconf",
    "debconf-2.0",
    "debianutils",
    "dpkg",
    "init-system-helpers",
    "libc-bin",
    "login",
    "mawk",
    "passwd",
    "perl-base",
    "sysvinit-utils",
];

/// Why a dependency group was not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropRule {
    /// An alternative is an install-time package (rule 1).
    InstallTime,
    /// All alternatives are in the definition's `exclude` (rule 2).
    Excluded,
}

/// A dependency group that was not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The package that declared it.
    pub from: String,
    /// The group as written (`debconf (>= 0.5) | debconf-2.0`).
    pub dependency: String,
    /// Which rule dropped it.
    pub rule: DropRule,
}

/// The outcome of [`resolve`].
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// The locked packages by name.
    pub packages: BTreeMap<String, PackageEntry>,
    /// Why each package is there: `None` when listed in `packages`, else the first package
    /// whose dependency selected it.
    pub pulled_by: BTreeMap<String, Option<String>>,
    /// The dependency groups the exclusion rule dropped, in discovery order.
    pub dropped: Vec<Dropped>,
}

/// Why the wanted packages cannot be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A name is neither a package nor provided by one.
    #[error("{} `{name}`, which is not in the `{arch}` archive; check the name and the suite", wanted_by(.from))]
    NotFound {
        /// The missing name.
        name: String,
        /// The package that depends on it, or `None` for the definition's `packages`.
        from: Option<String>,
        /// The architecture.
        arch: String,
    },
    /// A virtual name has several providers and none is selected.
    #[error("{} `{name}`, a virtual package provided by {providers}; list one of them in the definition's `packages`", wanted_by(.from))]
    Ambiguous {
        /// The virtual name.
        name: String,
        /// The package that depends on it, or `None` for the definition's `packages`.
        from: Option<String>,
        /// The providers, formatted.
        providers: String,
    },
    /// A version constraint cannot be met.
    #[error("`{from}` depends on `{dependency}` but the archive has `{name}` {available}")]
    Unsatisfied {
        /// The depending package.
        from: String,
        /// The dependency as written.
        dependency: String,
        /// The depended-on name.
        name: String,
        /// The archive's version, formatted (`1.2-3`, or `only through providers …`).
        available: String,
    },
    /// No alternative of a group can be used.
    #[error("`{from}` depends on `{group}` and no alternative can be used: {reasons}")]
    NoAlternative {
        /// The depending package.
        from: String,
        /// The group as written.
        group: String,
        /// Why each alternative failed, formatted.
        reasons: String,
    },
    /// A foreign architecture qualifier.
    #[error(
        "`{from}` depends on `{dependency}`, for another architecture than `{arch}`; kiln resolves one architecture at a time"
    )]
    ForeignArch {
        /// The depending package.
        from: String,
        /// The dependency as written.
        dependency: String,
        /// The architecture being resolved.
        arch: String,
    },
    /// A relationship field is malformed.
    #[error("reading the dependencies of `{package}`")]
    Depends {
        /// The package whose field is malformed.
        package: String,
        /// The parse error.
        source: DependsError,
    },
}

fn wanted_by(from: &Option<String>) -> String {
    match from {
        Some(f) => format!("`{f}` depends on"),
        None => "the definition wants".to_owned(),
    }
}

/// Resolves `wanted` (the definition's `packages`, in order) in `index` for architecture
/// `arch`, applying the exclusion rule with the definition's `exclude`.
pub fn resolve(
    index: &PackageIndex,
    arch: &str,
    wanted: &[String],
    exclude: &[String],
) -> Result<Resolution, ResolveError> {
    Resolver::new(index, arch, exclude).run(wanted)
}

struct Provider<'a> {
    entry: &'a PackageEntry,
    version: Option<Version>,
}

struct Resolver<'a> {
    index: &'a PackageIndex,
    arch: &'a str,
    exclude: BTreeSet<&'a str>,
    providers: HashMap<String, Vec<Provider<'a>>>,
    out: Resolution,
    queue: VecDeque<String>,
    deferred: VecDeque<(String, Vec<Dependency>, String)>,
}

/// Why one alternative could not be used.
enum Miss {
    Fatal(ResolveError),
    Soft(String),
}

impl<'a> Resolver<'a> {
    fn new(index: &'a PackageIndex, arch: &'a str, exclude: &'a [String]) -> Self {
        let mut providers: HashMap<String, Vec<Provider<'a>>> = HashMap::new();
        for entry in index.packages.values().filter(|e| !e.provides.is_empty()) {
            // A malformed `Provides` elsewhere in the archive must not fail every lock.
            let Ok(provided) = parse_provides(&entry.provides) else {
                continue;
            };
            for p in provided {
                providers.entry(p.name).or_default().push(Provider {
                    entry,
                    version: p.constraint.map(|(_, v)| v),
                });
            }
        }
        Resolver {
            index,
            arch,
            exclude: exclude.iter().map(String::as_str).collect(),
            providers,
            out: Resolution::default(),
            queue: VecDeque::new(),
            deferred: VecDeque::new(),
        }
    }

    fn run(mut self, wanted: &[String]) -> Result<Resolution, ResolveError> {
        for name in wanted {
            match self.index.packages.get(name) {
                Some(entry) => self.select(entry, None),
                None => {
                    let providers = self.provider_names(name);
                    return Err(if providers.is_empty() {
                        ResolveError::NotFound {
                            name: name.clone(),
                            from: None,
                            arch: self.arch.to_owned(),
                        }
                    } else {
                        ResolveError::Ambiguous {
                            name: name.clone(),
                            from: None,
                            providers,
                        }
                    });
                }
            }
        }
        loop {
            while let Some(name) = self.queue.pop_front() {
                self.expand(&name)?;
            }
            let Some((from, group, text)) = self.deferred.pop_front() else {
                break;
            };
            self.satisfy_group(&from, &group, &text)?;
        }
        Ok(self.out)
    }

    fn select(&mut self, entry: &'a PackageEntry, from: Option<&str>) {
        if self.out.packages.contains_key(&entry.package) {
            return;
        }
        self.out
            .packages
            .insert(entry.package.clone(), entry.clone());
        self.out
            .pulled_by
            .insert(entry.package.clone(), from.map(str::to_owned));
        self.queue.push_back(entry.package.clone());
    }

    fn expand(&mut self, name: &str) -> Result<(), ResolveError> {
        let entry = &self.index.packages[name];
        for field in [&entry.pre_depends, &entry.depends] {
            let groups = parse_depends(field).map_err(|source| ResolveError::Depends {
                package: name.to_owned(),
                source,
            })?;
            for text_group in field
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .zip(groups)
            {
                let (text, group) = text_group;
                for dep in &group {
                    if !matches!(dep.arch.as_deref(), None | Some("any" | "native"))
                        && dep.arch.as_deref() != Some(self.arch)
                    {
                        return Err(ResolveError::ForeignArch {
                            from: name.to_owned(),
                            dependency: dep.to_string(),
                            arch: self.arch.to_owned(),
                        });
                    }
                }
                if let Some(rule) = self.drop_rule(&group) {
                    self.out.dropped.push(Dropped {
                        from: name.to_owned(),
                        dependency: text.to_owned(),
                        rule,
                    });
                    continue;
                }
                let usable: Vec<Dependency> = group
                    .into_iter()
                    .filter(|d| !self.exclude.contains(d.name.as_str()))
                    .collect();
                if usable.len() == 1 {
                    self.satisfy_group(name, &usable, text)?;
                } else {
                    self.deferred
                        .push_back((name.to_owned(), usable, text.to_owned()));
                }
            }
        }
        Ok(())
    }

    fn drop_rule(&self, group: &[Dependency]) -> Option<DropRule> {
        if group.iter().any(|d| self.is_install_time(&d.name)) {
            return Some(DropRule::InstallTime);
        }
        if group.iter().all(|d| self.exclude.contains(d.name.as_str())) {
            return Some(DropRule::Excluded);
        }
        None
    }

    fn is_install_time(&self, name: &str) -> bool {
        let base_system =
            |e: &PackageEntry| e.essential || e.priority.as_deref() == Some("required");
        INSTALL_TIME.contains(&name)
            && match self.index.packages.get(name) {
                Some(entry) => base_system(entry),
                None => self
                    .providers
                    .get(name)
                    .is_some_and(|ps| ps.iter().any(|p| base_system(p.entry))),
            }
    }

    fn satisfy_group(
        &mut self,
        from: &str,
        group: &[Dependency],
        text: &str,
    ) -> Result<(), ResolveError> {
        if group.iter().any(|d| self.selected_satisfier(d).is_some()) {
            return Ok(());
        }
        let mut reasons = Vec::new();
        for dep in group {
            match self.candidate(from, dep) {
                Ok(entry) => {
                    self.select(entry, Some(from));
                    return Ok(());
                }
                Err(Miss::Fatal(e)) if group.len() == 1 => return Err(e),
                Err(Miss::Fatal(e)) => reasons.push(format!("`{dep}`: {e}")),
                Err(Miss::Soft(r)) => reasons.push(format!("`{dep}`: {r}")),
            }
        }
        if group.len() == 1 {
            return Err(ResolveError::NotFound {
                name: group[0].name.clone(),
                from: Some(from.to_owned()),
                arch: self.arch.to_owned(),
            });
        }
        Err(ResolveError::NoAlternative {
            from: from.to_owned(),
            group: text.to_owned(),
            reasons: if reasons.is_empty() {
                "all of them are in `exclude`".to_owned()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// Returns the selected package that satisfies `dep`, if any.
    fn selected_satisfier(&self, dep: &Dependency) -> Option<&str> {
        if let Some(entry) = self.out.packages.get(&dep.name)
            && satisfies(&entry.version, dep)
        {
            return Some(&entry.package);
        }
        self.providers.get(&dep.name).and_then(|ps| {
            ps.iter()
                .filter(|p| provides_satisfy(p, dep))
                .map(|p| p.entry.package.as_str())
                .find(|n| self.out.packages.contains_key(*n))
        })
    }

    /// Returns the package to select for `dep` when nothing selected satisfies it.
    fn candidate(&self, from: &str, dep: &Dependency) -> Result<&'a PackageEntry, Miss> {
        let providers: Vec<&Provider<'a>> = self
            .providers
            .get(&dep.name)
            .map(|ps| ps.iter().filter(|p| provides_satisfy(p, dep)).collect())
            .unwrap_or_default();
        if let Some(entry) = self.index.packages.get(&dep.name) {
            if satisfies(&entry.version, dep) {
                return Ok(entry);
            }
            if providers.len() != 1 {
                return Err(Miss::Fatal(ResolveError::Unsatisfied {
                    from: from.to_owned(),
                    dependency: dep.to_string(),
                    name: dep.name.clone(),
                    available: entry.version.clone(),
                }));
            }
        }
        match providers.as_slice() {
            [] => Err(Miss::Soft(format!("not in the `{}` archive", self.arch))),
            [one] => Ok(one.entry),
            many => Err(Miss::Fatal(ResolveError::Ambiguous {
                name: dep.name.clone(),
                from: Some(from.to_owned()),
                providers: many
                    .iter()
                    .map(|p| format!("`{}`", p.entry.package))
                    .collect::<Vec<_>>()
                    .join(", "),
            })),
        }
    }

    fn provider_names(&self, name: &str) -> String {
        self.providers
            .get(name)
            .map(|ps| {
                ps.iter()
                    .map(|p| format!("`{}`", p.entry.package))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

fn satisfies(version: &str, dep: &Dependency) -> bool {
    match (&dep.constraint, Version::parse(version)) {
        (None, _) => true,
        (Some((relation, wanted)), Ok(have)) => relation.holds(&have, wanted),
        (Some(_), Err(_)) => false,
    }
}

/// Policy §7.5: an unversioned `Provides` satisfies only unversioned dependencies.
fn provides_satisfy(p: &Provider<'_>, dep: &Dependency) -> bool {
    match (&dep.constraint, &p.version) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((relation, wanted)), Some(have)) => relation.holds(have, wanted),
    }
}
