//! Go modules from the build info the Go linker embeds in every binary
//! (<https://pkg.go.dev/debug/buildinfo>; layout from `src/debug/buildinfo/buildinfo.go`).
//!
//! The blob starts with `\xff Go buildinf:` at a 16-byte-aligned offset. Since Go 1.18
//! flag bit 0x2 says the Go version and the module info follow the 32-byte header as
//! uvarint-length-prefixed strings; older binaries point into the data segment instead,
//! which would need an ELF parser, so they yield nothing.

use std::io::{self, Read};

use super::package::{Ecosystem, Package};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const ALIGN: usize = 16;
const HEADER: usize = 32;
const FLAG_INLINE_STRINGS: u8 = 0x2;
const CHUNK: u64 = 1 << 20;
/// A string longer than this behind the magic means a false match, not a real binary:
/// even very large programs record well under a MiB of module info.
const MAX_STRING: u64 = 16 << 20;

/// The two strings of a Go build info blob.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BuildInfo {
    /// `runtime.Version()` of the toolchain, e.g. `go1.26.8`.
    pub go_version: String,
    /// `runtime/debug.BuildInfo.String()` wrapped in 16-byte sentinels.
    pub modinfo: Vec<u8>,
}

/// Scans `r`, a whole file from offset 0, for Go build info, holding about a MiB at a time.
///
/// A magic that is not followed by a plausible header (the `debug/buildinfo` package
/// itself carries the magic as a constant) is skipped and the scan goes on.
pub(crate) fn scan(mut r: impl Read) -> io::Result<Option<BuildInfo>> {
    let mut buf = Vec::new();
    let mut eof = false;
    loop {
        // `buf[0]` always sits at an aligned file offset: only multiples of ALIGN are drained.
        let mut i = 0;
        while i + MAGIC.len() <= buf.len() {
            if buf[i..].starts_with(MAGIC) {
                loop {
                    match parse(&buf[i..]) {
                        Parsed::Found(info) => return Ok(Some(info)),
                        Parsed::Invalid => break,
                        Parsed::NeedMore if eof => break,
                        Parsed::NeedMore => eof = fill(&mut r, &mut buf)? == 0,
                    }
                }
            }
            i += ALIGN;
        }
        if eof {
            return Ok(None);
        }
        // Keep every aligned position not yet checked, and keep `buf[0]` aligned.
        buf.drain(..i.min(buf.len() / ALIGN * ALIGN));
        eof = fill(&mut r, &mut buf)? == 0;
    }
}

fn fill(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    r.by_ref().take(CHUNK).read_to_end(buf)
}

enum Parsed {
    Found(BuildInfo),
    NeedMore,
    Invalid,
}

fn parse(blob: &[u8]) -> Parsed {
    if blob.len() < HEADER {
        return Parsed::NeedMore;
    }
    let (ptr_size, flags) = (blob[14], blob[15]);
    if !matches!(ptr_size, 4 | 8) || flags & FLAG_INLINE_STRINGS == 0 {
        return Parsed::Invalid;
    }
    let (version, rest) = match read_string(&blob[HEADER..]) {
        Ok(v) => v,
        Err(p) => return p,
    };
    let Ok(version) = std::str::from_utf8(version) else {
        return Parsed::Invalid;
    };
    if !version.starts_with("go") {
        return Parsed::Invalid;
    }
    match read_string(rest) {
        Ok((modinfo, _)) => Parsed::Found(BuildInfo {
            go_version: version.to_string(),
            modinfo: modinfo.to_vec(),
        }),
        Err(p) => p,
    }
}

/// Reads a uvarint length and that many bytes (encoding/binary's `Uvarint`).
fn read_string(b: &[u8]) -> Result<(&[u8], &[u8]), Parsed> {
    let mut len: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            if len > MAX_STRING {
                return Err(Parsed::Invalid);
            }
            let start = i + 1;
            let end = start + len as usize;
            return match b.get(start..end) {
                Some(s) => Ok((s, &b[end..])),
                None => Err(Parsed::NeedMore),
            };
        }
    }
    if b.len() >= 10 {
        Err(Parsed::Invalid)
    } else {
        Err(Parsed::NeedMore)
    }
}

