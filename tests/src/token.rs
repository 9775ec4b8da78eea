//! A bearer-token issuer for distribution's `auth: token` mode (the Docker token
//! authentication spec: <https://distribution.github.io/distribution/spec/auth/token/>).
//!
//! `GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]` answers
//! `{"token": JWT, "access_token": JWT, "expires_in": 300}`.
//!
//! Policy: a request whose HTTP basic credentials match the configured user and password
//! is granted every action it asks for. A request with credentials that do not match gets
//! 401. A request without credentials (anonymous) gets a token granting only `pull` on
//! the repositories it asks for (or nothing at all when built with
//! [`TokenIssuer::with_anonymous_pull`]`(.., false)`).
//!
//! Tokens are RS256 JWTs whose header carries the signing certificate in `x5c`; the
//! registry verifies that chain against its `rootcertbundle`, which is [`TokenIssuer::cert_path`].

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use tempfile::TempDir;

use crate::openssl;

/// The `service` name the issuer and registries configured with it use.
const SERVICE: &str = "kiln-e2e-registry";
/// The `iss` claim of every token, and the registry's `issuer` setting.
const ISSUER: &str = "kiln-e2e-token-issuer";

/// One access grant: a resource type, name and actions (as in a token's `access` claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The resource type, usually `repository`.
    pub kind: String,
    /// The resource name, e.g. `app/hello`.
    pub name: String,
    /// The actions, e.g. `["pull", "push"]`.
    pub actions: Vec<String>,
}

impl Access {
    /// Parses one scope `TYPE:NAME:ACTION[,ACTION...]`; the name may itself hold colons.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// What the issuer saw in one request, recorded in arrival order.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, query included.
    pub path: String,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// Every scope asked for: `scope` parameters, split on spaces, in order.
    pub scopes: Vec<String>,
    /// The `account` query parameter.
    pub account: Option<String>,
    /// The user name from HTTP basic auth, when present.
    pub user: Option<String>,
    /// Whether the request carried an `Authorization` header at all.
    pub auth_present: bool,
    /// Whether it carried the configured user and password.
    pub authenticated: bool,
    /// The HTTP status the issuer answered.
    pub status: u16,
    /// What the token it returned granted (empty when refused).
    pub granted: Vec<Access>,
}

struct Config {
    user: String,
    password: String,
    anonymous_pull: bool,
    cert: PathBuf,
    key: PathBuf,
    x5c: String,
}

/// An account every issuer accepts, granted `pull` only: a user without the push right.
pub const READER: (&str, &str) = ("reader", "reader-pass-4c1e");

/// A token server on 127.0.0.1 that runs on a thread until dropped.
pub struct TokenIssuer {
    addr: SocketAddr,
    config: Arc<Config>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl TokenIssuer {
    /// Starts an issuer that accepts `user`/`password` and lets anonymous clients pull.
    pub fn new(user: &str, password: &str) -> Self {
        Self::with_anonymous_pull(user, password, true)
    }

    /// Starts an issuer that accepts `user`/`password`; anonymous clients get `pull` on
    /// the repositories they ask for when `anonymous_pull`, else a token granting nothing.
    pub fn with_anonymous_pull(user: &str, password: &str, anonymous_pull: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kiln-e2e-token-")
            .tempdir()
            .expect("creating the token issuer's directory");
        let pair = openssl::signing_cert(dir.path(), ISSUER);
        let config = Arc::new(Config {
            user: user.to_string(),
            password: password.to_string(),
            anonymous_pull,
            x5c: openssl::pem_cert_base64_der(&pair.cert),
            cert: pair.cert,
            key: pair.key,
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token issuer");
        let addr = listener.local_addr().expect("token issuer address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (config, requests, stop) = (config.clone(), requests.clone(), stop.clone());
            thread::Builder::new()
                .name("kiln-e2e-token-issuer".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            serve(stream, &config, &requests);
                        }
                    }
                })
                .expect("starting the token issuer thread")
        };
        Self {
            addr,
            config,
            requests,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Returns the realm URL, `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Returns the `service` name (the tokens' `aud`).
    pub fn service(&self) -> &str {
        SERVICE
    }

    /// Returns the `iss` claim of the tokens.
    pub fn issuer(&self) -> &str {
        ISSUER
    }

    /// Returns the PEM certificate that signs the tokens (the registry's `rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.config.cert
    }

    /// Returns every request received so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("token request log").clone()
    }

