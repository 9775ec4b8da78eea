//! [`LayerContents::fingerprint`]: a cheap stand-in for a layer's digest.

use kiln_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::compression::{GZIP_LEVEL, ZSTD_JOB_SIZE, ZSTD_LEVEL, ZSTD_OVERLAP_LOG};
use crate::pargz::BLOCK_SIZE;
use crate::plan::{PlanKind, plan};
use crate::source::Source;
use crate::{Compression, HashCache, LayerContents, LayerError, TarPolicy};

/// Bumped whenever the tar or compression format changes, so that fingerprints of layers
/// written by an older kiln never match.
const FORMAT: &str = "kiln-layer fingerprint v1";

impl LayerContents {
    /// Returns a sha256 over everything that determines the layer bytes: the format
    /// version, `policy`, `compression` and its parameters, and for every entry its path,
    /// kind, mode, owner, size, link target and content sha256.
    ///
    /// Equal fingerprints mean [`crate::write_layer`] would produce the same blob, so a
    /// caller can reuse a blob it wrote before. Computing it reads every file once but
    /// neither builds a tar nor compresses. Fails like `write_layer` on invalid paths and
    /// on files whose size changed since they were added.
    pub fn fingerprint(
        &self,
        policy: &TarPolicy,
        compression: Compression,
    ) -> Result<Digest, LayerError> {
        self.fingerprint_with(policy, compression, None)
    }

    /// Like [`fingerprint`](Self::fingerprint), taking the content hash of every host file
    /// whose `stat` has not changed since it was hashed from `hashes` instead of reading it,
    /// and remembering the hashes of the files it had to read.
    pub fn fingerprint_with(
        &self,
        policy: &TarPolicy,
        compression: Compression,
        mut hashes: Option<&mut HashCache>,
    ) -> Result<Digest, LayerError> {
        let entries = plan(self, policy)?;
        let mut h = Sha256::new();
        field(&mut h, FORMAT.as_bytes());
        field(&mut h, compression.as_str().as_bytes());
        match compression {
            Compression::Gzip => {
                number(&mut h, u64::from(GZIP_LEVEL));
                number(&mut h, BLOCK_SIZE as u64);
            }
            Compression::Zstd => {
                number(&mut h, ZSTD_LEVEL.unsigned_abs().into());
                number(&mut h, ZSTD_JOB_SIZE.into());
                number(&mut h, ZSTD_OVERLAP_LOG.into());
            }
        }
        number(&mut h, policy.mtime);
        number(&mut h, policy.owner.uid);
        number(&mut h, policy.owner.gid);
        let mut buf = vec![0u8; 256 * 1024];
        let mut count = 0u64;
        for e in entries {
            count += 1;
            field(&mut h, e.path);
            let (kind, link): (u8, &[u8]) = match e.kind {
                PlanKind::Dir => (b'd', b""),
                PlanKind::File(_) => (b'f', b""),
                PlanKind::Symlink(target) => (b's', target),
                PlanKind::Hardlink(target) => (b'h', target),
            };
            h.update([kind]);
            number(&mut h, u64::from(e.mode));
            number(&mut h, e.uid);
            number(&mut h, e.gid);
            number(&mut h, e.size());
            field(&mut h, link);
            if let PlanKind::File(source) = e.kind {
                let stamp = match (source, hashes.as_deref_mut()) {
                    (Source::Host(host), Some(cache)) => match cache.get(&host.stamp) {
                        Some(known) => {
                            h.update(known);
                            continue;
                        }
                        None => Some(host.stamp),
                    },
                    _ => None,
                };
                let mut content = Sha256::new();
                source.stream(e.path, &mut buf, |chunk| {
                    content.update(chunk);
                    Ok(())
                })?;
                let content: [u8; 32] = content.finalize().into();
                h.update(content);
                if let (Some(stamp), Some(cache)) = (stamp, hashes.as_deref_mut()) {
                    cache.put(&stamp, content);
                }
            }
        }
        number(&mut h, count);
        Ok(Digest::from_hasher(h))
    }
}

/// Hashes a length-prefixed byte string, so that adjacent fields cannot run together.
fn field(h: &mut Sha256, bytes: &[u8]) {
    number(h, bytes.len() as u64);
    h.update(bytes);
}

fn number(h: &mut Sha256, n: u64) {
    h.update(n.to_le_bytes());
}
