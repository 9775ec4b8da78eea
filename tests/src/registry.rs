//! Debian's `docker-registry` (distribution 2.8) on a free 127.0.0.1 port.
//!
//! Configuration reference: <https://distribution.github.io/distribution/about/configuration/>.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{run_checked, tail};
use crate::http::http_get;
use crate::openssl;
use crate::token::TokenIssuer;
use crate::workspace::{Workspace, free_port};

/// How long a registry may take to answer `/v2/` after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

enum Auth {
    Anonymous,
    Htpasswd {
        user: String,
        password: String,
    },
    Token {
        realm: String,
        service: String,
        issuer: String,
        rootcertbundle: PathBuf,
    },
}

/// Chooses a registry's auth and TLS before starting it; see [`Registry::builder`].
pub struct RegistryBuilder {
    auth: Auth,
    tls: bool,
    access_log: bool,
}

impl RegistryBuilder {
    /// Requires HTTP basic auth checked against a bcrypt htpasswd file holding one user.
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.auth = Auth::Htpasswd {
            user: user.to_string(),
            password: password.to_string(),
        };
        self
    }

    /// Requires bearer tokens from `issuer` (`auth: token`).
    pub fn token(mut self, issuer: &TokenIssuer) -> Self {
        self.auth = Auth::Token {
            realm: issuer.realm(),
            service: issuer.service().to_string(),
            issuer: issuer.issuer().to_string(),
            rootcertbundle: issuer.cert_path().to_path_buf(),
        };
        self
    }

    /// Serves HTTPS with a server certificate for IP 127.0.0.1 signed by a fresh test CA.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Writes an access log line per request into [`Registry::log`].
    pub fn access_log(mut self) -> Self {
        self.access_log = true;
        self
    }

    /// Starts the registry and waits until `/v2/` answers.
    pub fn start(self) -> Registry {
        let dir = Workspace::new();
        let data = dir.mkdir("data");
        let mut auth_yaml = String::new();
        let mut credentials = None;
        match &self.auth {
            Auth::Anonymous => {}
            Auth::Htpasswd { user, password } => {
                let out = run_checked(Command::new("htpasswd").args(["-Bbn", user, password]));
                let file = dir.write("htpasswd", out.stdout);
                let _ = write!(
                    auth_yaml,
                    "auth:\n  htpasswd:\n    realm: kiln-e2e\n    path: {}\n",
                    yaml_str(&file)
                );
                credentials = Some((user.clone(), password.clone()));
            }
            Auth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
            } => {
                let _ = write!(
                    auth_yaml,
                    "auth:\n  token:\n    realm: \"{realm}\"\n    service: \"{service}\"\n    \
                     issuer: \"{issuer}\"\n    rootcertbundle: {}\n",
                    yaml_str(rootcertbundle)
                );
            }
        }
        let (mut tls_yaml, mut ca_cert, mut cert_dir) = (String::new(), None, None);
        if self.tls {
            let (ca, server) = openssl::ca_and_server_cert(&dir.mkdir("pki"));
            let _ = write!(
                tls_yaml,
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_str(&server.cert),
                yaml_str(&server.key)
            );
            // The layout skopeo's --cert-dir / podman's --cert-dir expect: CA files named *.crt.
            let certs = dir.mkdir("certs");
            fs::copy(&ca.cert, certs.join("ca.crt")).expect("copying the test CA");
            ca_cert = Some(certs.join("ca.crt"));
            cert_dir = Some(certs);
        }
        let log_path = dir.join("registry.log");
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let access_off = !self.access_log;
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {access_off}\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: kiln-e2e-not-a-secret\n{tls_yaml}{auth_yaml}",
                yaml_str(&data)
            );
            let config_path = dir.write("config.yml", config);
            let log = File::create(&log_path).expect("creating the registry log");
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the registry log handle"))
                .stderr(log);
            // REGISTRY_* variables override the config file; none must leak in.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(key);
                }
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!("starting `docker-registry`: {e} (is it installed? run `.ci/setup`)")
            });
            let mut registry = Registry {
                child,
                port,
                tls: self.tls,
                ca_cert: ca_cert.clone(),
                cert_dir: cert_dir.clone(),
                credentials: credentials.clone(),
                log_path: log_path.clone(),
                data_dir: data.clone(),
                dir: None,
            };
            match registry.wait_ready() {
                Ok(()) => {
                    registry.dir = Some(dir);
                    return registry;
                }
                Err(failure) if failure.contains("address already in use") => {
                    last_failure = failure;
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}");
    }
}

