//! A cache entry split into parts by age, so that what a build adds to an append-mostly
//! cache (Go's build cache, npm's `_cacache`, a Maven repository) is uploaded alone.
//!
//! Each pack or restore records, in `.parts/<entry>.json` beside the entries, which paths
//! each part of the entry held. The next pack keeps every recorded part whose paths are all
//! still there (its content may have changed; it is then written again), in the same order,
//! and puts everything else into one new part at the end: the files the build added, and
//! those of parts it broke up (a file removed). The new part is then merged into the one
//! before it while that one is less than twice its size, or there are too many parts, so
//! parts grow towards the oldest and their count stays logarithmic in the cache's size.
//!
//! The record only decides how an entry is cut: a missing or stale one costs an upload,
//! never a wrong cache.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kiln_layer::LayerContents;
use serde::{Deserialize, Serialize};

/// The directory of the records, beside the entries (dot names are never packed).
const RECORDS: &str = ".parts";
/// At most this many parts per entry.
const MAX_PARTS: usize = 12;

/// The paths each part of an entry held, oldest part first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    parts: Vec<Vec<String>>,
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(RECORDS).join(format!("{name}.json"))
}

/// Returns the parts of the entry `name` of the cache directory `dir`, whose contents are
/// `all`: the recorded parts that are all still there, then the rest, merged as the
/// module says. The parts are disjoint and cover `all`.
pub(crate) fn split(dir: &Path, name: &str, all: &LayerContents) -> Vec<LayerContents> {
    let (mut parts, taken) = kept(&read(dir, name), all);
    let rest = all.without(&taken);
    if parts.is_empty() || rest.raw_paths().any(|p| !taken.contains(p)) {
        parts.push(rest);
    }
    while let [.., older, newer] = parts.as_slice() {
        if parts.len() <= MAX_PARTS && older.file_bytes() >= 2 * newer.file_bytes() {
            break;
        }
        let newer = parts.pop().expect("two parts");
        let older = parts.pop().expect("two parts");
        let merged = all
            .subset(older.raw_paths().chain(newer.raw_paths()))
            .expect("both parts are in the entry");
        parts.push(merged);
    }
    parts
}

/// Returns the parts of the entry `name` of `dir` exactly as recorded, if every one of
/// them is still whole.
pub(crate) fn recorded(dir: &Path, name: &str, all: &LayerContents) -> Option<Vec<LayerContents>> {
    let record = read(dir, name);
    let (parts, _) = kept(&record, all);
    (parts.len() == record.parts.len()).then_some(parts)
}

/// Returns the recorded parts that are whole in `all` and disjoint, with every path they
/// take.
fn kept(record: &Record, all: &LayerContents) -> (Vec<LayerContents>, BTreeSet<Vec<u8>>) {
    let mut taken = BTreeSet::new();
    let mut parts = Vec::new();
    for listed in &record.parts {
        let Some(part) = all.subset(listed.iter().map(|p| p.as_bytes())) else {
            continue;
        };
        // A file in two records is nobody's: the new part takes it.
        let shared = part
            .raw_paths()
            .any(|p| !all.is_dir(p) && taken.contains(p));
        if shared {
            continue;
        }
        taken.extend(part.raw_paths().map(<[u8]>::to_vec));
        parts.push(part);
    }
    (parts, taken)
}

fn read(dir: &Path, name: &str) -> Record {
    std::fs::read(record_path(dir, name))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Records how the entry `name` of `dir` is cut into `parts`; failing to is harmless.
pub(crate) fn record(dir: &Path, name: &str, parts: &[LayerContents]) {
    let lists = parts
        .iter()
        .map(|p| p.paths().map(|p| p.into_owned()).collect())
        .collect();
    record_lists(dir, name, lists);
}

/// Records the paths of each part of the entry `name` of `dir`; failing to is harmless.
pub(crate) fn record_lists(dir: &Path, name: &str, parts: Vec<Vec<String>>) {
    let json = serde_json::to_vec(&Record { parts }).expect("records serialize");
    let _ = std::fs::create_dir_all(dir.join(RECORDS));
    let _ = kiln_layer::write_atomic(&record_path(dir, name), &json);
}

/// Returns every path below `root` (directories included), relative to it: the paths of
/// the layer unpacked there.
pub(crate) fn list(root: &Path) -> std::io::Result<Vec<String>> {
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry.path().strip_prefix(root).expect("below the root");
        paths.push(relative.to_string_lossy().into_owned());
    }
    Ok(paths)
}

/// Moves everything below `from` into `into`: what `into` lacks is renamed there whole,
/// directories both have are merged. Two parts holding the same file is an error.
pub(crate) fn merge_tree(from: &Path, into: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = into.join(entry.file_name());
        match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(entry.path(), &target)?;
            }
            Ok(meta) if meta.is_dir() && entry.file_type()?.is_dir() => {
                merge_tree(&entry.path(), &target)?;
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "`{}` is in two parts of the entry",
                    target.display()
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
