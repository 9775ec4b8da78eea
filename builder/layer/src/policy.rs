//! The normalization policy applied to every tar header.

use serde::{Deserialize, Serialize};

/// A numeric owner written into tar headers. Names are never written (`uname`/`gname` stay
/// empty) so that the host's `/etc/passwd` cannot leak into a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Ownership {
    /// The numeric user id.
    pub uid: u64,
    /// The numeric group id.
    pub gid: u64,
}

impl Ownership {
    /// Returns `uid:gid`.
    pub fn new(uid: u64, gid: u64) -> Self {
        Self { uid, gid }
    }
}

/// What every header of a layer gets instead of the host's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TarPolicy {
    /// The modification time of every entry, in seconds since the unix epoch. Callers pass
    /// `SOURCE_DATE_EPOCH`, the source's commit time, or their documented constant.
    pub mtime: u64,
    /// The owner of entries that were added without an explicit owner.
    pub owner: Ownership,
}
