//! Tars written by hand, byte by byte, for fixtures no honest writer produces: absolute
//! names, `..`, links out, duplicates, pax headers that contradict ustar ones.

use std::io::Write;

/// One ustar header block. Nothing is checked: fixtures may lie (the size field is the
/// caller's, whatever the content).
pub fn ustar(name: &[u8], typeflag: u8, size_field: u64, link: &[u8], mode: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    b[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    b[108..116].copy_from_slice(b"0000000\0");
    b[116..124].copy_from_slice(b"0000000\0");
    b[124..136].copy_from_slice(format!("{size_field:011o}\0").as_bytes());
    b[136..148].copy_from_slice(b"00000000000\0");
    b[156] = typeflag;
    b[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    b[257..265].copy_from_slice(b"ustar\x0000");
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// A pax extended header with `records`, and its content blocks.
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        write!(body, "{len} {k}=").unwrap();
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let mut out = ustar(b"././@PaxHeader", b'x', body.len() as u64, b"", 0o644).to_vec();
    out.extend(block(&body));
    out
}

/// `data` padded to whole blocks (nothing for no data).
pub fn block(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// An entry of [`raw_tar`].
pub struct Raw<'a> {
    pub name: &'a str,
    pub kind: u8,
    pub link: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
}

pub fn dir(name: &str) -> Raw<'_> {
    Raw {
        name,
        kind: b'5',
        link: "",
        mode: 0o755,
        data: b"",
    }
}

pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        kind: b'0',
        link: "",
        mode: 0o644,
        data,
    }
}

pub fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        kind: b'2',
        link: target,
        mode: 0o777,
        data: b"",
    }
}

pub fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        kind: b'1',
        link: target,
        mode: 0o644,
        data: b"",
    }
}

/// A whole uncompressed tar of `entries`, with pax records for names and link targets
/// over 100 bytes, ended by two zero blocks.
pub fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut records: Vec<(&str, &[u8])> = Vec::new();
        if e.link.len() > 100 {
            records.push(("linkpath", e.link.as_bytes()));
        }
        if e.name.len() > 100 {
            records.push(("path", e.name.as_bytes()));
        }
        if !records.is_empty() {
            out.extend(pax(&records));
        }
        out.extend_from_slice(&ustar(
            e.name.as_bytes(),
            e.kind,
            e.data.len() as u64,
            e.link.as_bytes(),
            e.mode,
        ));
        out.extend(block(e.data));
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}
