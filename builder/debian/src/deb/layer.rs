//! [`write_packages_layer`]: a group of `.deb` files → one layer, with their `status.d`
//! entries; [`write_merged_usr_layer`]: the root symlinks of a merged-usr image.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_layer::{BlobStore, Compression, LayerBlob, LayerWriter, Ownership, TarPolicy};

use crate::deb::data::{Package, transform};
use crate::deb::decompress::MemberCompression;
use crate::deb::paths::{Kind, LayerPaths, Refusal};
use crate::deb::rules::{PackageRules, PackagesLayer, SetuidFile, SkippedScripts};
use crate::deb::status::{is_package_name, md5sums_path, status_path, status_text};
use crate::deb::{ArReader, ControlFile, DebError, PathTracker, merged_usr_links};
use crate::lockfile::LockedPackage;

/// The owner of the files kiln writes itself.
const ROOT: Ownership = Ownership { uid: 0, gid: 0 };

/// What the lockfile says about a package, checked against the `.deb` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebInfo {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Installed-Size` in KiB, from the signed `Packages` index: the bound on what the
    /// package may expand to.
    pub installed_size: u64,
}

impl From<&LockedPackage> for DebInfo {
    fn from(p: &LockedPackage) -> Self {
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
            installed_size: p.installed_size,
        }
    }
}

/// Writes the packages `debs` (each with its `.deb` file), in the given order, into one
/// layer of `store`, followed by their `var/lib/dpkg/status.d` entries, and records their
/// paths in `seen`.
///
/// `data.tar` is transformed tar→tar (see [`crate::deb`]): nothing is extracted to disk.
/// Owners and modes are the package's, except setuid and setgid bits of files, which only
/// the paths `rules` names keep; times are the policy's. Maintainer scripts are never run;
/// the result lists them, and every setuid or setgid file met. The layer depends only on
/// `debs`, `rules` and `policy`, not on `seen`, which only refuses conflicts with earlier
/// layers. On error no blob is left under a final name and `seen` is unchanged.
pub fn write_packages_layer(
    debs: &[(DebInfo, PathBuf)],
    seen: &mut PathTracker,
    rules: &PackageRules,
    policy: &TarPolicy,
    compression: Compression,
    store: &BlobStore,
) -> Result<PackagesLayer, DebError> {
    for (info, _) in debs {
        if !is_package_name(&info.name) {
            return Err(DebError::BadPackageName {
                name: info.name.clone(),
            });
        }
    }
    let layer_err = |package: &str| {
        let package = package.to_string();
        move |source| DebError::Layer { package, source }
    };
    let first = debs
        .first()
        .map_or("(empty layer)", |(i, _)| i.name.as_str());
    let mut writer = LayerWriter::new(policy, compression, store).map_err(layer_err(first))?;
    let mut paths = LayerPaths::new(seen);
    let mut controls = Vec::with_capacity(debs.len());
    let mut setuid = Vec::new();
    for (info, file) in debs {
        let (control, found) = write_package(info, file, rules, &mut paths, &mut writer)?;
        controls.push(control);
        setuid.extend(found);
    }
    for ((info, _), control) in debs.iter().zip(&controls) {
        let owner: Arc<str> = Arc::from(format!("{} (status.d)", info.name));
        let text = status_text(control);
        let mut files = vec![(status_path(&info.name), text.into_bytes())];
        if let Some(md5sums) = &control.md5sums {
            files.push((md5sums_path(&info.name), md5sums.clone()));
        }
        for (path, bytes) in files {
            let placement = paths
                .place(&path, Kind::File, &owner)
                .map_err(|r| conflict(&path, r, &owner))?;
            for parent in &placement.parents {
                writer
                    .append_dir(parent, 0o755, Some(ROOT))
                    .map_err(layer_err(&info.name))?;
            }
            writer
                .append_file(&path, 0o644, Some(ROOT), bytes.len() as u64, &bytes[..])
                .map_err(layer_err(&info.name))?;
        }
    }
    let blob = writer.finish().map_err(layer_err(first))?;
    let claims = paths.into_claims();
    seen.merge(claims);
    let skipped_scripts = controls
        .into_iter()
        .filter(|c| !c.maintainer_scripts.is_empty())
        .map(|c| SkippedScripts {
            package: c.package,
            scripts: c.maintainer_scripts,
        })
        .collect();
    Ok(PackagesLayer {
        blob,
        setuid,
        skipped_scripts,
    })
}

/// Returns the conflict error for a path kiln writes itself (status files, root links).
fn conflict(path: &str, refusal: Refusal, second: &str) -> DebError {
    let first = match refusal {
        Refusal::Conflict { first } => first,
        Refusal::ThroughSymlink { owner, .. } | Refusal::ParentNotDir { owner, .. } => owner,
    };
    DebError::Conflict {
        path: path.to_string(),
        first: first.to_string(),
        second: second.to_string(),
    }
}

