//! Unit tests of `definition.rs`.

use super::*;

const STATIC: &str = r#"
keyrings = ["keyrings/a.gpg"]
packages = ["tzdata", "netbase"]
exclude = ["openssl"]
user = "65532"
env = { SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt" }

[[groups]]
name = "root"
gid = 0

[[users]]
name = "root"
uid = 0
gid = 0
home = "/root"

[[directories]]
path = "/tmp"
mode = 0o1777

[[files]]
path = "/etc/nsswitch.conf"
content = "hosts: files dns\n"
"#;

#[test]
fn defaults_and_fields() {
    let def = Definition::parse("static", Path::new("/repo/golden-base"), STATIC).unwrap();
    assert_eq!(def.suite, "trixie");
    assert_eq!(def.components, ["main"]);
    assert_eq!(def.architectures, ["amd64"]);
    assert_eq!(
        def.keyrings,
        [PathBuf::from("/repo/golden-base/keyrings/a.gpg")]
    );
    assert_eq!(def.directories[0].mode, 0o1777);
    assert_eq!(def.files[0].mode, 0o644);
    assert_eq!(def.users[0].shell, "/usr/sbin/nologin");
}

#[test]
fn includes_merge_and_cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("static.toml"), STATIC).unwrap();
    std::fs::write(
        dir.path().join("base.toml"),
        "include = \"static\"\npackages = [\"libc6\", \"tzdata\"]\nenv = { SSL_CERT_FILE = \"/x\" }\n",
    )
    .unwrap();
    let def = Definition::load(&dir.path().join("base.toml")).unwrap();
    assert_eq!(def.name, "base");
    assert_eq!(def.includes, ["static"]);
    assert_eq!(def.packages, ["tzdata", "netbase", "libc6"]);
    assert_eq!(def.exclude, ["openssl"]);
    assert_eq!(def.env["SSL_CERT_FILE"], "/x");
    assert_eq!(def.users.len(), 1);

    std::fs::write(dir.path().join("a.toml"), "include = \"b\"\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "include = \"a\"\n").unwrap();
    let err = Definition::load(&dir.path().join("a.toml")).unwrap_err();
    assert!(matches!(err, DefinitionError::IncludeCycle { .. }), "{err}");
    assert!(err.to_string().contains("`a` → `b` → `a`"), "{err}");
}

#[test]
fn unknown_fields_and_bad_values_are_refused() {
    let dir = Path::new("/d");
    let err = Definition::parse("x", dir, &format!("{STATIC}\npackage = [\"a\"]\n")).unwrap_err();
    assert!(matches!(err, DefinitionError::Toml { .. }), "{err:?}");
    // The TOML error, which names the field, is the source, not repeated in the message.
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("`package`"), "{cause}");
    assert!(!err.to_string().contains("`package`"), "{err}");
    let bad_path = STATIC.replace("/etc/nsswitch.conf", "/etc/../passwd");
    assert!(Definition::parse("x", dir, &bad_path).is_err());
    let no_group = STATIC.replace("gid = 0\n\n[[users]]", "gid = 1\n\n[[users]]");
    let err = Definition::parse("x", dir, &no_group)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no group"), "{err}");
    let link = format!("{STATIC}\n[[links]]\npath = \"/usr/bin/java\"\ntarget = \"/j/java\"\n");
    assert_eq!(
        Definition::parse("x", dir, &link).unwrap().links[0].target,
        "/j/java"
    );
    let bad_link = link.replace("/usr/bin/java", "usr/bin/java");
    assert!(Definition::parse("x", dir, &bad_link).is_err());
    let arch_link = link.replace("/j/java", "/j-{arch}/java");
    let def = Definition::parse("x", dir, &arch_link).unwrap();
    assert_eq!(def.for_arch("arm64").links[0].target, "/j-arm64/java");
    let base = Definition::parse("x", dir, STATIC).unwrap();
    let reordered = STATIC.replace("[\"tzdata\", \"netbase\"]", "[\"netbase\", \"tzdata\"]");
    let same = Definition::parse("x", dir, &reordered).unwrap();
    assert_eq!(same.lock_inputs_sha256(), base.lock_inputs_sha256());
    let more = STATIC.replace("\"netbase\"]", "\"netbase\", \"libc6\"]");
    let more = Definition::parse("x", dir, &more).unwrap();
    assert_ne!(more.lock_inputs_sha256(), base.lock_inputs_sha256());
    let user = Definition::parse("x", dir, &STATIC.replace("\"65532\"", "\"1000\"")).unwrap();
    assert_eq!(user.lock_inputs_sha256(), base.lock_inputs_sha256());
    let security = format!("extra-suites = [\"trixie-security\"]\n{STATIC}");
    let def = Definition::parse("x", dir, &security).unwrap();
    assert_eq!(def.extra_suites, ["trixie-security"]);
    assert_ne!(def.lock_inputs_sha256(), base.lock_inputs_sha256());
    let other_archive = security.replace("trixie-security", "bookworm-security");
    let err = Definition::parse("x", dir, &other_archive).unwrap_err();
    assert!(err.to_string().contains("trixie-<kind>"), "{err}");
    let store = format!("{STATIC}\n[java-keystore]\npath = \"/etc/cacerts\"\n");
    let def = Definition::parse("x", dir, &store).unwrap();
    assert_eq!(def.java_keystore.unwrap().password, "changeit");
    let typo = store.replace("path =", "paht =");
    assert!(Definition::parse("x", dir, &typo).is_err());
    let both = STATIC.replace("exclude = [\"openssl\"]", "exclude = [\"tzdata\"]");
    assert!(Definition::parse("x", dir, &both).is_err());
}

