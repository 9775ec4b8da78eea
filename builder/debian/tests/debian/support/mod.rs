//! Test support: throwaway OpenPGP keys and cleartext signatures made with rpgp, and a
//! minimal HTTP server standing in for a Debian mirror (for fault injection only; the real
//! mirror is exercised by `real_mirror.rs`).

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use kiln_debian::Keyring;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// A `Date` for test `Release` files: Sat, 12 Sep 2026 07:55:41 UTC.
pub const DATE: i64 = 1_789_199_741;
/// A "now" one hour after [`DATE`].
pub const NOW: i64 = DATE + 3600;

/// Returns `err` and each of its sources, joined by `: `, as the CLI's chain shows them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Returns an Ed25519 signing key generated from `seed`.
pub fn key(seed: u64) -> SignedSecretKey {
    key_of_type(seed, KeyType::Ed25519Legacy)
}

/// Returns a signing key of `key_type` generated from `seed`.
pub fn key_of_type(seed: u64, key_type: KeyType) -> SignedSecretKey {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(key_type)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("kiln test key {seed} <test@example.invalid>"));
    params.build().unwrap().generate(&mut rng).unwrap()
}

/// Returns a keyring holding the public halves of `keys`, loaded from binary key bytes as
/// Debian ships them.
pub fn keyring(keys: &[&SignedSecretKey]) -> Keyring {
    let mut ring = Keyring::default();
    for k in keys {
        let public = SignedPublicKey::from((*k).clone());
        ring.add_bytes("test.gpg", &public.to_bytes().unwrap())
            .unwrap();
    }
    ring
}

/// Returns the public half of `key` as binary key bytes (a `.gpg` keyring file).
pub fn public_bytes(key: &SignedSecretKey) -> Vec<u8> {
    SignedPublicKey::from(key.clone()).to_bytes().unwrap()
}

/// Returns `text` cleartext-signed by each of `keys` with `hash`, created at [`DATE`].
pub fn sign_with(text: &str, keys: &[&SignedSecretKey], hash: HashAlgorithm) -> String {
    sign_expiring(text, keys, hash, None)
}

/// Returns `text` cleartext-signed by each of `keys` with `hash`, created at [`DATE`], the
/// signatures expiring `lifetime` seconds later when given.
pub fn sign_expiring(
    text: &str,
    keys: &[&SignedSecretKey],
    hash: HashAlgorithm,
    lifetime: Option<u32>,
) -> String {
    let msg = CleartextSignedMessage::new_many(text, |normalized| {
        keys.iter()
            .map(|k| {
                let mut config =
                    SignatureConfig::v4(SignatureType::Text, k.primary_key.algorithm(), hash);
                config.hashed_subpackets = vec![
                    Subpacket::regular(SubpacketData::SignatureCreationTime(
                        Timestamp::from_secs(DATE as u32),
                    ))?,
                    Subpacket::regular(SubpacketData::IssuerFingerprint(k.fingerprint()))?,
                ];
                if let Some(secs) = lifetime {
                    config.hashed_subpackets.push(Subpacket::regular(
                        SubpacketData::SignatureExpirationTime(pgp::types::Duration::from_secs(
                            secs,
                        )),
                    )?);
                }
                config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
                    k.legacy_key_id(),
                ))?];
                config.sign(&k.primary_key, &Password::empty(), normalized.as_bytes())
            })
            .collect()
    })
    .unwrap();
    msg.to_armored_string(ArmorOptions::default()).unwrap()
}

/// Returns `text` signed by `key` over SHA-256.
pub fn sign(text: &str, key: &SignedSecretKey) -> String {
    sign_with(text, &[key], HashAlgorithm::Sha256)
}

/// A tiny HTTP/1.1 server answering GETs from a path → body map (404 otherwise); a
/// queued raw response for a path is sent (once) before the map is consulted, to inject
/// redirects, malformed headers or altered bytes.
pub struct FakeMirror {
    /// The mirror root, `http://127.0.0.1:<port>/debian/`.
    pub url: Url,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    raw: Arc<Mutex<HashMap<String, VecDeque<Vec<u8>>>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeMirror {
    /// Starts serving on a free local port.
    pub async fn start() -> FakeMirror {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let raw: Arc<Mutex<HashMap<String, VecDeque<Vec<u8>>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, q, r) = (files.clone(), raw.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (f, q, r) = (f.clone(), q.clone(), r.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    r.lock().unwrap().push(path.clone());
                    let queued = q
                        .lock()
                        .unwrap()
                        .get_mut(&path)
                        .and_then(VecDeque::pop_front);
                    let body = f.lock().unwrap().get(&path).cloned();
                    let response = match (queued, body) {
                        (Some(raw), _) => raw,
                        (None, body) => match body {
                        Some(body) => {
                            let mut out = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            out.extend_from_slice(&body);
                            out
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                        },
                    };
                    let _ = sock.write_all(&response).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeMirror {
            url: Url::parse(&format!("http://127.0.0.1:{port}/debian/")).unwrap(),
            files,
            raw,
            requests,
        }
    }

    /// Queues `response` (status line, headers and body, sent verbatim) as the next answer
    /// for `path` under the mirror root; later requests get the next queued one, then `put`'s.
    pub fn queue_raw(&self, path: &str, response: impl Into<Vec<u8>>) {
        self.raw
            .lock()
            .unwrap()
            .entry(format!("/debian/{path}"))
            .or_default()
            .push_back(response.into());
    }

    /// Queues a `200 OK` carrying `body` as the next answer for `path`.
    pub fn queue_body(&self, path: &str, body: &[u8]) {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        self.queue_raw(path, out);
    }

    /// Returns how many times `path` (under the mirror root) was requested.
    pub fn hits(&self, path: &str) -> usize {
        let full = format!("/debian/{path}");
        self.requests().iter().filter(|r| **r == full).count()
    }

    /// Serves `body` at `path` under the mirror root (`dists/trixie/InRelease`).
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.files
            .lock()
            .unwrap()
            .insert(format!("/debian/{path}"), body.into());
    }

    /// Returns the paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
