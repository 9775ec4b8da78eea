//! TLS to a registry with a private CA: `ca_files`, the `certs.d` layout, and the
//! certificate error without either.

use std::path::Path;
use std::process::Command;

use kiln_registry::{Client, RegistryError, RegistrySettings, TransportKind};

use crate::common::{Options, Registry, blob, noise, settings};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `ca.crt`, and `server.crt`/`server.key` for IP 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
    ];
    ca.extend(ec);
    ca.extend([
        "-subj",
        "/CN=kiln test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec![
        "req",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ];
    csr.extend(ec);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    );
}

async fn push(reg: &Registry, s: RegistrySettings, dir: &Path) -> Result<(), RegistryError> {
    let c = Client::new(s).unwrap();
    let repo = reg.reference("tls/app");
    let bytes = noise(3000, 7);
    let (path, d) = blob(dir, "layer", &bytes);
    c.push_blob(&repo, &d, 3000, &path, None, &|_| {}).await?;
    assert_eq!(c.get_blob_bytes(&repo, &d, 3000).await?, bytes);
    Ok(())
}

#[tokio::test]
async fn private_ca_from_ca_files_or_certs_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    make_certs(tmp.path());
    let reg = Registry::start(Options {
        tls: Some((tmp.path().join("server.crt"), tmp.path().join("server.key"))),
        ..Options::default()
    });

    let err = push(&reg, settings(), tmp.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Transport {
                kind: TransportKind::Tls,
                ..
            }
        ),
        "expected a certificate error, got {err}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(err.hint().unwrap().contains("--registry-ca"));

    let s = RegistrySettings {
        ca_files: vec![tmp.path().join("ca.crt")],
        ..settings()
    };
    push(&reg, s, tmp.path()).await.unwrap();

    let certs_d = tmp.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&reg.host)).unwrap();
    std::fs::copy(
        tmp.path().join("ca.crt"),
        certs_d.join(&reg.host).join("ca.crt"),
    )
    .unwrap();
    let s = RegistrySettings {
        certs_dirs: vec![tmp.path().join("absent"), certs_d.clone()],
        ..settings()
    };
    push(&reg, s, tmp.path()).await.unwrap();

    // The roots are per host: the same CA filed under another host does not help.
    let wrong = tmp.path().join("wrong.d");
    std::fs::create_dir_all(wrong.join("127.0.0.1:1")).unwrap();
    std::fs::copy(tmp.path().join("ca.crt"), wrong.join("127.0.0.1:1/ca.crt")).unwrap();
    let s = RegistrySettings {
        certs_dirs: vec![wrong],
        ..settings()
    };
    assert!(push(&reg, s, tmp.path()).await.is_err());
}
