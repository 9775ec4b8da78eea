//! HTTP clients and their TLS roots: system roots plus `ca_files` for every host, plus
//! `<certs_dir>/<host[:port]>/*.crt` for that host only (the docker/podman `certs.d`
//! layout). One `reqwest::Client` is built per host that has its own roots.
//!
//! Names are resolved by [`LocalhostResolver`]: `localhost` and `*.localhost` (RFC 6761
//! §6.3) go to loopback without asking DNS, because kiln lets those names use plain HTTP
//! (`hosts::is_loopback`); a resolver that sent them elsewhere must not be able to get
//! plain-HTTP traffic (or credentials) for them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Certificate;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::hosts::is_localhost_name;
use crate::{RegistryError, RegistrySettings};

/// The HTTP clients of one [`crate::Client`].
pub(crate) struct Transports {
    shared_roots: Vec<Certificate>,
    user_agent: String,
    certs_dirs: Vec<std::path::PathBuf>,
    /// Built on first use: loading the system's TLS roots takes milliseconds.
    base: std::sync::OnceLock<reqwest::Client>,
    per_host: Mutex<HashMap<String, reqwest::Client>>,
}

impl Transports {
    /// Loads `ca_files` and builds the client used for hosts without their own roots.
    pub(crate) fn new(settings: &RegistrySettings) -> Result<Self, RegistryError> {
        let mut shared_roots = Vec::new();
        for path in &settings.ca_files {
            shared_roots.extend(load_pem(path)?);
        }
        Ok(Self {
            shared_roots,
            user_agent: settings.user_agent.clone(),
            certs_dirs: settings.certs_dirs.clone(),
            base: std::sync::OnceLock::new(),
            per_host: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the client for hosts without roots of their own, built on first use.
    fn base(&self) -> Result<reqwest::Client, RegistryError> {
        if let Some(base) = self.base.get() {
            return Ok(base.clone());
        }
        let base = build(
            &self.user_agent,
            &self.shared_roots,
            Path::new("<system roots>"),
        )?;
        Ok(self.base.get_or_init(|| base).clone())
    }

    /// Returns the client to talk to `authority` (`host[:port]`) with.
    pub(crate) fn for_authority(&self, authority: &str) -> Result<reqwest::Client, RegistryError> {
        if let Some(c) = self.per_host.lock().expect("tls cache lock").get(authority) {
            return Ok(c.clone());
        }
        let mut roots = Vec::new();
        let mut first_dir = None;
        for dir in &self.certs_dirs {
            let host_dir = dir.join(authority);
            let Ok(entries) = std::fs::read_dir(&host_dir) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            files.sort();
            for f in files {
                roots.extend(load_pem(&f)?);
                first_dir.get_or_insert_with(|| host_dir.clone());
            }
        }
        let client = match first_dir {
            None => self.base()?,
            Some(dir) => {
                tracing::debug!(%authority, roots = roots.len(), "using certs.d roots");
                roots.extend(self.shared_roots.iter().cloned());
                build(&self.user_agent, &roots, &dir)?
            }
        };
        self.per_host
            .lock()
            .expect("tls cache lock")
            .insert(authority.to_string(), client.clone());
        Ok(client)
    }
}

fn build(
    user_agent: &str,
    roots: &[Certificate],
    origin: &Path,
) -> Result<reqwest::Client, RegistryError> {
    let mut b = reqwest::Client::builder()
        .user_agent(user_agent)
        // Redirects are followed by hand so credentials never travel to another host.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(LocalhostResolver))
        .connect_timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60));
    for r in roots {
        b = b.add_root_certificate(r.clone());
    }
    b.build().map_err(|e| RegistryError::TlsSetup {
        path: origin.to_path_buf(),
        detail: format!("building the http client: {}", e.without_url()),
    })
}

/// The system resolver, except that `localhost` names are loopback (see the module doc).
struct LocalhostResolver;

impl Resolve for LocalhostResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = if is_localhost_name(&host) {
                vec![
                    (Ipv4Addr::LOCALHOST, 0).into(),
                    (Ipv6Addr::LOCALHOST, 0).into(),
                ]
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn load_pem(path: &Path) -> Result<Vec<Certificate>, RegistryError> {
    let bytes = std::fs::read(path).map_err(|e| RegistryError::TlsSetup {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let certs = Certificate::from_pem_bundle(&bytes).map_err(|e| RegistryError::TlsSetup {
        path: path.to_path_buf(),
        detail: format!("not a PEM certificate bundle: {e}"),
    })?;
    if certs.is_empty() {
        return Err(RegistryError::TlsSetup {
            path: path.to_path_buf(),
            detail: "no PEM certificate in the file".to_string(),
        });
    }
    Ok(certs)
}
