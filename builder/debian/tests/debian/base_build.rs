//! A whole base assembled by `build_base` from a definition, a lockfile and local `.deb`s:
//! merged-usr guaranteed in every layer (D09), and what maintainer scripts would have done
//! coming from kiln's generators, the skipped scripts and setuid files recorded in the
//! image's labels (D10, D07).

use std::collections::BTreeMap;
use std::path::Path;

use crate::deb_fixture::*;
use kiln_debian::base_image::{
    BaseBuild, BaseImageError, LocalFile, SETUID_LABEL, SKIPPED_SCRIPTS_LABEL, build_base,
};
use kiln_debian::deb::{MERGED_USR_ALIASES, merged_usr_links};
use kiln_debian::lockfile::LOCK_VERSION;
use kiln_debian::{Definition, LockedPackage, Lockfile};
use kiln_layer::{BlobStore, Compression, LayerBlob};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

const DEFINITION: &str = r#"
keyrings = ["keyrings/test.gpg"]
packages = ["libc6", "ca-certificates"]
setuid = ["/usr/bin/keep-me"]

[[groups]]
name = "nonroot"
gid = 65532

[[users]]
name = "nonroot"
uid = 65532
gid = 65532
home = "/home/nonroot"

[[directories]]
path = "/home/nonroot"
uid = 65532
gid = 65532

[[links]]
path = "/usr/bin/sh"
target = "dash"
"#;

