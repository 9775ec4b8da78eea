//! A loopback HTTP/1.1 proxy in front of a real registry that holds one kind of request
//! forever, or cuts its connection: the faults a real registry cannot produce on demand,
//! for "kill the client in the middle of a push" and "the connection broke after k of n
//! blobs" tests. Everything else is forwarded byte for byte, and every request line is
//! recorded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What happens to a request the proxy's rule catches.
#[derive(Clone, Copy)]
enum Fault {
    /// Read, never forwarded, never answered.
    Stall,
    /// Read, then the client's connection is closed without an answer.
    Close,
}

/// Which requests meet the fault: those whose request line contains `pattern`, after the
/// first `pass` of them went through.
struct Rule {
    pattern: String,
    pass: usize,
    fault: Fault,
    matched: AtomicUsize,
}

/// A proxy on 127.0.0.1 that forwards to `127.0.0.1:<upstream>` and stalls (or cuts) the
/// requests its rule catches.
pub struct StallProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl StallProxy {
    /// Starts the proxy; requests whose line (`PUT /v2/app/manifests/1 HTTP/1.1`) contains
    /// `stall_on` are read but never forwarded.
    pub fn start(upstream: u16, stall_on: &str) -> Self {
        Self::with_rule(upstream, Some((stall_on, 0, Fault::Stall)))
    }

    /// Like [`StallProxy::start`], but the first `pass` matching requests are forwarded.
    pub fn stall_after(upstream: u16, pattern: &str, pass: usize) -> Self {
        Self::with_rule(upstream, Some((pattern, pass, Fault::Stall)))
    }

    /// Forwards the first `pass` requests whose line contains `pattern`; for every later
    /// one, closes the client's connection without forwarding or answering it.
    pub fn close_after(upstream: u16, pattern: &str, pass: usize) -> Self {
        Self::with_rule(upstream, Some((pattern, pass, Fault::Close)))
    }

    /// Forwards everything, recording each request line.
    pub fn recording(upstream: u16) -> Self {
        Self::with_rule(upstream, None)
    }

    fn with_rule(upstream: u16, rule: Option<(&str, usize, Fault)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = Arc::new(rule.map(|(pattern, pass, fault)| Rule {
            pattern: pattern.to_owned(),
            pass,
            fault,
            matched: AtomicUsize::new(0),
        }));
        let (st, sp, sn) = (stalled.clone(), stop.clone(), seen.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (st, sp, sn, rule) = (st.clone(), sp.clone(), sn.clone(), rule.clone());
                        thread::spawn(move || serve(client, upstream, &rule, &st, &sp, &sn));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            stalled,
            stop,
            seen,
        }
    }

    /// Returns the proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until a request has been stalled (or cut); returns whether one was within
    /// `timeout`.
    pub fn wait_stalled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stalled.load(Ordering::SeqCst) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Returns the request lines forwarded, stalled or cut so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    client: TcpStream,
    upstream: u16,
    rule: &Option<Rule>,
    stalled: &AtomicBool,
    stop: &AtomicBool,
    seen: &Mutex<Vec<String>>,
) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    // A TLS ClientHello (kiln probes loopback registries with HTTPS first): closing at once
    // says "no TLS here"; waiting for a request line would hold the probe until its timeout.
    if reader.fill_buf().is_ok_and(|b| b.first() == Some(&0x16)) {
        let _ = server.shutdown(Shutdown::Both);
        return;
    }
    let mut server = server;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let request_line = text.lines().next().unwrap_or_default().to_owned();
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request_line.clone());
        if let Some(rule) = rule
            && request_line.contains(&rule.pattern)
            && rule.matched.fetch_add(1, Ordering::SeqCst) >= rule.pass
        {
            stalled.store(true, Ordering::SeqCst);
            match rule.fault {
                Fault::Stall => {
                    while !stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(50));
                    }
                }
                Fault::Close => {
                    let _ = reader.get_ref().shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                }
            }
            return;
        }
        let header = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if server.write_all(&head).is_err() {
            return;
        }
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let forwarded = if chunked {
            forward_chunked(&mut reader, &mut server)
        } else {
            let len: u64 = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            std::io::copy(&mut (&mut reader).take(len), &mut server).is_ok_and(|n| n == len)
        };
        if !forwarded {
            return;
        }
    }
}

/// Forwards a chunked body up to and including its last (empty) chunk and trailers.
fn forward_chunked(reader: &mut impl BufRead, server: &mut TcpStream) -> bool {
    loop {
        let mut size_line = Vec::new();
        if reader.read_until(b'\n', &mut size_line).unwrap_or(0) == 0 {
            return false;
        }
        let text = String::from_utf8_lossy(&size_line);
        let Ok(size) = u64::from_str_radix(text.trim().split(';').next().unwrap_or(""), 16) else {
            return false;
        };
        if server.write_all(&size_line).is_err() {
            return false;
        }
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = Vec::new();
                if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0
                    || server.write_all(&line).is_err()
                {
                    return false;
                }
                if line == b"\r\n" || line == b"\n" {
                    return true;
                }
            }
        }
        // The chunk and its CRLF.
        if std::io::copy(&mut reader.take(size + 2), server).map_or(true, |n| n != size + 2) {
            return false;
        }
    }
}
