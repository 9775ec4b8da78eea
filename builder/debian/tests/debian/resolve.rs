//! Dependency resolution over synthetic `Packages` indices: the exclusion rule,
//! alternatives, virtual packages, version constraints and architecture qualifiers.

use kiln_debian::packages::{PackageIndex, parse_packages};
use kiln_debian::resolve::{DropRule, Resolution, ResolveError, resolve};

fn stanza(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}.deb\nSize: 1\nSHA256: {}\n\n",
        "0".repeat(64)
    )
}

fn index(stanzas: &[String]) -> PackageIndex {
    parse_packages(&stanzas.concat(), "Packages").unwrap()
}

fn names(r: &Resolution) -> Vec<&str> {
    r.packages.keys().map(String::as_str).collect()
}

fn want(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn archive() -> PackageIndex {
    index(&[
        stanza(
            "ca-certificates",
            "20250419",
            "Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0\n",
        ),
        stanza(
            "openssl",
            "3.5.1-1",
            "Depends: libc6 (>= 2.34), libssl3t64 (>= 3.5.0)\n",
        ),
        stanza(
            "libssl3t64",
            "3.5.1-1",
            "Provides: libssl3 (= 3.5.1-1)\nDepends: libc6 (>= 2.38)\n",
        ),
        stanza("libc6", "2.41-12", "Depends: libgcc-s1\n"),
        stanza(
            "libgcc-s1",
            "14.2.0-19",
            "Depends: gcc-14-base (= 14.2.0-19), libc6 (>= 2.35)\n",
        ),
        stanza("gcc-14-base", "14.2.0-19", ""),
        stanza(
            "debconf",
            "1.5.91",
            "Priority: required\nProvides: debconf-2.0\n",
        ),
        stanza("cdebconf", "0.280", "Provides: debconf-2.0\n"),
        stanza(
            "base-files",
            "13.8",
            "Essential: yes\nPriority: required\nPre-Depends: awk\n",
        ),
        stanza("mawk", "1.3.4", "Priority: required\nProvides: awk\n"),
        stanza("gawk", "5.2", "Provides: awk\n"),
        stanza(
            "tzdata",
            "2026c-0",
            "Priority: required\nDepends: debconf (>= 0.5) | debconf-2.0\n",
        ),
        stanza(
            "app",
            "1",
            "Depends: mail-transport-agent, python3:any, libfoo | libssl3t64\n",
        ),
        stanza("exim4", "4", "Provides: mail-transport-agent\n"),
        stanza("postfix", "3", "Provides: mail-transport-agent\n"),
        stanza("python3", "3.13", ""),
        stanza("old", "1", "Depends: libc6 (>= 9)\n"),
        stanza("weird", "1", "Depends: libc6:i386\n"),
        stanza("alt", "1", "Depends: exim4 | postfix, gawk | mawk\n"),
    ])
}

#[test]
fn static_closure_drops_install_time_and_excluded_dependencies() {
    let r = resolve(
        &archive(),
        "amd64",
        &want(&["ca-certificates", "tzdata", "base-files"]),
        &want(&["openssl"]),
    )
    .unwrap();
    assert_eq!(names(&r), ["base-files", "ca-certificates", "tzdata"]);
    let dropped: Vec<(&str, &str, DropRule)> = r
        .dropped
        .iter()
        .map(|d| (d.from.as_str(), d.dependency.as_str(), d.rule))
        .collect();
    assert!(dropped.contains(&("ca-certificates", "openssl (>= 1.1.1)", DropRule::Excluded)));
    assert!(dropped.contains(&(
        "ca-certificates",
        "debconf (>= 0.5) | debconf-2.0",
        DropRule::InstallTime
    )));
    assert!(dropped.contains(&("base-files", "awk", DropRule::InstallTime)));
}

#[test]
fn without_the_exclusion_openssl_pulls_libc() {
    let r = resolve(&archive(), "amd64", &want(&["ca-certificates"]), &[]).unwrap();
    assert_eq!(
        names(&r),
        [
            "ca-certificates",
            "gcc-14-base",
            "libc6",
            "libgcc-s1",
            "libssl3t64",
            "openssl"
        ]
    );
    assert_eq!(r.pulled_by["libc6"].as_deref(), Some("openssl"));
    assert_eq!(r.pulled_by["ca-certificates"], None);
}

#[test]
fn explicit_packages_are_kept_even_when_install_time() {
    let r = resolve(&archive(), "amd64", &want(&["tzdata", "debconf"]), &[]).unwrap();
    assert_eq!(names(&r), ["debconf", "tzdata"]);
}

#[test]
fn ambiguous_virtual_names_the_providers() {
    let err = resolve(&archive(), "amd64", &want(&["app"]), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`mail-transport-agent`"), "{msg}");
    assert!(msg.contains("`exim4`, `postfix`"), "{msg}");
    assert!(msg.contains("list one of them"), "{msg}");
    // Listing one settles it; `libfoo | libssl3t64` falls through to the second.
    let r = resolve(&archive(), "amd64", &want(&["app", "postfix"]), &[]).unwrap();
    assert!(r.packages.contains_key("libssl3t64"));
    assert!(r.packages.contains_key("python3"));
    assert!(!r.packages.contains_key("exim4"));
}

#[test]
fn alternatives_prefer_what_is_already_selected() {
    let r = resolve(&archive(), "amd64", &want(&["alt", "postfix"]), &[]).unwrap();
    assert_eq!(
        names(&r),
        ["alt", "postfix"],
        "`gawk | mawk` is dropped: mawk is install-time"
    );
    let r = resolve(&archive(), "amd64", &want(&["alt"]), &[]).unwrap();
    assert_eq!(
        names(&r),
        ["alt", "exim4"],
        "the first alternative that exists"
    );
}

#[test]
fn unsatisfied_versions_foreign_arch_and_unknown_names() {
    let err = resolve(&archive(), "amd64", &want(&["old"]), &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "`old` depends on `libc6 (>= 9)` but the archive has `libc6` 2.41-12"
    );
    let err = resolve(&archive(), "amd64", &want(&["weird"]), &[]).unwrap_err();
    assert!(matches!(err, ResolveError::ForeignArch { .. }), "{err}");
    let err = resolve(&archive(), "amd64", &want(&["nope"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`nope`"), "{err}");
}

#[test]
fn versioned_provides_satisfy_versioned_dependencies() {
    let idx = index(&[
        stanza("needs", "1", "Depends: libssl3 (>= 3.0)\n"),
        stanza("libssl3t64", "3.5.1-1", "Provides: libssl3 (= 3.5.1-1)\n"),
    ]);
    let r = resolve(&idx, "amd64", &want(&["needs"]), &[]).unwrap();
    assert!(r.packages.contains_key("libssl3t64"));
    let idx = index(&[
        stanza("needs", "1", "Depends: awk (>= 1)\n"),
        stanza("mawk", "1", "Provides: awk\n"),
    ]);
    assert!(resolve(&idx, "amd64", &want(&["needs"]), &[]).is_err());
}
