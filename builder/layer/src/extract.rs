//! Unpacking a layer blob into a fresh directory, confined: for kiln's own caches (the
//! `--cache-image` of build pods), never for images' root file systems. The blob's diffID is
//! checked while it streams; nothing lands outside the directory, whatever the tar says
//! (RELIABILITY.md W12).
//!
//! Every file, directory and link is created relative to a descriptor of its parent
//! directory, and every parent is opened with `O_NOFOLLOW` from the destination down: no
//! symlink is ever followed, whether the tar made it or something swapped it in while
//! unpacking. Symlinks themselves are kept verbatim, whatever they point to (an absolute
//! target, or more `..` than the link is deep, like the `cacerts` link of JDK packages):
//! they are data, and nothing here resolves them.
//!
//! Refused: absolute paths and `..` components, whiteout names, an entry below a symlink
//! or a file, an entry over an existing path (a duplicate, or a directory or file over a
//! symlink), hardlinks to anything but a regular file unpacked before, devices, FIFOs and
//! anything else.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use kiln_oci::Digest;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::Compression;
use crate::contents::is_whiteout;

/// Why a blob could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading, decompressing or writing failed.
    #[error("unpacking into `{}`", dir.display())]
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
        // `remove_dir_all` does not follow symlinks: what they point to stays.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

const ESCAPE: &str = "an absolute path or a `..` component";
const WHITEOUT: &str = "a whiteout marker (`.wh.` name)";
const PARENT: &str = "a parent is not a directory (a symlink?)";
const EXISTS: &str = "something is already there (a duplicate, or a symlink in the way)";
const HARDLINK: &str = "a hardlink to something not unpacked here as a regular file";

fn unpack(
    blob: impl Read,
    compression: Compression,
    diff_id: &Digest,
    dir: &Path,
) -> Result<ExtractStats, ExtractError> {
    let io_err = |source: io::Error| ExtractError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(e.into()))?;
    let tar = compression.decoder(blob).map_err(io_err)?;
    let mut hashed = Hashing {
        inner: tar,
        hash: Sha256::new(),
    };
    let mut stats = ExtractStats::default();
    let mut parents = Parents::new(root);
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let raw = entry.path_bytes().into_owned();
            let refuse = |why| ExtractError::Refused {
                dir: dir.to_path_buf(),
                entry: String::from_utf8_lossy(&raw).into_owned(),
                why,
            };
            let fail = |e: Errno| match e {
                Errno::LOOP | Errno::NOTDIR => refuse(PARENT),
                Errno::EXIST => refuse(EXISTS),
                e => io_err(e.into()),
            };
            let parts = confined(&raw).ok_or_else(|| refuse(ESCAPE))?;
            let Some((leaf, above)) = parts.split_last() else {
                continue;
            };
            if parts.iter().any(|p| is_whiteout(p)) {
                return Err(refuse(WHITEOUT));
            }
            let parent = parents.open(above, true).map_err(fail)?;
            let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
            match entry.header().entry_type() {
                tar::EntryType::Directory => make_dir(parent, leaf).map_err(fail)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let flags = OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC;
                    let fd = rustix::fs::openat(parent, *leaf, flags, Mode::from_raw_mode(mode))
                        .map_err(fail)?;
                    stats.bytes += io::copy(&mut entry, &mut File::from(fd)).map_err(io_err)?;
                    stats.files += 1;
                }
                tar::EntryType::Symlink => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| refuse("a symlink without a target"))?
                        .into_owned();
                    rustix::fs::symlinkat(link.as_slice(), parent, *leaf).map_err(fail)?;
                }
                // kiln's writer stores a file seen twice (an inode linked in two places)
                // as a hardlink to the first: it must name a file already unpacked here.
                tar::EntryType::Link => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| refuse(HARDLINK))?
                        .into_owned();
                    let source = confined(&link).ok_or_else(|| refuse(HARDLINK))?;
                    let (source_leaf, source_above) =
                        source.split_last().ok_or_else(|| refuse(HARDLINK))?;
                    let source_dir = parents
                        .open_other(source_above)
                        .map_err(|_| refuse(HARDLINK))?;
                    let is_file =
                        rustix::fs::statat(&source_dir, *source_leaf, AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| {
                                FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                            });
                    if !is_file {
                        return Err(refuse(HARDLINK));
                    }
                    let parent = parents.open(above, true).map_err(fail)?;
                    // No `AT_SYMLINK_FOLLOW`: the link is to the file itself.
                    rustix::fs::linkat(&source_dir, *source_leaf, parent, *leaf, AtFlags::empty())
                        .map_err(fail)?;
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

