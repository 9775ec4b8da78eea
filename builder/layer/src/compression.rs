//! Layer compression choices and their fixed parameters.
//!
//! Media types: OCI image-spec, "Image Layer Filesystem Changeset"
//! (<https://github.com/opencontainers/image-spec/blob/main/layer.md>).

use std::fmt;
use std::str::FromStr;

use kiln_oci::media_types::{OCI_LAYER_GZIP, OCI_LAYER_ZSTD};
use serde::{Deserialize, Serialize};

use crate::LayerError;

/// The deflate level of gzip layers.
///
/// Level 1 is what go-containerregistry and ko ship by default (`gzip.BestSpeed`): layers
/// are written on every build but pulled from a registry that recompresses nothing, and
/// level 1 is several times faster than level 6 for a few percent larger blobs. It is part
/// of the layer bytes, so changing it changes every digest (and the fingerprint format).
pub const GZIP_LEVEL: u32 = 1;

/// The zstd level of zstd layers (zstd's own default).
pub const ZSTD_LEVEL: i32 = 3;

/// The input size of one multi-threaded zstd job.
///
/// zstd's default at level 3 is 8 MiB jobs, whose round buffer and per-job output buffers
/// cost ~70 MiB at two threads. 2 MiB jobs with a 1 MiB overlap ([`ZSTD_OVERLAP_LOG`])
/// need ~20 MiB and, on the benchmark tree, compress slightly better than the default.
/// Fixing both also pins the output against changes of zstd's defaults. Part of the
/// layer bytes, like the level.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// How much of the previous job each zstd job sees: half the 2 MiB window (zstd's
/// `overlapLog` scale, where 9 is the full window).
pub const ZSTD_OVERLAP_LOG: u32 = 8;

/// How a layer tar is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (RFC 1952), the default: every runtime and registry accepts it.
    #[default]
    Gzip,
    /// zstd (RFC 8878): faster and smaller, needs containerd ≥ 1.5 / podman ≥ 3.
    Zstd,
}

impl Compression {
    /// Returns the OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => OCI_LAYER_GZIP,
            Self::Zstd => OCI_LAYER_ZSTD,
        }
    }

    /// Returns the name used on the command line and in [`FromStr`]: `gzip` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }

    /// Returns a reader of `blob` decompressed (gzip members are read to the end, as
    /// parallel gzip writes several).
    pub fn decoder<'a>(
        self,
        blob: impl std::io::Read + 'a,
    ) -> std::io::Result<Box<dyn std::io::Read + 'a>> {
        Ok(match self {
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Self::Zstd => Box::new(zstd::Decoder::new(blob)?),
        })
    }

    /// Returns the compression whose media type is `media_type`, if it is one of ours.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        [Self::Gzip, Self::Zstd]
            .into_iter()
            .find(|c| c.media_type() == media_type)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = LayerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            other => Err(LayerError::UnknownCompression(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_maps_media_types() {
        assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd);
        let err = "xz".parse::<Compression>().unwrap_err().to_string();
        assert!(err.contains("`xz`"), "{err}");
        assert_eq!(
            Compression::Gzip.media_type(),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            Compression::Zstd.media_type(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        for c in [Compression::Gzip, Compression::Zstd] {
            assert_eq!(Compression::from_media_type(c.media_type()), Some(c));
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
    }
}
