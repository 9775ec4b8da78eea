//! Against the real Debian mirror this machine's apt is configured with (the only network
//! these tests use): verify trixie's live `InRelease` with the pinned keyrings, and lock the
//! curated `static` and `base` definitions. Skipped, with a message, when no apt source is
//! configured.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_debian::apt_sources::{SourcesFormat, default_mirror};
use kiln_debian::fetch::fetch_inrelease;
use kiln_debian::{Definition, InRelease, Keyring, Lockfile, lock};
use url::Url;

fn configured_mirror() -> Option<Url> {
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
    default_mirror(files.iter().map(|(f, t)| (*f, t.as_str())))
}

fn mirror_or_skip(test: &str) -> Option<Url> {
    let mirror = configured_mirror();
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
    let bytes = fetch_inrelease(&reqwest::Client::new(), &mirror, "trixie")
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
        assert!(p.filename.starts_with("pool/main/"), "{p:?}");
        assert!(p.size > 0 && p.installed_size > 0, "{p:?}");
    }
}
