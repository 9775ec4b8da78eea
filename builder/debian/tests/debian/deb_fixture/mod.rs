//! Small `.deb` files built in memory for the `deb_*` tests, hostile ones included: tar
//! headers are written by hand where the `tar` crate would refuse the name.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kiln_debian::deb::{DebInfo, PackageRules};
use kiln_layer::{BlobStore, Compression, LayerBlob, Ownership, TarPolicy};

/// The policy the tests write layers with.
pub fn policy() -> TarPolicy {
    TarPolicy {
        mtime: 1_700_000_000,
        owner: Ownership::new(0, 0),
    }
}

/// The default package rules (setuid bits stripped, 150 % expansion bound).
pub fn rules() -> PackageRules {
    PackageRules::default()
}

/// The default rules, keeping the setuid bits of the in-image `paths`.
pub fn rules_keeping(paths: &[&str]) -> PackageRules {
    PackageRules {
        keep_setuid: paths.iter().map(|p| p.to_string()).collect(),
        ..PackageRules::default()
    }
}

/// What a `data.tar` entry is.
#[derive(Clone, Debug)]
pub enum Body {
    Dir,
    File(Vec<u8>),
    /// A file of this many zero bytes, streamed.
    Zeros(u64),
    Symlink(String),
    Hardlink(String),
    CharDevice,
    BlockDevice,
    Fifo,
}

/// One `data.tar` entry, its name written exactly as given.
#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub body: Body,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

pub fn dir(name: &str) -> Item {
    item(name, Body::Dir, 0o755)
}

pub fn file(name: &str, data: &[u8]) -> Item {
    item(name, Body::File(data.to_vec()), 0o644)
}

pub fn symlink(name: &str, target: &str) -> Item {
    item(name, Body::Symlink(target.to_string()), 0o777)
}

pub fn hardlink(name: &str, target: &str) -> Item {
    item(name, Body::Hardlink(target.to_string()), 0o644)
}

pub fn item(name: &str, body: Body, mode: u32) -> Item {
    Item {
        name: name.to_string(),
        body,
        mode,
        uid: 0,
        gid: 0,
    }
}

/// Returns a GNU tar of `items`, names and link targets written verbatim (GNU long-name
/// records for names over 100 bytes, like dpkg-deb).
pub fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_gnu();
        let (kind, size) = match &it.body {
            Body::Dir => (tar::EntryType::Directory, 0),
            Body::File(d) => (tar::EntryType::Regular, d.len() as u64),
            Body::Zeros(n) => (tar::EntryType::Regular, *n),
            Body::Symlink(_) => (tar::EntryType::Symlink, 0),
            Body::Hardlink(_) => (tar::EntryType::Link, 0),
            Body::CharDevice => (tar::EntryType::Char, 0),
            Body::BlockDevice => (tar::EntryType::Block, 0),
            Body::Fifo => (tar::EntryType::Fifo, 0),
        };
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(it.mode);
        h.set_uid(it.uid);
        h.set_gid(it.gid);
        h.set_mtime(1_600_000_000);
        h.set_username("builder").unwrap();
        h.set_groupname("builder").unwrap();
        if matches!(it.body, Body::CharDevice | Body::BlockDevice) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        if let Body::Symlink(t) | Body::Hardlink(t) = &it.body {
            assert!(t.len() < 100, "long link targets are not needed here");
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        if it.name.len() > 100 {
            long_name(&mut b, &it.name);
        }
        let n = it.name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&it.name.as_bytes()[..n]);
        h.set_cksum();
        match &it.body {
            Body::File(d) => b.append(&h, &d[..]).unwrap(),
            Body::Zeros(n) => b.append(&h, io::repeat(0).take(*n)).unwrap(),
            _ => b.append(&h, io::empty()).unwrap(),
        }
    }
    b.into_inner().unwrap()
}

fn long_name(b: &mut tar::Builder<Vec<u8>>, name: &str) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    let mut data = name.as_bytes().to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
}

/// How a tar member of the `.deb` is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    None,
    Gz,
    Xz,
    Zst,
}

impl Comp {
    pub fn ext(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Gz => ".gz",
            Self::Xz => ".xz",
            Self::Zst => ".zst",
        }
    }

    pub fn compress(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::None => bytes.to_vec(),
            Self::Gz => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            Self::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            Self::Zst => zstd::encode_all(bytes, 3).unwrap(),
        }
    }
}