/// A running `docker-registry`, killed by PID when dropped (its storage goes with it).
pub struct Registry {
    child: Child,
    port: u16,
    tls: bool,
    ca_cert: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
    credentials: Option<(String, String)>,
    log_path: PathBuf,
    data_dir: PathBuf,
    // Dropped after the child is killed (fields drop after `Drop::drop`).
    dir: Option<Workspace>,
}

impl Registry {
    /// Returns a builder for a registry without auth or TLS, to add them to.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            auth: Auth::Anonymous,
            tls: false,
            access_log: false,
        }
    }

    /// Starts a plain-HTTP registry that anyone may push to and pull from.
    pub fn anonymous() -> Self {
        Self::builder().start()
    }

    /// Starts a plain-HTTP registry that requires basic auth as `user`/`password`.
    pub fn htpasswd(user: &str, password: &str) -> Self {
        Self::builder().htpasswd(user, password).start()
    }

    /// Starts an anonymous HTTPS registry; its CA is [`Registry::ca_cert_path`].
    pub fn tls() -> Self {
        Self::builder().tls().start()
    }

    /// Starts a plain-HTTP registry that requires bearer tokens from `issuer`.
    pub fn token(issuer: &TokenIssuer) -> Self {
        Self::builder().token(issuer).start()
    }

    /// Returns `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns `http://127.0.0.1:PORT`, or `https://...` for a TLS registry.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// Returns `127.0.0.1:PORT/<repo_and_tag>`, e.g. `reference("app:v1")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host())
    }

    /// Returns whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Returns the PEM CA certificate that signed the server certificate (TLS only).
    ///
    /// Panics for a plain-HTTP registry.
    pub fn ca_cert_path(&self) -> &Path {
        self.ca_cert
            .as_deref()
            .expect("ca_cert_path() is only for a registry started with TLS")
    }

    /// Returns a directory holding only `ca.crt`, the form `--cert-dir` options take (TLS only).
    ///
    /// Panics for a plain-HTTP registry.
    pub fn cert_dir(&self) -> &Path {
        self.cert_dir
            .as_deref()
            .expect("cert_dir() is only for a registry started with TLS")
    }

    /// Returns the htpasswd user and password, when it has them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Returns `user:password` for `--creds` options (htpasswd registries only).
    ///
    /// Panics for a registry without htpasswd credentials.
    pub fn creds_arg(&self) -> String {
        let (user, password) = self
            .credentials()
            .expect("creds_arg() is only for a registry started with htpasswd");
        format!("{user}:{password}")
    }

    /// Returns the storage root (`storage.filesystem.rootdirectory`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Returns the registry's log (stdout and stderr, level warn).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        // Over TLS a plain-HTTP GET still gets Go's "400 client sent an HTTP request to an
        // HTTPS server", which is as good a sign of life as 200 or 401.
        let url = format!("http://{}/v2/", self.host());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "`docker-registry` on {} exited ({status}) while starting; log tail:\n{}",
                    self.host(),
                    tail(&self.log(), 30)
                ));
            }
            if http_get(&url).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`docker-registry` on {} did not answer `/v2/` within {STARTUP_TIMEOUT:?}; log tail:\n{}",
                    self.host(),
                    tail(&self.log(), 30)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn yaml_str(path: &Path) -> String {
    // Paths under the temp dir hold no quotes or backslashes; quote them for spaces.
    format!("\"{}\"", path.display())
}
