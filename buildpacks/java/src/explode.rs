//! Exploding a jar into layer directories, confined: the jar comes out of the user's build,
//! so every entry name, type and size is checked before a byte is written.
//!
//! A layered Spring Boot jar's entries go to the layer `BOOT-INF/layers.idx` assigns them
//! (<https://docs.spring.io/spring-boot/specification/executable-jar/>); any other jar goes
//! whole to the layer [`DEFAULT_LAYER`].

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::jar::{JarError, LAYERS_IDX, read_small};
use crate::layers_idx::{LayersIdx, is_layer_name};

/// The layer of every entry of a jar without a layer index.
pub const DEFAULT_LAYER: &str = "application";
/// `S_IFMT`, `S_IFREG` and `S_IFDIR` of a zip entry's unix mode.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Caps on what exploding one jar may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most entries a jar may hold.
    pub max_entries: usize,
    /// The most uncompressed bytes, all entries together.
    pub max_total_bytes: u64,
    /// The highest uncompressed/compressed ratio of one entry (a zip bomb's tell).
    pub max_ratio: u64,
    /// Entries at most this big (uncompressed) are exempt from `max_ratio`: small text
    /// compresses well and cannot blow up far.
    pub ratio_exempt_bytes: u64,
}

impl Default for Limits {
    /// Returns generous caps for real apps: 100,000 entries, 4 GiB, ratio 100 above 1 MiB.
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_total_bytes: 4 << 30,
            max_ratio: 100,
            ratio_exempt_bytes: 1 << 20,
        }
    }
}

/// One layer directory that received entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplodedLayer {
    /// The layer name.
    pub name: String,
    /// The directory its entries went to.
    pub dir: PathBuf,
}

