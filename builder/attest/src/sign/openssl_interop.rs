//! Interop with the openssl command line: keys it makes are read, signatures cross-verify
//! both ways, and what kiln writes openssl reads. Skipped when `openssl` is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Option<Scratch> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipping: `openssl` is not installed");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kiln-attest-openssl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Scratch(dir))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Runs openssl in the scratch directory and returns stdout, failing on a non-zero exit.
    fn openssl(&self, args: &[&str]) -> Vec<u8> {
        let Output {
            status,
            stdout,
            stderr,
        } = Command::new("openssl")
            .args(args)
            .current_dir(&self.0)
            .output()
            .unwrap();
        assert!(
            status.success(),
            "openssl {args:?}: {status}\n{}",
            String::from_utf8_lossy(&stderr)
        );
        stdout
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn public_from_openssl(dir: &Scratch, key: &Path) -> PublicKey {
    let pem = dir.openssl(&["ec", "-in", key.to_str().unwrap(), "-pubout"]);
    PublicKey::from_pem(&pem).unwrap()
}

#[test]
fn reads_openssl_sec1_and_pkcs8_keys() {
    let Some(dir) = Scratch::new() else { return };
    let sec1 = dir.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"]);
    assert!(sec1.starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
    let sec1_path = dir.write("sec1.pem", &sec1);
    let expected = public_from_openssl(&dir, &sec1_path);

    let key = PrivateKey::from_pem(&sec1, None).unwrap();
    assert_eq!(key.public_key(), expected);

    let pkcs8 = dir.openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem"]);
    assert!(pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        PrivateKey::from_pem(&pkcs8, None).unwrap().public_key(),
        expected
    );

    // Without -noout openssl writes an `EC PARAMETERS` block first.
    let with_params = dir.openssl(&["ecparam", "-name", "prime256v1", "-genkey"]);
    assert!(with_params.starts_with(b"-----BEGIN EC PARAMETERS-----"));
    let path = dir.write("with-params.pem", &with_params);
    let key = PrivateKey::from_pem(&with_params, None).unwrap();
    assert_eq!(key.public_key(), public_from_openssl(&dir, &path));
}

#[test]
fn openssl_verifies_kiln_signatures() {
    let Some(dir) = Scratch::new() else { return };
    let key = PrivateKey::generate();
    dir.write("pub.pem", key.public_key().to_pem());
    dir.write("msg", b"the simple-signing payload");
    dir.write("sig.der", key.sign(b"the simple-signing payload"));
    let out = dir.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "pub.pem",
        "-signature",
        "sig.der",
        "msg",
    ]);
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");

    dir.write("other", b"another message");
    let status = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "other",
        ])
        .current_dir(&dir.0)
        .output()
        .unwrap()
        .status;
    assert!(
        !status.success(),
        "openssl accepted a signature over another message"
    );
}

#[test]
fn kiln_verifies_openssl_signatures() {
    let Some(dir) = Scratch::new() else { return };
    dir.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "key.pem",
    ]);
    let public = public_from_openssl(&dir, &dir.path("key.pem"));
    dir.write("msg", b"payload to sign");
    dir.openssl(&[
        "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.der", "msg",
    ]);
    let signature = dir.read("sig.der");
    public.verify(b"payload to sign", &signature).unwrap();
    assert!(matches!(
        public.verify(b"payload to sigN", &signature),
        Err(SignError::SignatureMismatch { .. })
    ));
}

#[test]
fn openssl_reads_what_kiln_writes() {
    let Some(dir) = Scratch::new() else { return };
    let key = PrivateKey::generate();
    let ours = key.public_key().to_pem();
    dir.write("pub.pem", &ours);
    let theirs = dir.openssl(&["ec", "-pubin", "-in", "pub.pem", "-pubout"]);
    assert_eq!(String::from_utf8(theirs).unwrap(), ours);

    dir.write("key.pem", key.to_pem(None).unwrap());
    let derived = dir.openssl(&["pkey", "-in", "key.pem", "-pubout"]);
    assert_eq!(String::from_utf8(derived).unwrap(), ours);

    let fingerprint = dir.openssl(&["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER"]);
    let digest = kiln_oci::Digest::of(&fingerprint);
    assert_eq!(key.public_key().key_id(), digest.hex());
}
