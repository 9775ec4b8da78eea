//! Unpacking a layer blob into a fresh directory, confined: for kiln's own caches (the
//! `--cache-image` of build pods), never for images' root file systems. The blob's diffID is
//! checked while it streams; nothing lands outside the directory, whatever the tar says.
//!
//! Refused: absolute paths and `..`, writing through a symlink, symlinks that are absolute
//! or point out of the directory, hardlinks to anything but a file unpacked before, devices,
//! FIFOs and anything else.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use kiln_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::Compression;

/// Why a blob could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading, decompressing or writing failed.
    #[error("unpacking into `{}`: {source}", dir.display())]
    Io {
        /// The destination.
        dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// An entry is one kiln refuses.
    #[error("unpacking into `{}`: refusing entry `{entry}`: {why}", dir.display())]
    Refused {
        /// The destination.
        dir: PathBuf,
        /// The entry's path as the tar names it.
        entry: String,
        /// Why.
        why: &'static str,
    },
    /// The uncompressed stream is not the layer it claims to be.
    #[error("the layer's contents are `{actual}`, not the recorded diffID `{expected}`")]
    DiffId {
        /// The recorded diffID.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
}

/// What was unpacked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Regular files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Unpacks the compressed layer `blob` into `dir` (which must not exist yet, so nothing in
/// it predates the unpacking), checking that the tar's SHA-256 is `diff_id`. On an error
/// the half-written `dir` is removed.
pub fn extract_layer(
    blob: impl Read,
    compression: Compression,
    diff_id: &Digest,
    dir: &Path,
) -> Result<ExtractStats, ExtractError> {
    let io_err = |source| ExtractError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir(dir).map_err(io_err)?;
    let result = unpack(blob, compression, diff_id, dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn unpack(
    blob: impl Read,
    compression: Compression,
    diff_id: &Digest,
    dir: &Path,
) -> Result<ExtractStats, ExtractError> {
    let io_err = |source| ExtractError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let tar = compression.decoder(blob).map_err(io_err)?;
    let mut hashed = Hashing {
        inner: tar,
        hash: Sha256::new(),
    };
    let mut stats = ExtractStats::default();
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let refuse = |why| ExtractError::Refused {
                dir: dir.to_path_buf(),
                entry: name.clone(),
                why,
            };
            let rel = confined(Path::new(&name)).ok_or_else(|| refuse("absolute or `..` path"))?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            let target = dir.join(&rel);
            if !parents_are_real_dirs(dir, &rel) {
                return Err(refuse("a parent is not a directory (a symlink?)"));
            }
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    std::fs::create_dir_all(&target).map_err(io_err)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(io_err)?;
                    }
                    let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
                    let mut file = open_new(&target, mode).map_err(io_err)?;
                    stats.bytes += io::copy(&mut entry, &mut file).map_err(io_err)?;
                    stats.files += 1;
                }
                tar::EntryType::Symlink => {
                    let link = entry
                        .link_name()
                        .map_err(io_err)?
                        .ok_or_else(|| refuse("a symlink without a target"))?
                        .into_owned();
                    let parent = rel.parent().unwrap_or(Path::new(""));
                    if link.is_absolute() || confined(&parent.join(&link)).is_none() {
                        return Err(refuse("a symlink that points out of the directory"));
                    }
                    if climbs_after_name(&link) {
                        return Err(refuse(
                            "a symlink whose target has `..` after a name (through another \
                             symlink it could climb out of the directory)",
                        ));
                    }
                    if let Some(p) = target.parent() {
                        std::fs::create_dir_all(p).map_err(io_err)?;
                    }
                    std::os::unix::fs::symlink(&link, &target).map_err(io_err)?;
                }
                // kiln's writer stores a file seen twice (an inode linked in two places)
                // as a hardlink to the first: it must name a file already unpacked here.
                tar::EntryType::Link => {
                    let link = entry
                        .link_name()
                        .map_err(io_err)?
                        .ok_or_else(|| refuse("a hardlink without a target"))?
                        .into_owned();
                    let source =
                        confined(&link).ok_or_else(|| refuse("a hardlink out of the directory"))?;
                    let is_file = parents_are_real_dirs(dir, &source)
                        && std::fs::symlink_metadata(dir.join(&source)).is_ok_and(|m| m.is_file());
                    if !is_file {
                        return Err(refuse(
                            "a hardlink to something not unpacked here as a file",
                        ));
                    }
                    std::fs::hard_link(dir.join(&source), &target).map_err(io_err)?;
                }
                // Pax and GNU extension headers are consumed by the tar reader; anything
                // else (devices, FIFOs) has no place in a cache.
                _ => return Err(refuse("not a file, directory, link or symlink")),
            }
        }
    }
    // Read what the tar reader left (the end-of-archive blocks) so the hash covers it all.
    io::copy(&mut hashed, &mut io::sink()).map_err(io_err)?;
    let actual = Digest::from_hasher(hashed.hash);
    if actual != *diff_id {
        return Err(ExtractError::DiffId {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(stats)
}

/// Returns `path` with `.` components dropped, or `None` if it is absolute or climbs out.
fn confined(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Returns whether `link` has a `..` after a name, as in `a/b/..`: when `a/b` is itself a
/// symlink (`a/b -> ..`), that resolves above `a`, which the lexical check cannot see. With
/// `..` only in front, a target climbs from its own real parent and then only descends, so
/// every symlink stays inside whatever the order of the entries.
fn climbs_after_name(link: &Path) -> bool {
    let mut named = false;
    link.components().any(|c| match c {
        Component::Normal(_) => {
            named = true;
            false
        }
        Component::ParentDir => named,
        _ => false,
    })
}

/// Returns whether every existing parent of `rel` under `dir` is a directory, not a
/// symlink (so a file is never written through a link an earlier entry made).
fn parents_are_real_dirs(dir: &Path, rel: &Path) -> bool {
    let mut at = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return false,
            Err(_) => return true,
        }
    }
    // The entry itself must not be an existing symlink either.
    !std::fs::symlink_metadata(dir.join(rel)).is_ok_and(|m| m.file_type().is_symlink())
}

fn open_new(path: &Path, mode: u32) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// A reader that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlobStore, LayerContents, Ownership, TarPolicy, write_layer};

    fn blob(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> (Vec<u8>, Digest) {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let mut c = LayerContents::new();
        for (p, data) in files {
            c.add_file(p, data.to_vec(), 0o644, None);
        }
        for (p, target) in links {
            c.add_symlink(p, target);
        }
        let policy = TarPolicy {
            mtime: 1,
            owner: Ownership::new(0, 0),
        };
        let b = write_layer(&c, &policy, Compression::Gzip, &store).unwrap();
        (std::fs::read(store.path(&b.digest)).unwrap(), b.diff_id)
    }

    /// A gzip'd tar written by hand, for entries kiln's writer would never produce.
    fn raw_tar(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (Vec<u8>, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let tar = b.into_inner().unwrap();
        let diff = Digest::of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        (gz.finish().unwrap(), diff)
    }

    #[test]
    fn unpacks_files_dirs_and_confined_symlinks() {
        let (bytes, diff) = blob(
            &[
                ("npm/_cacache/index", b"i"),
                ("modules/k/node_modules/a/x.js", b"x"),
            ],
            &[
                ("modules/k/node_modules/b", "a"),
                ("modules/k/link", "node_modules/a/x.js"),
            ],
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let stats = extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(std::fs::read(dir.join("modules/k/link")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(dir.join("modules/k/node_modules/b")).unwrap(),
            Path::new("a")
        );
    }

    #[test]
    fn hardlinks_between_unpacked_files_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (
            tmp.path().join("src/full/x.js"),
            tmp.path().join("src/layer/x.js"),
        );
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::create_dir_all(b.parent().unwrap()).unwrap();
        std::fs::write(&a, b"shared").unwrap();
        std::fs::hard_link(&a, &b).unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut c = LayerContents::new();
        c.add_tree(&tmp.path().join("src"), "m").unwrap();
        let policy = TarPolicy {
            mtime: 1,
            owner: Ownership::new(0, 0),
        };
        let blob = write_layer(&c, &policy, Compression::Gzip, &store).unwrap();
        let bytes = std::fs::read(store.path(&blob.digest)).unwrap();
        let dir = tmp.path().join("out");
        extract_layer(bytes.as_slice(), Compression::Gzip, &blob.diff_id, &dir).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| std::fs::metadata(dir.join(p)).unwrap().ino();
        assert_eq!(ino("m/full/x.js"), ino("m/layer/x.js"));
    }

    #[test]
    fn a_wrong_diff_id_or_a_corrupt_blob_leaves_nothing() {
        let (bytes, _) = blob(&[("a", b"a")], &[]);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let err = extract_layer(bytes.as_slice(), Compression::Gzip, &Digest::of(b"x"), &dir)
            .unwrap_err();
        assert!(matches!(err, ExtractError::DiffId { .. }), "{err}");
        assert!(!dir.exists());
        let mut broken = bytes.clone();
        let mid = broken.len() / 2;
        broken[mid] ^= 0xff;
        assert!(
            extract_layer(
                broken.as_slice(),
                Compression::Gzip,
                &Digest::of(b"x"),
                &dir
            )
            .is_err()
        );
        assert!(!dir.exists());
    }

    #[test]
    fn escapes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let cases: Vec<(&str, (Vec<u8>, Digest))> = vec![
            (
                "escaping symlink",
                blob(&[], &[("a/evil", "../../outside")]),
            ),
            ("absolute symlink", blob(&[], &[("evil", "/etc")])),
            (
                "write through a symlink",
                raw_tar(|b| {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, "d", "sub").unwrap();
                    let mut d = tar::Header::new_gnu();
                    d.set_entry_type(tar::EntryType::Directory);
                    d.set_size(0);
                    d.set_mode(0o755);
                    b.append_data(&mut d, "sub", io::empty()).unwrap();
                    let mut f = tar::Header::new_gnu();
                    f.set_size(1);
                    f.set_mode(0o644);
                    b.append_data(&mut f, "d/x", &b"x"[..]).unwrap();
                }),
            ),
            (
                "hardlink",
                raw_tar(|b| {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, "l", "/etc/passwd").unwrap();
                }),
            ),
            (
                "hardlink to a missing file",
                raw_tar(|b| {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, "l", "x/../y").unwrap();
                }),
            ),
        ];
        for (what, (bytes, diff)) in cases {
            let dir = tmp.path().join(what.replace(' ', "-"));
            let err = extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap_err();
            assert!(matches!(err, ExtractError::Refused { .. }), "{what}: {err}");
            assert!(!dir.exists(), "{what}");
        }
        assert!(!outside.exists());
    }

    /// Found by the `tar_extract` fuzz target: `a/b -> ..` then `c -> a/b/..` passed the
    /// lexical check (`a/b/..` looks like `a`) but `c` resolved to the directory's parent.
    #[test]
    fn fuzz_tar_extract_a_symlink_climbing_through_another_symlink_is_refused() {
        let (bytes, diff) = raw_tar(|b| {
            let mut d = tar::Header::new_gnu();
            d.set_entry_type(tar::EntryType::Directory);
            d.set_size(0);
            d.set_mode(0o755);
            b.append_data(&mut d, "a", io::empty()).unwrap();
            for (path, target) in [("a/b", ".."), ("c", "a/b/.."), ("d", "c/x")] {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        });
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let err = extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap_err();
        assert!(
            matches!(&err, ExtractError::Refused { entry, .. } if entry == "c"),
            "{err}"
        );
        assert!(err.to_string().contains("`..` after a name"), "{err}");
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        // `..` in front only still works: it climbs from the link's own real directory.
        let (bytes, diff) = blob(&[("m/x", b"x")], &[("m/n/l", "../x")]);
        extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap();
        assert_eq!(std::fs::read(dir.join("m/n/l")).unwrap(), b"x");
    }
}
