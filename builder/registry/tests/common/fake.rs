//! A fault-injecting fake registry: a tokio `TcpListener` on 127.0.0.1 speaking just
//! enough HTTP/1.1 by hand. Every connection serves one request and closes. TLS client
//! hellos (kiln probes loopback hosts with HTTPS first) are dropped without being recorded,
//! or, for [`Fake::start_failing_tls`], answered with a fatal TLS alert and counted.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When the request arrived.
    pub at: Instant,
}

impl Recorded {
    /// Returns the value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
}

/// What to do with a request.
pub enum Reply {
    /// Answer.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Close,
}

impl Reply {
    /// An answer with `status` and no body.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Respond { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        if let Self::Respond { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }
}

type Handler = dyn Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync;

/// A running fake; stops when dropped.
pub struct Fake {
    /// `127.0.0.1:<port>`.
    pub host: String,
    log: Arc<Mutex<Vec<Recorded>>>,
    tls_hellos: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// A fatal TLS 1.2 `handshake_failure` alert record.
const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

impl Fake {
    /// Starts a fake answering with `handler(request, earlier requests)`.
    pub async fn start(
        handler: impl Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(false, handler).await
    }

    /// Like [`Fake::start`], but a TLS handshake fails the way a server with an unusable
    /// certificate or no common cipher makes it fail: with a fatal alert.
    pub async fn start_failing_tls(
        handler: impl Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(true, handler).await
    }

    async fn start_with(
        alert_tls: bool,
        handler: impl Fn(&Recorded, &[Recorded]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let tls_hellos = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (task_log, task_hellos) = (log.clone(), tls_hellos.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, handler) = (task_log.clone(), handler.clone());
                let tls = (task_hellos.clone(), alert_tls);
                tokio::spawn(async move {
                    let _ = serve(stream, log, handler, tls).await;
                });
            }
        });
        Self {
            host,
            log,
            tls_hellos,
            task,
        }
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Returns how many TLS client hellos arrived.
    pub fn tls_hellos(&self) -> usize {
        self.tls_hellos.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    log: Arc<Mutex<Vec<Recorded>>>,
    handler: Arc<Handler>,
    (hellos, alert_tls): (Arc<AtomicUsize>, bool),
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] == 0x16 {
            // A TLS ClientHello: this fake speaks plain HTTP only.
            hellos.fetch_add(1, Ordering::SeqCst);
            if alert_tls {
                stream.write_all(&HANDSHAKE_FAILURE_ALERT).await?;
            }
            return Ok(());
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let req = Recorded {
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    };
    let reply = {
        let mut log = log.lock().unwrap();
        let reply = handler(&req, &log);
        log.push(req.clone());
        reply
    };
    match reply {
        Reply::Close => Ok(()),
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut out = format!("HTTP/1.1 {status} Fake\r\nConnection: close\r\n");
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            for (n, v) in headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            out.push_str("\r\n");
            stream.write_all(out.as_bytes()).await?;
            if req.method != "HEAD" {
                stream.write_all(&body).await?;
            }
            stream.shutdown().await
        }
    }
}
