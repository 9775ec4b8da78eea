//! Test certificates and signatures made with the `openssl` command-line tool.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cmd::run_checked;

/// A certificate and its private key, both PEM files.
#[derive(Debug, Clone)]
pub(crate) struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl() -> Command {
    Command::new("openssl")
}

/// Makes a CA (`ca.crt`, `ca.key`) and a server certificate for 127.0.0.1
/// (`server.crt`, `server.key`, IP SAN 127.0.0.1) signed by it, in `dir`.
pub(crate) fn ca_and_server_cert(dir: &Path) -> (CertPair, CertPair) {
    let ca = CertPair {
        cert: dir.join("ca.crt"),
        key: dir.join("ca.key"),
    };
    run_checked(
        openssl()
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "3", "-subj", "/CN=kiln-e2e test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca.key)
            .arg("-out")
            .arg(&ca.cert),
    );
    let server = CertPair {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    let csr = dir.join("server.csr");
    run_checked(
        openssl()
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&server.key)
            .arg("-out")
            .arg(&csr),
    );
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writing the server certificate extensions");
    run_checked(
        openssl()
            .args(["x509", "-req", "-days", "3", "-set_serial", "2"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca.cert)
            .arg("-CAkey")
            .arg(&ca.key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&server.cert),
    );
    (ca, server)
}

/// Makes a self-signed RSA 2048 certificate (`token.crt`, `token.key`) in `dir`, used
/// to sign RS256 tokens.
pub(crate) fn signing_cert(dir: &Path, common_name: &str) -> CertPair {
    let pair = CertPair {
        cert: dir.join("token.crt"),
        key: dir.join("token.key"),
    };
    run_checked(
        openssl()
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
            ])
            .arg("-subj")
            .arg(format!("/CN={common_name}"))
            .arg("-keyout")
            .arg(&pair.key)
            .arg("-out")
            .arg(&pair.cert),
    );
    pair
}

/// Returns the standard-base64 DER of the first certificate in the PEM file `cert`
/// (the body of a PEM block is exactly that, split into lines).
pub(crate) fn pem_cert_base64_der(cert: &Path) -> String {
    let pem = fs::read_to_string(cert).expect("reading a PEM certificate");
    pem.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect()
}

/// Signs `data` with SHA-256 and the PEM key `key` (RSASSA-PKCS1-v1_5 for an RSA key,
/// which is exactly JWS RS256) and returns the raw signature.
pub(crate) fn sign_sha256(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = openssl()
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting `openssl dgst`");
    child
        .stdin
        .take()
        .expect("openssl stdin")
        .write_all(data)
        .expect("writing to `openssl dgst`");
    let output = child
        .wait_with_output()
        .expect("waiting for `openssl dgst`");
    assert!(
        output.status.success(),
        "`openssl dgst -sha256 -sign` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
