//! W11: many small files, a 4096-deep tree (deeper than `PATH_MAX` allows a path to
//! name) and a sparse multi-GiB file are written in bounded memory: the peak RSS of a
//! child process that writes the layer stays far below what the input would take if it
//! were held in memory. Sparse files are written dense (image-spec: sparse SHOULD NOT be
//! used); here that one is streamed to the fingerprint's hashing sink.
//!
//! `w11_one_million_files` (ignored, minutes) is the full-size run.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common::*;
use kiln_layer::{BlobStore, Compression, LayerContents, LayerOrder, validate_tar, write_layer};
use rustix::fs::{Mode, OFlags};

/// The depth of the deep tree: each level is `d/`, so its path is 8 KiB long.
const DEPTH: usize = 4096;

/// Not a test: what a child process does, per `KILN_W11_CHILD=<mode>:<tree>:<store>`.
/// Prints what it did and its peak RSS.
#[test]
#[ignore = "run by the W11 tests as a child process"]
fn child_process_for_w11() {
    let spec = std::env::var("KILN_W11_CHILD").expect("run by a W11 test");
    let mut parts = spec.splitn(3, ':');
    let (mode, tree, store) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let started = Instant::now();
    let mut c = LayerContents::new();
    c.add_tree(Path::new(tree), "workspace").unwrap();
    let store = BlobStore::open(store).unwrap();
    match mode {
        "write" => {
            let blob = write_layer(&c, &policy(), Compression::Gzip, &store).unwrap();
            println!("RESULT entries={} digest={}", c.len(), blob.digest);
        }
        "hash" => {
            let fp = c.fingerprint(&policy(), Compression::Gzip).unwrap();
            println!("RESULT entries={} fingerprint={fp}", c.len());
        }
        other => panic!("unknown mode {other}"),
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .to_string();
    println!("PEAK_KB {hwm} SECS {:.2}", started.elapsed().as_secs_f64());
}

/// What a child reported: its result line, peak RSS in KiB and seconds.
struct Report {
    result: String,
    peak_kib: u64,
    secs: f64,
}

fn run_child(mode: &str, tree: &Path, store: &Path) -> Report {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "scale::child_process_for_w11",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "KILN_W11_CHILD",
            format!("{mode}:{}:{}", tree.display(), store.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the {mode} child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut result = String::new();
    let mut peak_kib = 0;
    let mut secs = 0.0;
    for line in BufReader::new(out.stdout.as_slice()).lines() {
        let line = line.unwrap();
        if let Some((_, r)) = line.split_once("RESULT ") {
            result = r.to_string();
        }
        if let Some((_, p)) = line.split_once("PEAK_KB ") {
            let mut f = p.split_whitespace();
            peak_kib = f.next().unwrap().parse::<u64>().unwrap();
            secs = f.nth(1).unwrap().parse().unwrap();
        }
    }
    Report {
        result,
        peak_kib,
        secs,
    }
}

/// Makes `count` small files in directories of 1000.
fn many_files(root: &Path, count: usize) {
    for d in 0..count.div_ceil(1000) {
        let dir = root.join(format!("d{d:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000.min(count - d * 1000) {
            std::fs::write(dir.join(format!("f{f:04}.js")), format!("module {d} {f}\n")).unwrap();
        }
    }
}

/// Makes `deep/d/d/…/d/bottom.txt`, `DEPTH` directories deep, relative to descriptors (no
/// path to it fits `PATH_MAX`).
fn deep_tree(root: &Path) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    std::fs::create_dir_all(root.join("deep")).unwrap();
    let mut dir: OwnedFd = rustix::fs::open(root.join("deep"), flags, Mode::empty()).unwrap();
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).unwrap();
        dir = rustix::fs::openat(&dir, "d", flags, Mode::empty()).unwrap();
    }
    let file = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, "bottom.txt", file, Mode::from_raw_mode(0o644)).unwrap();
    rustix::io::write(&fd, b"at the bottom\n").unwrap();
}

/// Reads the written layer back: entry count checked by the validator, and its tar.
fn read_back(store_dir: &Path, report: &Report) -> (u64, Vec<u8>) {
    let store = BlobStore::open(store_dir).unwrap();
    let digest = report
        .result
        .split("digest=")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let file = std::fs::File::open(store.path(&digest)).unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut tar).unwrap();
    (
        validate_tar(tar.as_slice(), LayerOrder::Sorted).unwrap(),
        tar,
    )
}

