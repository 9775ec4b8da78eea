//! `lock` and `fetch_deb` against a local stand-in mirror serving a test-signed archive:
//! the happy path offline, and the faults a real mirror cannot be made to produce (a
//! `Packages.xz` that differs from `Release`, another suite served under the asked name, a
//! `.deb` whose bytes differ from the lockfile).

use std::path::Path;

use crate::support;
use crate::support::{FakeMirror, NOW, key, keyring, sign};
use kiln_debian::fetch::deb_cache_path;
use kiln_debian::packages::PackagesError;
use kiln_debian::{
    DebianError, Definition, FetchError, InReleaseError, LockedPackage, Mirrors, fetch_deb, lock,
};
use sha2::{Digest, Sha256};

pub(crate) const PACKAGES: &str = "\
Package: ca-certificates
Version: 20250419
Installed-Size: 390
Architecture: all
Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0
Priority: standard
Filename: pool/main/c/ca-certificates/ca-certificates_20250419_all.deb
Size: 5
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
Description: Common CA certificates

Package: openssl
Version: 3.5.7-1
Architecture: amd64
Depends: libc6 (>= 2.34)
Filename: pool/main/o/openssl/openssl_3.5.7-1_amd64.deb
Size: 5
SHA256: 2222222222222222222222222222222222222222222222222222222222222222

Package: libc6
Version: 2.41-12
Architecture: amd64
Filename: pool/main/g/glibc/libc6_2.41-12_amd64.deb
Size: 5
SHA256: 3333333333333333333333333333333333333333333333333333333333333333

Package: debconf
Version: 1.5.91
Architecture: all
Priority: required
Provides: debconf-2.0
Filename: pool/main/d/debconf/debconf_1.5.91_all.deb
Size: 5
SHA256: 4444444444444444444444444444444444444444444444444444444444444444
";

pub(crate) fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serves a signed trixie archive whose `Release` names `codename`; returns the xz bytes.
pub(crate) fn publish(
    mirror: &FakeMirror,
    key: &pgp::composed::SignedSecretKey,
    codename: &str,
) -> Vec<u8> {
    let xz = liblzma::encode_all(PACKAGES.as_bytes(), 6).unwrap();
    let release = format!(
        "Origin: Debian\nSuite: stable\nCodename: {codename}\nDate: Sat, 12 Sep 2026 07:55:41 UTC\n\
Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.xz\n",
        sha(PACKAGES.as_bytes()),
        PACKAGES.len(),
        sha(&xz),
        xz.len()
    );
    mirror.put(&format!("dists/{codename}/InRelease"), sign(&release, key));
    mirror.put("dists/trixie/InRelease", sign(&release, key));
    mirror.put(
        &format!("dists/trixie/main/binary-amd64/by-hash/SHA256/{}", sha(&xz)),
        xz.clone(),
    );
    xz
}

pub(crate) fn definition() -> Definition {
    Definition::parse(
        "static",
        Path::new("/nonexistent"),
        "keyrings = [\"test.gpg\"]\npackages = [\"ca-certificates\"]\nexclude = [\"openssl\"]\n",
    )
    .unwrap()
}

#[tokio::test]
async fn lock_verifies_fetches_by_hash_and_resolves() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    let xz = publish(&mirror, &k, "trixie");
    let http = reqwest::Client::new();
    let lock = lock(
        &definition(),
        &Mirrors::main_only(mirror.url.clone()),
        &keyring(&[&k]),
        NOW,
        &http,
    )
    .await
    .unwrap();
    let names: Vec<&str> = lock.packages["amd64"]
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["ca-certificates"]);
    assert_eq!(lock.codename, "trixie");
    assert_eq!(lock.release_date, "Sat, 12 Sep 2026 07:55:41 UTC");
    assert!(
        mirror.requests().contains(&format!(
            "/debian/dists/trixie/main/binary-amd64/by-hash/SHA256/{}",
            sha(&xz)
        )),
        "{:?}",
        mirror.requests()
    );
}

