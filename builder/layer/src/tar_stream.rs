//! Streaming planned entries out as one tar.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::LayerError;
use crate::header::{self, BLOCK, HeaderFields, typeflag};
use crate::plan::{PlanKind, Planned};

/// The read buffer size for file contents: large enough to keep syscalls rare, small
/// enough that memory does not depend on file sizes.
const COPY_BUF: usize = 256 * 1024;

/// Writes tar entries to `out`, one header and content at a time.
pub(crate) struct TarStream<W: Write> {
    out: W,
    mtime: u64,
    /// Header bytes waiting to be written together with the next content chunk.
    pending: Vec<u8>,
    buf: Vec<u8>,
    /// Where the output goes, for error messages.
    dest: PathBuf,
}

impl<W: Write> TarStream<W> {
    /// Returns a stream writing to `out`, stamping every entry with `mtime`.
    pub(crate) fn new(out: W, mtime: u64, dest: PathBuf) -> Self {
        Self {
            out,
            mtime,
            pending: Vec::with_capacity(4 * BLOCK),
            buf: vec![0; COPY_BUF],
            dest,
        }
    }

    /// Appends one entry: its header(s), then its content padded to a whole block.
    pub(crate) fn append(&mut self, entry: &Planned<'_>) -> Result<(), LayerError> {
        let dir_name;
        let (name, type_flag, link) = match entry.kind {
            PlanKind::Dir => {
                dir_name = format!("{}/", entry.path);
                (dir_name.as_str(), typeflag::DIR, "")
            }
            PlanKind::File(_) => (entry.path, typeflag::FILE, ""),
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
        header::encode(&fields, &mut self.pending);
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
        header::encode(fields, &mut self.pending);
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
                            path: fields.name.to_string(),
                            source,
                        });
                    }
                    Ok(n) => break n,
                }
            };
            if n == 0 {
                return Err(LayerError::ShortEntry {
                    path: fields.name.to_string(),
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
        header::encode(fields, &mut self.pending);
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
