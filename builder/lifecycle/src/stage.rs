//! Keeping a scratch copy of the source up to date in O(changed): [`sync_source`].
//!
//! A build's scratch copy outlives the build (one per [`crate::Scratch`] slot), together
//! with an index of what it holds: for every file, the source's `stat` when it was copied
//! and the copy's `stat` right after. The next build copies a file again only when either
//! moved: the user edited it, or the last build wrote to the copy. Everything in the copy
//! that the source no longer has (build outputs included) is removed, so the copy the
//! toolchain sees is always exactly the filtered source, as a fresh copy would be. Nothing
//! is ever linked: a build writing to its copy can never reach the user's tree.
//!
//! A racy file ([`FileStamp::is_racy`]: its ctime is within the last two seconds) is
//! copied but not indexed, so an edit in the same tick of a coarse file-system clock is
//! never missed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_layer::FileStamp;

use crate::ProjectDescriptor;
use crate::source::{CopyStats, SourceError, ensure_parent, walker};

const MAGIC: &[u8] = b"kiln source index v1\n";
/// Numbers per record: the source's stamp and mode, then the copy's stamp.
const WORDS: usize = 15;

/// The two `stat`s that let a copied file be kept as it is: the source's (with its mode,
/// which a `chmod` changes without a write) and the copy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pair([i64; WORDS]);

impl Pair {
    fn of(src: &fs::Metadata, copy: &fs::Metadata) -> Self {
        let mut words = [0; WORDS];
        words[..7].copy_from_slice(&FileStamp::of(src).0);
        words[7] = i64::from(src.mode());
        words[8..].copy_from_slice(&FileStamp::of(copy).0);
        Self(words)
    }
}

/// What the scratch copy held after the last sync, by path below its root.
#[derive(Default)]
struct Index(HashMap<Vec<u8>, Pair>);

impl Index {
    fn read(path: &Path) -> Self {
        fs::read(path)
            .ok()
            .and_then(|b| Self::parse(&b))
            .unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes.strip_prefix(MAGIC)?;
        let mut map = HashMap::new();
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let name = rest.get(4..4 + len)?.to_vec();
            rest = &rest[4 + len..];
            let mut words = [0i64; WORDS];
            for w in &mut words {
                *w = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
                rest = &rest[8..];
            }
            map.insert(name, Pair(words));
        }
        Some(Self(map))
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.0.len() * (4 + 40 + WORDS * 8));
        out.extend_from_slice(MAGIC);
        for (name, pair) in &self.0 {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name);
            for w in pair.0 {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        kiln_layer::write_atomic(path, &out)
    }
}

/// Makes `dst` an exact copy of the filtered source `src` (see [`crate::copy_source`] for
/// what is left out), copying only the files that changed since the last sync recorded in
/// `index` (see the module docs), and removing everything else in `dst` except the
/// directories `keep` (relative to `dst`; say Maven's `target/`, for incremental builds).
/// With `index` `None`, every file is copied. Returns what the copy holds and what it took.
pub fn sync_source(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
    keep_out: &[PathBuf],
    keep: &[PathBuf],
    index: Option<&Path>,
) -> Result<CopyStats, SourceError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    sync_at(src, dst, project, (keep_out, keep), index, now)
}