    /// Returns every scope asked for so far, oldest first.
    pub fn scopes_requested(&self) -> Vec<String> {
        self.requests().into_iter().flat_map(|r| r.scopes).collect()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.requests.lock().expect("token request log").clear();
    }

    /// Mints a token for subject `sub` granting `access`, valid for 300 s.
    pub fn mint(&self, sub: &str, access: &[Access]) -> String {
        mint(&self.config, sub, access)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, config: &Config, log: &Mutex<Vec<TokenRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.trim().is_empty() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':')
                    && name.trim().eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_string());
                }
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let params = parse_query(query);
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let credentials = authorization.as_deref().and_then(basic_credentials);
    let owner = credentials
        .as_ref()
        .is_some_and(|(u, p)| *u == config.user && *p == config.password);
    let reader = credentials
        .as_ref()
        .is_some_and(|(u, p)| (u.as_str(), p.as_str()) == READER);
    let authenticated = owner || reader;
    let mut record = TokenRequest {
        method: method.clone(),
        path: path.clone(),
        service: param("service"),
        scopes: scopes.clone(),
        account: param("account"),
        user: credentials.as_ref().map(|(u, _)| u.clone()),
        auth_present: authorization.is_some(),
        authenticated,
        status: 200,
        granted: Vec::new(),
    };
    let (status, body) = if route != "/token" || method != "GET" {
        (
            404,
            json!({"errors": [{"code": "NOT_FOUND", "message": "only GET /token"}]}),
        )
    } else if authorization.is_some() && !authenticated {
        (
            401,
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}),
        )
    } else {
        record.granted = scopes
            .iter()
            .filter_map(|s| Access::parse_scope(s))
            .filter_map(|mut access| {
                if !authenticated {
                    let may_pull = config.anonymous_pull && access.kind == "repository";
                    access.actions.retain(|a| may_pull && a == "pull");
                } else if reader {
                    access.actions.retain(|a| a == "pull");
                }
                (!access.actions.is_empty()).then_some(access)
            })
            .collect();
        let sub = match (owner, reader) {
            (true, _) => config.user.as_str(),
            (_, true) => READER.0,
            _ => "",
        };
        let token = mint(config, sub, &record.granted);
        (
            200,
            json!({"token": token, "access_token": token, "expires_in": 300}),
        )
    };
    record.status = status;
    log.lock().expect("token request log").push(record);
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let challenge = if status == 401 {
        "WWW-Authenticate: Basic realm=\"kiln-e2e\"\r\n"
    } else {
        ""
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

fn mint(config: &Config, sub: &str, access: &[Access]) -> String {
    static JTI: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [config.x5c]});
    let access: Vec<_> = access
        .iter()
        .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
        .collect();
    let claims = json!({
        "iss": ISSUER,
        "sub": sub,
        // distribution 2.8 reads `aud` as a single string.
        "aud": SERVICE,
        "exp": now.as_secs() + 300,
        // Back-dated so a registry whose clock reads a little behind still accepts it.
        "nbf": now.as_secs() - 10,
        "iat": now.as_secs(),
        "jti": format!("kiln-e2e-{}-{}", now.as_nanos(), JTI.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = openssl::sign_sha256(&config.key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scopes_and_queries() {
        let a = Access::parse_scope("repository:app/hello:pull,push").unwrap();
        assert_eq!(a.kind, "repository");
        assert_eq!(a.name, "app/hello");
        assert_eq!(a.actions, ["pull", "push"]);
        let q = parse_query("service=x&scope=repository%3Aa%3Apull%2Cpush+repository%3Ab%3Apull&k");
        assert_eq!(q[1].1, "repository:a:pull,push repository:b:pull");
        assert_eq!(q[2], ("k".to_string(), String::new()));
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn decodes_basic_credentials() {
        let header = format!("Basic {}", STANDARD.encode("alice:s3cr:et"));
        assert_eq!(
            basic_credentials(&header),
            Some(("alice".to_string(), "s3cr:et".to_string()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
    }
}
