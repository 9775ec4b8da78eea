//! Where a definition's suites are served: Debian's archive mirror for the release and its
//! `-updates`, and the separate security archive for `-security` suites (Debian publishes
//! those from another tree, usually another host).

use url::Url;

/// The archives kiln locks and downloads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrors {
    /// The Debian archive mirror (`…/debian/`).
    pub main: Url,
    /// The Debian security archive (`…/debian-security/`), when one is configured.
    pub security: Option<Url>,
}

/// No security archive is configured, but a suite needs it.
#[derive(Debug, thiserror::Error)]
#[error("suite `{0}` comes from Debian's security archive, and no security mirror is configured")]
pub struct NoSecurityMirror(pub String);

impl Mirrors {
    /// Returns a set with just the main mirror.
    pub fn main_only(main: Url) -> Mirrors {
        Mirrors {
            main,
            security: None,
        }
    }

    /// Returns the archive that serves `suite`.
    pub fn for_suite(&self, suite: &str) -> Result<&Url, NoSecurityMirror> {
        if suite.ends_with("-security") {
            self.security
                .as_ref()
                .ok_or_else(|| NoSecurityMirror(suite.to_owned()))
        } else {
            Ok(&self.main)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_suites_go_to_the_security_archive() {
        let main: Url = "http://m.example.org/debian/".parse().unwrap();
        let sec: Url = "http://s.example.org/debian-security/".parse().unwrap();
        let both = Mirrors {
            main: main.clone(),
            security: Some(sec.clone()),
        };
        assert_eq!(both.for_suite("trixie").unwrap(), &main);
        assert_eq!(both.for_suite("trixie-updates").unwrap(), &main);
        assert_eq!(both.for_suite("trixie-security").unwrap(), &sec);
        let err = Mirrors::main_only(main)
            .for_suite("trixie-security")
            .unwrap_err();
        assert!(err.to_string().contains("trixie-security"), "{err}");
    }
}
