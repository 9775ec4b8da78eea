//! The rules every layer kiln writes obeys (RELIABILITY.md W04), checked entry by entry
//! while a layer is written, and over a finished tar by [`validate_tar`] (in the style of
//! go-containerregistry's `validate.Layer`).
//!
//! Rules (image-spec `layer.md`, "Changeset over filesystems" and "Whiteouts"): paths are
//! relative and normalized (no leading `/`, no empty, `.` or `..` component, no NUL); no
//! whiteout names (kiln never deletes from lower layers); no path twice; a directory comes
//! before anything inside it; nothing is inside a non-directory; a hardlink names a
//! regular file written earlier in the same layer. Layers of [`crate::write_layer`] are
//! also sorted by path with every parent directory present ([`LayerOrder::Sorted`]).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use crate::LayerError;
use crate::contents::is_whiteout;

/// How the entries of a layer are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOrder {
    /// Sorted by path (bytewise), every parent directory an earlier entry: the layers of
    /// [`crate::write_layer`]. Checking it needs memory for the directories only.
    Sorted,
    /// In an order the writer chose ([`crate::LayerWriter`]): a parent directory may be
    /// missing (a lower layer has it) but never comes after its children.
    Given,
}

/// What an entry is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

/// The state of the checks over the entries seen so far.
#[derive(Debug)]
pub(crate) struct Rules {
    order: LayerOrder,
    /// Directories written so far ([`LayerOrder::Sorted`]).
    dirs: HashSet<Vec<u8>>,
    /// The previous path ([`LayerOrder::Sorted`]), once there is one.
    prev: Option<Vec<u8>>,
    /// Every path written so far and what it is ([`LayerOrder::Given`]).
    seen: HashMap<Vec<u8>, Kind>,
    /// Ancestors of entries written so far that are not entries themselves
    /// ([`LayerOrder::Given`]): writing one later would put a parent after its children.
    implied: HashSet<Vec<u8>>,
}

const NOT_NORMALIZED: &str = "a layer path must be relative and normalized (no leading `/`, \
                              no empty, `.` or `..` component, no NUL byte)";
const WHITEOUT: &str = "a name starting with `.wh.` is an OCI whiteout marker and would delete \
                        files from lower layers";
const DUPLICATE: &str = "duplicate path: the layer already has an entry there";
const UNSORTED: &str = "entries out of order: the layer is sorted by path";
const NO_PARENT: &str = "its parent directory is not an earlier entry of the layer";
const PARENT_NOT_DIR: &str = "its parent is not a directory in this layer";
const PARENT_AFTER_CHILD: &str = "it comes after entries inside it (parents go first)";
const BAD_HARDLINK: &str = "a hardlink must point to a regular file written earlier in the \
                            same layer";

impl Rules {
    /// Returns the checks for a layer ordered as `order`.
    pub(crate) fn new(order: LayerOrder) -> Self {
        Self {
            order,
            dirs: HashSet::new(),
            prev: None,
            seen: HashMap::new(),
            implied: HashSet::new(),
        }
    }

    /// Checks the next entry, at `path` (without a trailing `/`), of kind `kind`, whose
    /// hardlink target is `link`, and records it.
    pub(crate) fn check(
        &mut self,
        path: &[u8],
        kind: Kind,
        link: &[u8],
    ) -> Result<(), &'static str> {
        normalized(path)?;
        let parent = path
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&path[..0], |i| &path[..i]);
        match self.order {
            LayerOrder::Sorted => {
                if let Some(prev) = &self.prev {
                    match path.cmp(prev.as_slice()) {
                        std::cmp::Ordering::Equal => return Err(DUPLICATE),
                        std::cmp::Ordering::Less => return Err(UNSORTED),
                        std::cmp::Ordering::Greater => {}
                    }
                }
                if !parent.is_empty() && !self.dirs.contains(parent) {
                    return Err(NO_PARENT);
                }
                // Sorted order makes "earlier" "smaller"; that it is a file is the
                // planner's promise (only files are ever linked).
                if kind == Kind::Hardlink && (normalized(link).is_err() || link >= path) {
                    return Err(BAD_HARDLINK);
                }
                if kind == Kind::Dir {
                    self.dirs.insert(path.to_vec());
                }
                let prev = self.prev.get_or_insert_with(Vec::new);
                prev.clear();
                prev.extend_from_slice(path);
            }
            LayerOrder::Given => {
                if self.seen.contains_key(path) {
                    return Err(DUPLICATE);
                }
                if self.implied.contains(path) {
                    return Err(PARENT_AFTER_CHILD);
                }
                match self.seen.get(parent) {
                    Some(Kind::Dir) => {}
                    Some(_) => return Err(PARENT_NOT_DIR),
                    None => self.imply_ancestors(parent),
                }
                if kind == Kind::Hardlink && self.seen.get(link) != Some(&Kind::File) {
                    return Err(BAD_HARDLINK);
                }
                self.seen.insert(path.to_vec(), kind);
            }
        }
        Ok(())
    }

    /// Records `dir` and its ancestors, up to the first one that is known, as implied.
    fn imply_ancestors(&mut self, mut dir: &[u8]) {
        while !dir.is_empty() && !self.seen.contains_key(dir) && self.implied.insert(dir.to_vec()) {
            dir = dir
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(&dir[..0], |i| &dir[..i]);
        }
    }
}

