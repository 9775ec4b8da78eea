//! Other tar readers, to check kiln's layers the way the rest of the world reads them:
//! kiln's own reader (the `tar` crate), Go's `archive/tar` (the reader of containerd,
//! go-containerregistry, podman) through a tiny stdlib-only program built once per test
//! run, and GNU tar.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use kiln_oci::Digest;

/// One entry as a reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The name, raw bytes (directories end with `/`).
    pub name: Vec<u8>,
    /// The tar type flag (`b'0'`, `b'5'`, …).
    pub kind: u8,
    /// The content size.
    pub size: u64,
    /// The sha256 of the content.
    pub sha: String,
    /// The link target, raw bytes.
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
}

/// Reads `tar` with kiln's reader (which applies pax `path`, `linkpath`, `size`, `uid` and
/// `gid` itself, and leaves `mtime` to its caller).
pub fn kiln_reader(tar: &[u8]) -> Result<Vec<Seen>, String> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let h = e.header().clone();
        let pax_mtime = e
            .pax_extensions()
            .map_err(|e| e.to_string())?
            .and_then(|exts| {
                exts.filter_map(Result::ok)
                    .find(|x| x.key() == Ok("mtime"))
                    .and_then(|x| x.value().ok()?.parse::<i64>().ok())
            });
        let name = e.path_bytes().into_owned();
        let link = e
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push(Seen {
            name,
            kind: h.entry_type().as_byte(),
            size: data.len() as u64,
            sha: Digest::of(&data).hex().to_string(),
            link,
            mode: h.mode().map_err(|e| e.to_string())?,
            uid: h.uid().map_err(|e| e.to_string())?,
            gid: h.gid().map_err(|e| e.to_string())?,
            mtime: match pax_mtime {
                Some(t) => t,
                None => h.mtime().map_err(|e| e.to_string())? as i64,
            },
        });
    }
    Ok(out)
}

/// A Go program that lists a tar from stdin, one line per entry, and fails on a path seen
/// twice ("duplicate file path", as go-containerregistry's `validate.Layer` does).
const GO_LISTER: &str = r#"package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	r := tar.NewReader(os.Stdin)
	seen := map[string]bool{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "reading:", err)
			os.Exit(1)
		}
		clean := strings.TrimSuffix(h.Name, "/")
		if seen[clean] {
			fmt.Fprintln(os.Stderr, "duplicate file path:", clean)
			os.Exit(3)
		}
		seen[clean] = true
		s := sha256.New()
		n, err := io.Copy(s, r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reading", h.Name, ":", err)
			os.Exit(1)
		}
		fmt.Printf("%s %d %d %s %s %d %d %d %d\n", hex.EncodeToString([]byte(h.Name)),
			h.Typeflag, n, hex.EncodeToString(s.Sum(nil)),
			hex.EncodeToString([]byte(h.Linkname)), h.Mode, h.Uid, h.Gid, h.ModTime.Unix())
	}
}
"#;

/// Returns the built Go lister, or `None` (with a note on stderr) when there is no working
/// Go toolchain. It is built once into the temp dir, under a name that follows its source,
/// and reused by later runs.
fn go_lister() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let hash = Digest::of(GO_LISTER.as_bytes());
        let bin = std::env::temp_dir().join(format!("kiln-layer-go-lister-{}", &hash.hex()[..16]));
        if bin.is_file() {
            return Some(bin);
        }
        let work = tempfile::tempdir().ok()?;
        std::fs::write(work.path().join("main.go"), GO_LISTER).ok()?;
        // Local toolchain only, no module proxy: this must never touch the network.
        let out = Command::new("go")
            .args(["build", "-o", "lister", "main.go"])
            .current_dir(work.path())
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "0")
            .output();
        match out {
            Ok(o) if o.status.success() => {
                // Renamed into place whole, so a concurrent run never sees half a binary.
                std::fs::rename(work.path().join("lister"), &bin).ok()?;
                Some(bin)
            }
            Ok(o) => {
                eprintln!(
                    "note: no Go reader (go build failed): {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("note: no Go reader (`go` not runnable: {e})");
                None
            }
        }
    })
    .as_deref()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Reads `tar` with Go's `archive/tar`; `None` when Go is not available, `Err` with Go's
/// message when it refuses the tar.
pub fn go_reader(tar: &[u8]) -> Option<Result<Vec<Seen>, String>> {
    let bin = go_lister()?;
    let out = pipe(Command::new(bin), tar);
    if !out.status.success() {
        return Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let seen = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            Seen {
                name: unhex(f[0]),
                kind: f[1].parse().unwrap(),
                size: f[2].parse().unwrap(),
                sha: f[3].to_string(),
                link: unhex(f[4]),
                mode: f[5].parse::<i64>().unwrap() as u32,
                uid: f[6].parse().unwrap(),
                gid: f[7].parse().unwrap(),
                mtime: f[8].parse().unwrap(),
            }
        })
        .collect();
    Some(Ok(seen))
}

/// Returns whether GNU tar is on `PATH`.
pub fn have_gnu_tar() -> bool {
    Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GNU"))
}

/// Lists `tar` with GNU tar (`-tv`, names escaped): name bytes and size of each entry,
/// or GNU tar's complaint.
pub fn gnu_list(tar: &[u8]) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let mut cmd = Command::new("tar");
    cmd.args(["--quoting-style=escape", "-tvf", "-"])
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
    let out = pipe(cmd, tar);
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(text
        .lines()
        .map(|line| {
            // mode, owner/group, size, date, time, then the name (and ` -> target`).
            let mut rest = line;
            let mut fields = Vec::new();
            for _ in 0..5 {
                let trimmed = rest.trim_start();
                let end = trimmed.find(' ').unwrap();
                fields.push(&trimmed[..end]);
                rest = &trimmed[end + 1..];
            }
            let name = rest.split(" -> ").next().unwrap();
            let name = name.split(" link to ").next().unwrap();
            (unescape(name), fields[2].parse().unwrap())
        })
        .collect())
}

/// Extracts `tar` with GNU tar into `dir`; `Err` with its complaint.
pub fn gnu_extract(tar: &[u8], dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new("tar");
    cmd.args(["--no-same-owner", "--no-same-permissions", "-xf", "-", "-C"])
        .arg(dir)
        .env("LC_ALL", "C");
    let out = pipe(cmd, tar);
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Undoes GNU tar's `escape` quoting: `\\`, `\n`, `\t`… and `\ooo` octal bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'0'..=b'7' => {
                let v =
                    u8::from_str_radix(std::str::from_utf8(&b[i - 1..i + 2]).unwrap(), 8).unwrap();
                i += 2;
                v
            }
            other => other,
        });
    }
    out
}

fn pipe(mut cmd: Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A reader that stops early (it refused the tar) closes the pipe: not our error.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}
