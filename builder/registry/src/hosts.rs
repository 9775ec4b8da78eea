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

/// Returns whether `authority` is this machine: `localhost`, `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let (host, _) = split_host_port(authority);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

    #[test]
    fn plain_http_only_for_loopback_and_insecure() {
        let mut s = RegistrySettings::default();
        for h in ["127.0.0.1:5000", "127.3.4.5", "localhost:80", "[::1]:5000"] {
            assert!(allows_plain_http(&s, h), "{h}");
        }
        assert!(!allows_plain_http(&s, "registry.example:5000"));
        assert!(!allows_plain_http(&s, "10.0.0.1"));
        s.insecure_registries = vec!["registry.example".into(), "other.example:5000".into()];
        assert!(allows_plain_http(&s, "registry.example:5000"));
        assert!(allows_plain_http(&s, "other.example:5000"));
        assert!(!allows_plain_http(&s, "other.example:6000"));
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
