//! Carving [`LayerContents`] into disjoint parts, e.g. a cache directory split into layers
//! by how long its files have been there, so that the files a build added go up alone.

use std::collections::BTreeSet;

use crate::LayerContents;
use crate::contents::EntryKind;
use crate::source::Source;

impl LayerContents {
    /// Returns every in-layer path (raw bytes, directories included) in the order they are
    /// written.
    pub fn raw_paths(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(Vec::as_slice)
    }

    /// Returns whether `path` is a directory here.
    pub fn is_dir(&self, path: &[u8]) -> bool {
        self.entries
            .get(path)
            .is_some_and(|e| matches!(e.kind, EntryKind::Dir))
    }

    /// Returns the entries at `paths` with their parent directories, or `None` if any of
    /// them is not here.
    pub fn subset<'a>(&self, paths: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let mut part = Self::new();
        for path in paths {
            let entry = self.entries.get(path)?;
            self.copy_parents(path, &mut part);
            part.entries.insert(path.to_vec(), entry.clone());
        }
        Some(part)
    }

    /// Returns the entries whose path is not in `taken`, with their parent directories
    /// (taken or not).
    pub fn without(&self, taken: &BTreeSet<Vec<u8>>) -> Self {
        let mut rest = Self::new();
        for (path, entry) in &self.entries {
            if !taken.contains(path) {
                self.copy_parents(path, &mut rest);
                rest.entries.insert(path.clone(), entry.clone());
            }
        }
        rest
    }

    /// Returns the total size of the regular files.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match &e.kind {
                EntryKind::File(Source::Inline(data)) => data.len() as u64,
                EntryKind::File(Source::Host(file)) => file.stamp.size(),
                EntryKind::Dir | EntryKind::Symlink(_) => 0,
            })
            .sum()
    }

    /// Copies the parent directories of `path` into `into`, as they are here.
    fn copy_parents(&self, path: &[u8], into: &mut Self) {
        for (i, &b) in path.iter().enumerate() {
            if b != b'/' || into.entries.contains_key(&path[..i]) {
                continue;
            }
            match self.entries.get(&path[..i]) {
                Some(dir) => {
                    into.entries.insert(path[..i].to_vec(), dir.clone());
                }
                None => into.put_dir_if_absent(&path[..i]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents() -> LayerContents {
        let mut c = LayerContents::new();
        c.add_dir("c/empty", 0o700, None);
        c.add_file("c/00/a", b"aa".to_vec(), 0o644, None);
        c.add_file("c/00/b", b"bbb".to_vec(), 0o600, None);
        c.add_file("c/01/x", b"x".to_vec(), 0o644, None);
        c
    }

    fn paths(c: &LayerContents) -> Vec<String> {
        c.paths().map(|p| p.into_owned()).collect()
    }

    #[test]
    fn a_subset_and_the_rest_cover_everything_once() {
        let all = contents();
        let part = all.subset([b"c/00/a".as_slice()]).unwrap();
        assert_eq!(paths(&part), ["c", "c/00", "c/00/a"]);
        assert_eq!(part.file_bytes(), 2);
        let taken: BTreeSet<Vec<u8>> = part.raw_paths().map(<[u8]>::to_vec).collect();
        let rest = all.without(&taken);
        assert_eq!(
            paths(&rest),
            ["c", "c/00", "c/00/b", "c/01", "c/01/x", "c/empty"]
        );
        assert_eq!(rest.file_bytes(), 4);
        assert!(all.subset([b"c/00/gone".as_slice()]).is_none());
    }
}
