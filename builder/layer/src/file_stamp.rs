//! [`FileStamp`]: what tells one version of a file from another without reading it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Files changed this recently (seconds) are racy: see [`FileStamp::is_racy`].
pub const RACY_SECS: i64 = 2;

/// A file's device, inode, size, mtime (seconds, nanoseconds) and ctime (seconds,
/// nanoseconds). Any write to the file, or another file at its path, moves at least one of
/// them, and userspace cannot set a ctime: a file with the stamp it had when kiln read it
/// still holds those bytes, unless it changed within the same tick of a coarse file-system
/// clock right after ([`is_racy`](Self::is_racy)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp(pub [i64; 7]);

impl FileStamp {
    /// Returns the stamp of the file `m` describes.
    pub fn of(m: &std::fs::Metadata) -> Self {
        Self([
            m.dev() as i64,
            m.ino() as i64,
            m.size() as i64,
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ])
    }

    /// Returns the stamp of the file `st` (a raw `stat`) describes.
    pub(crate) fn of_stat(st: &rustix::fs::Stat) -> Self {
        // Field widths differ between targets.
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        Self([
            st.st_dev as i64,
            st.st_ino as i64,
            st.st_size as i64,
            st.st_mtime as i64,
            st.st_mtime_nsec as i64,
            st.st_ctime as i64,
            st.st_ctime_nsec as i64,
        ])
    }

    /// Returns the device.
    pub fn dev(&self) -> u64 {
        self.0[0] as u64
    }

    /// Returns the inode.
    pub fn ino(&self) -> u64 {
        self.0[1] as u64
    }

    /// Returns the size in bytes.
    pub fn size(&self) -> u64 {
        self.0[2].max(0) as u64
    }

    /// Returns the stamp of the file at `path` (following symlinks), if it can be read.
    pub fn read(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::of(&m))
    }

    /// Returns whether the file changed too recently (less than [`RACY_SECS`] ago) for its
    /// stamp to stand for its bytes.
    pub fn is_racy(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.is_racy_at(now)
    }

    /// [`is_racy`](Self::is_racy) as if it were `now` (unix seconds).
    pub fn is_racy_at(&self, now: i64) -> bool {
        self.0[5] >= now - RACY_SECS
    }
}
