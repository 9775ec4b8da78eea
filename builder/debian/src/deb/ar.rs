//! The ar container of a `.deb`: an 8-byte global header, then members, each a 60-byte
//! header followed by its data padded to an even length.
//!
//! Spec: deb(5) and deb-ar(5) (<https://manpages.debian.org/deb-ar.5>). Member sizes are
//! checked against the file's length before anything is read, so a truncated download is
//! refused naming the member instead of surfacing later as a decompression error.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::deb::DebError;

/// The global header of every ar archive.
const MAGIC: &[u8; 8] = b"!<arch>\n";

/// The size of a member header.
const HEADER: u64 = 60;

/// One member of an ar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    /// The member name, trailing spaces and the GNU `/` terminator removed.
    pub name: String,
    /// The size of its data in bytes.
    pub size: u64,
    /// Where its data starts in the file.
    pub offset: u64,
}

/// Reads the members of an ar archive one after the other.
#[derive(Debug)]
pub struct ArReader<R> {
    inner: R,
    file: PathBuf,
    len: u64,
    /// Where the next member header starts.
    next: u64,
}

impl ArReader<std::fs::File> {
    /// Opens the `.deb` at `path` and checks its ar magic.
    pub fn open(path: &Path) -> Result<Self, DebError> {
        let file = std::fs::File::open(path).map_err(|source| DebError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::new(file, path)
    }
}

impl<R: Read + Seek> ArReader<R> {
    /// Returns a reader over `inner`, checking the ar magic; `file` names it in errors.
    pub fn new(mut inner: R, file: &Path) -> Result<Self, DebError> {
        let read_err = |source| DebError::Read {
            file: file.to_path_buf(),
            source,
        };
        let len = inner.seek(SeekFrom::End(0)).map_err(read_err)?;
        inner.seek(SeekFrom::Start(0)).map_err(read_err)?;
        let mut magic = [0u8; 8];
        if len >= 8 {
            inner.read_exact(&mut magic).map_err(read_err)?;
        }
        if &magic != MAGIC {
            return Err(DebError::BadMagic {
                file: file.to_path_buf(),
            });
        }
        Ok(Self {
            inner,
            file: file.to_path_buf(),
            len,
            next: MAGIC.len() as u64,
        })
    }

    /// Returns the next member's header, or `None` at the end of the archive. Fails if the
    /// header is malformed or the member runs past the end of the file.
    pub fn next_member(&mut self) -> Result<Option<ArMember>, DebError> {
        let start = self.next;
        if start >= self.len {
            return Ok(None);
        }
        if self.len - start < HEADER {
            return Err(DebError::Truncated {
                file: self.file.clone(),
                member: "(header)".to_string(),
                needed: HEADER,
                available: self.len - start,
            });
        }
        let mut h = [0u8; HEADER as usize];
        self.inner
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.inner.read_exact(&mut h))
            .map_err(|source| self.read_err(source))?;
        let bad = |reason: &str| DebError::BadMember {
            file: self.file.clone(),
            offset: start,
            reason: reason.to_string(),
        };
        if &h[58..60] != b"`\n" {
            return Err(bad("the header does not end with the ar terminator"));
        }
        let name = std::str::from_utf8(&h[0..16])
            .map_err(|_| bad("the member name is not ASCII"))?
            .trim_end_matches(' ');
        let name = name.strip_suffix('/').unwrap_or(name);
        if name.is_empty() {
            return Err(bad("the member name is empty"));
        }
        let size = std::str::from_utf8(&h[48..58])
            .ok()
            .map(|s| s.trim_end_matches(' '))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the member size is not a decimal number"))?;
        let offset = start + HEADER;
        let available = self.len - offset;
        if size > available {
            return Err(DebError::Truncated {
                file: self.file.clone(),
                member: name.to_string(),
                needed: size,
                available,
            });
        }
        // Data is padded to an even offset; a missing final pad byte is tolerated, as
        // binutils and dpkg do.
        self.next = offset + size + (size & 1);
        Ok(Some(ArMember {
            name: name.to_string(),
            size,
            offset,
        }))
    }

    /// Returns a reader over the data of `member`, which must come from this archive.
    pub fn data(&mut self, member: &ArMember) -> Result<io::Take<&mut R>, DebError> {
        self.inner
            .seek(SeekFrom::Start(member.offset))
            .map_err(|source| self.read_err(source))?;
        Ok((&mut self.inner).take(member.size))
    }

    /// Reads the whole data of `member`, refusing members larger than `max` bytes.
    pub fn read_small(&mut self, member: &ArMember, max: u64) -> Result<Vec<u8>, DebError> {
        if member.size > max {
            return Err(DebError::Layout {
                file: self.file.clone(),
                reason: format!(
                    "member `{}` is {} bytes, more than the {max} bytes it can be",
                    member.name, member.size
                ),
            });
        }
        let mut out = Vec::with_capacity(member.size as usize);
        self.data(member)?
            .read_to_end(&mut out)
            .map_err(|source| self.read_err(source))?;
        Ok(out)
    }

    /// Returns the file this archive is read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn read_err(&self, source: io::Error) -> DebError {
        DebError::Read {
            file: self.file.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        )
        .into_bytes();
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
        out
    }

    fn reader(bytes: Vec<u8>) -> ArReader<Cursor<Vec<u8>>> {
        ArReader::new(Cursor::new(bytes), Path::new("x.deb")).unwrap()
    }

    #[test]
    fn reads_members_and_skips_padding() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(member("debian-binary", b"2.0\n"));
        bytes.extend(member("odd/", b"abc"));
        bytes.extend(member("last", b"z"));
        let mut ar = reader(bytes);
        let a = ar.next_member().unwrap().unwrap();
        assert_eq!((a.name.as_str(), a.size), ("debian-binary", 4));
        let b = ar.next_member().unwrap().unwrap();
        assert_eq!(b.name, "odd", "GNU `/` terminator dropped");
        let mut data = String::new();
        ar.data(&b).unwrap().read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        let c = ar.next_member().unwrap().unwrap();
        assert_eq!(ar.read_small(&c, 10).unwrap(), b"z");
        assert!(ar.next_member().unwrap().is_none());
    }

    #[test]
    fn refuses_bad_sizes_and_terminators() {
        let mut bytes = MAGIC.to_vec();
        let mut m = member("a", b"xx");
        m[48] = b'-';
        bytes.extend(m);
        let err = reader(bytes).next_member().unwrap_err();
        assert!(
            matches!(err, DebError::BadMember { offset: 8, .. }),
            "{err}"
        );
        let mut bytes = MAGIC.to_vec();
        let mut m = member("a", b"xx");
        m[58] = b'!';
        bytes.extend(m);
        assert!(reader(bytes).next_member().is_err());
    }

    #[test]
    fn a_cut_off_header_is_truncation() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&member("a", b"xx")[..30]);
        let err = reader(bytes).next_member().unwrap_err();
        assert!(matches!(err, DebError::Truncated { .. }), "{err}");
    }
}