fn packages() -> Vec<Deb> {
    let mut libc = Deb::new(
        "libc6",
        vec![
            dir("./"),
            dir("./lib/"),
            dir("./lib/x86_64-linux-gnu/"),
            file("./lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF libc"),
            dir("./lib64/"),
            symlink(
                "./lib64/ld-linux-x86-64.so.2",
                "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ),
            dir("./bin/"),
            file("./bin/dash", b"\x7fELF dash"),
            item("./bin/strip-me", Body::File(b"su".to_vec()), 0o4755),
            dir("./usr/"),
            dir("./usr/bin/"),
            item("./usr/bin/keep-me", Body::File(b"ping".to_vec()), 0o4755),
        ],
    );
    libc.version = "2.41-12".into();
    let ca = Deb::new(
        "ca-certificates",
        vec![
            dir("./"),
            dir("./usr/"),
            dir("./usr/share/"),
            dir("./usr/share/ca-certificates/"),
            dir("./usr/share/ca-certificates/mozilla/"),
            file(
                "./usr/share/ca-certificates/mozilla/Test_Root.crt",
                CERT.as_bytes(),
            ),
        ],
    );
    vec![libc, ca]
}

fn locked(deb: &Deb) -> LockedPackage {
    LockedPackage {
        name: deb.name.clone(),
        version: deb.version.clone(),
        architecture: "amd64".into(),
        source: deb.name.clone(),
        source_version: None,
        filename: format!("pool/main/{}.deb", deb.name),
        size: 1,
        sha256: "ab".repeat(32),
        installed_size: deb.installed_size,
        suite: None,
    }
}

fn lockfile(debs: &[Deb]) -> Lockfile {
    let mut list: Vec<LockedPackage> = debs.iter().map(locked).collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Lockfile {
        version: LOCK_VERSION,
        definition: "mini".into(),
        inputs_sha256: None,
        suite: "trixie".into(),
        codename: "trixie".into(),
        release_version: Some("13.7".into()),
        release_origin: Some("Debian".into()),
        release_label: Some("Debian".into()),
        release_suite: Some("stable".into()),
        release_date: "Sat, 12 Sep 2026 07:55:41 UTC".into(),
        inrelease_sha256: "cd".repeat(32),
        architectures: vec!["amd64".into()],
        extra_suites: Vec::new(),
        packages: BTreeMap::from([("amd64".to_owned(), list)]),
    }
}

struct Built {
    store: BlobStore,
    result: Result<kiln_model::Image, BaseImageError>,
}

fn build(root: &Path, local_files: &[LocalFile]) -> Built {
    std::fs::create_dir_all(root).unwrap();
    let def = Definition::parse("mini", root, DEFINITION).unwrap();
    let debs = packages();
    let lock = lockfile(&debs);
    let paths: BTreeMap<String, std::path::PathBuf> = debs
        .iter()
        .map(|d| (d.name.clone(), d.write(root).1))
        .collect();
    let store = BlobStore::open(root.join("store")).unwrap();
    let result = build_base(&BaseBuild {
        definition: &def,
        lock: &lock,
        included: &[],
        arch: "amd64",
        debs: &paths,
        store: &store,
        compression: Compression::Gzip,
        local_files,
    });
    Built { store, result }
}

fn layers(built: &Built) -> Vec<Vec<LayerEntry>> {
    let image = built.result.as_ref().unwrap();
    image
        .layers
        .iter()
        .map(|l| {
            let blob = LayerBlob {
                digest: l.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.size,
                media_type: Compression::Gzip.media_type(),
            };
            read_layer(&built.store, &blob)
        })
        .collect()
}

fn labels(built: &Built) -> std::collections::HashMap<String, String> {
    let image = built.result.as_ref().unwrap();
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
}

/// D09: packages shipping `lib/…`, `lib64/…` and `bin/…` land under `usr/`; the first layer
/// holds the root links; no layer has an entry under a merged-usr alias (the validator over
/// every layer is this loop); a local file for `/bin/...` is refused naming it.
#[test]
fn d09_every_layer_keeps_the_merged_usr_root_links_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let built = build(tmp.path(), &[]);
    let all = layers(&built);
    let links = &all[0];
    for l in merged_usr_links("amd64") {
        let e = find(links, l.path);
        assert_eq!(
            (e.kind, e.link.as_deref()),
            (tar::EntryType::Symlink, Some(l.target))
        );
    }
    for (i, layer) in all.iter().enumerate() {
        for e in layer {
            let first = e.path.split('/').next().unwrap();
            let is_root_link = i == 0 && e.kind == tar::EntryType::Symlink && !e.path.contains('/');
            assert!(
                !MERGED_USR_ALIASES.contains(&first) || is_root_link,
                "layer {i} has `{}` under a merged-usr alias",
                e.path
            );
        }
    }
    let packages = &all[1];
    find(packages, "usr/lib/x86_64-linux-gnu/libc.so.6");
    find(packages, "usr/bin/dash");
    assert_eq!(
        find(packages, "usr/lib64/ld-linux-x86-64.so.2")
            .link
            .as_deref(),
        Some("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "a relative target leaving the alias is made absolute (it resolves through `/lib`)"
    );

    let source = tmp.path().join("kiln");
    std::fs::write(&source, b"binary").unwrap();
    let refused = build(
        &tmp.path().join("again"),
        &[LocalFile {
            source,
            path: "/bin/kiln".into(),
        }],
    );
    let err = refused.result.unwrap_err();
    assert!(
        matches!(&err, BaseImageError::MergedUsr { path, alias, .. } if path == "bin/kiln" && alias == "bin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`/usr/bin`"), "{err}");
}

/// D10 and D07: no script ran (the fixtures' `postinst` fails), yet the base has what they
/// would have made, from kiln's generators: `/etc/passwd`, `/etc/group`, the CA bundle, the
/// `update-alternatives`-style link. The skipped scripts and the setuid decisions are in the
/// image's labels.
#[test]
fn d10_script_effects_come_from_generators_and_skipped_scripts_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let built = build(tmp.path(), &[]);
    let all = layers(&built);
    let generated = all.last().unwrap();
    assert_eq!(
        find(generated, "etc/passwd").data,
        b"nonroot:x:65532:65532::/home/nonroot:/usr/sbin/nologin\n"
    );
    assert_eq!(find(generated, "etc/group").data, b"nonroot:x:65532:\n");
    assert_eq!(
        find(generated, "etc/ssl/certs/ca-certificates.crt").data,
        CERT.as_bytes()
    );
    assert_eq!(find(generated, "usr/bin/sh").link.as_deref(), Some("dash"));
    assert_eq!(find(generated, "home/nonroot/").uid, 65532);

    let labels = labels(&built);
    assert_eq!(
        labels[SKIPPED_SCRIPTS_LABEL],
        r#"{"ca-certificates":["postinst"],"libc6":["postinst"]}"#
    );
    assert_eq!(
        labels[SETUID_LABEL],
        r#"{"/usr/bin/keep-me":"kept","/usr/bin/strip-me":"stripped"}"#
    );
    let packages = &all[1];
    assert_eq!(find(packages, "usr/bin/strip-me").mode, 0o755);
    assert_eq!(find(packages, "usr/bin/keep-me").mode, 0o4755);
    for layer in &all {
        assert!(!layer.iter().any(|e| e.path.contains("postinst")));
    }
}
