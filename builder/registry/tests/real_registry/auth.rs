//! Basic auth (htpasswd) with credentials from docker config, podman auth files, a
//! credential helper, and `login`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kiln_oci::media_types::OCI_MANIFEST;
use kiln_registry::{BlobPush, Client, RegistrySettings, login};

use kiln_e2e::Registry;

use crate::common::{blob, docker_config, manifest, noise, reference, settings};

fn auth_registry() -> Registry {
    Registry::htpasswd("kiln", "s3cr3t-pw")
}

/// Pushes a blob and a manifest with `s`, then pulls the manifest back.
async fn push_image(
    reg: &Registry,
    s: RegistrySettings,
    dir: &Path,
) -> Result<(), kiln_registry::RegistryError> {
    let c = Client::new(s).unwrap();
    let repo = reference(reg, "private/app");
    let bytes = noise(2048, 9);
    let (path, d) = blob(dir, "layer", &bytes);
    let got = c.push_blob(&repo, &d, 2048, &path, None, &|_| {}).await?;
    assert!(matches!(
        got,
        BlobPush::Uploaded { .. } | BlobPush::Existing
    ));
    let m = manifest((&d, 2048), (&d, 2048));
    let digest = c.push_manifest(&repo, "v1", OCI_MANIFEST, &m).await?;
    assert_eq!(c.get_manifest(&repo, "v1").await?.digest, digest);
    Ok(())
}

#[tokio::test]
async fn basic_auth_from_docker_and_podman_files() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = auth_registry();

    let err = push_image(&reg, settings(), tmp.path()).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(err.code(), Some("UNAUTHORIZED"), "{err}");
    assert!(
        err.to_string().contains("registry said 401 UNAUTHORIZED"),
        "{err}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains(&format!("log in to `{}`", reg.host())),
        "{hint}"
    );

    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    docker_config(&docker, &reg.host(), "kiln", "s3cr3t-pw");
    let s = RegistrySettings {
        docker_config_dir: Some(docker),
        ..settings()
    };
    push_image(&reg, s, tmp.path()).await.unwrap();

    // podman's auth.json, keyed with a scheme prefix that must normalize away.
    let podman = tmp.path().join("auth.json");
    let auth = B64.encode("kiln:s3cr3t-pw");
    std::fs::write(
        &podman,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let s = RegistrySettings {
        auth_files: vec![tmp.path().join("absent.json"), podman],
        ..settings()
    };
    push_image(&reg, s, tmp.path()).await.unwrap();

    // Wrong credentials: still a 401, never the password in the message.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    docker_config(&bad, &reg.host(), "kiln", "wrong-pw");
    let s = RegistrySettings {
        docker_config_dir: Some(bad),
        ..settings()
    };
    let err = push_image(&reg, s, tmp.path()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!format!("{err} {err:?}").contains("wrong-pw"));
}

#[tokio::test]
async fn login_checks_and_stores_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = auth_registry();
    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let original = r#"{"experimental":"enabled","auths":{"other.example":{"auth":"eDp5"}}}"#;
    std::fs::write(docker.join("config.json"), original).unwrap();
    let s = RegistrySettings {
        docker_config_dir: Some(docker.clone()),
        ..settings()
    };

    let err = login(&s, &reg.host(), "kiln", "nope").await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!format!("{err} {err:?}").contains("nope"));
    assert_eq!(
        std::fs::read_to_string(docker.join("config.json")).unwrap(),
        original
    );

    login(&s, &reg.host(), "kiln", "s3cr3t-pw").await.unwrap();
    let path = docker.join("config.json");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        written["auths"][&reg.host()]["auth"],
        B64.encode("kiln:s3cr3t-pw")
    );
    assert_eq!(written["auths"]["other.example"]["auth"], "eDp5");
    assert_eq!(written["experimental"], "enabled");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    push_image(&reg, s, tmp.path()).await.unwrap();
}

/// Writes `docker-credential-kilntest`: `get` answers for `host` only, `store` saves stdin.
fn helper(dir: &Path, host: &str) {
    let script = format!(
        r#"#!/bin/sh
case "$1" in
get)
  read server
  if [ "$server" = "{host}" ]; then
    echo '{{"ServerURL":"{host}","Username":"kiln","Secret":"s3cr3t-pw"}}'
  else
    echo "credentials not found in native keychain"; exit 1
  fi;;
store) cat > "{dir}/stored.json";;
*) exit 2;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("docker-credential-kilntest");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn credential_helpers_get_and_store() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = auth_registry();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    helper(&bin, &reg.host());

    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let config = format!(r#"{{"credHelpers":{{"{}":"kilntest"}}}}"#, reg.host());
    std::fs::write(docker.join("config.json"), &config).unwrap();
    let s = RegistrySettings {
        docker_config_dir: Some(docker.clone()),
        helper_dirs: vec![bin.clone()],
        ..settings()
    };
    push_image(&reg, s, tmp.path()).await.unwrap();

    // credsStore: login stores through the helper and leaves config.json alone.
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(store.join("config.json"), r#"{"credsStore":"kilntest"}"#).unwrap();
    let s = RegistrySettings {
        docker_config_dir: Some(store.clone()),
        helper_dirs: vec![bin.clone()],
        ..settings()
    };
    push_image(&reg, s.clone(), tmp.path()).await.unwrap();
    login(&s, &reg.host(), "kiln", "s3cr3t-pw").await.unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bin.join("stored.json")).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host().as_str());
    assert_eq!(stored["Username"], "kiln");
    assert_eq!(stored["Secret"], "s3cr3t-pw");
    assert_eq!(
        std::fs::read_to_string(store.join("config.json")).unwrap(),
        r#"{"credsStore":"kilntest"}"#
    );
}
