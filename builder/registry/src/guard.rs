//! Which URLs kiln follows when a server names them: redirect `Location`s, upload
//! `Location`s and token realms (RELIABILITY.md R06, R08, C03).
//!
//! Checked before any connection is made, so a refused URL costs no request:
//! - only `http` and `https` (a realm `file:///…` is refused);
//! - never from `https` down to plain `http`, whatever the host;
//! - a host other than the registry's own may not be an address the registry has no
//!   business sending kiln to (server-side request forgery): link-local (cloud metadata
//!   services), unspecified, broadcast or multicast never; this machine only when the
//!   registry is on this machine; a private network only when the registry's own address
//!   is on one. Names are not resolved to check them: only literal addresses and
//!   `localhost` names are judged, everything else counts as public;
//! - plain `http` only where [`allows_plain_http`] says so.

use url::Url;

use crate::RegistryError;
use crate::client::Inner;
use crate::error::redact_url;
use crate::hosts::{Reach, allows_plain_http, reach, split_host_port, url_authority};
use crate::request::Target;

impl Inner {
    /// Returns an error unless `to`, the `what` (`redirect`, `location`, `token realm`)
    /// reached from `from` while doing `t`, may be requested.
    pub(crate) fn check_url(
        &self,
        t: &Target,
        what: &'static str,
        from: &Url,
        to: &Url,
    ) -> Result<(), RegistryError> {
        let refuse = |reason: String| RegistryError::Refused {
            action: t.action.clone(),
            what,
            url: redact_url(to),
            reason,
        };
        if !matches!(to.scheme(), "http" | "https") {
            return Err(refuse(format!(
                "kiln follows only http and https URLs, not `{}:`",
                to.scheme()
            )));
        }
        if from.scheme() == "https" && to.scheme() == "http" {
            return Err(refuse("it would downgrade https to plain http".to_string()));
        }
        let host = to.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let (registry_host, _) = split_host_port(&t.authority);
        if !host.eq_ignore_ascii_case(registry_host) {
            let registry = reach(registry_host);
            let reason = match reach(host) {
                Reach::Special => Some(
                    "it is a link-local, unspecified or multicast address (where cloud metadata services answer)",
                ),
                Reach::Loopback if registry != Reach::Loopback => {
                    Some("it is this machine, and the registry is not")
                }
                Reach::Private if registry != Reach::Private => {
                    Some("it is on a private network, and the registry's own address is not")
                }
                _ => None,
            };
            if let Some(reason) = reason {
                return Err(refuse(reason.to_string()));
            }
        }
        let authority = url_authority(to);
        if to.scheme() == "http" && !allows_plain_http(&self.settings, &authority) {
            return Err(RegistryError::InsecureHttp {
                action: t.action.clone(),
                url: redact_url(to),
                host: authority,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, RegistrySettings};

    fn target(authority: &str) -> Target {
        Target {
            registry: authority.to_string(),
            repository: "app".to_string(),
            authority: authority.to_string(),
            scopes: Vec::new(),
            action: format!("pulling from `{authority}/app`"),
            refreshes: Default::default(),
        }
    }

    fn check(registry: &str, from: &str, to: &str) -> Result<(), RegistryError> {
        let c = Client::new(RegistrySettings::default()).unwrap();
        let from = Url::parse(from).unwrap();
        c.inner.check_url(
            &target(registry),
            "redirect",
            &from,
            &Url::parse(to).unwrap(),
        )
    }

    fn refused(r: Result<(), RegistryError>) -> String {
        match r {
            Err(e @ RegistryError::Refused { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// R08: metadata addresses, other schemes, this machine and private networks are
    /// refused for a public registry; storage elsewhere is followed.
    #[test]
    fn r08_hostile_urls_are_refused_by_address_and_scheme() {
        let reg = "https://reg.example/v2/";
        for to in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/token",
            "https://[fe80::1]/token",
            "https://0.0.0.0/x",
            "https://127.0.0.1/x",
            "https://localhost:5000/x",
            "https://app.localhost/x",
            "https://10.0.0.1/upload",
            "https://192.168.0.10/upload",
            "https://[::ffff:10.0.0.1]/upload",
        ] {
            let text = refused(check("reg.example", reg, to));
            assert!(text.contains("refusing the redirect"), "{text}");
        }
        let text = refused(check("reg.example", reg, "file:///etc/passwd"));
        assert!(text.contains("only http and https"), "{text}");
        check("reg.example", reg, "https://storage.example/blob?sig=1").unwrap();
        check("reg.example", reg, "https://8.8.8.8/blob").unwrap();
    }

    /// R08: a registry on this machine may send kiln elsewhere on this machine (a local
    /// token server), never to a private network or a metadata address; one on a private
    /// network may use that network; the registry's own host is always fine.
    #[test]
    fn r08_local_and_private_registries_keep_their_own_networks() {
        let local = "http://127.0.0.1:5000/v2/";
        check("127.0.0.1:5000", local, "http://127.0.0.1:6000/token").unwrap();
        check("127.0.0.1:5000", local, "http://localhost:6000/token").unwrap();
        refused(check("127.0.0.1:5000", local, "https://10.0.0.1/upload"));
        refused(check("127.0.0.1:5000", local, "https://169.254.169.254/"));
        let private = "https://10.0.0.5/v2/";
        check("10.0.0.5", private, "https://10.0.0.6/token").unwrap();
        refused(check("10.0.0.5", private, "https://127.0.0.1/token"));
        refused(check("10.0.0.5", private, "https://169.254.169.254/"));
        check(
            "169.254.1.1:5000",
            "https://169.254.1.1:5000/v2/",
            "https://169.254.1.1:5000/u",
        )
        .unwrap();
    }

    /// R06 (d), C03: https never goes down to plain http, not even on the same host or on
    /// this machine; plain http elsewhere needs the insecure-registry setting.
    #[test]
    fn r06_d_https_to_http_is_refused_on_any_host() {
        for (registry, from, to) in [
            (
                "reg.example",
                "https://reg.example/v2/",
                "http://reg.example/v2/x",
            ),
            (
                "127.0.0.1:5000",
                "https://127.0.0.1:5000/v2/",
                "http://127.0.0.1:5000/v2/x",
            ),
        ] {
            let text = refused(check(registry, from, to));
            assert!(text.contains("downgrade https to plain http"), "{text}");
        }
        let err = check(
            "reg.example",
            "http://reg.example/v2/",
            "http://cdn.example/x",
        );
        assert!(
            matches!(err, Err(RegistryError::InsecureHttp { .. })),
            "{err:?}"
        );
    }
}
