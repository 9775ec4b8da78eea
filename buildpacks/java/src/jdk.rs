//! The host JDK that Maven will use (`$JAVA_HOME/bin/java`, else `java` on `PATH`) must be
//! at least the Java release the project compiles for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_lifecycle::{BuildpackError, Sandbox};

use crate::pom::normalize_release;

/// Where Debian and the Temurin packages install JDKs; searched only to name one in a hint.
const JVM_DIR: &str = "/usr/lib/jvm";

/// Refuses a host JDK older than `needed`, naming both and any installed JDK that would do.
pub(crate) fn check_host_jdk(
    env: &BTreeMap<String, String>,
    sandbox: &Sandbox,
    needed: u32,
) -> Result<(), BuildpackError> {
    let java = match env.get("JAVA_HOME") {
        Some(home) if !home.is_empty() => Path::new(home).join("bin/java"),
        _ => PathBuf::from("java"),
    };
    let Some(host) = java_release(&java, env, sandbox) else {
        return Ok(()); // No usable `java`: Maven's own error (JAVA_HOME) says it better.
    };
    if host >= needed {
        return Ok(());
    }
    let newer = installed_jdks(Path::new(JVM_DIR), needed);
    let hint = match newer.first() {
        Some(home) => format!(
            "point JAVA_HOME at a JDK {needed} or newer, e.g. `JAVA_HOME={} kiln build ...`",
            home.display()
        ),
        None => format!("install a JDK {needed} or newer and set JAVA_HOME to it"),
    };
    Err(BuildpackError::Usage {
        message: format!(
            "the project compiles for Java {needed}, but the host JDK (`{}`) is Java {host}",
            java.display()
        ),
        hint: Some(hint),
    })
}

/// The `java.specification.version` of `java`, if it runs.
fn java_release(java: &Path, env: &BTreeMap<String, String>, sandbox: &Sandbox) -> Option<u32> {
    let out = sandbox
        .command(java)
        .args(["-XshowSettings:properties", "-version"])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.specification.version = "))
        .and_then(|v| normalize_release(v.trim()))
}

/// JDK homes under `dir` (with `bin/javac`) whose `release` file says `JAVA_VERSION` ≥
/// `needed`, sorted.
fn installed_jdks(dir: &Path, needed: u32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut homes: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|home| home.join("bin/javac").is_file() && !home.is_symlink())
        .filter(|home| {
            std::fs::read_to_string(home.join("release"))
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|l| {
                        let v = l.strip_prefix("JAVA_VERSION=")?.trim_matches('"');
                        normalize_release(v.split('.').next()?)
                    })
                })
                .is_some_and(|v| v >= needed)
        })
        .collect();
    homes.sort();
    homes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jdk(root: &Path, name: &str, version: &str) {
        let home = root.join(name);
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::write(home.join("bin/javac"), "").unwrap();
        std::fs::write(
            home.join("release"),
            format!("JAVA_VERSION=\"{version}\"\n"),
        )
        .unwrap();
    }

    #[test]
    fn finds_installed_jdks_new_enough() {
        let dir = tempfile::tempdir().unwrap();
        jdk(dir.path(), "java-17-openjdk-amd64", "17.0.15");
        jdk(dir.path(), "temurin-25-jdk-amd64", "25.0.1");
        jdk(dir.path(), "jdk-21", "21");
        std::fs::create_dir_all(dir.path().join("not-a-jdk")).unwrap();
        assert_eq!(
            installed_jdks(dir.path(), 21),
            [
                dir.path().join("jdk-21"),
                dir.path().join("temurin-25-jdk-amd64")
            ]
        );
        assert_eq!(installed_jdks(dir.path(), 17).len(), 3);
        assert!(installed_jdks(dir.path(), 26).is_empty());
    }

    #[test]
    fn a_missing_java_is_left_to_maven() {
        let env = BTreeMap::from([("JAVA_HOME".to_owned(), "/nonexistent/jdk".to_owned())]);
        assert!(check_host_jdk(&env, Sandbox::unconfined(), 99).is_ok());
    }
}
