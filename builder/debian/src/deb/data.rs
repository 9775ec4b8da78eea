//! `data.tar` → layer entries, one tar entry at a time, never touching the host filesystem.
//!
//! Every entry is checked before anything of it is written: its path is normalized
//! (`./usr/bin/x` → `usr/bin/x`) and moved under `/usr` by merged-usr; `..` components,
//! absolute paths, whiteout names, device nodes, FIFOs and sparse files are refused, as are
//! paths through a symlink written earlier, hardlinks to anything but an earlier regular
//! file of the same package, and paths another package already ships. Bytes are bounded by
//! the package's `Installed-Size`.
//!
//! The tar is read in raw mode so that pax and GNU long-name records are bounded here
//! instead of being read whole into memory whatever their declared size.
//!
//! Spec: deb(5); POSIX pax; GNU tar long names (`L`, `K`).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use kiln_layer::{LayerWriter, Ownership};
use tar::EntryType;

use crate::deb::DebError;
use crate::deb::merged_usr::{fix_target, is_root_link, remap};
use crate::deb::paths::{Kind, LayerPaths, Refusal};
use crate::deb::rules::{PackageRules, SETID_BITS, SetuidFile};

/// The largest pax or GNU long-name record accepted: real ones hold a path or two.
const META_MAX: u64 = 64 << 10;

/// What every tar entry costs against the expansion bound besides its content: its header.
const ENTRY_COST: u64 = 512;

/// The owner of directories kiln adds because an entry's parent is missing.
const ROOT: Ownership = Ownership { uid: 0, gid: 0 };

/// One package being written into a layer.
pub(crate) struct Package<'a> {
    pub(crate) name: &'a str,
    /// The package name as a claim owner.
    pub(crate) owner: Arc<str>,
    pub(crate) file: &'a Path,
    /// The `data.tar.*` member being read.
    pub(crate) member: &'a str,
    /// `Installed-Size` in KiB.
    pub(crate) installed_size: u64,
    /// The expansion bound and the setuid policy.
    pub(crate) rules: &'a PackageRules,
}

