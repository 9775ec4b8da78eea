//! A Java KeyStore (JKS) of trusted certificates, written by hand: the `cacerts` trust store
//! Debian's `ca-certificates-java` builds in a maintainer script (which kiln never runs).
//!
//! Format (OpenJDK `sun.security.provider.JavaKeyStore`, big-endian): magic `0xFEEDFEED`,
//! version 2, entry count; per trusted-certificate entry: tag 2, alias (Java modified
//! UTF-8 with a u16 length), creation time (u64 milliseconds), certificate type `X.509`,
//! u32 length and the DER bytes; then SHA-1 over the password as UTF-16BE, the bytes
//! `Mighty Aphrodite` and everything before the digest.

use base64::Engine;
use sha1::{Digest, Sha1};

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TRUSTED_CERT: u32 = 2;
const WHITENER: &[u8] = b"Mighty Aphrodite";

/// Returns the JKS bytes holding `entries` (`(alias, DER certificate)`) as trusted
/// certificates, in the given order, each created at `millis`, sealed with `password`.
pub fn write_jks(entries: &[(String, Vec<u8>)], password: &str, millis: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (alias, der) in entries {
        out.extend_from_slice(&TRUSTED_CERT.to_be_bytes());
        write_utf(&mut out, alias);
        out.extend_from_slice(&millis.to_be_bytes());
        write_utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let digest = seal(password, &out);
    out.extend_from_slice(&digest);
    out
}

/// Returns the integrity digest of a keystore whose bytes before the digest are `body`.
pub fn seal(password: &str, body: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(WHITENER);
    h.update(body);
    h.finalize().into()
}

/// `DataOutputStream.writeUTF`: modified UTF-8 (NUL as two bytes, supplementary characters
/// as two three-byte surrogates) with a u16 length. Aliases longer than 65535 bytes are cut.
fn write_utf(out: &mut Vec<u8>, s: &str) {
    let mut bytes = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => bytes.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                bytes.push(0xC0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                bytes.push(0xE0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    bytes.truncate(u16::MAX as usize);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(&bytes);
}

/// Returns the DER bytes of every `CERTIFICATE` block of `pem`, in order, or `None` when a
/// block is unterminated or not base64.
pub fn pem_certificates(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = String::from_utf8_lossy(pem);
    let mut certs = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match &mut body {
            None if line == "-----BEGIN CERTIFICATE-----" => body = Some(String::new()),
            None => {}
            Some(b) if line == "-----END CERTIFICATE-----" => {
                certs.push(base64::engine::general_purpose::STANDARD.decode(b).ok()?);
                body = None;
            }
            Some(b) => b.push_str(line),
        }
    }
    body.is_none().then_some(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back what [`write_jks`] writes, checking the digest: `(alias, millis, der)`.
    fn parse(bytes: &[u8], password: &str) -> Vec<(String, u64, Vec<u8>)> {
        let (body, digest) = bytes.split_at(bytes.len() - 20);
        assert_eq!(digest, seal(password, body), "digest");
        let mut pos = 0;
        let mut take = |n: usize| {
            let s = &body[pos..pos + n];
            pos += n;
            s
        };
        let u32_of = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
        assert_eq!(u32_of(take(4)), MAGIC);
        assert_eq!(u32_of(take(4)), VERSION);
        let count = u32_of(take(4));
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_of(take(4)), TRUSTED_CERT);
            let n = u16::from_be_bytes(take(2).try_into().unwrap()) as usize;
            let alias = String::from_utf8_lossy(take(n)).into_owned();
            let millis = u64::from_be_bytes(take(8).try_into().unwrap());
            let n = u16::from_be_bytes(take(2).try_into().unwrap()) as usize;
            assert_eq!(take(n), b"X.509");
            let n = u32_of(take(4)) as usize;
            out.push((alias, millis, take(n).to_vec()));
        }
        assert_eq!(pos, body.len(), "trailing bytes");
        out
    }

    /// Returns a self-signed certificate from the host's openssl, if there is one.
    fn openssl_cert(dir: &std::path::Path, cn: &str) -> Option<Vec<u8>> {
        let pem = dir.join(format!("{cn}.pem"));
        let ok = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj"])
            .arg(format!("/CN={cn}"))
            .arg("-keyout")
            .arg(dir.join(format!("{cn}.key")))
            .arg("-out")
            .arg(&pem)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| std::fs::read(&pem).unwrap())
    }

    #[test]
    fn round_trips_with_digest_and_modified_utf8() {
        let entries = vec![
            ("debian:a.crt".to_owned(), vec![0x30, 0x03, 1, 2, 3]),
            ("debian:b\u{0}é.crt".to_owned(), vec![0x30, 0x00]),
        ];
        let bytes = write_jks(&entries, "changeit", 1_700_000_000_000);
        let back = parse(&bytes, "changeit");
        assert_eq!(back.len(), 2);
        assert_eq!(
            back[0],
            (
                "debian:a.crt".into(),
                1_700_000_000_000,
                entries[0].1.clone()
            )
        );
        // NUL and é are two bytes each in modified UTF-8 (NUL is C0 80, not 00).
        let mut utf = Vec::new();
        write_utf(&mut utf, "b\u{0}é");
        assert_eq!(utf, [0, 5, b'b', 0xC0, 0x80, 0xC3, 0xA9]);
        let (body, digest) = bytes.split_at(bytes.len() - 20);
        assert_ne!(digest, seal("wrong", body));
    }

    #[test]
    fn pem_blocks_decode_and_bad_ones_are_refused() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nMAMB\nAgM=\n-----END CERTIFICATE-----\n\
-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(pem).unwrap(),
            [vec![0x30, 0x03, 1, 2, 3], vec![0x30, 0x00]]
        );
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nMAA=\n").is_none());
        assert!(
            pem_certificates(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
                .is_none()
        );
    }

    /// With real certificates, the host's `keytool` (when there is one) lists every entry.
    #[test]
    fn keytool_reads_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let Some(a) = openssl_cert(dir.path(), "kiln-a") else {
            eprintln!("skipped: no openssl on the host");
            return;
        };
        let b = openssl_cert(dir.path(), "kiln-b").unwrap();
        let mut entries = Vec::new();
        for (name, pem) in [("a", a), ("b", b)] {
            let der = pem_certificates(&pem).unwrap().remove(0);
            entries.push((format!("debian:{name}.crt"), der));
        }
        let store = dir.path().join("cacerts");
        std::fs::write(&store, write_jks(&entries, "changeit", 0)).unwrap();
        assert_eq!(parse(&std::fs::read(&store).unwrap(), "changeit").len(), 2);
        let Ok(out) = std::process::Command::new("keytool")
            .args(["-list", "-storepass", "changeit", "-keystore"])
            .arg(&store)
            .output()
        else {
            eprintln!("skipped: no keytool on the host");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("2 entries"), "{text}");
        assert!(
            text.contains("debian:a.crt") && text.contains("debian:b.crt"),
            "{text}"
        );
        assert!(text.contains("trustedCertEntry"), "{text}");
    }
}
