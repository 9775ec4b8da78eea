//! Who owns which path of an image: conflicts between packages, paths through symlinks,
//! and which directories a layer still has to write.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// What a claimed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

/// A claimed path: its kind and who claimed it (a package name, `merged-usr`, ...).
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) kind: Kind,
    pub(crate) owner: Arc<str>,
}

/// Every path the layers of one image hold so far, and which package put it there.
///
/// Pass the same tracker to every layer of an image, in layer order: a non-directory
/// path shipped twice, or a path under a symlink, is refused even across layers. It never
/// changes what a layer contains, so a package group gives the same layer in every image.
/// A call that fails leaves the tracker as it was.
#[derive(Debug, Clone, Default)]
pub struct PathTracker {
    claims: HashMap<String, Claim>,
}

impl PathTracker {
    /// Returns an empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns who claimed the in-image path `path` (no leading `/`), if anyone.
    pub fn owner(&self, path: &str) -> Option<&str> {
        self.claims.get(path).map(|c| &*c.owner)
    }

    /// Returns the number of paths claimed.
    pub fn len(&self) -> usize {
        self.claims.len()
    }

    /// Returns whether nothing has been claimed.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    fn get(&self, path: &str) -> Option<&Claim> {
        self.claims.get(path)
    }
}

/// Why a path cannot be placed.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An ancestor is a symlink.
    ThroughSymlink { link: String, owner: Arc<str> },
    /// An ancestor is a file or hardlink.
    ParentNotDir { parent: String, owner: Arc<str> },
    /// The path itself is taken by something that is not an identical directory.
    Conflict { first: Arc<str> },
}

/// What the caller has to write for a placed path.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    /// Ancestors this layer does not hold yet, outermost first: write them as directories.
    pub(crate) parents: Vec<String>,
    /// Whether to write the entry itself (false for a directory this layer already has).
    pub(crate) write: bool,
}

/// The claims of one layer being written, on top of an image's [`PathTracker`]; merged
/// into it only when the layer is complete.
pub(crate) struct LayerPaths<'a> {
    image: &'a PathTracker,
    layer: HashMap<String, Claim>,
}

impl<'a> LayerPaths<'a> {
    pub(crate) fn new(image: &'a PathTracker) -> Self {
        Self {
            image,
            layer: HashMap::new(),
        }
    }

    fn get(&self, path: &str) -> Option<&Claim> {
        self.layer.get(path).or_else(|| self.image.get(path))
    }

    /// Returns the claim on `path` made in this layer, if any.
    pub(crate) fn in_layer(&self, path: &str) -> Option<&Claim> {
        self.layer.get(path)
    }

    /// Claims the in-image `path` as `kind` for `owner`, and its missing ancestors as
    /// directories. Nothing is claimed when it fails.
    pub(crate) fn place(
        &mut self,
        path: &str,
        kind: Kind,
        owner: &Arc<str>,
    ) -> Result<Placement, Refusal> {
        let mut placement = Placement::default();
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.get(parent) {
                Some(c) if c.kind == Kind::Symlink => {
                    return Err(Refusal::ThroughSymlink {
                        link: parent.to_string(),
                        owner: c.owner.clone(),
                    });
                }
                Some(c) if c.kind != Kind::Dir => {
                    return Err(Refusal::ParentNotDir {
                        parent: parent.to_string(),
                        owner: c.owner.clone(),
                    });
                }
                _ => {}
            }
            if !self.layer.contains_key(parent) {
                placement.parents.push(parent.to_string());
            }
        }
        match self.get(path) {
            Some(c) if c.kind == Kind::Dir && kind == Kind::Dir => {}
            Some(c) => {
                return Err(Refusal::Conflict {
                    first: c.owner.clone(),
                });
            }
            None => {}
        }
        for parent in &placement.parents {
            self.layer.insert(
                parent.clone(),
                Claim {
                    kind: Kind::Dir,
                    owner: owner.clone(),
                },
            );
        }
        // A directory is written again in every layer that has entries under it, so the
        // layer does not depend on which layers come before it.
        if let Entry::Vacant(slot) = self.layer.entry(path.to_string()) {
            slot.insert(Claim {
                kind,
                owner: owner.clone(),
            });
            placement.write = true;
        }
        Ok(placement)
    }

    /// Adds this layer's claims to the image's tracker.
    pub(crate) fn into_claims(self) -> HashMap<String, Claim> {
        self.layer
    }
}

impl PathTracker {
    /// Adds the claims of a completed layer.
    pub(crate) fn merge(&mut self, claims: HashMap<String, Claim>) {
        for (path, claim) in claims {
            match self.claims.entry(path) {
                // Directories claimed earlier keep their first owner.
                Entry::Occupied(_) => {}
                Entry::Vacant(slot) => {
                    slot.insert(claim);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn adds_missing_parents_once_and_allows_identical_dirs() {
        let image = PathTracker::new();
        let mut l = LayerPaths::new(&image);
        let a = owner("a");
        let p = l.place("usr/lib/x.so", Kind::File, &a).unwrap();
        assert_eq!(p.parents, ["usr", "usr/lib"]);
        assert!(p.write);
        let p = l.place("usr/lib", Kind::Dir, &owner("b")).unwrap();
        assert!(p.parents.is_empty() && !p.write);
        let Err(Refusal::Conflict { first }) = l.place("usr/lib/x.so", Kind::File, &owner("b"))
        else {
            panic!("conflict expected")
        };
        assert_eq!(&*first, "a");
    }

    #[test]
    fn refuses_paths_through_symlinks_across_layers() {
        let mut image = PathTracker::new();
        let mut l = LayerPaths::new(&image);
        l.place("etc", Kind::Dir, &owner("a")).unwrap();
        l.place("etc/alt", Kind::Symlink, &owner("a")).unwrap();
        let claims = l.into_claims();
        image.merge(claims);
        let mut l = LayerPaths::new(&image);
        let Err(Refusal::ThroughSymlink { link, .. }) =
            l.place("etc/alt/x", Kind::File, &owner("b"))
        else {
            panic!("refusal expected")
        };
        assert_eq!(link, "etc/alt");
        let p = l.place("etc/other", Kind::File, &owner("b")).unwrap();
        assert_eq!(p.parents, ["etc"], "dirs are written again in every layer");
    }

    #[test]
    fn a_failed_place_claims_nothing() {
        let image = PathTracker::new();
        let mut l = LayerPaths::new(&image);
        l.place("f", Kind::File, &owner("a")).unwrap();
        assert!(l.place("d/e/f/x", Kind::File, &owner("a")).is_ok());
        assert!(l.place("f/x", Kind::File, &owner("b")).is_err());
        assert!(l.in_layer("f/x").is_none());
    }
}
