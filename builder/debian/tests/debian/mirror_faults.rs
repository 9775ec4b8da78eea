//! Lock-time faults a real mirror cannot be made to produce, served by the local stand-in
//! mirror: keys pinned per suite (D01), rollback and identity changes on relock (D03), the
//! by-hash retry (D04), and transport tricks (D05: cross-host redirects, CR/LF in
//! `Location`, altered bytes). Every refusal names the file, and nothing is written.

use std::path::Path;

use crate::fake_mirror::{
    PACKAGES, SECURITY_PACKAGES, cache_files, definition, locked, publish_security, sha,
    with_security,
};
use crate::support::{FakeMirror, NOW, key, keyring, public_bytes, sign};
use kiln_debian::packages::PackagesError;
use kiln_debian::{
    DebianError, Definition, FetchError, InReleaseError, Keyring, Lockfile, Mirrors, fetch_deb,
    lock, relock,
};
use pgp::composed::SignedSecretKey;
use pgp::types::KeyDetails;

/// The `Date` of the first `Release` the tests lock.
const DATE: &str = "Sat, 12 Sep 2026 07:55:41 UTC";

/// Serves `dists/<suite>/` with a `Release` made by `edit` from a trixie one dated [`DATE`]
/// (with `Label` and `Acquire-By-Hash: yes`); returns the `Packages.xz` bytes.
fn publish_edited(
    mirror: &FakeMirror,
    key: &SignedSecretKey,
    suite: &str,
    edit: impl Fn(String) -> String,
) -> Vec<u8> {
    let xz = liblzma::encode_all(PACKAGES.as_bytes(), 6).unwrap();
    let release = format!(
        "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: trixie\nDate: {DATE}\n\
Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        sha(&xz),
        xz.len()
    );
    mirror.put(
        &format!("dists/{suite}/InRelease"),
        sign(&edit(release), key),
    );
    mirror.put(
        &format!(
            "dists/{suite}/main/binary-amd64/by-hash/SHA256/{}",
            sha(&xz)
        ),
        xz.clone(),
    );
    xz
}

fn by_hash(suite: &str, xz: &[u8]) -> String {
    format!("dists/{suite}/main/binary-amd64/by-hash/SHA256/{}", sha(xz))
}

async fn lock_main(def: &Definition, mirror: &FakeMirror, k: &SignedSecretKey) -> Lockfile {
    lock(
        def,
        &Mirrors::main_only(mirror.url.clone()),
        &keyring(&[k]),
        NOW,
        &reqwest::Client::new(),
    )
    .await
    .unwrap()
}

async fn relock_main(
    def: &Definition,
    mirror: &FakeMirror,
    k: &SignedSecretKey,
    previous: &Lockfile,
) -> Result<Lockfile, DebianError> {
    relock(
        def,
        &Mirrors::main_only(mirror.url.clone()),
        &keyring(&[k]),
        NOW,
        &reqwest::Client::new(),
        previous,
    )
    .await
}

/// D01: with `suite-keyrings`, the release is verified only with its own keys: the security
/// archive's key (trusted for `trixie-security`) cannot sign `trixie`.
#[tokio::test]
async fn d01_each_suite_is_verified_only_with_the_keys_pinned_for_it() {
    let mirror = FakeMirror::start().await;
    let (release_key, security_key) = (key(7), key(9));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.gpg"), public_bytes(&release_key)).unwrap();
    std::fs::write(dir.path().join("security.gpg"), public_bytes(&security_key)).unwrap();
    let def = Definition::parse(
        "static",
        dir.path(),
        "extra-suites = [\"trixie-security\"]\nkeyrings = [\"main.gpg\", \"security.gpg\"]\n\
         packages = [\"ca-certificates\"]\nexclude = [\"openssl\"]\n\
         [suite-keyrings]\ntrixie = [\"main.gpg\"]\n\"trixie-security\" = [\"security.gpg\"]\n",
    )
    .unwrap();
    let ring = Keyring::load(&def.keyrings).unwrap();
    let mirrors = Mirrors {
        main: mirror.url.clone(),
        security: Some(mirror.url.clone()),
    };
    let http = reqwest::Client::new();

    publish_edited(&mirror, &release_key, "trixie", |r| r);
    publish_security(&mirror, &security_key, SECURITY_PACKAGES);
    let good = lock(&def, &mirrors, &ring, NOW, &http).await.unwrap();
    assert_eq!(good.extra_suites[0].suite, "trixie-security");

    // The release signed by the security key: a key the ring holds, not pinned for it.
    publish_edited(&mirror, &security_key, "trixie", |r| r);
    let err = lock(&def, &mirrors, &ring, NOW, &http).await.unwrap_err();
    let DebianError::InRelease { url, source } = &err else {
        panic!("{err}")
    };
    assert!(url.ends_with("dists/trixie/InRelease"), "{url}");
    assert!(
        matches!(source, InReleaseError::UnknownKey { .. }),
        "{source}"
    );
    let msg = crate::support::chain(&err);
    assert!(
        msg.contains(&format!("{:X}", release_key.fingerprint()))
            && !msg.contains(&format!("holds `{:X}`", security_key.fingerprint())),
        "names the pinned key only: {msg}"
    );

    // And the other way round.
    publish_edited(&mirror, &release_key, "trixie", |r| r);
    publish_security(&mirror, &release_key, SECURITY_PACKAGES);
    let err = lock(&def, &mirrors, &ring, NOW, &http).await.unwrap_err();
    assert!(
        matches!(&err, DebianError::InRelease { url, .. } if url.ends_with("dists/trixie-security/InRelease")),
        "{err}"
    );
}

