//! Reading a few small files out of a package's `data.tar` into memory — never onto the
//! host — for files kiln generates from package contents (the CA bundle).

use std::io::Read;
use std::path::Path;

use super::ar::ArReader;
use super::data::package_path;
use super::decompress::MemberCompression;
use super::error::DebError;

/// Returns `(path, bytes)` of every regular file in the `data.tar` of the `.deb` at `file`
/// whose normalized path (`usr/share/…`) `wanted` accepts, in archive order. Reading stops
/// with an error once more than `max_total` bytes would be held.
pub fn read_data_files(
    file: &Path,
    wanted: &dyn Fn(&str) -> bool,
    max_total: u64,
) -> Result<Vec<(String, Vec<u8>)>, DebError> {
    let read_err = |source| DebError::Read {
        file: file.to_path_buf(),
        source,
    };
    let mut ar = ArReader::open(file)?;
    while let Some(member) = ar.next_member()? {
        let Some(Ok(compression)) = MemberCompression::of(&member.name, "data.tar") else {
            continue;
        };
        let data = ar.data(&member)?;
        let mut archive = tar::Archive::new(compression.decoder(data).map_err(read_err)?);
        let mut out = Vec::new();
        let mut total = 0u64;
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Ok(Some(path)) = package_path(&name) else {
                continue;
            };
            if !wanted(&path) {
                continue;
            }
            total += entry.size();
            if total > max_total {
                return Err(read_err(std::io::Error::other(format!(
                    "the files wanted from `data.tar` exceed {max_total} bytes"
                ))));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(read_err)?;
            out.push((path, bytes));
        }
        return Ok(out);
    }
    Err(read_err(std::io::Error::other(
        "the package has no `data.tar` member",
    )))
}