/// Returns an ar archive of `members`.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A package to build.
#[derive(Clone, Debug)]
pub struct Deb {
    pub name: String,
    pub version: String,
    /// `Installed-Size` in KiB, in the control file and the returned [`DebInfo`].
    pub installed_size: u64,
    pub items: Vec<Item>,
    pub data: Comp,
    pub control: Comp,
    pub md5sums: Option<String>,
}

impl Deb {
    pub fn new(name: &str, items: Vec<Item>) -> Self {
        Self {
            name: name.to_string(),
            version: "1.0-1".to_string(),
            installed_size: 64,
            items,
            data: Comp::Xz,
            control: Comp::Gz,
            md5sums: None,
        }
    }

    pub fn control_text(&self) -> String {
        format!(
            "Package: {}\nSource: {}-src\nVersion: {}\nArchitecture: amd64\n\
             Maintainer: Test <test@example.org>\nInstalled-Size: {}\nDepends: libc6 (>= 2.36)\n\
             Section: misc\nPriority: optional\nDescription: test package {}\n \
             A package built by the kiln tests.\n .\n Second paragraph.\n",
            self.name, self.name, self.version, self.installed_size, self.name
        )
    }

    /// Returns the `.deb` bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let data = self.data.compress(&tar_of(&self.items));
        self.bytes_with_data(&format!("data.tar{}", self.data.ext()), &data)
    }

    /// Returns the compressed `control.tar` member: `control`, `md5sums` when set, and a
    /// `postinst` that fails (kiln must never run it).
    pub fn control_member(&self) -> (String, Vec<u8>) {
        let mut control = vec![dir("./"), file("./control", self.control_text().as_bytes())];
        if let Some(m) = &self.md5sums {
            control.push(file("./md5sums", m.as_bytes()));
        }
        control.push(item(
            "./postinst",
            Body::File(b"#!/bin/sh\nexit 1\n".to_vec()),
            0o755,
        ));
        (
            format!("control.tar{}", self.control.ext()),
            self.control.compress(&tar_of(&control)),
        )
    }

    /// Returns the `.deb` bytes with `data` (as is) as the data member `data_name`.
    pub fn bytes_with_data(&self, data_name: &str, data: &[u8]) -> Vec<u8> {
        let (control_name, control) = self.control_member();
        ar(&[
            ("debian-binary", b"2.0\n"),
            (&control_name, &control),
            (data_name, data),
        ])
    }

    /// Writes `bytes` as this package's `.deb` into `dir` and returns its lockfile view and
    /// path.
    pub fn write_bytes(&self, dir: &Path, bytes: &[u8]) -> (DebInfo, PathBuf) {
        let path = dir.join(format!("{}_{}_amd64.deb", self.name, self.version));
        std::fs::write(&path, bytes).unwrap();
        (self.info(), path)
    }

    /// Writes the `.deb` into `dir` and returns its lockfile view and path.
    pub fn write(&self, dir: &Path) -> (DebInfo, PathBuf) {
        let path = dir.join(format!("{}_{}_amd64.deb", self.name, self.version));
        std::fs::write(&path, self.bytes()).unwrap();
        (self.info(), path)
    }

    pub fn info(&self) -> DebInfo {
        DebInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            installed_size: self.installed_size,
        }
    }
}

/// One entry of a layer as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// Reads every entry of a layer blob back.
pub fn read_layer(store: &BlobStore, blob: &LayerBlob) -> Vec<LayerEntry> {
    let file = std::fs::File::open(store.path(&blob.digest)).unwrap();
    let mut tar = Vec::new();
    match Compression::from_media_type(blob.media_type).unwrap() {
        Compression::Gzip => flate2::read::GzDecoder::new(file)
            .read_to_end(&mut tar)
            .map(drop)
            .unwrap(),
        Compression::Zstd => zstd::stream::Decoder::new(file)
            .unwrap()
            .read_to_end(&mut tar)
            .map(drop)
            .unwrap(),
    }
    assert_eq!(kiln_oci::Digest::of(&tar), blob.diff_id, "diffID");
    let mut out = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(LayerEntry {
            path: e.path().unwrap().to_str().unwrap().to_string(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            link: e
                .link_name()
                .unwrap()
                .map(|l| l.to_str().unwrap().to_string()),
            data,
        });
    }
    out
}

/// Returns the entry at `path`, panicking with the list of paths if it is missing.
pub fn find<'a>(entries: &'a [LayerEntry], path: &str) -> &'a LayerEntry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| {
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        panic!("no entry `{path}` in {paths:?}")
    })
}

/// Returns the names in the store's blob directory (temporary files included).
pub fn blob_dir_names(store: &BlobStore) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}
