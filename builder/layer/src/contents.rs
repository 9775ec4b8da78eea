//! [`LayerContents`]: what goes into one layer, keyed by in-layer path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::source::Source;
use crate::{LayerError, Ownership, Warning};

/// The mode of directories that are created implicitly or come from a host tree.
pub(crate) const DIR_MODE: u32 = 0o755;

/// One entry of a layer, before normalization against a [`crate::TarPolicy`].
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky when explicitly given).
    pub(crate) mode: u32,
    /// `None` means the policy's owner.
    pub(crate) owner: Option<Ownership>,
}

/// What an entry is.
#[derive(Debug, Clone)]
pub(crate) enum EntryKind {
    Dir,
    File(Source),
    /// A symlink and its target, verbatim (host targets need not be UTF-8).
    Symlink(Vec<u8>),
}

/// Why a path cannot be a layer path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// A `..` component.
    Escape,
    /// A NUL byte.
    Nul,
    /// A component named like an OCI whiteout marker (`.wh.*`).
    Whiteout,
    /// The path names the layer's root.
    Root,
}

impl BadPath {
    /// Returns the error for the path `path` given by a caller.
    pub(crate) fn error(self, path: &str) -> LayerError {
        let reason = match self {
            Self::Whiteout => {
                return LayerError::Whiteout {
                    path: PathBuf::from(path),
                };
            }
            Self::Escape => "`..` components could escape the layer root",
            Self::Nul => "layer paths cannot contain NUL bytes",
            Self::Root => "a layer's root must be a directory",
        };
        LayerError::InvalidPath {
            path: path.to_string(),
            reason,
        }
    }
}

/// A layer's contents, keyed by in-layer path (no leading `/`, e.g. `workspace/bin/app`).
/// Paths are byte strings: host file names need not be UTF-8, and are stored as they are.
///
/// Entries are kept sorted by path, which is the order they are written in. Adding a path
/// that is already present replaces the earlier entry (replacing a directory by anything
/// else also drops everything below it), except that directories met by
/// [`add_tree`](Self::add_tree) and implicit parent directories never replace an existing
/// directory, so an explicit [`add_dir`](Self::add_dir) keeps its mode and owner. Missing
/// parent directories are added with mode `0755` and the policy's owner.
///
/// Host files are not read when added: their metadata is recorded, and their bytes are
/// streamed by [`crate::write_layer`] or [`fingerprint`](Self::fingerprint).
#[derive(Default, Clone)]
pub struct LayerContents {
    pub(crate) entries: BTreeMap<Vec<u8>, Entry>,
    pub(crate) warnings: Vec<Warning>,
    /// The first invalid path given to an infallible `add_*` method; reported by
    /// `write_layer` and `fingerprint`.
    pub(crate) invalid: Option<(String, BadPath)>,
}

impl LayerContents {
    /// Returns empty contents.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file holding `data` at `path` with exactly `mode` (setuid, setgid and
    /// sticky bits are kept), owned by `owner` or, when `None`, by the policy's owner.
    ///
    /// An invalid path (containing `..` or NUL, a component starting with `.wh.`, or
    /// naming the root) is reported by [`crate::write_layer`] and
    /// [`fingerprint`](Self::fingerprint).
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, mode: u32, owner: Option<Ownership>) {
        let entry = Entry {
            kind: EntryKind::File(Source::Inline(data)),
            mode: mode & 0o7777,
            owner,
        };
        self.add_checked(path, entry);
    }

    /// Adds (or replaces) the directory `path` with exactly `mode` (e.g. `0o1777` for
    /// `tmp`), owned by `owner` or, when `None`, by the policy's owner. The root (`""` or
    /// `/`) is never written as an entry, so adding it does nothing.
    pub fn add_dir(&mut self, path: &str, mode: u32, owner: Option<Ownership>) {
        if normalize(path.as_bytes()).is_ok_and(|p| p.is_empty()) {
            return;
        }
        let entry = Entry {
            kind: EntryKind::Dir,
            mode: mode & 0o7777,
            owner,
        };
        self.add_checked(path, entry);
    }

    /// Adds a symlink at `path` pointing to `target`, stored verbatim (absolute and `..`
    /// targets included: they resolve inside the container, not on the host).
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        let entry = Entry {
            kind: EntryKind::Symlink(target.as_bytes().to_vec()),
            mode: 0o777,
            owner: None,
        };
        self.add_checked(path, entry);
    }

    /// Returns what [`add_tree`](Self::add_tree) skipped, in the order it met them.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Returns the number of entries, implicit parent directories included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the in-layer paths in the order they will be written (bytes that are not
    /// UTF-8 shown as U+FFFD).
    pub fn paths(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.entries.keys().map(|p| String::from_utf8_lossy(p))
    }

    fn add_checked(&mut self, path: &str, entry: Entry) {
        match normalize(path.as_bytes()) {
            Ok(p) if p.is_empty() => self.record_invalid(path, BadPath::Root),
            Ok(p) => {
                self.ensure_parents(&p);
                self.put(p, entry);
            }
            Err(bad) => self.record_invalid(path, bad),
        }
    }

    fn record_invalid(&mut self, path: &str, bad: BadPath) {
        self.invalid.get_or_insert_with(|| (path.to_string(), bad));
    }

    /// Inserts `entry` at the normalized `path`, replacing what was there.
    pub(crate) fn put(&mut self, path: Vec<u8>, entry: Entry) {
        if !matches!(entry.kind, EntryKind::Dir) {
            self.remove_below(&path);
        }
        self.entries.insert(path, entry);
    }

    /// Adds a default directory at `path` unless a directory is already there.
    pub(crate) fn put_dir_if_absent(&mut self, path: &[u8]) {
        match self.entries.get(path) {
            Some(Entry {
                kind: EntryKind::Dir,
                ..
            }) => {}
            _ => {
                let dir = Entry {
                    kind: EntryKind::Dir,
                    mode: DIR_MODE,
                    owner: None,
                };
                self.entries.insert(path.to_vec(), dir);
            }
        }
    }

    /// Makes sure every ancestor of the normalized `path` is a directory.
    pub(crate) fn ensure_parents(&mut self, path: &[u8]) {
        for (i, &b) in path.iter().enumerate() {
            if b == b'/' {
                self.put_dir_if_absent(&path[..i]);
            }
        }
    }

    fn remove_below(&mut self, path: &[u8]) {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let below: Vec<Vec<u8>> = self
            .entries
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in below {
            self.entries.remove(&k);
        }
    }
}