#[test]
fn w11_many_small_files_cost_a_small_constant_memory_each() {
    const FEW: usize = 1_000;
    const MANY: usize = 8_000;
    let tmp = tempfile::tempdir().unwrap();
    let (few, many) = (tmp.path().join("few"), tmp.path().join("many"));
    many_files(&few, FEW);
    many_files(&many, MANY);
    let base = run_child("write", &few, &tmp.path().join("store-few"));
    let store_dir = tmp.path().join("store");
    let report = run_child("write", &many, &store_dir);
    eprintln!(
        "w11: {MANY} files: {} KiB peak ({} KiB for {FEW}), {:.1} s",
        report.peak_kib, base.peak_kib, report.secs
    );
    let entries = 1 + MANY / 1000 + MANY;
    assert!(
        report.result.starts_with(&format!("entries={entries} ")),
        "{}",
        report.result
    );
    // Per extra file: its path and a few words, far from its bytes or a copy of the tree.
    let per_file = report.peak_kib.saturating_sub(base.peak_kib) as f64 / (MANY - FEW) as f64;
    assert!(per_file < 2.0, "{per_file:.2} KiB per file");
    assert!(report.peak_kib < 128 << 10, "{} KiB", report.peak_kib);
    assert_eq!(read_back(&store_dir, &report).0 as usize, entries);
}

#[test]
fn w11_a_4096_deep_tree_is_written_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    deep_tree(&tree);
    let store_dir = tmp.path().join("store");
    let report = run_child("write", &tree, &store_dir);
    eprintln!(
        "w11: {DEPTH}-deep tree: {} KiB peak, {:.1} s",
        report.peak_kib, report.secs
    );
    // workspace/, deep/, its `d`s and bottom.txt.
    let entries = 1 + 1 + DEPTH + 1;
    assert!(
        report.result.starts_with(&format!("entries={entries} ")),
        "{}",
        report.result
    );
    // The paths alone are 4096 × 4 KiB on average: twice that is the bound.
    assert!(report.peak_kib < 96 << 10, "{} KiB", report.peak_kib);
    let (count, tar) = read_back(&store_dir, &report);
    assert_eq!(count as usize, entries);
    let bottom = format!("workspace/deep/{}bottom.txt", "d/".repeat(DEPTH));
    let seen = kiln_reader(&tar).unwrap();
    let e = seen.iter().find(|e| e.name == bottom.as_bytes()).unwrap();
    assert_eq!(e.sha, kiln_oci::Digest::of(b"at the bottom\n").hex());
    if let Some(go) = go_reader(&tar) {
        assert_eq!(go.unwrap(), seen);
    }
}

#[test]
fn w11_a_sparse_multi_gib_file_is_streamed_dense_in_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let f = std::fs::File::create(tree.join("disk.img")).unwrap();
    f.set_len(SIZE).unwrap();
    drop(f);
    let report = run_child("hash", &tree, &tmp.path().join("store"));
    eprintln!(
        "w11: {} GiB sparse file hashed: {} KiB peak, {:.1} s",
        SIZE >> 30,
        report.peak_kib,
        report.secs
    );
    assert!(report.result.starts_with("entries=2 "), "{}", report.result);
    assert!(report.peak_kib < 64 << 10, "{} KiB", report.peak_kib);
}

/// The full-size run: a million small files. Prints time and peak memory.
#[test]
#[ignore = "minutes of file creation; run by hand: cargo test -p kiln-layer --test layer w11_one_million -- --ignored --nocapture"]
fn w11_one_million_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut last: Option<(usize, Report)> = None;
    for count in [100_000usize, 1_000_000] {
        let tree = tmp.path().join(format!("t{count}"));
        many_files(&tree, count);
        let report = run_child("write", &tree, &tmp.path().join(format!("s{count}")));
        eprintln!(
            "w11: {count} files: {} KiB peak, {:.1} s",
            report.peak_kib, report.secs
        );
        if let Some((n, prev)) = &last {
            let ratio = report.secs / prev.secs;
            eprintln!("w11: time x{ratio:.1} for x{} files", count / n);
        }
        assert!(report.peak_kib < 1 << 20, "{} KiB", report.peak_kib);
        last = Some((count, report));
    }
}
