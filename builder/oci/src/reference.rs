use std::fmt;
use std::str::FromStr;

use crate::{Digest, DigestError};

/// The registry host used when a reference names none (`alpine` means `docker.io/library/alpine`).
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves the Docker Hub registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference: `host[:port]/repository[:tag][@digest]`.
///
/// Follows the grammar of distribution's `reference` package: the first path component
/// is a registry host only if it contains `.` or `:` or is `localhost`; otherwise the
/// reference is on Docker Hub, where one-component names live under `library/`.
///
/// Everything is validated when a reference is made, before it names a URL or a file
/// (RELIABILITY.md C05): repository components are lowercase, a tag has at most 128
/// characters, a digest is `sha256:` and 64 lowercase hex characters (no other algorithm,
/// no uppercase, nothing a path could be built from).
///
/// `repo:tag@sha256:…` is accepted, as docker and podman accept it: the digest pins the
/// image and the tag is only kept for display ([`Reference::manifest_ref`] asks for the
/// digest, never the tag). A push, which moves a tag, refuses a reference with a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("image reference is empty")]
    Empty,
    /// The repository path has an invalid component.
    #[error(
        "image reference `{0}` has an invalid repository name: use lowercase letters, digits and `._-` separated by `/`"
    )]
    Repository(String),
    /// The tag is invalid.
    #[error(
        "image reference `{0}` has an invalid tag: at most 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`"
    )]
    Tag(String),
    /// The digest is invalid.
    ///
    /// The digest's error is part of this message, not a `source()`: a reference is user
    /// input that callers show inline (`--publish: ...`), where a chain would be lost.
    #[error("image reference `{reference}` has an invalid digest: {problem}")]
    Digest {
        /// The whole reference.
        reference: String,
        /// What is wrong with the digest.
        problem: DigestError,
    },
}

impl Reference {
    /// Returns a reference to `repository` on `registry` with an optional tag and digest,
    /// validated like a parsed one.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        let whole = || {
            let mut s = format!("{registry}/{repository}");
            if let Some(t) = tag {
                s.push_str(&format!(":{t}"));
            }
            s
        };
        if registry.is_empty() || registry.contains('/') {
            return Err(ReferenceError::Repository(whole()));
        }
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(ReferenceError::Repository(whole()));
        }
        if tag.is_some_and(|t| !is_valid_tag(t)) {
            return Err(ReferenceError::Tag(whole()));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Returns the registry host as written (`docker.io` for Docker Hub), with port if any.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Returns the host[:port] to send registry API requests to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Returns the repository path, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Returns the tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Returns the digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Returns what to ask the registry for: the digest if any, else the tag, else `latest`.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Returns the same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Returns the same repository with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Returns `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Returns whether `t` is a valid tag: 1 to 128 of `A-Za-z0-9_.-`, not starting with `.`
/// or `-` (distribution-spec, "Pulling manifests"). Such a tag is safe in a URL path.
pub fn is_valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.contains('[')
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse().map_err(|problem| ReferenceError::Digest {
                    reference: s.to_string(),
                    problem,
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag follows the last `:` only if no `/` comes after it (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !is_valid_tag(t)
        {
            return Err(ReferenceError::Tag(s.to_string()));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if looks_like_host(first) => (first.to_string(), path.to_string()),
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(ReferenceError::Repository(s.to_string()));
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("alpine");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/alpine");
        assert_eq!(r.manifest_ref(), "latest");
        assert_eq!(parse("user/app:1").repository(), "user/app");
        assert_eq!(parse("index.docker.io/user/app").registry(), "docker.io");
    }

    #[test]
    fn host_port_tag_digest() {
        let d = Digest::of(b"x");
        let r = parse(&format!("127.0.0.1:5000/team/app:v1.2@{d}"));
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.manifest_ref(), d.to_string());
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/team/app:v1.2@{d}"));
        let r = parse("localhost:5000/app");
        assert_eq!((r.registry(), r.tag()), ("localhost:5000", None));
        assert_eq!(parse("localhost/app").registry(), "localhost");
        assert_eq!(parse("quay.io/org/app").registry(), "quay.io");
    }

    /// C05: references are validated (or refused) when made, before any request or file
    /// name is built from them; `repo:tag@digest` is pinned to the digest.
    #[test]
    fn c05_references_are_validated_before_use() {
        let d = Digest::of(b"x");
        let r = parse(&format!("127.0.0.1:5000/app:v1@{d}"));
        assert_eq!(
            r.manifest_ref(),
            d.to_string(),
            "the digest wins over the tag"
        );
        assert_eq!(r.tag(), Some("v1"), "the tag is kept for display");
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/app:v1@{d}"));

        for upper in ["127.0.0.1:5000/App:v1", "Team/app", "quay.io/org/APP"] {
            assert!(
                matches!(
                    upper.parse::<Reference>(),
                    Err(ReferenceError::Repository(_))
                ),
                "{upper}"
            );
        }
        let tag128 = "a".repeat(128);
        assert_eq!(parse(&format!("app:{tag128}")).tag(), Some(tag128.as_str()));
        let err = format!("app:b{tag128}").parse::<Reference>().unwrap_err();
        assert!(matches!(err, ReferenceError::Tag(_)), "{err}");
        assert!(err.to_string().contains("at most 128"), "{err}");

        let upper_hex = format!("sha256:{}", d.hex().to_uppercase());
        let sha512 = format!("sha512:{}{}", d.hex(), d.hex());
        for bad in ["sha256:../../x", upper_hex.as_str(), sha512.as_str()] {
            let err = format!("127.0.0.1:5000/app@{bad}")
                .parse::<Reference>()
                .unwrap_err();
            assert!(matches!(err, ReferenceError::Digest { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        // A "tag" holding a path is no tag: the whole thing is then an invalid name.
        assert!("127.0.0.1:5000/app:../../x".parse::<Reference>().is_err());
        for bad in ["../x", "a/b", "", ".hidden", "-x", "x?y", "x%2f"] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }

        // The constructor checks the same rules.
        assert!(Reference::new("127.0.0.1:5000", "team/app", Some("v1"), None).is_ok());
        assert!(Reference::new("127.0.0.1:5000", "../app", None, None).is_err());
        assert!(Reference::new("127.0.0.1:5000", "App", None, None).is_err());
        assert!(Reference::new("127.0.0.1:5000", "app", Some("../../x"), None).is_err());
        assert!(Reference::new("127.0.0.1:5000/x", "app", None, None).is_err());
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!("".parse::<Reference>(), Err(ReferenceError::Empty));
        assert!(matches!(
            "Upper/app".parse::<Reference>(),
            Err(ReferenceError::Repository(_))
        ));
        assert!(matches!(
            "app:-bad".parse::<Reference>(),
            Err(ReferenceError::Tag(_))
        ));
        assert!(matches!(
            "app@sha256:zz".parse::<Reference>(),
            Err(ReferenceError::Digest { .. })
        ));
        assert!("a//b".parse::<Reference>().is_err());
        assert!("host:5000/".parse::<Reference>().is_err());
    }
}