#[test]
fn d01_the_curated_bases_pin_each_archive_key_to_its_suites() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden-base");
    for name in ["static", "base", "node", "java17", "java21", "build"] {
        let def = Definition::load(&dir.join(format!("{name}.toml"))).unwrap();
        for suite in std::iter::once(&def.suite).chain(&def.extra_suites) {
            let files = def
                .suite_keyrings
                .get(suite)
                .unwrap_or_else(|| panic!("{name}: `{suite}` has no pinned keyring"));
            let security = files
                .iter()
                .all(|f| f.to_string_lossy().contains("-security-"));
            assert_eq!(security, suite.ends_with("-security"), "{name}: {suite}");
        }
    }
    let err = Definition::parse(
        "x",
        Path::new("/d"),
        &format!("{STATIC}\n[suite-keyrings]\ntrixie = [\"keyrings/other.gpg\"]\n"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`keyrings` does not list"),
        "{err}"
    );
}

#[test]
fn d09_paths_under_the_merged_usr_links_are_refused() {
    let dir = Path::new("/d");
    for (table, path) in [
        ("files", "/bin/sh"),
        ("directories", "/lib/x86_64-linux-gnu"),
        ("links", "/sbin/init"),
    ] {
        let extra = match table {
            "links" => format!("[[links]]\npath = \"{path}\"\ntarget = \"/x\"\n"),
            t => format!("[[{t}]]\npath = \"{path}\"\n"),
        };
        let err = Definition::parse("x", dir, &format!("{STATIC}\n{extra}")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{path}`")) && msg.contains(&format!("`/usr{path}`")),
            "{msg}"
        );
    }
    let setuid = format!("setuid = [\"/bin/su\"]\n{STATIC}");
    assert!(Definition::parse("x", dir, &setuid).is_err());
}

#[test]
fn d07_d08_setuid_and_expansion_rules_come_from_the_definition() {
    let dir = Path::new("/d");
    let def = Definition::parse("x", dir, STATIC).unwrap();
    assert_eq!(def.package_rules(), PackageRules::default());
    let text = format!("setuid = [\"/usr/bin/ping\"]\nmax-expansion-percent = 400\n{STATIC}");
    let rules = Definition::parse("x", dir, &text).unwrap().package_rules();
    assert_eq!(rules.max_expansion_percent, 400);
    assert!(rules.keep_setuid.contains("usr/bin/ping"));
    let low = format!("max-expansion-percent = 99\n{STATIC}");
    let err = Definition::parse("x", dir, &low).unwrap_err();
    assert!(err.to_string().contains("max-expansion-percent"), "{err}");
    let field = format!("allow-release-info-change = [\"Version\"]\n{STATIC}");
    let err = Definition::parse("x", dir, &field).unwrap_err();
    assert!(err.to_string().contains("`Codename`"), "{err}");
}
