//! Streaming planned entries out as one tar.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::LayerError;
use crate::header::{self, BLOCK, HeaderFields, typeflag};
use crate::plan::{PlanKind, Planned};
use crate::validate::{Kind, LayerOrder, Rules};

/// The read buffer size for file contents: large enough to keep syscalls rare, small
/// enough that memory does not depend on file sizes.
const COPY_BUF: usize = 256 * 1024;

/// Writes tar entries to `out`, one header and content at a time, checking each against
/// the rules every layer obeys ([`Rules`]) before anything of it is written.
pub(crate) struct TarStream<W: Write> {
    out: W,
    mtime: u64,
    rules: Rules,
    /// Header bytes waiting to be written together with the next content chunk.
    pending: Vec<u8>,
    buf: Vec<u8>,
    /// Where the output goes, for error messages.
    dest: PathBuf,
}

impl<W: Write> TarStream<W> {
    /// Returns a stream writing to `out`, stamping every entry with `mtime`, for entries
    /// ordered as `order`.
    pub(crate) fn new(out: W, mtime: u64, dest: PathBuf, order: LayerOrder) -> Self {
        Self {
            out,
            mtime,
            rules: Rules::new(order),
            pending: Vec::with_capacity(4 * BLOCK),
            buf: vec![0; COPY_BUF],
            dest,
        }
    }

    /// Appends one entry: its header(s), then its content padded to a whole block.
    pub(crate) fn append(&mut self, entry: &Planned<'_>) -> Result<(), LayerError> {
        let dir_name;
        let (name, type_flag, link): (&[u8], u8, &[u8]) = match entry.kind {
            PlanKind::Dir => {
                dir_name = [entry.path, b"/"].concat();
                (&dir_name, typeflag::DIR, b"")
            }
            PlanKind::File(_) => (entry.path, typeflag::FILE, b""),
            PlanKind::Symlink(target) => (entry.path, typeflag::SYMLINK, target),
            PlanKind::Hardlink(target) => (entry.path, typeflag::HARDLINK, target),
        };
        let size = entry.size();
        let fields = HeaderFields {
            name,
            link,
            typeflag: type_flag,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            size,
            mtime: self.mtime,
        };
        self.header(&fields)?;
        if let PlanKind::File(source) = entry.kind {
            let Self {
                out,
                pending,
                buf,
                dest,
                ..
            } = self;
            source.stream(entry.path, buf, |chunk| {
                if !pending.is_empty() {
                    write(out, pending, dest)?;
                    pending.clear();
                }
                write(out, chunk, dest)
            })?;
            header::pad(&mut self.pending, size);
        }
        if self.pending.len() >= 64 * 1024 {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Appends one regular file whose `size` content bytes are read from `reader`, in
    /// chunks of at most [`COPY_BUF`] bytes. Fails if `reader` ends early; bytes past
    /// `size` are never read.
    pub(crate) fn append_reader(
        &mut self,
        fields: &HeaderFields<'_>,
        reader: &mut dyn Read,
    ) -> Result<(), LayerError> {
        self.header(fields)?;
        let size = fields.size;
        let mut remaining = size;
        while remaining > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = loop {
                match reader.read(&mut self.buf[..want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(LayerError::EntrySource {
                            path: String::from_utf8_lossy(fields.name).into_owned(),
                            source,
                        });
                    }
                    Ok(n) => break n,
                }
            };
            if n == 0 {
                return Err(LayerError::ShortEntry {
                    path: String::from_utf8_lossy(fields.name).into_owned(),
                    expected: size,
                    actual: size - remaining,
                });
            }
            if !self.pending.is_empty() {
                self.flush_pending()?;
            }
            write(&mut self.out, &self.buf[..n], &self.dest)?;
            remaining -= n as u64;
        }
        header::pad(&mut self.pending, size);
        if self.pending.len() >= 64 * 1024 {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Appends one entry without content (directory, symlink, hardlink).
    pub(crate) fn append_header(&mut self, fields: &HeaderFields<'_>) -> Result<(), LayerError> {
        self.header(fields)?;
        if self.pending.len() >= 64 * 1024 {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Writes the two zero blocks that end a tar and returns the output.
    pub(crate) fn finish(mut self) -> Result<W, LayerError> {
        self.pending.resize(self.pending.len() + 2 * BLOCK, 0);
        self.flush_pending()?;
        Ok(self.out)
    }

    /// Checks the entry `fields` describes against the layer's rules, then queues its
    /// header block(s).
    fn header(&mut self, fields: &HeaderFields<'_>) -> Result<(), LayerError> {
        let (path, kind) = match fields.typeflag {
            typeflag::DIR => (
                fields.name.strip_suffix(b"/").unwrap_or(fields.name),
                Kind::Dir,
            ),
            typeflag::SYMLINK => (fields.name, Kind::Symlink),
            typeflag::HARDLINK => (fields.name, Kind::Hardlink),
            _ => (fields.name, Kind::File),
        };
        self.rules
            .check(path, kind, fields.link)
            .map_err(|rule| LayerError::Unsound {
                path: String::from_utf8_lossy(path).into_owned(),
                rule,
            })?;
        header::encode(fields, &mut self.pending);
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), LayerError> {
        write(&mut self.out, &self.pending, &self.dest)?;
        self.pending.clear();
        Ok(())
    }
}

fn write(out: &mut impl Write, bytes: &[u8], dest: &std::path::Path) -> Result<(), LayerError> {
    out.write_all(bytes).map_err(|source| LayerError::Write {
        path: dest.to_path_buf(),
        source,
    })
}