/// Extracts every entry of `jar` into the directory `dest_for_layer` gives for its layer,
/// refusing unsafe names and types, duplicates and anything over `limits`. Destinations
/// should be empty or missing: existing files are never overwritten and existing symlinks
/// never followed. Returns the layers that received entries, in index order.
pub fn explode(
    jar: &Path,
    dest_for_layer: impl Fn(&str) -> PathBuf,
    limits: &Limits,
) -> Result<Vec<ExplodedLayer>, JarError> {
    let zip_err = |source| JarError::Zip {
        jar: jar.to_path_buf(),
        source,
    };
    let refuse = |entry: &str, reason: String| JarError::Refused {
        jar: jar.to_path_buf(),
        entry: entry.escape_debug().to_string(),
        reason,
    };
    let file = fs::File::open(jar).map_err(|e| zip_err(e.into()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
    if archive.len() > limits.max_entries {
        return Err(JarError::TooManyEntries {
            jar: jar.to_path_buf(),
            count: archive.len(),
            max: limits.max_entries,
        });
    }
    // The zip reader keys entries by name, so a duplicate would silently hide; count the
    // central directory's records ourselves. Overlapping entries are a bomb and smuggling tell.
    let names = central_names(jar, archive.central_directory_start(), limits.max_entries)
        .map_err(|e| zip_err(e.into()))?;
    if names.len() != archive.len() {
        let mut seen = BTreeSet::new();
        let dup = names
            .iter()
            .find(|n| !seen.insert(*n))
            .cloned()
            .unwrap_or_default();
        return Err(refuse(&dup, "the jar holds this name twice".to_owned()));
    }
    if archive.has_overlapping_files().map_err(zip_err)? {
        return Err(refuse(
            "*",
            "entries overlap each other in the jar".to_owned(),
        ));
    }
    let index = match read_small(&mut archive, LAYERS_IDX).map_err(zip_err)? {
        Some(text) => {
            Some(
                LayersIdx::parse(&text).map_err(|(line, problem)| JarError::LayersIdx {
                    jar: jar.to_path_buf(),
                    line,
                    problem,
                })?,
            )
        }
        None => None,
    };

    // Pass 1: check every entry from the central directory before writing anything.
    let mut plan = Vec::with_capacity(archive.len());
    let mut seen = BTreeSet::new();
    let mut declared_total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(zip_err)?;
        let name = entry.name().to_owned();
        check_name(&name).map_err(|reason| refuse(&name, reason))?;
        let is_dir = name.ends_with('/');
        if let Some(mode) = entry.unix_mode() {
            let kind = mode & S_IFMT;
            if kind != 0 && kind != S_IFREG && kind != S_IFDIR {
                return Err(refuse(
                    &name,
                    format!("not a file or directory (mode {mode:o})"),
                ));
            }
        }
        if !seen.insert(name.trim_end_matches('/').to_owned()) {
            return Err(refuse(&name, "the jar holds this name twice".to_owned()));
        }
        declared_total = declared_total.saturating_add(entry.size());
        if declared_total > limits.max_total_bytes {
            return Err(refuse(&name, over_total(limits)));
        }
        check_ratio(entry.size(), entry.compressed_size(), limits)
            .map_err(|reason| refuse(&name, reason))?;
        let layer = match &index {
            None => Some(DEFAULT_LAYER),
            Some(index) => index.layer_for(&name),
        };
        match layer {
            Some(layer) if is_layer_name(layer) => plan.push((i, name, layer.to_owned(), is_dir)),
            Some(layer) => return Err(refuse(&name, format!("bad layer name `{layer}`"))),
            // Directories come into being with the files under them.
            None if is_dir => {}
            None => return Err(refuse(&name, format!("not listed in `{LAYERS_IDX}`"))),
        }
    }

    // Pass 2: write, counting the bytes that really come out (headers may lie).
    let mut layers: Vec<ExplodedLayer> = Vec::new();
    let mut total = 0u64;
    for (i, name, layer, is_dir) in plan {
        let root = dest_for_layer(&layer);
        if !layers.iter().any(|l| l.name == layer) {
            layers.push(ExplodedLayer {
                name: layer.clone(),
                dir: root.clone(),
            });
        }
        let write_err = |path: &Path, source| JarError::Write {
            jar: jar.to_path_buf(),
            entry: name.escape_debug().to_string(),
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(&root).map_err(|e| write_err(&root, e))?;
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        let (dirs, leaf) = if is_dir {
            (&parts[..], None)
        } else {
            (&parts[..parts.len() - 1], parts.last().copied())
        };
        let mut path = root;
        for part in dirs {
            path.push(part);
            ensure_dir(&path).map_err(|e| write_err(&path, e))?;
        }
        let Some(leaf) = leaf else { continue };
        path.push(leaf);
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let (compressed, declared) = (entry.compressed_size(), entry.size());
        // create_new is O_CREAT|O_EXCL: it never follows or replaces what is already there.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| write_err(&path, e))?;
        // Pass 1 held the declared sizes to the ratio and total caps, so stopping one byte
        // past the declared size bounds what a lying header can make us write.
        let budget = limits.max_total_bytes - total;
        let cap = declared.min(budget);
        let written = io::copy(&mut (&mut entry).take(cap.saturating_add(1)), &mut out)
            .map_err(|e| write_err(&path, e))?;
        total += written.min(cap);
        if written > declared {
            return Err(refuse(
                &name,
                format!("it inflates to more than the {declared} bytes its header declares"),
            ));
        }
        if written > budget {
            return Err(refuse(&name, over_total(limits)));
        }
        check_ratio(written, compressed, limits).map_err(|reason| refuse(&name, reason))?;
        out.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| write_err(&path, e))?;
    }
    if let Some(index) = &index {
        layers.sort_by_key(|l| index.layers.iter().position(|(n, _)| *n == l.name));
    }
    Ok(layers)
}

/// Returns the names of the central directory records starting at `start` (at most `max + 1`).
fn central_names(jar: &Path, start: u64, max: usize) -> io::Result<Vec<String>> {
    use std::io::{BufReader, Seek, SeekFrom};
    let mut file = BufReader::new(fs::File::open(jar)?);
    file.seek(SeekFrom::Start(start))?;
    let mut names = Vec::new();
    let mut fixed = [0u8; 46];
    while names.len() <= max {
        if file.read_exact(&mut fixed).is_err() || fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
            break;
        }
        let le = |at: usize| u64::from(u16::from_le_bytes([fixed[at], fixed[at + 1]]));
        let mut name = vec![0u8; le(28) as usize];
        file.read_exact(&mut name)?;
        file.seek_relative((le(30) + le(32)) as i64)?;
        names.push(String::from_utf8_lossy(&name).into_owned());
    }
    Ok(names)
}

/// Returns why `name` is not a safe relative path of plain components, if it is not.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with('/') {
        return Err("absolute or empty path".to_owned());
    }
    if name.contains('\\') || name.contains('\0') {
        return Err("backslash or NUL in the name".to_owned());
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("drive letter in the name".to_owned());
    }
    for part in name.trim_end_matches('/').split('/') {
        match part {
            ".." => return Err("`..` in the path".to_owned()),
            "" | "." => return Err("empty or `.` path component".to_owned()),
            _ => {}
        }
    }
    Ok(())
}

/// Returns why an entry of `size` bytes stored in `compressed` bytes looks like a zip bomb.
fn check_ratio(size: u64, compressed: u64, limits: &Limits) -> Result<(), String> {
    if size <= limits.ratio_exempt_bytes || size <= compressed.saturating_mul(limits.max_ratio) {
        return Ok(());
    }
    Err(format!(
        "{size} bytes from {compressed} compressed is over the ratio limit of {}",
        limits.max_ratio
    ))
}

/// Returns the message for going over the total size cap.
fn over_total(limits: &Limits) -> String {
    format!(
        "the jar unpacks to more than the limit of {} bytes",
        limits.max_total_bytes
    )
}

/// Makes `path` a 0755 directory unless it is one; refuses a symlink there.
pub(crate) fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "something other than a directory (perhaps a symlink) is in the way",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        }
        Err(e) => Err(e),
    }
}
