//! Helpers shared by the integration tests: building host trees and reading layers back.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use kiln_layer::{BlobStore, Compression, LayerBlob, Ownership, TarPolicy};
use kiln_oci::Digest;

/// The policy most tests use.
pub fn policy() -> TarPolicy {
    TarPolicy {
        mtime: 1_700_000_000,
        owner: Ownership::new(1000, 1000),
    }
}

/// One entry of a layer, as read back with the `tar` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub link: Option<String>,
    pub data: Vec<u8>,
    pub pax_keys: Vec<String>,
    pub devmajor: Vec<u8>,
}

/// Returns the uncompressed tar of a blob in `store`.
pub fn tar_bytes(store: &BlobStore, blob: &LayerBlob) -> Vec<u8> {
    let file = std::fs::File::open(store.path(&blob.digest)).unwrap();
    let mut out = Vec::new();
    match Compression::from_media_type(blob.media_type).unwrap() {
        Compression::Gzip => {
            flate2::read::GzDecoder::new(file)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            zstd::stream::Decoder::new(file)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
    }
    out
}

/// Reads every entry of an uncompressed tar.
pub fn entries(tar: &[u8]) -> Vec<ReadEntry> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let pax_keys = match e.pax_extensions().unwrap() {
            Some(exts) => exts
                .map(|x| x.unwrap().key().unwrap().to_string())
                .collect(),
            None => Vec::new(),
        };
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(ReadEntry {
            path: e.path().unwrap().to_str().unwrap().to_string(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            link: e
                .link_name()
                .unwrap()
                .map(|l| l.to_str().unwrap().to_string()),
            data,
            pax_keys,
            devmajor: h
                .as_ustar()
                .map(|u| u.dev_major.to_vec())
                .unwrap_or_default(),
        });
    }
    out
}

/// Returns the entry at `path`, panicking with the list of paths if it is missing.
pub fn find<'a>(entries: &'a [ReadEntry], path: &str) -> &'a ReadEntry {
    entries.iter().find(|e| e.path == path).unwrap_or_else(|| {
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        panic!("no entry `{path}` in {paths:?}")
    })
}

/// Writes `data` to `root/rel`, creating parent directories.
pub fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A long but valid path component sequence: `len` bytes in total.
pub fn long_path(len: usize) -> String {
    let mut s = String::new();
    while s.len() + 20 < len {
        s.push_str("long-directory-nam/");
    }
    s.push_str(&"f".repeat(len - s.len()));
    s
}

/// Builds the sample app tree the determinism and header tests use.
pub fn sample_tree(root: &Path) {
    write(root, "bin/app", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "bin/helper", b"\x7fELF fake", 0o4755);
    write(root, "etc/app.conf", b"key = value\n", 0o600);
    write(root, "etc/empty", b"", 0o644);
    write(root, "share/doc/README", &b"readme ".repeat(500), 0o664);
    write(root, &long_path(150), b"over 100 bytes", 0o644);
    write(root, &long_path(300), b"over 255 bytes", 0o644);
    std::os::unix::fs::symlink("../etc/app.conf", root.join("bin/conf")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", root.join("shadow")).unwrap();
    std::fs::hard_link(root.join("bin/app"), root.join("bin/app-again")).unwrap();
    std::fs::create_dir_all(root.join("var/empty-dir")).unwrap();
}

/// Copies `src` to `dst` with `cp -R` under `umask` (a real umask, without unsafe code).
pub fn copy_with_umask(src: &Path, dst: &Path, umask: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && cp -R --preserve=links \"$0\" \"$1\""
        ))
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sets the mtime of everything under `root` (symlinks excluded) to `secs`.
pub fn set_mtimes(root: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if e.file_type().is_symlink() {
            continue;
        }
        let f = std::fs::File::open(e.path()).unwrap();
        f.set_modified(t).unwrap();
    }
}

/// Returns whether `bin` can be run.
pub fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Returns the sha256 of a file.
pub fn file_digest(path: &Path) -> Digest {
    Digest::of(&std::fs::read(path).unwrap())
}

mod readers;
pub use readers::*;

mod raw_tar;
pub use raw_tar::*;