/// D03: a relock refuses a `Release` older than the one the lock was made from (of the suite
/// and of an extra suite), before downloading any index; the same or a newer one is fine.
#[tokio::test]
async fn d03_a_relock_refuses_an_older_release() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    publish_edited(&mirror, &k, "trixie", |r| r);
    let def = definition();
    let first = lock_main(&def, &mirror, &k).await;
    assert_eq!(first.release_date, DATE);
    assert_eq!(first.release_origin.as_deref(), Some("Debian"));
    assert_eq!(first.release_label.as_deref(), Some("Debian"));
    assert_eq!(first.release_suite.as_deref(), Some("stable"));
    let text = first.to_toml();
    assert!(text.contains("release-label = \"Debian\""), "{text}");
    assert_eq!(
        Lockfile::parse(&text, Path::new("static.lock")).unwrap(),
        first
    );

    relock_main(&def, &mirror, &k, &first).await.unwrap();

    publish_edited(&mirror, &k, "trixie", |r| r.replace("07:55:41", "06:00:00"));
    let before = mirror.requests().len();
    let err = relock_main(&def, &mirror, &k, &first).await.unwrap_err();
    assert!(matches!(err, DebianError::Rollback { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("dists/trixie/InRelease")
            && msg.contains("`Sat, 12 Sep 2026 06:00:00 UTC`")
            && msg.contains(DATE)
            && msg.contains("roll the base back")
            && msg.contains("the lock is unchanged"),
        "{msg}"
    );
    let after: Vec<String> = mirror.requests()[before..].to_vec();
    assert!(
        after.iter().all(|r| r.ends_with("/InRelease")),
        "nothing is downloaded after the refusal: {after:?}"
    );
    // A first lock has nothing to compare with.
    lock_main(&def, &mirror, &k).await;

    publish_edited(&mirror, &k, "trixie", |r| r.replace("07:55:41", "08:50:00"));
    let newer = relock_main(&def, &mirror, &k, &first).await.unwrap();
    assert_eq!(newer.release_date, "Sat, 12 Sep 2026 08:50:00 UTC");

    // An extra suite rolled back is refused too, naming it.
    publish_edited(&mirror, &k, "trixie", |r| r);
    publish_security(&mirror, &k, SECURITY_PACKAGES);
    let mirrors = Mirrors {
        main: mirror.url.clone(),
        security: Some(mirror.url.clone()),
    };
    let http = reqwest::Client::new();
    let ring = keyring(&[&k]);
    let with = lock(&with_security(), &mirrors, &ring, NOW, &http)
        .await
        .unwrap();
    assert_eq!(
        with.extra_suites[0].release_codename.as_deref(),
        Some("trixie-security")
    );
    let older_security = sign(
        "Origin: Debian\nSuite: stable-security\nCodename: trixie-security\n\
         Date: Sat, 12 Sep 2026 07:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n",
        &k,
    );
    mirror.put("dists/trixie-security/InRelease", older_security);
    let err = relock(&with_security(), &mirrors, &ring, NOW, &http, &with)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DebianError::Rollback { url, suite, .. } if url.ends_with("dists/trixie-security/InRelease") && suite == "trixie-security"),
        "{err}"
    );
}

