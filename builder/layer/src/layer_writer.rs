//! [`LayerWriter`]: a layer written from a sequence of entries instead of host files.
//!
//! Same pipeline as [`crate::write_layer`] (tar → sha256 (diffID) → gzip | zstd →
//! sha256 (digest) → blob store temp file → rename) and the same header normalization
//! (mtime from the policy, numeric owner, no user/group names, no device numbers), but
//! the caller decides the order and the owners, and file bodies are streamed from readers.
//! It is the writing half of tar→tar transforms (Debian `data.tar` into a layer): memory
//! stays constant whatever the entry sizes.

use std::io::Read;
use std::path::PathBuf;

use kiln_oci::Sha256Writer;

use crate::contents::{BadPath, normalize};
use crate::header::{HeaderFields, typeflag};
use crate::tar_stream::TarStream;
use crate::validate::LayerOrder;
use crate::write::Compressor;
use crate::{BlobStore, Compression, LayerBlob, LayerError, Ownership, TarPolicy, WriteOptions};

/// Writes one layer from entries given one at a time, in the order given.
///
/// Paths are normalized like [`crate::LayerContents`] paths (leading `/` and `./` dropped,
/// `..` and NUL refused, the root refused) and names starting with `.wh.` are refused:
/// whiteouts are never written by accident. Modes are kept as given (setuid, setgid and
/// sticky bits included, file type bits dropped); an owner of `None` means the policy's
/// owner. Nothing is sorted and parent directories are not added: the caller's order is the
/// tar's order, which is deterministic when the caller's is. A path given twice, a
/// directory given after entries inside it, or an entry inside a non-directory is refused
/// ([`LayerError::Unsound`], see [`crate::validate_tar`] with [`LayerOrder::Given`]).
///
/// Dropping the writer without [`finish`](Self::finish), or after an error, deletes the
/// temporary blob: no partial blob ever appears under a digest name. After a failed call,
/// every later call fails with [`LayerError::WriterFailed`].
pub struct LayerWriter {
    tar: TarStream<Sha256Writer<Compressor>>,
    policy: TarPolicy,
    compression: Compression,
    dest: PathBuf,
    failed: bool,
}

impl LayerWriter {
    /// Returns a writer for a new layer in `store`, compressing with one thread per CPU.
    pub fn new(
        policy: &TarPolicy,
        compression: Compression,
        store: &BlobStore,
    ) -> Result<Self, LayerError> {
        Self::with_options(policy, compression, store, WriteOptions::default())
    }

    /// Like [`new`](Self::new), with explicit [`WriteOptions`].
    pub fn with_options(
        policy: &TarPolicy,
        compression: Compression,
        store: &BlobStore,
        options: WriteOptions,
    ) -> Result<Self, LayerError> {
        let dest = store.blob_dir().to_path_buf();
        let blob = store.writer()?;
        let compressor = Compressor::new(compression, blob, options.threads).map_err(|source| {
            LayerError::Write {
                path: dest.clone(),
                source,
            }
        })?;
        Ok(Self {
            tar: TarStream::new(
                Sha256Writer::new(compressor),
                policy.mtime,
                dest.clone(),
                LayerOrder::Given,
            ),
            policy: *policy,
            compression,
            dest,
            failed: false,
        })
    }

    /// Appends the directory `path` with exactly `mode`.
    pub fn append_dir(
        &mut self,
        path: &str,
        mode: u32,
        owner: Option<Ownership>,
    ) -> Result<(), LayerError> {
        self.guard(|w| {
            let mut name = w.checked(path)?;
            name.push(b'/');
            let fields = w.fields(&name, b"", typeflag::DIR, mode, owner, 0);
            w.tar.append_header(&fields)
        })
    }