/// Writes one layer holding the merged-usr root symlinks of `arch`
/// ([`merged_usr_links`]) and the `usr/...` directories they point to, and records them
/// in `seen` (owned by `merged-usr`), so that no later package can ship a path through
/// them. Put it first in the image.
pub fn write_merged_usr_layer(
    arch: &str,
    seen: &mut PathTracker,
    policy: &TarPolicy,
    compression: Compression,
    store: &BlobStore,
) -> Result<LayerBlob, DebError> {
    let owner: Arc<str> = Arc::from("merged-usr");
    let layer_err = |source| DebError::Layer {
        package: owner.to_string(),
        source,
    };
    let mut writer = LayerWriter::new(policy, compression, store).map_err(layer_err)?;
    let mut paths = LayerPaths::new(seen);
    let links = merged_usr_links(arch);
    let mut entries: Vec<(&str, Kind, Option<&str>)> = Vec::new();
    entries.extend(links.iter().map(|l| (l.target, Kind::Dir, None)));
    entries.extend(
        links
            .iter()
            .map(|l| (l.path, Kind::Symlink, Some(l.target))),
    );
    for (path, kind, target) in entries {
        let placement = paths
            .place(path, kind, &owner)
            .map_err(|r| conflict(path, r, &owner))?;
        for parent in &placement.parents {
            writer
                .append_dir(parent, 0o755, Some(ROOT))
                .map_err(layer_err)?;
        }
        if placement.write {
            match target {
                Some(t) => writer.append_symlink(path, t, Some(ROOT)),
                None => writer.append_dir(path, 0o755, Some(ROOT)),
            }
            .map_err(layer_err)?;
        }
    }
    let blob = writer.finish().map_err(layer_err)?;
    let claims = paths.into_claims();
    seen.merge(claims);
    Ok(blob)
}

/// Reads the `.deb` at `file` (`debian-binary`, `control.tar.*`, `data.tar.*`, in dpkg's
/// order), checks that it is the package `info` names, and streams its data into
/// `writer`. Returns its control file and its setuid and setgid files.
fn write_package(
    info: &DebInfo,
    file: &Path,
    rules: &PackageRules,
    paths: &mut LayerPaths<'_>,
    writer: &mut LayerWriter,
) -> Result<(ControlFile, Vec<SetuidFile>), DebError> {
    let (mut ar, control) = open_deb(file)?;
    if control.package != info.name || control.version != info.version {
        return Err(DebError::WrongPackage {
            file: file.to_path_buf(),
            expected: format!("{} {}", info.name, info.version),
            found: format!("{} {}", control.package, control.version),
        });
    }
    let (member, compression) = next_tar(&mut ar, "data.tar")?;
    let pkg = Package {
        name: &info.name,
        owner: Arc::from(info.name.as_str()),
        file,
        member: &member.name,
        installed_size: info.installed_size,
        rules,
    };
    let decoded = compression
        .decoder(ar.data(&member)?)
        .map_err(|source| DebError::Data {
            package: info.name.clone(),
            file: file.to_path_buf(),
            member: member.name.clone(),
            source,
        })?;
    let setuid = transform(decoded, &pkg, paths, writer)?;
    Ok((control, setuid))
}

/// Returns the control file of the `.deb` at `file`.
pub fn read_control(file: &Path) -> Result<ControlFile, DebError> {
    Ok(open_deb(file)?.1)
}

/// Opens the `.deb` at `file` and reads it up to its `control.tar`: `debian-binary`
/// first, then `control.tar.*`, skipping `_`-prefixed members as deb(5) says.
fn open_deb(file: &Path) -> Result<(ArReader<std::fs::File>, ControlFile), DebError> {
    let layout = |reason: String| DebError::Layout {
        file: file.to_path_buf(),
        reason,
    };
    let mut ar = ArReader::open(file)?;
    let first = ar
        .next_member()?
        .ok_or_else(|| layout("the archive is empty".into()))?;
    if first.name != "debian-binary" {
        return Err(layout(format!(
            "the first member is `{}`, not `debian-binary`",
            first.name
        )));
    }
    let version = ar.read_small(&first, 64)?;
    if !version.starts_with(b"2.") || version.last() != Some(&b'\n') {
        return Err(layout(format!(
            "unsupported format version `{}` (expected 2.x)",
            String::from_utf8_lossy(&version).trim()
        )));
    }
    let (member, compression) = next_tar(&mut ar, "control.tar")?;
    let control = ControlFile::read(ar.data(&member)?, compression, file)?;
    Ok((ar, control))
}

/// Returns the next member, which must be `<stem>` or `<stem>.{gz,xz,zst}`, skipping
/// `_`-prefixed ones.
fn next_tar<R: std::io::Read + std::io::Seek>(
    ar: &mut ArReader<R>,
    stem: &str,
) -> Result<(crate::deb::ArMember, MemberCompression), DebError> {
    let file = ar.file().to_path_buf();
    let layout = |reason: String| DebError::Layout {
        file: file.clone(),
        reason,
    };
    loop {
        let Some(member) = ar.next_member()? else {
            return Err(layout(format!("there is no `{stem}` member")));
        };
        if member.name.starts_with('_') {
            continue;
        }
        return match MemberCompression::of(&member.name, stem) {
            Some(Ok(c)) => Ok((member, c)),
            Some(Err(ext)) => Err(layout(format!(
                "member `{}` uses `{ext}` compression; kiln reads none, gzip, xz and zstd",
                member.name
            ))),
            None => Err(layout(format!(
                "expected a `{stem}` member, found `{}`",
                member.name
            ))),
        };
    }
}