impl Package<'_> {
    /// Returns the most bytes the package's data.tar may produce: `Installed-Size` ×
    /// [`PackageRules::max_expansion_percent`] (150 % by default) plus 1 MiB. dpkg computes
    /// `Installed-Size` as the sum of file sizes rounded up to KiB plus 1 KiB per other
    /// entry, which is never below what is counted here (content plus 512 bytes of header
    /// per entry) except for packages of many empty files, which the 1 MiB covers.
    pub(crate) fn byte_limit(&self) -> u64 {
        let bytes = u128::from(self.installed_size) * 1024;
        let limit = bytes * u128::from(self.rules.max_expansion_percent) / 100 + (1 << 20);
        u64::try_from(limit).unwrap_or(u64::MAX)
    }

    fn unsafe_entry(&self, path: &str, reason: impl Into<String>) -> DebError {
        DebError::Unsafe {
            package: self.name.to_string(),
            file: self.file.to_path_buf(),
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    fn data_err(&self, source: std::io::Error) -> DebError {
        DebError::Data {
            package: self.name.to_string(),
            file: self.file.to_path_buf(),
            member: self.member.to_string(),
            source,
        }
    }

    fn layer_err(&self, source: kiln_layer::LayerError) -> DebError {
        DebError::Layer {
            package: self.name.to_string(),
            source,
        }
    }

    fn refused(&self, path: &str, image_path: &str, refusal: Refusal) -> DebError {
        match refusal {
            Refusal::ThroughSymlink { link, owner } => DebError::ThroughSymlink {
                package: self.name.to_string(),
                file: self.file.to_path_buf(),
                path: path.to_string(),
                link,
                link_owner: owner.to_string(),
            },
            Refusal::ParentNotDir { parent, owner } => DebError::ParentNotDir {
                package: self.name.to_string(),
                file: self.file.to_path_buf(),
                path: path.to_string(),
                parent,
                parent_owner: owner.to_string(),
            },
            Refusal::Conflict { first } => DebError::Conflict {
                path: image_path.to_string(),
                first: first.to_string(),
                second: self.name.to_string(),
            },
        }
    }
}

/// Returns the normalized package path of a `data.tar` name (`./usr/bin/x` → `usr/bin/x`),
/// `None` for the root entry (`./`), or why the name is refused.
pub(crate) fn package_path(name: &str) -> Result<Option<String>, &'static str> {
    if name.starts_with('/') {
        return Err("absolute paths are not allowed in a package");
    }
    let mut out = String::with_capacity(name.len());
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("`..` components could escape the image root"),
            p if p.starts_with(".wh.") => {
                return Err(
                    "`.wh.` names are whiteout markers that would delete files from \
                            lower layers",
                );
            }
            p if p.contains('\0') => return Err("paths cannot contain NUL bytes"),
            p => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(p);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Extended header values that apply to the next entry.
#[derive(Default)]
struct Meta {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    uid: Option<u64>,
    gid: Option<u64>,
    size: Option<u64>,
    pending: bool,
}

/// Streams the entries of the decompressed `data.tar` in `reader` into `writer`, and
/// returns the setuid and setgid files it met (their bits stripped unless the rules keep
/// them).
pub(crate) fn transform(
    reader: impl Read,
    pkg: &Package<'_>,
    paths: &mut LayerPaths<'_>,
    writer: &mut LayerWriter,
) -> Result<Vec<SetuidFile>, DebError> {
    let mut setuid = Vec::new();
    let limit = pkg.byte_limit();
    let mut used: u64 = 0;
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| pkg.data_err(e))?.raw(true);
    let mut meta = Meta::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| pkg.data_err(e))?;
        let header = entry.header().clone();
        let size = entry.size();
        used = used.saturating_add(ENTRY_COST).saturating_add(size);
        if used > limit {
            // Checked before the entry's bytes are read: a bomb is refused without being
            // decompressed.
            return Err(DebError::ExpansionBomb {
                package: pkg.name.to_string(),
                file: pkg.file.to_path_buf(),
                installed_size: pkg.installed_size,
                limit,
                percent: pkg.rules.max_expansion_percent,
            });
        }
        let kind = header.entry_type();
        if matches!(
            kind,
            EntryType::XHeader
                | EntryType::XGlobalHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
            if size > META_MAX {
                return Err(pkg.unsafe_entry(
                    &name,
                    format!("a {size}-byte tar metadata record (at most {META_MAX} are allowed)"),
                ));
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut buf).map_err(|e| pkg.data_err(e))?;
            match kind {
                EntryType::XHeader => read_pax(&buf, &mut meta, pkg, &name)?,
                EntryType::GNULongName => meta.path = Some(until_nul(buf)),
                EntryType::GNULongLink => meta.link = Some(until_nul(buf)),
                // Global pax records (comments from `git archive`) apply to nothing kiln keeps.
                _ => continue,
            }
            meta.pending = true;
            continue;
        }
        let m = std::mem::take(&mut meta);
        let raw = m.path.unwrap_or_else(|| header.path_bytes().into_owned());
        let name = String::from_utf8(raw).map_err(|e| {
            pkg.unsafe_entry(
                &String::from_utf8_lossy(e.as_bytes()),
                "its name is not UTF-8",
            )
        })?;
        if m.size.is_some_and(|s| s != size) {
            return Err(pkg.unsafe_entry(
                &name,
                "its pax size differs from its header size (files of 8 GiB or more are not \
                 supported)",
            ));
        }
        let owner = Ownership::new(
            m.uid
                .map_or_else(|| header.uid(), Ok)
                .map_err(|e| pkg.data_err(e))?,
            m.gid
                .map_or_else(|| header.gid(), Ok)
                .map_err(|e| pkg.data_err(e))?,
        );
        let mut mode = header.mode().map_err(|e| pkg.data_err(e))?;
        let link = match m.link {
            Some(l) => Some(l),
            None => header.link_name_bytes().map(|l| l.into_owned()),
        };
        let entry_kind = match kind {
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::Hardlink,
            // Refused rather than dropped: no Debian package ships one (devices come from
            // the runtime), so a package that does is broken or hostile, and says so loudly.
            EntryType::Char | EntryType::Block => {
                return Err(pkg.unsafe_entry(&name, "device nodes do not belong in an image"));
            }
            EntryType::Fifo => {
                return Err(pkg.unsafe_entry(&name, "FIFOs do not belong in an image"));
            }
            EntryType::GNUSparse => {
                return Err(pkg.unsafe_entry(&name, "sparse files are not supported"));
            }
            other => {
                return Err(pkg.unsafe_entry(
                    &name,
                    format!(
                        "unsupported tar entry type `{}`",
                        other.as_byte().escape_ascii()
                    ),
                ));
            }
        };
        let Some(path) = package_path(&name).map_err(|r| pkg.unsafe_entry(&name, r))? else {
            if entry_kind == Kind::Dir {
                continue;
            }
            return Err(pkg.unsafe_entry(&name, "only a directory can be the root"));
        };
        let link = match (entry_kind, link) {
            (Kind::Symlink | Kind::Hardlink, Some(l)) if !l.is_empty() => Some(
                String::from_utf8(l)
                    .map_err(|_| pkg.unsafe_entry(&name, "its link target is not UTF-8"))?,
            ),
            (Kind::Symlink | Kind::Hardlink, _) => {
                return Err(pkg.unsafe_entry(&name, "a link without a target"));
            }
            _ => None,
        };
        let image_path = remap(&path);
        let target = match (entry_kind, link) {
            (Kind::Symlink, Some(target)) => {
                if is_root_link(&path, &target) {
                    // kiln writes the merged-usr root links itself.
                    continue;
                }
                Some(fix_target(&path, &target))
            }
            (Kind::Hardlink, Some(target)) => {
                let resolved = package_path(&target)
                    .ok()
                    .flatten()
                    .map(|t| remap(&t))
                    .filter(|t| {
                        paths
                            .in_layer(t)
                            .is_some_and(|c| c.kind == Kind::File && c.owner == pkg.owner)
                    });
                match resolved {
                    Some(t) => Some(t),
                    None => {
                        return Err(DebError::Hardlink {
                            package: pkg.name.to_string(),
                            file: pkg.file.to_path_buf(),
                            path: name,
                            target,
                        });
                    }
                }
            }
            _ => None,
        };
        let placement = paths
            .place(&image_path, entry_kind, &pkg.owner)
            .map_err(|r| pkg.refused(&name, &image_path, r))?;
        for parent in &placement.parents {
            writer
                .append_dir(parent, 0o755, Some(ROOT))
                .map_err(|e| pkg.layer_err(e))?;
        }
        if !placement.write {
            continue;
        }
        if matches!(entry_kind, Kind::File | Kind::Hardlink) && mode & SETID_BITS != 0 {
            let kept = pkg.rules.keep_setuid.contains(&image_path);
            setuid.push(SetuidFile {
                path: image_path.clone(),
                package: pkg.name.to_string(),
                mode,
                kept,
            });
            if !kept {
                mode &= !SETID_BITS;
            }
        }
        let mut source = ReadErrors::new(&mut entry);
        let written = match (entry_kind, target) {
            (Kind::File, _) => {
                writer.append_file(&image_path, mode, Some(owner), size, &mut source)
            }
            (Kind::Dir, _) => writer.append_dir(&image_path, mode, Some(owner)),
            (Kind::Symlink, Some(t)) => writer.append_symlink(&image_path, &t, Some(owner)),
            (Kind::Hardlink, Some(t)) => writer.append_hardlink(&image_path, &t, mode, Some(owner)),
            _ => unreachable!("links always have a target here"),
        };
        if let Some(e) = source.failed.take() {
            // The package's bytes failed (corrupt or cut-off compression), not the layer.
            return Err(pkg.data_err(e));
        }
        written.map_err(|e| pkg.layer_err(e))?;
    }
    if meta.pending {
        return Err(pkg.data_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the archive ends with an extended header that describes no entry",
        )));
    }
    Ok(setuid)
}

