//! Class-data sharing for Maven's own JVM: the classes Maven loads at every start, dumped
//! once into an archive in kiln's cache (`-XX:ArchiveClassesAtExit`) and mapped by later
//! runs (`-XX:SharedArchiveFile`), which starts Maven about 0.2 s sooner.
//!
//! The archive is keyed by the `java` and Maven that run (paths and `stat`s), kept outside
//! cache images (a dot directory), and only ever an optimisation: a JVM that cannot use it
//! (another JDK, a damaged file, a JDK before 13 that lacks the flags) runs without it,
//! silently. It is dumped by an incremental build, never by a full one, so that a cold
//! build does not pay for the dump.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_lifecycle::find_executable;
use sha2::{Digest, Sha256};

/// Where archives live, below the buildpack's cache directory.
const DIR: &str = ".maven-cds";
/// Flags every use of an archive needs: old JDKs ignore them, and no warning about an
/// archive that cannot be used reaches the build output.
const QUIET: [&str; 3] = [
    "-XX:+IgnoreUnrecognizedVMOptions",
    "-Xlog:cds=off",
    "-Xlog:cds+dynamic=off",
];

/// Maven's archive for one `java` and Maven.
pub(crate) struct Cds {
    archive: PathBuf,
    /// Where this run dumps a new archive, if it does.
    dumping: Option<PathBuf>,
}

impl Cds {
    /// Returns the archive for the Maven `maven` run with `env`, to be dumped by this run
    /// when it does not exist yet and `may_dump`. `None` when kiln cannot tell which `java`
    /// runs.
    pub(crate) fn new(
        cache_dir: &Path,
        maven: &Path,
        env: &BTreeMap<String, String>,
        may_dump: bool,
    ) -> Option<Self> {
        let java = match env.get("JAVA_HOME") {
            Some(home) => PathBuf::from(home).join("bin/java"),
            None => find_executable(env.get("PATH").map_or("", String::as_str), "java")?,
        };
        let mut key = Sha256::new();
        for path in [&java, maven] {
            let real = path.canonicalize().ok()?;
            let meta = std::fs::metadata(&real).ok()?;
            key.update(real.as_os_str().as_encoded_bytes());
            key.update([0]);
            for n in [meta.dev(), meta.ino(), meta.size(), meta.mtime() as u64] {
                key.update(n.to_le_bytes());
            }
        }
        let key = format!("{:x}", key.finalize());
        let archive = cache_dir.join(DIR).join(format!("{}.jsa", &key[..16]));
        let dumping = (may_dump && !archive.is_file()).then(|| {
            let _ = std::fs::create_dir_all(cache_dir.join(DIR));
            archive.with_extension(format!("{}.tmp", std::process::id()))
        });
        Some(Self { archive, dumping })
    }

    /// Returns the JVM flags that use or dump the archive.
    pub(crate) fn flags(&self) -> String {
        let archive = match &self.dumping {
            Some(tmp) => format!("-XX:ArchiveClassesAtExit={}", tmp.display()),
            None if self.archive.is_file() => {
                format!("-XX:SharedArchiveFile={}", self.archive.display())
            }
            None => return String::new(),
        };
        let mut flags: Vec<String> = QUIET.iter().map(|f| (*f).to_owned()).collect();
        flags.push(archive);
        flags.join(" ")
    }

    /// Keeps the archive this run dumped if Maven `succeeded`, else drops it.
    pub(crate) fn finish(self, succeeded: bool) {
        let Some(tmp) = self.dumping else { return };
        if succeeded && tmp.is_file() {
            let _ = std::fs::rename(&tmp, &self.archive);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_dumped_once_then_used() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("jdk/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("java"), "").unwrap();
        let mvn = tmp.path().join("mvn");
        std::fs::write(&mvn, "").unwrap();
        let env = BTreeMap::from([(
            "JAVA_HOME".to_owned(),
            tmp.path().join("jdk").display().to_string(),
        )]);
        let cache = tmp.path().join("cache");

        let full = Cds::new(&cache, &mvn, &env, false).unwrap();
        assert_eq!(
            full.flags(),
            "",
            "no archive yet, and a full build dumps none"
        );
        let first = Cds::new(&cache, &mvn, &env, true).unwrap();
        assert!(first.flags().contains("-XX:ArchiveClassesAtExit="));
        assert!(
            first
                .flags()
                .starts_with("-XX:+IgnoreUnrecognizedVMOptions")
        );
        let tmp_archive = first.dumping.clone().unwrap();
        std::fs::write(&tmp_archive, "jsa").unwrap();
        first.finish(true);
        let next = Cds::new(&cache, &mvn, &env, true).unwrap();
        assert!(
            next.flags().contains("-XX:SharedArchiveFile="),
            "{}",
            next.flags()
        );

        // Another Maven is another archive; a failed dump leaves nothing.
        std::fs::write(&mvn, "changed").unwrap();
        let other = Cds::new(&cache, &mvn, &env, true).unwrap();
        let tmp_archive = other.dumping.clone().unwrap();
        std::fs::write(&tmp_archive, "half").unwrap();
        other.finish(false);
        assert!(!tmp_archive.exists());
        assert!(!other_archive_exists(&cache, &mvn, &env));
    }

    fn other_archive_exists(cache: &Path, mvn: &Path, env: &BTreeMap<String, String>) -> bool {
        Cds::new(cache, mvn, env, false).unwrap().archive.is_file()
    }
}
