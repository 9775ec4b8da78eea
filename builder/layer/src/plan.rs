//! The normalized, ordered list of tar entries a [`LayerContents`] turns into under a
//! [`TarPolicy`]. Both the writer and the fingerprint walk this list, so anything that
//! changes the tar bytes shows up in both.

use std::collections::HashMap;

use crate::contents::EntryKind;
use crate::source::Source;
use crate::{LayerContents, LayerError, TarPolicy};

/// What a planned entry is.
pub(crate) enum PlanKind<'a> {
    Dir,
    File(&'a Source),
    Symlink(&'a [u8]),
    /// A hardlink to an earlier path of the same layer.
    Hardlink(&'a [u8]),
}

/// One tar entry with every header field decided.
pub(crate) struct Planned<'a> {
    pub(crate) path: &'a [u8],
    pub(crate) kind: PlanKind<'a>,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
}

impl Planned<'_> {
    /// Returns the number of content bytes that follow the header.
    pub(crate) fn size(&self) -> u64 {
        match self.kind {
            PlanKind::File(source) => source.size(),
            _ => 0,
        }
    }
}

/// Returns the entries of `contents` in write order, or the first invalid path that was
/// given to an infallible `add_*` method. The entries are produced lazily, so planning
/// costs no memory per entry beyond hardlink bookkeeping.
///
/// Hardlinks are decided here rather than while walking: the walk visits `a/z` before
/// `a-b`, but the tar lists `a-b` first, and a tar hardlink must point to an entry that
/// came before it. The first path of each (device, inode) pair in layer order carries the
/// bytes; later ones link to it.
pub(crate) fn plan<'a>(
    contents: &'a LayerContents,
    policy: &TarPolicy,
) -> Result<impl Iterator<Item = Planned<'a>>, LayerError> {
    if let Some((path, bad)) = &contents.invalid {
        return Err(bad.error(path));
    }
    let default_owner = policy.owner;
    let mut first_link: HashMap<(u64, u64), &'a [u8]> = HashMap::new();
    Ok(contents.entries.iter().map(move |(path, entry)| {
        let owner = entry.owner.unwrap_or(default_owner);
        let kind = match &entry.kind {
            EntryKind::Dir => PlanKind::Dir,
            EntryKind::Symlink(target) => PlanKind::Symlink(target),
            EntryKind::File(source @ Source::Host(host)) if host.nlink > 1 => {
                match first_link.get(&(host.stamp.dev(), host.stamp.ino())) {
                    Some(first) => PlanKind::Hardlink(first),
                    None => {
                        first_link.insert((host.stamp.dev(), host.stamp.ino()), path);
                        PlanKind::File(source)
                    }
                }
            }
            EntryKind::File(source) => PlanKind::File(source),
        };
        Planned {
            path,
            kind,
            mode: entry.mode,
            uid: owner.uid,
            gid: owner.gid,
        }
    }))
}