impl fmt::Debug for LayerContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerContents")
            .field("entries", &self.entries.len())
            .field("warnings", &self.warnings)
            .field("invalid", &self.invalid)
            .finish()
    }
}

/// Returns `path` without leading `/`, empty and `.` components, or why it cannot be a
/// layer path.
pub(crate) fn normalize(path: &[u8]) -> Result<Vec<u8>, BadPath> {
    let mut out = Vec::with_capacity(path.len());
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => return Err(BadPath::Escape),
            p if p.contains(&0) => return Err(BadPath::Nul),
            p if is_whiteout(p) => return Err(BadPath::Whiteout),
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Ok(out)
}

/// Returns whether a path component is named like an OCI whiteout marker: `.wh.<name>`
/// deletes `<name>` from lower layers and `.wh..wh..opq` empties its directory (image-spec
/// `layer.md`, "Whiteouts"); a bare `.wh.` is refused too, since readers disagree on it.
pub(crate) fn is_whiteout(component: &[u8]) -> bool {
    component.starts_with(b".wh.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_and_rejects_escapes() {
        assert_eq!(
            normalize(b"/workspace//bin/./app").unwrap(),
            b"workspace/bin/app"
        );
        assert_eq!(normalize(b"").unwrap(), b"");
        assert_eq!(normalize(b"a/../../etc"), Err(BadPath::Escape));
        assert_eq!(normalize(b"a\0b"), Err(BadPath::Nul));
        assert_eq!(normalize(b"x\xff\n\\y").unwrap(), b"x\xff\n\\y");
    }

    #[test]
    fn adds_parents_and_keeps_paths_sorted() {
        let mut c = LayerContents::new();
        c.add_file("b/c/file", b"x".to_vec(), 0o644, None);
        c.add_file("a-b", Vec::new(), 0o644, None);
        c.add_symlink("a/link", "/etc/passwd");
        let paths: Vec<_> = c.paths().collect();
        assert_eq!(paths, ["a", "a-b", "a/link", "b", "b/c", "b/c/file"]);
    }

    #[test]
    fn later_adds_replace_but_implicit_dirs_do_not() {
        let mut c = LayerContents::new();
        c.add_dir("tmp", 0o1777, Some(Ownership::new(0, 0)));
        c.add_file("tmp/x", Vec::new(), 0o644, None);
        assert_eq!(c.entries[&b"tmp"[..]].mode, 0o1777);
        c.add_file("f", b"one".to_vec(), 0o644, None);
        c.add_file("f", b"two".to_vec(), 0o600, None);
        assert_eq!(c.entries[&b"f"[..]].mode, 0o600);
        c.add_file("tmp", Vec::new(), 0o644, None);
        assert!(
            !c.entries.contains_key(&b"tmp/x"[..]),
            "children of a replaced dir are dropped"
        );
        c.add_file("tmp/y", Vec::new(), 0o644, None);
        assert!(matches!(c.entries[&b"tmp"[..]].kind, EntryKind::Dir));
    }

    #[test]
    fn invalid_paths_are_remembered() {
        let mut c = LayerContents::new();
        c.add_file("../etc/passwd", Vec::new(), 0o644, None);
        c.add_file("/", Vec::new(), 0o644, None);
        c.add_dir("/", 0o755, None);
        assert_eq!(c.invalid.as_ref().unwrap().0, "../etc/passwd");
        assert!(c.is_empty());
    }
}
