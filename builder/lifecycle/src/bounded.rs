//! Reading the project files kiln parses (manifests, descriptors, lockfiles) with a size
//! cap: they come from the user's source tree, which may be hostile or broken, and a 2 GiB
//! `package.json` must be refused, not read whole (RELIABILITY.md B04).

use std::io::{self, Read};
use std::path::Path;

/// The most kiln reads of a manifest or descriptor it parses (`package.json`, `go.mod`,
/// `go.work`, `pom.xml`, `project.toml`, `.nvmrc`): real ones are kilobytes.
pub const MANIFEST_LIMIT: u64 = 16 << 20;

/// The most kiln reads of a lockfile (`package-lock.json`, `pnpm-lock.yaml`, `yarn.lock`):
/// a large monorepo's are tens of megabytes.
pub const LOCKFILE_LIMIT: u64 = 256 << 20;

/// Reads the file at `path` whole unless it holds more than `limit` bytes, which is an
/// error of kind [`io::ErrorKind::FileTooLarge`] saying so. Only `limit + 1` bytes are ever
/// read, whatever the file claims to be (a FIFO, a file still growing).
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let too_large = |size: String| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it holds {size}, more than the {} kiln reads of such a file",
                human(limit)
            ),
        )
    };
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_large(human(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {}", human(limit))));
    }
    Ok(bytes)
}

/// Like [`read_bounded`], for text; invalid UTF-8 is an error of kind `InvalidData`.
pub fn read_bounded_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Returns `bytes` as a size a person reads (`16 MiB`, `2.0 GiB`, `512 B`).
fn human(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    match bytes {
        b if b >= GIB => format!("{:.1} GiB", b as f64 / GIB as f64),
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_large_ones_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let small = tmp.path().join("package.json");
        std::fs::write(&small, b"{}").unwrap();
        assert_eq!(read_bounded(&small, 16).unwrap(), b"{}");

        // A sparse 2 GiB file: refused from its size, without reading it.
        let big = tmp.path().join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let err = read_bounded(&big, MANIFEST_LIMIT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            err.to_string(),
            "it holds 2.0 GiB, more than the 16 MiB kiln reads of such a file"
        );
    }

    #[test]
    fn a_file_one_byte_over_the_limit_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("go.mod");
        std::fs::write(&path, vec![b'x'; 11]).unwrap();
        assert!(read_bounded(&path, 11).is_ok());
        assert_eq!(
            read_bounded(&path, 10).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_bounded_string(&path, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