/// Returns the components of `path` without empty and `.` ones, or `None` if it is
/// absolute or has a `..` component.
fn confined(path: &[u8]) -> Option<Vec<&[u8]>> {
    if path.starts_with(b"/") {
        return None;
    }
    let mut out = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

/// Creates the directory `name` in `parent`, or accepts one that is already there (but
/// not a symlink to one).
fn make_dir(parent: &OwnedFd, name: &[u8]) -> Result<(), Errno> {
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Err(Errno::EXIST) => {
            let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                Ok(())
            } else {
                Err(Errno::EXIST)
            }
        }
        other => other,
    }
}

/// Directories opened beneath the destination, one component at a time with
/// `O_NOFOLLOW`; the last one is kept, since consecutive entries mostly share a parent.
struct Parents {
    root: OwnedFd,
    last: Option<(Vec<Vec<u8>>, OwnedFd)>,
}

impl Parents {
    fn new(root: OwnedFd) -> Self {
        Self { root, last: None }
    }

    /// Returns the directory `parts` below the destination, creating missing ones when
    /// `create`.
    fn open(&mut self, parts: &[&[u8]], create: bool) -> Result<&OwnedFd, Errno> {
        if parts.is_empty() {
            return Ok(&self.root);
        }
        let hit = self.last.as_ref().is_some_and(|(p, _)| {
            p.len() == parts.len() && p.iter().zip(parts).all(|(a, b)| a == b)
        });
        if !hit {
            let fd = walk(&self.root, parts, create)?;
            self.last = Some((parts.iter().map(|p| p.to_vec()).collect(), fd));
        }
        Ok(&self.last.as_ref().expect("just set").1)
    }

    /// Returns the existing directory `parts`, without touching the cached one.
    fn open_other(&self, parts: &[&[u8]]) -> Result<OwnedFd, Errno> {
        walk(&self.root, parts, false)
    }
}

/// Opens the directory `parts` below `root`, one component at a time, following no
/// symlink; missing ones are created when `create`.
fn walk(root: &OwnedFd, parts: &[&[u8]], create: bool) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(root, ".", flags, Mode::empty())?;
    for part in parts {
        let next = match rustix::fs::openat(&dir, *part, flags, Mode::empty()) {
            Err(Errno::NOENT) if create => {
                make_dir(&dir, part)?;
                rustix::fs::openat(&dir, *part, flags, Mode::empty())?
            }
            other => other?,
        };
        dir = next;
    }
    Ok(dir)
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

    /// W12: symlinks are data: kept verbatim whatever they point to, and never followed.
    #[test]
    fn w12_symlinks_out_of_the_directory_are_kept_verbatim_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let (bytes, diff) = blob(
            &[("a/kept", b"k")],
            &[("a/evil", "../../outside"), ("evil", "/etc")],
        );
        let dir = tmp.path().join("out");
        extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap();
        assert_eq!(
            std::fs::read_link(dir.join("a/evil")).unwrap(),
            Path::new("../../outside")
        );
        assert_eq!(
            std::fs::read_link(dir.join("evil")).unwrap(),
            Path::new("/etc")
        );
        assert!(!outside.exists());
    }

    /// W12 (found by the `tar_extract` fuzz target on the earlier, path-based unpacker): a
    /// symlink `c -> a/b/..` through another, `a/b -> ..`, resolves above the directory; it
    /// is kept as written, and neither a file nor a symlink's target is ever written
    /// through it.
    #[test]
    fn fuzz_tar_extract_nothing_is_written_through_a_symlink_climbing_through_another() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
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
        extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).unwrap();
        assert_eq!(
            std::fs::read_link(dir.join("c")).unwrap(),
            Path::new("a/b/..")
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only `out`"
        );

        let (bytes, diff) = raw_tar(|b| {
            let mut d = tar::Header::new_gnu();
            d.set_entry_type(tar::EntryType::Directory);
            d.set_size(0);
            d.set_mode(0o755);
            b.append_data(&mut d, "a", io::empty()).unwrap();
            for (path, target) in [("a/b", ".."), ("c", "a/b/..")] {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
            let mut f = tar::Header::new_gnu();
            f.set_size(1);
            f.set_mode(0o644);
            b.append_data(&mut f, "c/pwned", &b"x"[..]).unwrap();
        });
        let dir = tmp.path().join("out2");
        assert!(extract_layer(bytes.as_slice(), Compression::Gzip, &diff, &dir).is_err());
        assert!(!dir.exists());
        assert!(!tmp.path().join("pwned").exists());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only `out`"
        );
    }

    #[test]
    fn escapes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let cases: Vec<(&str, (Vec<u8>, Digest))> = vec![
            (
                "write through an escaping symlink",
                raw_tar(|b| {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, "evil", "../outside").unwrap();
                    let mut f = tar::Header::new_gnu();
                    f.set_size(1);
                    f.set_mode(0o644);
                    b.append_data(&mut f, "evil/x", &b"x"[..]).unwrap();
                }),
            ),
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
}
