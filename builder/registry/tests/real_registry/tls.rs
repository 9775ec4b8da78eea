//! TLS to a registry with a private CA: `ca_files`, the `certs.d` layout, and the
//! certificate error without either.

use std::path::Path;

use kiln_e2e::Registry;
use kiln_registry::{Client, RegistryError, RegistrySettings, TransportKind};

use crate::common::{blob, noise, reference, settings};

async fn push(reg: &Registry, s: RegistrySettings, dir: &Path) -> Result<(), RegistryError> {
    let c = Client::new(s).unwrap();
    let repo = reference(reg, "tls/app");
    let bytes = noise(3000, 7);
    let (path, d) = blob(dir, "layer", &bytes);
    c.push_blob(&repo, &d, 3000, &path, None, &|_| {}).await?;
    assert_eq!(c.get_blob_bytes(&repo, &d, 3000).await?, bytes);
    Ok(())
}

#[tokio::test]
async fn private_ca_from_ca_files_or_certs_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::tls();

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
    assert!(err.hint().unwrap().contains("private CA"));
    // C03: no fallback to plain http, which this registry would have answered with a 400
    // ("Client sent an HTTP request to an HTTPS server") instead of this error.
    assert_eq!(err.class(), kiln_registry::ErrorClass::Input);

    let s = RegistrySettings {
        ca_files: vec![reg.ca_cert_path().to_path_buf()],
        ..settings()
    };
    push(&reg, s, tmp.path()).await.unwrap();

    let certs_d = tmp.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::copy(reg.ca_cert_path(), certs_d.join(reg.host()).join("ca.crt")).unwrap();
    let s = RegistrySettings {
        certs_dirs: vec![tmp.path().join("absent"), certs_d.clone()],
        ..settings()
    };
    push(&reg, s, tmp.path()).await.unwrap();

    // The roots are per host: the same CA filed under another host does not help.
    let wrong = tmp.path().join("wrong.d");
    std::fs::create_dir_all(wrong.join("127.0.0.1:1")).unwrap();
    std::fs::copy(reg.ca_cert_path(), wrong.join("127.0.0.1:1/ca.crt")).unwrap();
    let s = RegistrySettings {
        certs_dirs: vec![wrong],
        ..settings()
    };
    assert!(push(&reg, s, tmp.path()).await.is_err());
}