    /// Appends a regular file at `path` with exactly `mode`, whose `size` bytes are read
    /// from `reader` and streamed into the layer. Fails with [`LayerError::ShortEntry`] if
    /// `reader` ends early; bytes past `size` are never read.
    pub fn append_file(
        &mut self,
        path: &str,
        mode: u32,
        owner: Option<Ownership>,
        size: u64,
        mut reader: impl Read,
    ) -> Result<(), LayerError> {
        self.guard(|w| {
            let name = w.checked(path)?;
            let fields = w.fields(&name, b"", typeflag::FILE, mode, owner, size);
            w.tar.append_reader(&fields, &mut reader)
        })
    }

    /// Appends a symlink at `path` pointing to `target`, stored verbatim (absolute and
    /// `..` targets included: they resolve inside the container, not on the host).
    pub fn append_symlink(
        &mut self,
        path: &str,
        target: &str,
        owner: Option<Ownership>,
    ) -> Result<(), LayerError> {
        self.guard(|w| {
            let name = w.checked(path)?;
            if target.is_empty() || target.contains('\0') {
                return Err(LayerError::InvalidPath {
                    path: path.to_string(),
                    reason: "a symlink target must be non-empty and free of NUL bytes",
                });
            }
            let fields = w.fields(&name, target.as_bytes(), typeflag::SYMLINK, 0o777, owner, 0);
            w.tar.append_header(&fields)
        })
    }

    /// Appends a hardlink at `path` to `target`, a regular file already written to this
    /// layer (a tar hardlink can only point backwards within its own archive).
    pub fn append_hardlink(
        &mut self,
        path: &str,
        target: &str,
        mode: u32,
        owner: Option<Ownership>,
    ) -> Result<(), LayerError> {
        self.guard(|w| {
            let name = w.checked(path)?;
            let target_name = w.checked(target)?;
            // The tar stream's rules refuse a target that is not an earlier file.
            let fields = w.fields(&name, &target_name, typeflag::HARDLINK, mode, owner, 0);
            w.tar.append_header(&fields)
        })
    }

    /// Ends the tar, finishes compression and commits the blob under its digest.
    pub fn finish(self) -> Result<LayerBlob, LayerError> {
        if self.failed {
            return Err(LayerError::WriterFailed);
        }
        let write_err = |source| LayerError::Write {
            path: self.dest.clone(),
            source,
        };
        let (diff_id, _, compressor) = self.tar.finish()?.finish();
        let (digest, size) = compressor.finish().map_err(write_err)?.commit()?;
        Ok(LayerBlob {
            digest,
            diff_id,
            size,
            media_type: self.compression.media_type(),
        })
    }

    /// Runs `f` unless an earlier call failed, and remembers a failure.
    fn guard(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
        if self.failed {
            return Err(LayerError::WriterFailed);
        }
        let result = f(self);
        // Validation errors come before anything is written, but a failure halfway
        // through an entry leaves the tar inconsistent: refuse everything after any error
        // rather than tell the two apart.
        self.failed = result.is_err();
        result
    }

    /// Returns the normalized `path`, or why it cannot be written.
    fn checked(&self, path: &str) -> Result<Vec<u8>, LayerError> {
        match normalize(path.as_bytes()) {
            Ok(name) if name.is_empty() => Err(BadPath::Root.error(path)),
            Ok(name) => Ok(name),
            Err(bad) => Err(bad.error(path)),
        }
    }

    fn fields<'a>(
        &self,
        name: &'a [u8],
        link: &'a [u8],
        type_flag: u8,
        mode: u32,
        owner: Option<Ownership>,
        size: u64,
    ) -> HeaderFields<'a> {
        let owner = owner.unwrap_or(self.policy.owner);
        HeaderFields {
            name,
            link,
            typeflag: type_flag,
            mode: mode & 0o7777,
            uid: owner.uid,
            gid: owner.gid,
            size,
            mtime: self.policy.mtime,
        }
    }
}

impl std::fmt::Debug for LayerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter")
            .field("compression", &self.compression)
            .field("dest", &self.dest)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