/// A reader that keeps the first error of the reader it wraps, so an error the layer
/// writer reports while copying an entry is told apart from one of the package's bytes.
struct ReadErrors<R> {
    inner: R,
    failed: Option<std::io::Error>,
}

impl<R: Read> ReadErrors<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            failed: None,
        }
    }
}

impl<R: Read> Read for ReadErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.failed.is_none() {
                self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// Applies the records of a pax extended header to `meta`.
fn read_pax(buf: &[u8], meta: &mut Meta, pkg: &Package<'_>, name: &str) -> Result<(), DebError> {
    let number = |v: &[u8]| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| pkg.unsafe_entry(name, "a pax record with a malformed number"))
    };
    for record in tar::PaxExtensions::new(buf) {
        let record = record.map_err(|e| pkg.data_err(e))?;
        let value = record.value_bytes();
        match record.key_bytes() {
            b"path" => meta.path = Some(value.to_vec()),
            b"linkpath" => meta.link = Some(value.to_vec()),
            b"uid" => meta.uid = Some(number(value)?),
            b"gid" => meta.gid = Some(number(value)?),
            b"size" => meta.size = Some(number(value)?),
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(pkg.unsafe_entry(name, "sparse files are not supported"));
            }
            // mtime, atime, ctime, uname, gname and xattrs are not kept.
            _ => {}
        }
    }
    Ok(())
}

/// Returns `buf` up to its first NUL (GNU long names are NUL-terminated).
fn until_nul(mut buf: Vec<u8>) -> Vec<u8> {
    if let Some(n) = buf.iter().position(|&b| b == 0) {
        buf.truncate(n);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_names() {
        assert_eq!(
            package_path("./usr/bin/x").unwrap().as_deref(),
            Some("usr/bin/x")
        );
        assert_eq!(package_path("./").unwrap(), None);
        assert_eq!(package_path(".").unwrap(), None);
        assert_eq!(
            package_path("usr//share/./doc/").unwrap().as_deref(),
            Some("usr/share/doc")
        );
        assert!(package_path("./usr/../../etc/shadow").is_err());
        assert!(package_path("/etc/passwd").is_err());
        assert!(package_path("./etc/.wh.passwd").is_err());
        assert!(package_path("./.wh..wh..opq").is_err());
    }

    #[test]
    fn the_byte_limit_grows_with_installed_size() {
        let rules = PackageRules::default();
        let pkg = |installed_size, rules| Package {
            name: "p",
            owner: Arc::from("p"),
            file: Path::new("p.deb"),
            member: "data.tar.xz",
            installed_size,
            rules,
        };
        assert_eq!(pkg(0, &rules).byte_limit(), 1 << 20);
        assert_eq!(pkg(1024, &rules).byte_limit(), (1 << 20) * 5 / 2);
        assert_eq!(pkg(u64::MAX, &rules).byte_limit(), u64::MAX);
        let tight = PackageRules {
            max_expansion_percent: 100,
            ..PackageRules::default()
        };
        assert_eq!(pkg(1024, &tight).byte_limit(), 2 << 20);
    }
}
