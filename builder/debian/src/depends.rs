//! Relationship fields of binary packages (`Depends`, `Pre-Depends`, `Provides`):
//! comma-separated groups of `|`-separated alternatives, each a package name with an
//! optional architecture qualifier (`:any`, `:native`, `:amd64`) and an optional version
//! constraint (`(>= 1.2)`).
//!
//! Spec: Debian Policy §7.1 "Syntax of relationship fields"
//! (<https://www.debian.org/doc/debian-policy/ch-relationships.html>).

use std::fmt;

use crate::version::{Relation, Version, VersionError};

/// One alternative of a dependency group: `name[:arch] [(op version)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The package (or virtual package) name.
    pub name: String,
    /// The architecture qualifier after `:`, if any (`any`, `native` or an architecture).
    pub arch: Option<String>,
    /// The version constraint, if any.
    pub constraint: Option<(Relation, Version)>,
}

/// Why a relationship field could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DependsError {
    /// A relationship is not `name [(op version)]`.
    #[error("parsing relationship `{text}`: {reason}")]
    Syntax {
        /// The offending relationship.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The version in a constraint is malformed.
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// Returns the groups of a `Depends`-style field: every inner list is a set of alternatives
/// of which one must be satisfied. An empty field gives no groups.
pub fn parse_depends(field: &str) -> Result<Vec<Vec<Dependency>>, DependsError> {
    field
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|group| group.split('|').map(parse_one).collect())
        .collect()
}

/// Returns the entries of a `Provides` field (no alternatives; only `=` constraints allowed).
pub fn parse_provides(field: &str) -> Result<Vec<Dependency>, DependsError> {
    let mut out = Vec::new();
    for text in field.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let dep = parse_one(text)?;
        if let Some((relation, _)) = &dep.constraint
            && *relation != Relation::Equal
        {
            return Err(DependsError::Syntax {
                text: text.to_owned(),
                reason: "a `Provides` version must use `=`",
            });
        }
        out.push(dep);
    }
    Ok(out)
}

fn parse_one(text: &str) -> Result<Dependency, DependsError> {
    let text = text.trim();
    let syntax = |reason| DependsError::Syntax {
        text: text.to_owned(),
        reason,
    };
    let outside_parens = text.split('(').next().unwrap_or("").to_owned()
        + text.rsplit_once(')').map_or("", |(_, after)| after);
    if outside_parens.contains(['[', '<']) || text.contains('[') {
        return Err(syntax(
            "architecture restrictions and build profiles do not belong in binary packages",
        ));
    }
    let (name_part, constraint) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| syntax("unbalanced `(`"))?
                .trim();
            let op_len = inner
                .find(|c: char| !"<>=".contains(c))
                .ok_or_else(|| syntax("a constraint needs a version"))?;
            let relation = Relation::parse(&inner[..op_len])
                .ok_or_else(|| syntax("unknown relation (use <<, <=, =, >=, >>)"))?;
            let version = Version::parse(inner[op_len..].trim())?;
            (name.trim(), Some((relation, version)))
        }
        None => (text, None),
    };
    let (name, arch) = match name_part.split_once(':') {
        Some((n, a)) => (n, Some(a.to_owned())),
        None => (name_part, None),
    };
    let valid_name = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid_name {
        return Err(syntax("not a valid package name"));
    }
    Ok(Dependency {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((relation, version)) = &self.constraint {
            write!(f, " ({relation} {version})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_alternatives_qualifiers_and_constraints() {
        let groups = parse_depends(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any,\n python3:native (<< 3.14)",
        )
        .unwrap();
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(groups[1].len(), 2);
        assert_eq!(groups[1][1].name, "debconf-2.0");
        assert_eq!(groups[2][0].arch.as_deref(), Some("any"));
        assert_eq!(groups[3][0].to_string(), "python3:native (<< 3.14)");
        assert!(parse_depends("").unwrap().is_empty());
    }

    #[test]
    fn provides_with_versions() {
        let p = parse_provides("libssl3 (= 3.5.1-1), awk").unwrap();
        assert_eq!(p[0].constraint.as_ref().unwrap().1.as_str(), "3.5.1-1");
        assert!(parse_provides("x11 (>= 1)").is_err());
    }

    #[test]
    fn malformed_relationships() {
        for bad in [
            "libc6 (>= 2.34",
            "libc6 (!! 2)",
            "Foo",
            "libc6 (>=)",
            "a [amd64]",
        ] {
            assert!(parse_depends(bad).is_err(), "{bad:?}");
        }
    }
}