/// D03: `Origin`, `Label`, `Suite` or `Codename` changing under a locked suite is refused in
/// apt's words unless the definition's `allow-release-info-change` lists the field.
#[tokio::test]
async fn d03_a_changed_release_identity_needs_explicit_config() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    publish_edited(&mirror, &k, "trixie", |r| r);
    let def = definition();
    let first = lock_main(&def, &mirror, &k).await;
    let later = |r: String| r.replace("07:55:41", "08:30:00");

    for (from, to, field) in [
        ("Origin: Debian", "Origin: Evil", "Origin"),
        ("Label: Debian", "Label: Evil", "Label"),
        ("Suite: stable", "Suite: oldstable", "Suite"),
    ] {
        publish_edited(&mirror, &k, "trixie", |r| later(r).replace(from, to));
        let err = relock_main(&def, &mirror, &k, &first).await.unwrap_err();
        assert!(
            matches!(&err, DebianError::ReleaseInfoChanged { field: f, .. } if *f == field),
            "{err}"
        );
        let (old, new) = (&from[field.len() + 2..], &to[field.len() + 2..]);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "changed its `{field}` value from `{old}` to `{new}`"
            )) && msg.contains("allow-release-info-change"),
            "{msg}"
        );
    }

    // Allowed explicitly: the relock goes through.
    let allowing = Definition::parse(
        "static",
        Path::new("/nonexistent"),
        "allow-release-info-change = [\"Suite\"]\nkeyrings = [\"test.gpg\"]\n\
         packages = [\"ca-certificates\"]\nexclude = [\"openssl\"]\n",
    )
    .unwrap();
    let moved = relock_main(&allowing, &mirror, &k, &first).await.unwrap();
    assert_eq!(moved.release_suite.as_deref(), Some("oldstable"));

    // A definition locking by suite name sees the codename move (stable: trixie → forky).
    let stable = Definition::parse(
        "static",
        Path::new("/nonexistent"),
        "suite = \"stable\"\nkeyrings = [\"test.gpg\"]\npackages = [\"ca-certificates\"]\n\
         exclude = [\"openssl\"]\n",
    )
    .unwrap();
    publish_edited(&mirror, &k, "stable", |r| r);
    let by_suite = lock_main(&stable, &mirror, &k).await;
    assert_eq!(by_suite.codename, "trixie");
    publish_edited(&mirror, &k, "stable", |r| {
        later(r).replace("Codename: trixie", "Codename: forky")
    });
    let err = relock_main(&stable, &mirror, &k, &by_suite)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("changed its `Codename` value from `trixie` to `forky`"),
        "{err}"
    );
}

/// D04: a by-hash answer that fails its check is asked for once more (a stale cache or proxy
/// answered, the name being content-addressed); a good second answer locks.
#[tokio::test]
async fn d04_a_bad_by_hash_answer_is_retried_once() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    let xz = publish_edited(&mirror, &k, "trixie", |r| r);
    let mut bad = xz.clone();
    bad[xz.len() / 2] ^= 0xff;
    mirror.queue_body(&by_hash("trixie", &xz), &bad);
    let locked_ok = lock_main(&definition(), &mirror, &k).await;
    assert_eq!(locked_ok.packages["amd64"][0].name, "ca-certificates");
    assert_eq!(mirror.hits(&by_hash("trixie", &xz)), 2);

    // Without `Acquire-By-Hash` the index comes by path, once: a mismatch is final.
    let mirror = FakeMirror::start().await;
    let xz = publish_edited(&mirror, &k, "trixie", |r| {
        r.replace("Acquire-By-Hash: yes\n", "")
    });
    mirror.put("dists/trixie/main/binary-amd64/Packages.xz", bad);
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
        err.to_string()
            .starts_with("Hash Sum mismatch: `main/binary-amd64/Packages.xz`")
    );
    assert_eq!(mirror.hits("dists/trixie/main/binary-amd64/Packages.xz"), 1);
    assert_eq!(mirror.hits(&by_hash("trixie", &xz)), 0);
}

const DEB: &str = "pool/main/n/netbase/netbase_6.5_all.deb";

