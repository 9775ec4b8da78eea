//! Decompressing `control.tar.*` and `data.tar.*` members, and bounding what they expand to.
//!
//! dpkg-deb writes xz (the default), zstd (Ubuntu), gzip (old and `-Zgzip` packages) or no
//! compression (deb(5)); bzip2 and lzma are obsolete and refused.

use std::io::{self, Read};

/// How much memory the xz decoder may use: `xz -9` needs 65 MiB to decompress, so this
/// only stops a hostile header from asking for a gigabyte-sized dictionary.
const XZ_MEMLIMIT: u64 = 256 << 20;

/// The compression of a `.deb` tar member, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberCompression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl MemberCompression {
    /// Returns the compression of member `name` if it is `<stem>` or `<stem>.{gz,xz,zst}`,
    /// `Some(Err(ext))` for another extension of `<stem>`, `None` for another member.
    pub(crate) fn of(name: &str, stem: &str) -> Option<Result<Self, String>> {
        let rest = name.strip_prefix(stem)?;
        Some(match rest {
            "" => Ok(Self::None),
            ".gz" => Ok(Self::Gzip),
            ".xz" => Ok(Self::Xz),
            ".zst" => Ok(Self::Zstd),
            other if other.starts_with('.') => Err(other.to_string()),
            _ => return None,
        })
    }

    /// Returns a reader of the decompressed bytes of `r`.
    pub(crate) fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::None => Box::new(r),
            Self::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
            Self::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                    .map_err(io::Error::other)?;
                Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
            }
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// A reader that fails once more than `limit` bytes have been read through it, so a small
/// compressed member cannot make kiln decompress gigabytes it would then skip.
pub(crate) struct Limited<R> {
    inner: R,
    left: u64,
    what: &'static str,
}

impl<R: Read> Limited<R> {
    /// Returns `inner` bounded to `limit` bytes; `what` names it in the error.
    pub(crate) fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Self {
            inner,
            left: limit,
            what,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Past the bound only if there is more to read.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} expands to more than its size bound", self.what),
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_member_names() {
        use MemberCompression as M;
        assert_eq!(M::of("data.tar.xz", "data.tar"), Some(Ok(M::Xz)));
        assert_eq!(M::of("data.tar", "data.tar"), Some(Ok(M::None)));
        assert_eq!(M::of("control.tar.zst", "control.tar"), Some(Ok(M::Zstd)));
        assert_eq!(M::of("data.tar.bz2", "data.tar"), Some(Err(".bz2".into())));
        assert_eq!(M::of("data.tarx", "data.tar"), None);
        assert_eq!(M::of("control.tar.gz", "data.tar"), None);
    }

    #[test]
    fn limited_allows_exactly_the_limit() {
        let mut out = Vec::new();
        Limited::new(&[1u8; 10][..], 10, "x")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 10);
        let err = Limited::new(&[1u8; 11][..], 10, "control.tar")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("control.tar"), "{err}");
    }
}