/// Returns the main module, every dependency (as replaced) and `stdlib` recorded in `info`.
pub(crate) fn packages(info: &BuildInfo, location: &str) -> Vec<Package> {
    let mut modules: Vec<(String, String)> = Vec::new();
    for line in strip_sentinels(&info.modinfo).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        match field(0) {
            "mod" | "dep" if !field(1).is_empty() => {
                modules.push((field(1).to_string(), field(2).to_string()));
            }
            // A replacement applies to the module line just before it. A local directory
            // (`./greet`, recorded with version `(devel)` or none) is no module of its own,
            // so the original path stays.
            "=>" => {
                if let Some(last) = modules.last_mut() {
                    let (path, version) = (field(1), field(2));
                    let local = path.is_empty()
                        || path.starts_with(['.', '/'])
                        || version.is_empty()
                        || version == "(devel)";
                    if local {
                        last.1 = "(devel)".to_string();
                    } else {
                        *last = (path.to_string(), version.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let go = info.go_version.split_whitespace().next().unwrap_or("");
    modules.push(("stdlib".to_string(), go.to_string()));
    modules
        .into_iter()
        .map(|(path, version)| {
            let version = if version.is_empty() {
                "(devel)".to_string()
            } else {
                version
            };
            Package::new(Ecosystem::Golang, None, path, version, location)
        })
        .collect()
}

/// The linker wraps the module info in 16 random-looking bytes on each side so it can be
/// found in binaries; Go's own reader drops them only when the shape is right.
fn strip_sentinels(modinfo: &[u8]) -> String {
    let n = modinfo.len();
    if n >= 33 && modinfo[n - 17] == b'\n' {
        String::from_utf8_lossy(&modinfo[16..n - 16]).into_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    const START: &[u8; 16] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8; 16] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn uvarint(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// An ELF-looking file with a build info blob at `offset`, after a decoy magic.
    pub(crate) fn binary(offset: usize, flags: u8, modinfo: &str) -> Vec<u8> {
        let mut file = b"\x7fELF\x02\x01\x01".to_vec();
        file.resize(32, 0);
        // `debug/buildinfo` keeps the magic as a constant; the header after it is junk.
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&[0x41, 0x41]);
        file.resize(offset, 0xAA);
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&[8, flags]);
        file.resize(offset + HEADER, 0);
        uvarint(&mut file, 8);
        file.extend_from_slice(b"go1.26.8");
        let wrapped = [START.as_slice(), modinfo.as_bytes(), END.as_slice()].concat();
        uvarint(&mut file, wrapped.len());
        file.extend_from_slice(&wrapped);
        file.extend_from_slice(&[0xCC; 100]);
        file
    }

    pub(crate) const MODINFO: &str = "path\texample.com/app\n\
        mod\texample.com/app\t(devel)\t\n\
        dep\tgithub.com/google/uuid\tv1.6.0\th1:abc=\n\
        dep\tgolang.org/x/text\tv0.3.0\n\
        =>\tgithub.com/fork/text\tv0.14.0\th1:def=\n\
        dep\texample.com/local\tv1.0.0\n\
        =>\t../local\t(devel)\t\n\
        dep\texample.com/bare\tv0.1.0\n\
        =>\t/src/bare\t\t\n\
        build\t-compiler=gc\n\
        build\tGOOS=linux\n";

    fn names(pkgs: &[Package]) -> Vec<(String, String)> {
        pkgs.iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }

    #[test]
    fn finds_modules_replacements_and_stdlib() {
        for offset in [4096, CHUNK as usize - ALIGN, 3 * CHUNK as usize + 48] {
            let info = scan(binary(offset, 0x2, MODINFO).as_slice())
                .unwrap()
                .unwrap_or_else(|| panic!("no build info at {offset}"));
            assert_eq!(info.go_version, "go1.26.8");
            let pkgs = packages(&info, "/workspace/app");
            assert_eq!(
                names(&pkgs),
                [
                    ("example.com/app", "(devel)"),
                    ("github.com/google/uuid", "v1.6.0"),
                    ("github.com/fork/text", "v0.14.0"),
                    ("example.com/local", "(devel)"),
                    ("example.com/bare", "(devel)"),
                    ("stdlib", "go1.26.8"),
                ]
                .map(|(n, v)| (n.to_string(), v.to_string()))
            );
            assert!(pkgs.iter().all(|p| p.location == "/workspace/app"));
            assert!(pkgs.iter().all(|p| p.ecosystem == Ecosystem::Golang));
        }
    }

    #[test]
    fn unaligned_old_truncated_or_foreign_files_yield_nothing() {
        // Pre-1.18 layout: no inline strings.
        assert_eq!(scan(binary(4096, 0x0, MODINFO).as_slice()).unwrap(), None);
        // Misaligned magic is not build info.
        let mut shifted = vec![0u8; 8];
        shifted.extend_from_slice(&binary(4096, 0x2, MODINFO)[..]);
        shifted.drain(..4);
        assert_eq!(scan(shifted.as_slice()).unwrap(), None);
        let full = binary(256, 0x2, MODINFO);
        for cut in 0..full.len() - 100 {
            let got = scan(&full[..cut]).unwrap();
            assert_eq!(got, None, "truncated at {cut}");
        }
        assert_eq!(scan(&b"\x7fELF"[..]).unwrap(), None);
        let mut huge_len = binary(64, 0x2, "");
        huge_len.truncate(64 + HEADER);
        huge_len.extend_from_slice(&[0xff; 12]);
        assert_eq!(scan(huge_len.as_slice()).unwrap(), None);
    }

    #[test]
    fn modinfo_without_sentinels_still_yields_stdlib() {
        let info = BuildInfo {
            go_version: "go1.22.1 X:boringcrypto".into(),
            modinfo: b"mod\tx\tv1\n".to_vec(),
        };
        assert_eq!(
            names(&packages(&info, "/x")),
            [("stdlib".to_string(), "go1.22.1".to_string())]
        );
    }

    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn go(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new("go")
            .args(args)
            .current_dir(dir)
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("CGO_ENABLED", "0")
            .output()
            .expect("running go")
    }

    #[test]
    fn reads_a_binary_built_by_the_real_go_toolchain() {
        if Command::new("go").arg("version").output().is_err() {
            return;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = TempDir(
            std::env::temp_dir().join(format!("kiln-sbom-go-{}-{nanos}", std::process::id())),
        );
        let write = |path: &str, text: &str| {
            let path = dir.0.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "go.mod",
            "module example.com/kilntest\n\ngo 1.22\n\n\
             require example.com/greet v0.0.0\n\n\
             replace example.com/greet => ./greet\n",
        );
        write(
            "main.go",
            "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n",
        );
        write("greet/go.mod", "module example.com/greet\n\ngo 1.22\n");
        write(
            "greet/greet.go",
            "package greet\n\nfunc Hello() string { return \"hi\" }\n",
        );
        let version = go(&dir.0, &["env", "GOVERSION"]);
        let version = String::from_utf8(version.stdout)
            .unwrap()
            .trim()
            .to_string();
        let built = go(&dir.0, &["build", "-o", "app", "."]);
        assert!(
            built.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let file = std::fs::File::open(dir.0.join("app")).unwrap();
        let info = scan(std::io::BufReader::new(file))
            .unwrap()
            .expect("build info");
        let pkgs = packages(&info, "/workspace/app");
        let got = names(&pkgs);
        assert!(
            got.contains(&("stdlib".into(), version.clone())),
            "{got:?} vs {version}"
        );
        assert!(
            got.iter().any(|(n, _)| n == "example.com/kilntest"),
            "main module missing: {got:?}"
        );
        assert!(
            got.contains(&("example.com/greet".into(), "(devel)".into())),
            "locally replaced module missing: {got:?}"
        );
    }
}