/// Fails unless `path` is a relative, normalized, non-whiteout layer path.
fn normalized(path: &[u8]) -> Result<(), &'static str> {
    if path.is_empty() || path.contains(&0) {
        return Err(NOT_NORMALIZED);
    }
    for part in path.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." || part == b".." {
            return Err(NOT_NORMALIZED);
        }
        if is_whiteout(part) {
            return Err(WHITEOUT);
        }
    }
    Ok(())
}

/// Reads the uncompressed layer `tar` with kiln's tar reader and checks every entry
/// against the rules of a layer ordered as `order`, and that only zero blocks follow the
/// last entry. Returns the number of entries.
///
/// Device nodes, FIFOs and any other entry type fail: kiln never writes them.
pub fn validate_tar(tar: impl Read, order: LayerOrder) -> Result<u64, LayerError> {
    let unreadable = |source| LayerError::Unreadable { source };
    let mut rules = Rules::new(order);
    let mut count = 0u64;
    let mut input = tar;
    {
        let mut archive = tar::Archive::new(&mut input);
        for entry in archive.entries().map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let raw = entry.path_bytes();
            let unsound = |rule| LayerError::Unsound {
                path: String::from_utf8_lossy(&raw).into_owned(),
                rule,
            };
            let kind = match entry.header().entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Regular => Kind::File,
                tar::EntryType::Symlink => Kind::Symlink,
                tar::EntryType::Link => Kind::Hardlink,
                _ => return Err(unsound("not a file, directory, symlink or hardlink")),
            };
            let path = match kind {
                Kind::Dir => raw.strip_suffix(b"/").unwrap_or(&raw),
                _ => &raw,
            };
            let link = entry.link_name_bytes().unwrap_or_default();
            rules.check(path, kind, &link).map_err(unsound)?;
            count += 1;
        }
    }
    // What the tar reader left is the end-of-archive marker: zero blocks, nothing else.
    let mut rest = [0u8; 8192];
    loop {
        let n = match input.read(&mut rest) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        };
        if rest[..n].iter().any(|&b| b != 0) {
            return Err(unreadable(io::Error::new(
                io::ErrorKind::InvalidData,
                "data after the end-of-archive marker",
            )));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        order: LayerOrder,
        entries: &[(&str, Kind, &str)],
    ) -> Result<(), (String, &'static str)> {
        let mut rules = Rules::new(order);
        for (path, kind, link) in entries {
            rules
                .check(path.as_bytes(), *kind, link.as_bytes())
                .map_err(|rule| (path.to_string(), rule))?;
        }
        Ok(())
    }

    use Kind::{Dir, File, Hardlink, Symlink};

    /// W04: every rule catches its violation, in both orders.
    #[test]
    fn w04_rules_catch_each_violation() {
        let sorted = LayerOrder::Sorted;
        let given = LayerOrder::Given;
        let ok = [
            ("a", Dir, ""),
            ("a-b", File, ""),
            ("a/x", File, ""),
            ("a/y", Hardlink, "a/x"),
            ("a/z", Symlink, "/etc/passwd"),
        ];
        assert_eq!(run(sorted, &ok), Ok(()));
        assert_eq!(run(given, &ok), Ok(()));
        for bad in ["/abs", "a/../b", "./a", "a//b", "a/", "..", "a\0b", ""] {
            for order in [sorted, given] {
                let err = run(order, &[(bad, File, "")]).unwrap_err();
                assert_eq!(err.1, NOT_NORMALIZED, "{bad:?}");
            }
        }
        for bad in [".wh.foo", "d/.wh..wh..opq", ".wh."] {
            assert_eq!(run(given, &[(bad, File, "")]).unwrap_err().1, WHITEOUT);
        }
        let dup = [("a", Dir, ""), ("a/x", File, ""), ("a/x", File, "")];
        assert_eq!(run(sorted, &dup).unwrap_err().1, DUPLICATE);
        assert_eq!(run(given, &dup).unwrap_err().1, DUPLICATE);
        let dup_dir = [("a", Dir, ""), ("b", File, ""), ("a", Dir, "")];
        assert_eq!(run(given, &dup_dir).unwrap_err(), ("a".into(), DUPLICATE));
        let unsorted = [("b", File, ""), ("a", File, "")];
        assert_eq!(run(sorted, &unsorted).unwrap_err().1, UNSORTED);
        assert_eq!(run(given, &unsorted), Ok(()));
        assert_eq!(run(sorted, &[("a/x", File, "")]).unwrap_err().1, NO_PARENT);
        assert_eq!(
            run(given, &[("a/x", File, "")]),
            Ok(()),
            "a lower layer has `a`"
        );
        let late_parent = [("a/b/x", File, ""), ("a", Dir, "")];
        assert_eq!(
            run(given, &late_parent).unwrap_err(),
            ("a".into(), PARENT_AFTER_CHILD)
        );
        let through_link = [("l", Symlink, "/etc"), ("l/passwd", File, "")];
        assert_eq!(run(given, &through_link).unwrap_err().1, PARENT_NOT_DIR);
        assert_eq!(run(sorted, &through_link).unwrap_err().1, NO_PARENT);
        for links in [
            [("d", Dir, ""), ("h", Hardlink, "d")],
            [("f", File, ""), ("h", Hardlink, "zz")],
        ] {
            assert_eq!(run(given, &links).unwrap_err().1, BAD_HARDLINK);
        }
        let forward = [("a", Hardlink, "b"), ("b", File, "")];
        assert_eq!(run(sorted, &forward).unwrap_err().1, BAD_HARDLINK);
    }
}
