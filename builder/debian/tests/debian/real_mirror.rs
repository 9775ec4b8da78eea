//! Against the real Debian mirror this machine's apt is configured with (the only network
//! these tests use): verify trixie's live `InRelease` with the pinned keyrings, and lock the
//! curated `static` and `base` definitions. Skipped, with a message, when no apt source is
//! configured.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_debian::apt_sources::{SourcesFormat, default_mirror, default_security_mirror};
use kiln_debian::fetch::fetch_inrelease;
use kiln_debian::{Definition, InRelease, Keyring, Lockfile, Mirrors, Version, lock};

fn configured_mirrors() -> Option<Mirrors> {
    let mut files: Vec<(SourcesFormat, String)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        files.push((SourcesFormat::OneLine, text));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let (Some(format), Ok(text)) = (
            SourcesFormat::from_file_name(name),
            std::fs::read_to_string(&path),
        ) {
            files.push((format, text));
        }
    }
    let files = || files.iter().map(|(f, t)| (*f, t.as_str()));
    Some(Mirrors {
        main: default_mirror(files())?,
        security: default_security_mirror(files()),
    })
}

fn mirror_or_skip(test: &str) -> Option<Mirrors> {
    let mirror = configured_mirrors();
    if mirror.is_none() {
        eprintln!(
            "skipping {test}: no `deb` source in /etc/apt/sources.list or /etc/apt/sources.list.d; \
             configure a Debian mirror to run it"
        );
    }
    mirror
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn golden_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden-base")
}

#[tokio::test]
async fn the_live_trixie_inrelease_verifies_against_the_pinned_keyrings() {
    let Some(mirror) = mirror_or_skip("the live InRelease test") else {
        return;
    };
    let def = Definition::load(&golden_base().join("static.toml")).unwrap();
    let keyring = Keyring::load(&def.keyrings).unwrap();
    let bytes = fetch_inrelease(&reqwest::Client::new(), &mirror.main, "trixie")
        .await
        .unwrap();
    let verified = InRelease::verify(&bytes, &keyring, now()).unwrap();
    assert_eq!(verified.release.codename.as_deref(), Some("trixie"));
    assert!(!verified.signers.is_empty());
}

#[tokio::test]
async fn static_and_base_lock_to_small_closures() {
    let Some(mirror) = mirror_or_skip("the lock test") else {
        return;
    };
    let http = reqwest::Client::new();
    let mut locks = Vec::new();
    for name in ["static", "base"] {
        let def = Definition::load(&golden_base().join(format!("{name}.toml"))).unwrap();
        let keyring = Keyring::load(&def.keyrings).unwrap();
        let lock = lock(&def, &mirror, &keyring, now(), &http).await.unwrap();
        let text = lock.to_toml();
        assert_eq!(Lockfile::parse(&text, Path::new("x.lock")).unwrap(), lock);
        locks.push(lock);
    }
    let names = |l: &Lockfile| -> Vec<String> {
        l.packages["amd64"].iter().map(|p| p.name.clone()).collect()
    };
    assert_eq!(
        names(&locks[0]),
        ["base-files", "ca-certificates", "netbase", "tzdata"],
        "static has no libc: openssl is excluded, debconf is install-time"
    );
    let base = names(&locks[1]);
    for wanted in [
        "base-files",
        "ca-certificates",
        "libc6",
        "libssl3t64",
        "netbase",
        "tzdata",
    ] {
        assert!(
            base.iter().any(|n| n == wanted),
            "base lacks {wanted}: {base:?}"
        );
    }
    for unwanted in [
        "debconf",
        "dpkg",
        "openssl",
        "perl-base",
        "bash",
        "dash",
        "libc-bin",
    ] {
        assert!(
            !base.iter().any(|n| n == unwanted),
            "base has {unwanted}: {base:?}"
        );
    }
    for p in &locks[1].packages["amd64"] {
        let pool = match p.suite.as_deref() {
            Some(s) if s.ends_with("-security") => "pool/updates/main/",
            _ => "pool/main/",
        };
        assert!(p.filename.starts_with(pool), "{p:?}");
        assert!(p.size > 0 && p.installed_size > 0, "{p:?}");
    }
}

/// `extra-suites = ["trixie-security", "trixie-updates"]` of the curated `base`: the lock
/// records their `Release`s, and each package it takes from them is newer than the release's own (the
/// same definition locked without the extra suite), while every other package is the
/// release's.
#[tokio::test]
async fn security_updates_are_laid_over_the_release() {
    let Some(mirrors) = mirror_or_skip("the security lock test") else {
        return;
    };
    if mirrors.security.is_none() {
        eprintln!("skipping the security lock test: no `-security` suite in the apt sources");
        return;
    }
    let http = reqwest::Client::new();
    let def = Definition::load(&golden_base().join("base.toml")).unwrap();
    assert!(def.extra_suites.iter().any(|s| s == "trixie-security"));
    let keyring = Keyring::load(&def.keyrings).unwrap();
    let with = lock(&def, &mirrors, &keyring, now(), &http).await.unwrap();
    let suites: Vec<&str> = with.extra_suites.iter().map(|s| s.suite.as_str()).collect();
    assert_eq!(suites, def.extra_suites);
    assert!(
        with.extra_suites
            .iter()
            .all(|s| s.inrelease_sha256.len() == 64)
    );

    let mut release_only = def.clone();
    release_only.extra_suites.clear();
    let without = lock(&release_only, &mirrors, &keyring, now(), &http)
        .await
        .unwrap();
    for arch in ["amd64", "arm64"] {
        for p in &with.packages[arch] {
            let old = without.packages[arch].iter().find(|o| o.name == p.name);
            match (&p.suite, old) {
                (Some(suite), Some(old)) => {
                    assert!(def.extra_suites.contains(suite), "{suite}");
                    assert!(
                        Version::parse(&p.version).unwrap() > Version::parse(&old.version).unwrap(),
                        "{} {} from security is not newer than {}",
                        p.name,
                        p.version,
                        old.version
                    );
                }
                (Some(_), None) => {}
                (None, Some(old)) => assert_eq!(p, old),
                (None, None) => panic!("{} is in neither the release nor security", p.name),
            }
        }
    }
    let no_security = Mirrors::main_only(mirrors.main.clone());
    let err = lock(&def, &no_security, &keyring, now(), &http)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no security mirror"), "{err}");
}