/// Serves `dists/trixie-security/` signed with `key`, listing `packages`.
pub(crate) fn publish_security(
    mirror: &FakeMirror,
    key: &pgp::composed::SignedSecretKey,
    packages: &str,
) {
    let xz = liblzma::encode_all(packages.as_bytes(), 6).unwrap();
    let release = format!(
        "Origin: Debian\nSuite: stable-security\nCodename: trixie-security\nDate: Sat, 12 Sep 2026 08:00:00 UTC\n\
Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        sha(&xz),
        xz.len()
    );
    mirror.put("dists/trixie-security/InRelease", sign(&release, key));
    mirror.put(
        &format!(
            "dists/trixie-security/main/binary-amd64/by-hash/SHA256/{}",
            sha(&xz)
        ),
        xz,
    );
}

pub(crate) const SECURITY_PACKAGES: &str = "\
Package: ca-certificates
Version: 20250419+deb13u1
Installed-Size: 390
Architecture: all
Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0
Filename: pool/updates/main/c/ca-certificates/ca-certificates_20250419+deb13u1_all.deb
Size: 6
SHA256: 5555555555555555555555555555555555555555555555555555555555555555
";

pub(crate) fn with_security() -> Definition {
    Definition::parse(
        "static",
        Path::new("/nonexistent"),
        "extra-suites = [\"trixie-security\"]\nkeyrings = [\"test.gpg\"]\npackages = [\"ca-certificates\"]\nexclude = [\"openssl\"]\n",
    )
    .unwrap()
}

#[tokio::test]
async fn a_security_update_is_locked_from_the_security_archive() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    publish(&mirror, &k, "trixie");
    publish_security(&mirror, &k, SECURITY_PACKAGES);
    let mirrors = Mirrors {
        main: mirror.url.clone(),
        security: Some(mirror.url.clone()),
    };
    let lock = lock(
        &with_security(),
        &mirrors,
        &keyring(&[&k]),
        NOW,
        &reqwest::Client::new(),
    )
    .await
    .unwrap();
    let ca = &lock.packages["amd64"][0];
    assert_eq!(ca.version, "20250419+deb13u1");
    assert_eq!(ca.suite.as_deref(), Some("trixie-security"));
    assert!(ca.filename.starts_with("pool/updates/"), "{ca:?}");
    assert_eq!(lock.extra_suites[0].suite, "trixie-security");
    assert_eq!(
        lock.extra_suites[0].release_date,
        "Sat, 12 Sep 2026 08:00:00 UTC"
    );

    // An older version in the security suite never wins over the release's.
    publish_security(
        &mirror,
        &k,
        &SECURITY_PACKAGES.replace("20250419+deb13u1", "20240101"),
    );
    let lock = lock_with(&mirrors, &k).await.unwrap();
    assert_eq!(lock.packages["amd64"][0].version, "20250419");
    assert_eq!(lock.packages["amd64"][0].suite, None);
}

async fn lock_with(
    mirrors: &Mirrors,
    k: &pgp::composed::SignedSecretKey,
) -> Result<kiln_debian::Lockfile, DebianError> {
    lock(
        &with_security(),
        mirrors,
        &keyring(&[k]),
        NOW,
        &reqwest::Client::new(),
    )
    .await
}

#[tokio::test]
async fn d01_a_security_suite_signed_by_a_key_not_pinned_is_refused() {
    let mirror = FakeMirror::start().await;
    let (k, stranger) = (key(7), key(8));
    publish(&mirror, &k, "trixie");
    publish_security(&mirror, &stranger, SECURITY_PACKAGES);
    let mirrors = Mirrors {
        main: mirror.url.clone(),
        security: Some(mirror.url.clone()),
    };
    let err = lock_with(&mirrors, &k).await.unwrap_err();
    match &err {
        DebianError::InRelease { url, source } => {
            assert!(url.ends_with("dists/trixie-security/InRelease"), "{url}");
            assert!(
                matches!(source, InReleaseError::UnknownKey { .. }),
                "{source:?}"
            );
        }
        other => panic!("{other}"),
    }
    let err = lock_with(&Mirrors::main_only(mirror.url.clone()), &k)
        .await
        .unwrap_err();
    assert!(matches!(err, DebianError::NoMirror(_)), "{err}");
}

