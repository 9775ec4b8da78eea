//! What kind of jar the user's build produced: a Spring Boot executable jar, another
//! executable jar, or a plain library jar; and the layer index of a layered Spring Boot jar
//! (<https://docs.spring.io/spring-boot/specification/executable-jar/>).
//!
//! The jar is the output of project code, so it is read as untrusted input: the manifest
//! and the index are read with a size cap.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::layers_idx::LayersIdx;

/// The layer index inside a layered Spring Boot jar.
pub const LAYERS_IDX: &str = "BOOT-INF/layers.idx";
/// The jar manifest.
pub const MANIFEST: &str = "META-INF/MANIFEST.MF";
/// The prefix of Spring Boot's launcher classes (`Main-Class` of its executable jars).
const BOOT_LOADER: &str = "org.springframework.boot.loader.";
/// The most bytes read from the manifest or the layer index.
const MAX_META_BYTES: u64 = 1 << 20;

/// What kind of jar a build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JarKind {
    /// A Spring Boot executable jar: `Main-Class` is Spring Boot's launcher.
    SpringBoot {
        /// The launcher class (`Main-Class`).
        launcher: String,
        /// The app's own main class (`Start-Class`).
        start_class: String,
        /// The layer index, when the jar is layered (`BOOT-INF/layers.idx`).
        layers: Option<LayersIdx>,
    },
    /// Another jar with a `Main-Class`.
    Executable {
        /// The main class.
        main_class: String,
    },
    /// A jar without a `Main-Class`: a library, not an app.
    Plain,
}

/// Why a jar could not be read, or was refused.
#[derive(Debug, thiserror::Error)]
pub enum JarError {
    /// The jar could not be opened or read as a zip.
    #[error("reading jar `{}`", jar.display())]
    Zip {
        /// The jar.
        jar: PathBuf,
        /// The zip error.
        source: zip::result::ZipError,
    },
    /// The layer index is malformed.
    #[error("reading `{LAYERS_IDX}` of jar `{}`: line {line}: {problem}", jar.display())]
    LayersIdx {
        /// The jar.
        jar: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// An entry is refused (unsafe name or type, or over a limit).
    #[error("exploding jar `{}`: refusing entry `{entry}`: {reason}", jar.display())]
    Refused {
        /// The jar.
        jar: PathBuf,
        /// The entry name, control characters escaped.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The jar holds more entries than allowed.
    #[error("exploding jar `{}`: {count} entries, more than the limit of {max}", jar.display())]
    TooManyEntries {
        /// The jar.
        jar: PathBuf,
        /// Entries in the jar.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Writing an entry failed.
    #[error("exploding jar `{}`: writing entry `{entry}` to `{}`", jar.display(), path.display())]
    Write {
        /// The jar.
        jar: PathBuf,
        /// The entry name.
        entry: String,
        /// The destination.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Returns what kind of jar `jar` is.
pub fn inspect(jar: &Path) -> Result<JarKind, JarError> {
    let zip_err = |source| JarError::Zip {
        jar: jar.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(jar).map_err(|e| zip_err(e.into()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
    let manifest = read_small(&mut archive, MANIFEST).map_err(zip_err)?;
    let attrs = manifest.as_deref().map(main_attributes).unwrap_or_default();
    let get = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let Some(main_class) = get("Main-Class") else {
        return Ok(JarKind::Plain);
    };
    match get("Start-Class") {
        Some(start_class) if main_class.starts_with(BOOT_LOADER) => {
            let layers = match read_small(&mut archive, LAYERS_IDX).map_err(zip_err)? {
                Some(text) => Some(LayersIdx::parse(&text).map_err(|(line, problem)| {
                    JarError::LayersIdx {
                        jar: jar.to_path_buf(),
                        line,
                        problem,
                    }
                })?),
                None => None,
            };
            Ok(JarKind::SpringBoot {
                launcher: main_class,
                start_class,
                layers,
            })
        }
        _ => Ok(JarKind::Executable { main_class }),
    }
}

/// Returns the text of entry `name` (at most [`MAX_META_BYTES`]), `None` if there is none.
pub(crate) fn read_small<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> zip::result::ZipResult<Option<String>> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    entry.take(MAX_META_BYTES).read_to_end(&mut bytes)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Returns the main section's attributes of a manifest: `Key: Value` lines, continuation
/// lines (starting with one space) joined, up to the first blank line.
fn main_attributes(text: &str) -> Vec<(String, String)> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(more) = line.strip_prefix(' ') {
            if let Some((_, value)) = attrs.last_mut() {
                value.push_str(more);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            attrs.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::with_causes;
    use crate::testzip::{jar_file, spring_boot_jar};

    #[test]
    fn classifies_spring_boot_executable_and_plain_jars() {
        let dir = tempfile::tempdir().unwrap();
        let boot = jar_file(dir.path(), "boot.jar", &spring_boot_jar());
        let JarKind::SpringBoot {
            launcher,
            start_class,
            layers,
        } = inspect(&boot).unwrap()
        else {
            panic!("not a spring boot jar");
        };
        assert_eq!(
            launcher,
            "org.springframework.boot.loader.launch.JarLauncher"
        );
        assert_eq!(start_class, "com.example.DemoApplication");
        let names: Vec<_> = layers.unwrap().layers.into_iter().map(|l| l.0).collect();
        assert_eq!(
            names,
            [
                "dependencies",
                "spring-boot-loader",
                "snapshot-dependencies",
                "application"
            ]
        );

        let manifest = "Manifest-Version: 1.0\r\nMain-Class: com.example.Ma\r\n in\r\n\r\nName: x\r\nStart-Class: no\r\n";
        let exe = jar_file(dir.path(), "exe.jar", &[(MANIFEST, manifest.as_bytes())]);
        let want = JarKind::Executable {
            main_class: "com.example.Main".to_owned(),
        };
        assert_eq!(inspect(&exe).unwrap(), want);

        let plain = jar_file(dir.path(), "lib.jar", &[("a/B.class", b"\xca\xfe")]);
        assert_eq!(inspect(&plain).unwrap(), JarKind::Plain);
    }

    #[test]
    fn not_a_zip_is_an_error_naming_the_jar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.jar");
        std::fs::write(&path, b"not a zip").unwrap();
        let err = inspect(&path).unwrap_err();
        assert!(err.to_string().contains("broken.jar"), "{err}");
        // As the build reports it (a message without a source): the jar once, then zip's
        // reason, which is the error's source.
        let text = with_causes(&err);
        let zip = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(text, format!("reading jar `{}`: {zip}", path.display()));
    }
}
