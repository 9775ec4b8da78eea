//! [`write_layer`]: one streaming pass from contents to a committed blob.
//!
//! tar → sha256 (diffID) → gzip | zstd → sha256 (digest) → blob store temp file → rename.
//! Memory is bounded by a few compression blocks whatever the layer size.

use std::io::{self, Write};
use std::path::Path;

use kiln_oci::{Digest, Sha256Writer};
use serde::{Deserialize, Deserializer, Serialize};

use crate::compression::{GZIP_LEVEL, ZSTD_JOB_SIZE, ZSTD_LEVEL, ZSTD_OVERLAP_LOG};
use crate::pargz::ParallelGzEncoder;
use crate::plan::{Planned, plan};
use crate::tar_stream::TarStream;
use crate::validate::LayerOrder;
use crate::{BlobStore, BlobWriter, Compression, LayerContents, LayerError, TarPolicy};

/// The result of writing a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerBlob {
    /// The digest of the compressed blob (what manifests reference).
    pub digest: Digest,
    /// The digest of the uncompressed tar (what the image config's `rootfs.diff_ids` lists).
    pub diff_id: Digest,
    /// The size of the compressed blob in bytes.
    pub size: u64,
    /// The OCI media type of the blob.
    pub media_type: &'static str,
}

/// [`LayerBlob`] as deserialized, before its media type is mapped to one of ours.
#[derive(Deserialize)]
struct StoredLayerBlob {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    media_type: String,
}

// Hand-written because a derived impl would require `'de: 'static` for the
// `&'static str` field; the media type is mapped back to one of our constants instead.
impl<'de> Deserialize<'de> for LayerBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = StoredLayerBlob::deserialize(d)?;
        let media_type = Compression::from_media_type(&s.media_type)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("unknown layer media type `{}`", s.media_type))
            })?
            .media_type();
        Ok(Self {
            digest: s.digest,
            diff_id: s.diff_id,
            size: s.size,
            media_type,
        })
    }
}

/// Knobs of [`write_layer_with`] that do not change the output bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compression threads; the blob is byte-identical for every value.
    pub threads: usize,
}

impl Default for WriteOptions {
    /// One thread per available CPU.
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Writes `contents` as one deterministic tar, streamed once through sha256 (diffID),
/// `compression` and sha256 (digest) into `store`, with one thread per CPU.
pub fn write_layer(
    contents: &LayerContents,
    policy: &TarPolicy,
    compression: Compression,
    store: &BlobStore,
) -> Result<LayerBlob, LayerError> {
    write_layer_with(
        contents,
        policy,
        compression,
        store,
        WriteOptions::default(),
    )
}

/// Like [`write_layer`], with explicit [`WriteOptions`].
pub fn write_layer_with(
    contents: &LayerContents,
    policy: &TarPolicy,
    compression: Compression,
    store: &BlobStore,
    options: WriteOptions,
) -> Result<LayerBlob, LayerError> {
    let entries = plan(contents, policy)?;
    let dest = store.blob_dir().to_path_buf();
    let write_err = |source: io::Error| LayerError::Write {
        path: dest.clone(),
        source,
    };
    let blob = store.writer()?;
    let compressor = Compressor::new(compression, blob, options.threads).map_err(write_err)?;
    let hashed = stream_tar(entries, policy, Sha256Writer::new(compressor), &dest)?;
    let (diff_id, _, compressor) = hashed.finish();
    let (digest, size) = compressor.finish().map_err(write_err)?.commit()?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: compression.media_type(),
    })
}

/// Writes `contents` to `out` as the uncompressed tar [`write_layer`] would compress: for
/// a reader of a layer just written (say, a cataloger) that would otherwise decompress it.
/// `dest` names the destination in errors.
pub fn write_tar(
    contents: &LayerContents,
    policy: &TarPolicy,
    out: impl io::Write,
    dest: &Path,
) -> Result<(), LayerError> {
    let entries = plan(contents, policy)?;
    stream_tar(entries, policy, out, dest)?
        .flush()
        .map_err(|source| LayerError::Write {
            path: dest.to_path_buf(),
            source,
        })
}

/// Streams the planned `entries` into `out` as one tar, end blocks included; returns `out`.
fn stream_tar<'a, W: io::Write>(
    entries: impl Iterator<Item = Planned<'a>>,
    policy: &TarPolicy,
    out: W,
    dest: &Path,
) -> Result<W, LayerError> {
    let mut tar = TarStream::new(out, policy.mtime, dest.to_path_buf(), LayerOrder::Sorted);
    for entry in entries {
        tar.append(&entry)?;
    }
    tar.finish()
}

/// The compression stage of the pipeline.
pub(crate) enum Compressor {
    Gzip(ParallelGzEncoder<BlobWriter>),
    Zstd(zstd::stream::Encoder<'static, BlobWriter>),
}

impl Compressor {
    pub(crate) fn new(
        compression: Compression,
        out: BlobWriter,
        threads: usize,
    ) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Self::Gzip(ParallelGzEncoder::new(out, GZIP_LEVEL, threads)?),
            Compression::Zstd => {
                let mut enc = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
                // Multi-threaded zstd cuts jobs at fixed input offsets (ZSTD_JOB_SIZE), so
                // its output depends on being in multi-threaded mode, not on the worker
                // count (tests/determinism.rs, `thread_count_does_not_change_the_blob`).
                // Never 0 workers: single-threaded mode produces different bytes.
                enc.multithread(u32::try_from(threads.max(1)).unwrap_or(u32::MAX))?;
                enc.include_checksum(true)?;
                enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                enc.set_parameter(zstd::zstd_safe::CParameter::OverlapSizeLog(
                    ZSTD_OVERLAP_LOG,
                ))?;
                Self::Zstd(enc)
            }
        })
    }

    pub(crate) fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Self::Gzip(enc) => enc.finish(),
            Self::Zstd(enc) => enc.finish(),
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(enc) => enc.write(buf),
            Self::Zstd(enc) => enc.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Deliberately not forwarded: a zstd flush ends a block early, which would make
        // the output depend on when callers flush.
        Ok(())
    }
}