#[tokio::test]
async fn d04_a_packages_xz_that_differs_from_release_is_refused_after_one_retry_by_hash() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    let xz = publish(&mirror, &k, "trixie");
    let mut evil =
        liblzma::encode_all(PACKAGES.replace("20250419", "20990101").as_bytes(), 6).unwrap();
    evil.resize(xz.len(), 0);
    mirror.put(
        &format!("dists/trixie/main/binary-amd64/by-hash/SHA256/{}", sha(&xz)),
        evil,
    );
    let err = lock(
        &definition(),
        &Mirrors::main_only(mirror.url.clone()),
        &keyring(&[&k]),
        NOW,
        &reqwest::Client::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DebianError::Packages(PackagesError::Digest { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("`main/binary-amd64/Packages.xz`"),
        "{err}"
    );
    assert!(err.to_string().contains("Hash Sum mismatch"), "{err}");
    assert_eq!(
        mirror.hits(&format!(
            "dists/trixie/main/binary-amd64/by-hash/SHA256/{}",
            sha(&xz)
        )),
        2,
        "one retry by hash, no more: {:?}",
        mirror.requests()
    );
}

#[tokio::test]
async fn d03_another_suite_served_under_the_asked_name_is_refused() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    publish(&mirror, &k, "bookworm");
    let release = "Origin: Debian\nSuite: oldstable\nCodename: bookworm\nDate: Sat, 12 Sep 2026 07:55:41 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n";
    mirror.put("dists/trixie/InRelease", support::sign(release, &k));
    let err = lock(
        &definition(),
        &Mirrors::main_only(mirror.url.clone()),
        &keyring(&[&k]),
        NOW,
        &reqwest::Client::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DebianError::WrongSuite { .. }), "{err}");
}

pub(crate) fn locked(body: &[u8], sha256: String) -> LockedPackage {
    LockedPackage {
        name: "netbase".into(),
        version: "6.5".into(),
        architecture: "all".into(),
        source: "netbase".into(),
        source_version: None,
        filename: "pool/main/n/netbase/netbase_6.5_all.deb".into(),
        size: body.len() as u64,
        sha256,
        installed_size: 35,
        suite: None,
    }
}

pub(crate) fn cache_files(cache: &Path) -> Vec<String> {
    let dir = cache.join("debs/sha256");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn d04_fetch_deb_caches_verified_packages_only() {
    let mirror = FakeMirror::start().await;
    let cache = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let body = b"!<arch>\nnot really a deb".to_vec();
    mirror.put("pool/main/n/netbase/netbase_6.5_all.deb", body.clone());

    // Wrong digest: an error naming both digests, and nothing in the cache.
    let wrong = locked(&body, "5".repeat(64));
    let err = fetch_deb(&http, &mirror.url, &wrong, cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains(&"5".repeat(64)), "{err}");
    assert!(
        err.to_string().contains("Hash Sum mismatch") && err.to_string().contains("netbase_6.5"),
        "{err}"
    );
    assert!(
        cache_files(cache.path()).is_empty(),
        "{:?}",
        cache_files(cache.path())
    );

    // Larger than the lockfile says: refused before reading it all.
    let small = LockedPackage {
        size: 4,
        ..locked(&body, sha(&body))
    };
    let err = fetch_deb(&http, &mirror.url, &small, cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    assert!(cache_files(cache.path()).is_empty());

    // Right digest: cached under its sha256.
    let good = locked(&body, sha(&body));
    let path = fetch_deb(&http, &mirror.url, &good, cache.path())
        .await
        .unwrap();
    assert_eq!(path, deb_cache_path(cache.path(), &good.sha256));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(
        cache_files(cache.path()),
        std::slice::from_ref(&good.sha256)
    );

    // A verified cache entry is used without the mirror.
    let requests = mirror.requests().len();
    fetch_deb(&http, &mirror.url, &good, cache.path())
        .await
        .unwrap();
    assert_eq!(mirror.requests().len(), requests);

    // A corrupted cache entry is replaced.
    std::fs::write(&path, b"!<arch>\nnot really a dec").unwrap();
    fetch_deb(&http, &mirror.url, &good, cache.path())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
}