/// [`sync_source`] as if it were `now` (unix seconds), for the racy window.
fn sync_at(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
    (keep_out, keep): (&[PathBuf], &[PathBuf]),
    index: Option<&Path>,
    now: i64,
) -> Result<CopyStats, SourceError> {
    let err = |message: String| SourceError::Copy {
        from: src.to_path_buf(),
        to: dst.to_path_buf(),
        message,
    };
    fs::create_dir_all(dst).map_err(|e| err(format!("creating the copy: {e}")))?;
    let old = index.map(Index::read).unwrap_or_default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    // Directories and links in walk order (parents first); files after, on every core:
    // most of a no-op sync is two `lstat`s per file.
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walker(src, dst, project, keep_out)? {
        let entry = entry.map_err(|e| err(e.to_string()))?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .map_err(|e| err(e.to_string()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let at = |what: &str, e: std::io::Error| err(format!("{what} `{}`: {e}", rel.display()));
        let target = dst.join(rel);
        let ft = entry
            .file_type()
            .ok_or_else(|| err(format!("no file type for `{}`", rel.display())))?;
        if ft.is_dir() {
            let there = target.symlink_metadata().ok();
            if !there.as_ref().is_some_and(fs::Metadata::is_dir) {
                remove(&target, there.as_ref()).map_err(|e| at("replacing", e))?;
                fs::create_dir_all(&target).map_err(|e| at("creating", e))?;
            }
        } else if ft.is_symlink() {
            let there = target.symlink_metadata().ok();
            let link = fs::read_link(entry.path()).map_err(|e| at("reading link", e))?;
            let same = there.as_ref().is_some_and(|m| m.file_type().is_symlink())
                && fs::read_link(&target).is_ok_and(|t| t == link);
            if !same {
                remove(&target, there.as_ref()).map_err(|e| at("replacing", e))?;
                ensure_parent(&target).map_err(|e| at("creating the parent of", e))?;
                std::os::unix::fs::symlink(&link, &target).map_err(|e| at("creating link", e))?;
            }
        } else if ft.is_file() {
            files.push(rel.to_path_buf());
        }
        // Sockets, FIFOs and devices in a source tree are never build inputs.
        seen.insert(rel.to_path_buf());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Part, SourceError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let old = &old;
                scope.spawn(move || {
                    let mut out = Part::default();
                    for rel in part {
                        sync_file(src, dst, rel, old, now, &mut out)?;
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(err("a copying thread panicked".into())))
            })
            .collect()
    });
    let mut stats = CopyStats::default();
    let mut new = Index::default();
    for part in parts {
        let part = part?;
        stats.files += part.files;
        stats.bytes += part.bytes;
        stats.unchanged += part.unchanged;
        stats.copied_bytes += part.copied_bytes;
        stats.copied.extend(part.copied);
        new.0.extend(part.index);
    }
    stats.copied.sort();
    stats.stamp = stamp(&new);
    stats.vanished = old.0.keys().filter(|k| !new.0.contains_key(*k)).count() as u64;
    stats.removed =
        remove_unseen(dst, &seen, keep).map_err(|e| err(format!("cleaning up: {e}")))?;
    if let Some(path) = index {
        // Only a cache: without it, the next build copies everything again.
        let _ = new.write(path);
    }
    Ok(stats)
}

/// Returns a digest of every source file's path and `stat`, or `None` when a file changed
/// too recently for its `stat` to stand for its bytes.
fn stamp(index: &Index) -> Option<String> {
    use sha2::Digest as _;
    let mut entries: Vec<(&Vec<u8>, &Pair)> = index.0.iter().collect();
    if entries.iter().any(|(_, p)| p.0 == [0; WORDS]) {
        return None;
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut h = sha2::Sha256::new();
    for (name, pair) in entries {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        // The source's half of the pair: what the user's tree holds.
        for w in &pair.0[..7] {
            h.update(w.to_le_bytes());
        }
    }
    Some(kiln_oci::Digest::from_hasher(h).hex().to_owned())
}

/// What one thread of a sync did.
#[derive(Default)]
struct Part {
    files: u64,
    bytes: u64,
    unchanged: u64,
    copied_bytes: u64,
    copied: Vec<PathBuf>,
    index: Vec<(Vec<u8>, Pair)>,
}

/// Brings the copy of the file `rel` up to date: kept when the source and the copy still
/// have the `stat`s `old` recorded for them, else copied again (and recorded unless racy
/// at `now`, unix seconds).
fn sync_file(
    src: &Path,
    dst: &Path,
    rel: &Path,
    old: &Index,
    now: i64,
    out: &mut Part,
) -> Result<(), SourceError> {
    let at = |what: &str, e: std::io::Error| SourceError::Copy {
        from: src.to_path_buf(),
        to: dst.to_path_buf(),
        message: format!("{what} `{}`: {e}", rel.display()),
    };
    let (from, target) = (src.join(rel), dst.join(rel));
    let meta = from.symlink_metadata().map_err(|e| at("reading", e))?;
    if !meta.is_file() {
        let e = std::io::Error::other("it stopped being a regular file while kiln copied it");
        return Err(at("copying", e));
    }
    let there = target.symlink_metadata().ok();
    let key = rel.as_os_str().as_encoded_bytes();
    let known = old.0.get(key).copied();
    let kept = there
        .as_ref()
        .is_some_and(|copy| known == Some(Pair::of(&meta, copy)));
    let pair = if kept {
        out.unchanged += 1;
        known
    } else {
        remove(&target, there.as_ref()).map_err(|e| at("replacing", e))?;
        ensure_parent(&target).map_err(|e| at("creating the parent of", e))?;
        out.copied_bytes += fs::copy(&from, &target).map_err(|e| at("copying", e))?;
        let copy = target.symlink_metadata().map_err(|e| at("reading", e))?;
        out.copied.push(rel.to_path_buf());
        // A racy file is recorded, so that its removal is seen, but never matches.
        Some(Pair::of(&meta, &copy)).filter(|_| !FileStamp::of(&meta).is_racy_at(now))
    };
    out.index
        .push((key.to_vec(), pair.unwrap_or(Pair([0; WORDS]))));
    out.files += 1;
    out.bytes += meta.size();
    Ok(())
}

/// Removes whatever is at `path` (`meta` its `lstat`, `None` if nothing is there).
fn remove(path: &Path, meta: Option<&fs::Metadata>) -> std::io::Result<()> {
    match meta {
        None => Ok(()),
        Some(m) if m.is_dir() => fs::remove_dir_all(path),
        Some(_) => fs::remove_file(path),
    }
}

/// Removes everything under `dst` not in `seen` (paths relative to `dst`); returns how many
/// entries went (a directory counts once). The directories `keep` are left as they are.
fn remove_unseen(dst: &Path, seen: &HashSet<PathBuf>, keep: &[PathBuf]) -> std::io::Result<u64> {
    let mut removed = 0;
    let mut walk = walkdir::WalkDir::new(dst).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(dst)
            .map_err(std::io::Error::other)?;
        if keep.iter().any(|k| k == rel) {
            walk.skip_current_dir();
            continue;
        }
        if seen.contains(rel) {
            continue;
        }
        if entry.file_type().is_dir() {
            walk.skip_current_dir();
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: i64 = i64::MAX / 2;

    struct Tree {
        _tmp: tempfile::TempDir,
        src: PathBuf,
        dst: PathBuf,
        index: PathBuf,
    }

    impl Tree {
        fn new(files: &[(&str, &str)]) -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let src = tmp.path().join("src");
            for (p, c) in files {
                write(&src.join(p), c);
            }
            Self {
                src,
                dst: tmp.path().join("dst"),
                index: tmp.path().join("index"),
                _tmp: tmp,
            }
        }

        fn sync(&self, keep: &[&str], now: i64) -> CopyStats {
            let keep: Vec<PathBuf> = keep.iter().map(PathBuf::from).collect();
            let project = ProjectDescriptor::default();
            sync_at(
                &self.src,
                &self.dst,
                &project,
                (&[], &keep),
                Some(&self.index),
                now,
            )
            .unwrap()
        }

        fn files(&self) -> Vec<(String, String)> {
            let mut out: Vec<_> = walkdir::WalkDir::new(&self.dst)
                .into_iter()
                .map(Result::unwrap)
                .filter(|e| e.file_type().is_file())
                .map(|e| {
                    let rel = e.path().strip_prefix(&self.dst).unwrap();
                    (
                        rel.display().to_string(),
                        fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect();
            out.sort();
            out
        }
    }

    fn write(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    fn pairs(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// A second sync of an unchanged source copies nothing; an edit copies that file only.
    #[test]
    fn only_changed_files_are_copied_again() {
        let t = Tree::new(&[("a.js", "a"), ("lib/b.js", "b"), ("public/c.css", "c")]);
        let first = t.sync(&[], LATER);
        assert_eq!(
            (first.files, first.unchanged, first.copied.len()),
            (3, 0, 3)
        );
        let again = t.sync(&[], LATER);
        assert_eq!(
            (again.files, again.unchanged, again.copied_bytes),
            (3, 3, 0)
        );
        assert!(again.copied.is_empty());
        write(&t.src.join("lib/b.js"), "b2");
        let edited = t.sync(&[], LATER);
        assert_eq!(names(&edited.copied), ["lib/b.js"]);
        assert_eq!(edited.copied_bytes, 2);
        assert_eq!(
            t.files(),
            pairs(&[("a.js", "a"), ("lib/b.js", "b2"), ("public/c.css", "c")])
        );
    }

    /// A build that wrote to its copy, or left outputs in it, never leaks into the next
    /// build: written files are copied again, outputs removed, and kept directories stay.
    #[test]
    fn what_a_build_wrote_is_undone_except_kept_directories() {
        let t = Tree::new(&[("a.js", "a"), ("lib/b.js", "b")]);
        t.sync(&["target"], LATER);
        write(&t.dst.join("a.js"), "changed by the build");
        write(&t.dst.join("dist/out.js"), "output");
        write(&t.dst.join("lib/gen.js"), "output");
        write(&t.dst.join("target/classes/A.class"), "kept");
        let next = t.sync(&["target"], LATER);
        assert_eq!(names(&next.copied), ["a.js"]);
        assert_eq!((next.removed, next.vanished), (2, 0));
        assert_eq!(
            t.files(),
            pairs(&[
                ("a.js", "a"),
                ("lib/b.js", "b"),
                ("target/classes/A.class", "kept")
            ])
        );
    }

    /// A file that left the source leaves the copy and is counted; a file replaced by a
    /// directory (and back) is replaced in the copy.
    #[test]
    fn removed_and_replaced_files_follow_the_source() {
        let t = Tree::new(&[("a.js", "a"), ("b.js", "b"), ("x", "file")]);
        t.sync(&[], LATER);
        fs::remove_file(t.src.join("b.js")).unwrap();
        fs::remove_file(t.src.join("x")).unwrap();
        write(&t.src.join("x/inner.js"), "i");
        let next = t.sync(&[], LATER);
        assert_eq!(next.vanished, 2);
        assert_eq!(t.files(), pairs(&[("a.js", "a"), ("x/inner.js", "i")]));
        std::os::unix::fs::symlink("a.js", t.src.join("link")).unwrap();
        t.sync(&[], LATER);
        assert_eq!(
            fs::read_link(t.dst.join("link")).unwrap(),
            Path::new("a.js")
        );
    }

    /// Files changed within the racy window are copied again every time, so an edit in the
    /// same tick of a coarse clock is never missed; once older, they are kept.
    #[test]
    fn racy_files_are_copied_until_they_settle() {
        let t = Tree::new(&[("a.js", "a")]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        t.sync(&[], now);
        assert_eq!(t.sync(&[], now).copied.len(), 1);
        assert_eq!(t.sync(&[], LATER).copied.len(), 1, "not indexed while racy");
        assert_eq!(t.sync(&[], LATER).copied.len(), 0);
    }

    /// A corrupt index is an empty one: everything is copied again.
    #[test]
    fn a_corrupt_index_copies_everything() {
        let t = Tree::new(&[("a.js", "a"), ("b.js", "b")]);
        t.sync(&[], LATER);
        let mut bytes = fs::read(&t.index).unwrap();
        bytes.truncate(bytes.len() - 3);
        fs::write(&t.index, bytes).unwrap();
        assert_eq!(t.sync(&[], LATER).copied.len(), 2);
    }
}