fn redirect(location: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// D05: a mirror redirecting to another host is followed, and the integrity chain alone
/// decides: the right bytes are cached, altered ones refused, an `InRelease` from there
/// verified like any other.
#[tokio::test]
async fn d05_a_redirect_to_another_host_is_judged_by_integrity_alone() {
    let (a, b) = (FakeMirror::start().await, FakeMirror::start().await);
    let http = reqwest::Client::new();
    let body = b"!<arch>\nthe real netbase".to_vec();
    let good = locked(&body, sha(&body));
    let cache = tempfile::tempdir().unwrap();

    a.queue_raw(DEB, redirect(&format!("{}{DEB}", b.url)));
    b.queue_body(DEB, b"!<arch>\nthe fake netbase");
    let err = fetch_deb(&http, &a.url, &good, cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Mismatch { .. }), "{err}");
    assert!(cache_files(cache.path()).is_empty());

    a.queue_raw(DEB, redirect(&format!("{}{DEB}", b.url)));
    b.queue_body(DEB, &body);
    let path = fetch_deb(&http, &a.url, &good, cache.path()).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(b.hits(DEB), 2, "both downloads came from the other host");

    let (k, stranger) = (key(7), key(8));
    publish_edited(&b, &stranger, "trixie", |r| r);
    a.queue_raw(
        "dists/trixie/InRelease",
        redirect(&format!("{}dists/trixie/InRelease", b.url)),
    );
    let err = lock(
        &definition(),
        &Mirrors::main_only(a.url.clone()),
        &keyring(&[&k]),
        NOW,
        &http,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &err,
            DebianError::InRelease {
                source: InReleaseError::UnknownKey { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// D05: CR/LF in a redirect's `Location` cannot inject a header or a field: percent-encoded,
/// it stays in the path of the next request (which the mirror does not have); raw, the
/// response is refused by the HTTP parser. Either way nothing is cached.
#[tokio::test]
async fn d05_cr_lf_in_location_cannot_inject_anything() {
    let mirror = FakeMirror::start().await;
    let http = reqwest::Client::new();
    let body = b"!<arch>\nnetbase".to_vec();
    let entry = locked(&body, sha(&body));
    let cache = tempfile::tempdir().unwrap();

    mirror.queue_raw(
        DEB,
        redirect("/debian/pool/x.deb%0D%0ASHA256-Hash:%20evil%0D%0A%0D%0A"),
    );
    let err = fetch_deb(&http, &mirror.url, &entry, cache.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Status { status, .. } if status.as_u16() == 404),
        "{err}"
    );
    let requests = mirror.requests();
    assert!(
        requests.contains(&"/debian/pool/x.deb%0D%0ASHA256-Hash:%20evil%0D%0A%0D%0A".to_owned()),
        "the encoded CR/LF stays encoded on the wire: {requests:?}"
    );
    assert!(!requests.iter().any(|r| r.contains(['\r', '\n'])));

    for raw in [
        "HTTP/1.1 302 Found\r\nLocation: /debian/pool/x.deb\rSHA256-Hash: evil\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /debian/pool/x.deb\nX-Evil: 1\n\rContent-Length: 0\r\n\r\n",
    ] {
        mirror.queue_raw(DEB, raw);
        let before = mirror.requests().len();
        let err = fetch_deb(&http, &mirror.url, &entry, cache.path())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::Transport { .. } | FetchError::Status { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(DEB), "{err}");
        assert!(
            mirror.requests()[before..]
                .iter()
                .all(|r| r == &format!("/debian/{DEB}")),
            "no request follows a malformed Location: {:?}",
            mirror.requests()
        );
    }
    assert!(cache_files(cache.path()).is_empty());
}

/// D05: a man in the middle altering one byte of `InRelease` or of a `.deb` is caught by the
/// signature and the locked digest: TLS is not what kiln trusts.
#[tokio::test]
async fn d05_a_mitm_altered_response_is_caught_by_the_integrity_chain() {
    let mirror = FakeMirror::start().await;
    let k = key(7);
    publish_edited(&mirror, &k, "trixie", |r| r);
    let genuine = sign(
        &format!(
            "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: trixie\nDate: {DATE}\nArchitectures: amd64\nComponents: main\nSHA256:\n"
        ),
        &k,
    );
    mirror.queue_body(
        "dists/trixie/InRelease",
        genuine
            .replace("Architectures: amd64", "Architectures: amd65")
            .as_bytes(),
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
        matches!(&err, DebianError::InRelease { source: InReleaseError::BadSignature { .. }, url } if url.ends_with("dists/trixie/InRelease")),
        "{err}"
    );

    let body = b"!<arch>\nnetbase".to_vec();
    let mut altered = body.clone();
    altered[9] ^= 1;
    mirror.queue_body(DEB, &altered);
    let cache = tempfile::tempdir().unwrap();
    let err = fetch_deb(
        &reqwest::Client::new(),
        &mirror.url,
        &locked(&body, sha(&body)),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FetchError::Mismatch { .. }), "{err}");
    assert!(cache_files(cache.path()).is_empty());
}
