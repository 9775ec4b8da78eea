//! Host names: which may use plain HTTP, how credential keys map to registries, and which
//! host serves a registry's API.

use std::net::IpAddr;

use url::Url;

use crate::RegistrySettings;

/// The canonical name of Docker Hub in references and credentials.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key `docker login` stores Docker Hub credentials under.
pub(crate) const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Splits `host[:port]` (IPv6 in brackets) into host and port.
pub(crate) fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

/// Returns whether `authority` is this machine: `localhost` or a name under it (RFC 6761
/// §6.3; kiln's resolver answers those itself, see `tls.rs`), `127.0.0.0/8` or `::1`.
/// Only exact matches: `localhost.evil.example`, `127.0.0.1.nip.io` or `x127.0.0.1` are
/// names like any other.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let (host, _) = split_host_port(authority);
    is_localhost_name(host) || ip(host).is_some_and(|ip| ip.is_loopback())
}

/// Returns whether `host` is `localhost` or ends in `.localhost` (a trailing dot allowed).
pub(crate) fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Returns `host` as an IP address if it is a literal one (IPv4-mapped IPv6 as IPv4).
pub(crate) fn ip(host: &str) -> Option<IpAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Where a host is, as far as its name tells without asking DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// This machine.
    Loopback,
    /// A private network: `10/8`, `172.16/12`, `192.168/16`, `100.64/10`, `fc00::/7`.
    Private,
    /// Link-local (`169.254/16`, where cloud metadata services answer; `fe80::/10`),
    /// unspecified, broadcast or multicast: nothing a registry legitimately lives at.
    Special,
    /// Anything else, including every name that is not `localhost`.
    Public,
}

/// Returns where `host` (no port) is.
pub(crate) fn reach(host: &str) -> Reach {
    if is_localhost_name(host) {
        return Reach::Loopback;
    }
    match ip(host) {
        None => Reach::Public,
        Some(ip) if ip.is_loopback() => Reach::Loopback,
        Some(IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            if v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                Reach::Special
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        Some(IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            if v6.is_unspecified() || v6.is_multicast() || (first & 0xffc0) == 0xfe80 {
                Reach::Special
            } else if (first & 0xfe00) == 0xfc00 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

/// Returns whether plain HTTP may be used for `authority`.
pub(crate) fn allows_plain_http(settings: &RegistrySettings, authority: &str) -> bool {
    if is_loopback(authority) {
        return true;
    }
    let (host, port) = split_host_port(authority);
    settings.insecure_registries.iter().any(|entry| {
        let (eh, ep) = split_host_port(entry.trim());
        eh.eq_ignore_ascii_case(host) && (ep.is_none() || ep == port)
    })
}

/// Returns the `host[:port]` of `url`, the port only when it is not the scheme's default.
pub(crate) fn url_authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Returns whether two URLs point at the same host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Normalizes a credentials key or a registry name: `https://host/v1/` → `host`, Docker
/// Hub aliases → `docker.io`, lowercase.
pub(crate) fn normalize_registry(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// Returns the host[:port] serving the API of a normalized registry name.
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Returns the server address credential helpers know a normalized registry by.
pub(crate) fn helper_server_url(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_authorities() {
        assert_eq!(split_host_port("h:5000"), ("h", Some("5000")));
        assert_eq!(split_host_port("h"), ("h", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some("5000")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
    }

    /// C03: plain http for exact loopback, names under `localhost` and listed insecure
    /// registries only; names that merely contain a loopback name or address are https.
    #[test]
    fn c03_plain_http_only_for_loopback_and_insecure() {
        let mut s = RegistrySettings::default();
        for h in [
            "127.0.0.1:5000",
            "127.3.4.5",
            "localhost:80",
            "LOCALHOST",
            "[::1]:5000",
            "reg.localhost:5000",
            "a.b.localhost.",
        ] {
            assert!(allows_plain_http(&s, h), "{h}");
        }
        for h in [
            "localhost.evil.com",
            "localhost.evil.com:5000",
            "127.0.0.1.nip.io",
            "127.0.0.1.nip.io:5000",
            "x127.0.0.1",
            "x127.0.0.1:5000",
            "foo.local",
            "foo.local:5000",
            "notlocalhost",
            "localhostx:5000",
            "[::2]:5000",
            "registry.example:5000",
            "10.0.0.1",
        ] {
            assert!(!allows_plain_http(&s, h), "{h}");
        }
        s.insecure_registries = vec!["registry.example".into(), "other.example:5000".into()];
        assert!(allows_plain_http(&s, "registry.example:5000"));
        assert!(allows_plain_http(&s, "other.example:5000"));
        assert!(!allows_plain_http(&s, "other.example:6000"));
    }

    #[test]
    fn classifies_where_hosts_are() {
        for (host, want) in [
            ("127.0.0.1", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("[::1]", Reach::Loopback),
            ("app.localhost", Reach::Loopback),
            ("10.0.0.1", Reach::Private),
            ("172.20.1.1", Reach::Private),
            ("192.168.1.1", Reach::Private),
            ("100.64.0.1", Reach::Private),
            ("fd00::1", Reach::Private),
            ("::ffff:10.0.0.1", Reach::Private),
            ("169.254.169.254", Reach::Special),
            ("[::ffff:169.254.169.254]", Reach::Special),
            ("fe80::1", Reach::Special),
            ("0.0.0.0", Reach::Special),
            ("224.0.0.1", Reach::Special),
            ("172.32.0.1", Reach::Public),
            ("8.8.8.8", Reach::Public),
            ("2001:db8::1", Reach::Public),
            ("localhost.evil.com", Reach::Public),
            ("169.254.169.254.nip.io", Reach::Public),
        ] {
            assert_eq!(reach(host), want, "{host}");
        }
    }

    #[test]
    fn normalizes_credential_keys() {
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(normalize_registry("docker.io"), "docker.io");
        assert_eq!(normalize_registry("http://Quay.io"), "quay.io");
        assert_eq!(normalize_registry("https://h:5000/v2/"), "h:5000");
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(helper_server_url("docker.io"), DOCKER_HUB_AUTH_KEY);
    }

    #[test]
    fn compares_origins() {
        let a = Url::parse("https://h/v2/").unwrap();
        assert!(same_origin(&a, &Url::parse("https://H:443/x").unwrap()));
        assert!(!same_origin(&a, &Url::parse("https://h:8443/x").unwrap()));
        assert!(!same_origin(
            &a,
            &Url::parse("https://storage.h/x").unwrap()
        ));
        assert_eq!(
            url_authority(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()),
            "127.0.0.1:5000"
        );
    }
}
