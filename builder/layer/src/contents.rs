//! [`LayerContents`]: what goes into one layer, keyed by in-layer path.

use std::collections::BTreeMap;
use std::fmt;

use crate::source::Source;
use crate::{Ownership, Warning};

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
    Symlink(String),
}

/// A layer's contents, keyed by in-layer path (no leading `/`, e.g. `workspace/bin/app`).
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
    pub(crate) entries: BTreeMap<String, Entry>,
    pub(crate) warnings: Vec<Warning>,
    /// The first invalid path given to an infallible `add_*` method; reported by
    /// `write_layer` and `fingerprint`.
    pub(crate) invalid: Option<(String, &'static str)>,
}

impl LayerContents {
    /// Returns empty contents.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file holding `data` at `path` with exactly `mode` (setuid, setgid and
    /// sticky bits are kept), owned by `owner` or, when `None`, by the policy's owner.
    ///
    /// An invalid path (containing `..` or NUL, or naming the root) is reported by
    /// [`crate::write_layer`] and [`fingerprint`](Self::fingerprint).
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
        if normalize(path).is_ok_and(|p| p.is_empty()) {
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
            kind: EntryKind::Symlink(target.to_string()),
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

    /// Returns the in-layer paths in the order they will be written.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn add_checked(&mut self, path: &str, entry: Entry) {
        match normalize(path) {
            Ok(p) if p.is_empty() => {
                self.record_invalid(path, "a layer's root must be a directory")
            }
            Ok(p) => {
                self.ensure_parents(&p);
                self.put(p, entry);
            }
            Err(reason) => self.record_invalid(path, reason),
        }
    }

    fn record_invalid(&mut self, path: &str, reason: &'static str) {
        self.invalid
            .get_or_insert_with(|| (path.to_string(), reason));
    }

    /// Inserts `entry` at the normalized `path`, replacing what was there.
    pub(crate) fn put(&mut self, path: String, entry: Entry) {
        if !matches!(entry.kind, EntryKind::Dir) {
            self.remove_below(&path);
        }
        self.entries.insert(path, entry);
    }

    /// Adds a default directory at `path` unless a directory is already there.
    pub(crate) fn put_dir_if_absent(&mut self, path: &str) {
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
                self.entries.insert(path.to_string(), dir);
            }
        }
    }

    /// Makes sure every ancestor of the normalized `path` is a directory.
    pub(crate) fn ensure_parents(&mut self, path: &str) {
        for (i, b) in path.bytes().enumerate() {
            if b == b'/' {
                self.put_dir_if_absent(&path[..i]);
            }
        }
    }

    fn remove_below(&mut self, path: &str) {
        let prefix = format!("{path}/");
        let below: Vec<String> = self
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
pub(crate) fn normalize(path: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(path.len());
    for part in path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("`..` components could escape the layer root"),
            p if p.contains('\0') => return Err("layer paths cannot contain NUL bytes"),
            p => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_and_rejects_escapes() {
        assert_eq!(
            normalize("/workspace//bin/./app").unwrap(),
            "workspace/bin/app"
        );
        assert_eq!(normalize("").unwrap(), "");
        assert!(normalize("a/../../etc").is_err());
        assert!(normalize("a\0b").is_err());
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
        assert_eq!(c.entries["tmp"].mode, 0o1777);
        c.add_file("f", b"one".to_vec(), 0o644, None);
        c.add_file("f", b"two".to_vec(), 0o600, None);
        assert_eq!(c.entries["f"].mode, 0o600);
        c.add_file("tmp", Vec::new(), 0o644, None);
        assert!(
            !c.entries.contains_key("tmp/x"),
            "children of a replaced dir are dropped"
        );
        c.add_file("tmp/y", Vec::new(), 0o644, None);
        assert!(matches!(c.entries["tmp"].kind, EntryKind::Dir));
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
