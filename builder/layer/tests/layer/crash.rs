//! W10: a process killed (`SIGKILL`) while writing a layer or a blob leaves nothing under
//! a content-addressed name, and a rerun succeeds; two processes writing the same layer
//! into one store at once both succeed and leave one whole blob.
//!
//! The writers are child processes: this test binary run again on
//! [`child_process_for_w10`], told what to do through `KILN_W10_CHILD`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use kiln_layer::{
    BlobCheck, BlobStore, Compression, LayerBlob, LayerContents, LayerWriter, write_layer,
};

const READY: &str = "KILN-W10-READY";
const BIG: u64 = 24 << 20;

/// Deterministic, poorly compressible bytes.
struct Noise {
    x: u64,
    left: u64,
    /// Announce readiness (and then hang) once this many bytes are out.
    stall_after: Option<u64>,
    given: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(at) = self.stall_after
            && self.given >= at
        {
            println!("{READY}");
            io::stdout().flush()?;
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        let n = buf.len().min(self.left as usize).min(64 * 1024);
        for b in &mut buf[..n] {
            self.x = self.x.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.x >> 56) as u8;
        }
        self.left -= n as u64;
        self.given += n as u64;
        Ok(n)
    }
}

fn noise(stall_after: Option<u64>) -> Noise {
    Noise {
        x: 7,
        left: BIG,
        stall_after,
        given: 0,
    }
}

/// The layer the "same" children write: a few MiB of files.
fn shared_contents() -> LayerContents {
    let mut c = LayerContents::new();
    for i in 0..8u64 {
        let mut data = vec![0u8; 1 << 20];
        let mut x = i + 1;
        for b in &mut data {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 59) as u8 + b'a';
        }
        c.add_file(&format!("data/f{i}"), data, 0o644, None);
    }
    c
}

/// Not a test: what a child process does, per `KILN_W10_CHILD=<mode>:<store>`.
#[test]
#[ignore = "run by the W10 tests as a child process"]
fn child_process_for_w10() {
    let spec = std::env::var("KILN_W10_CHILD").expect("run by a W10 test");
    let (mode, store) = spec.split_once(':').unwrap();
    let store = BlobStore::open(store).unwrap();
    match mode {
        "layer" => {
            let mut w = LayerWriter::new(&policy(), Compression::Zstd, &store).unwrap();
            w.append_file("big", 0o644, None, BIG, noise(Some(8 << 20)))
                .unwrap();
            unreachable!("killed while writing");
        }
        "blob" => {
            let mut w = store.writer().unwrap();
            io::copy(&mut noise(Some(8 << 20)), &mut w).unwrap();
            unreachable!("killed while writing");
        }
        "same" => {
            let blob =
                write_layer(&shared_contents(), &policy(), Compression::Gzip, &store).unwrap();
            println!("DIGEST {}", blob.digest);
        }
        other => panic!("unknown mode {other}"),
    }
}

fn spawn(mode: &str, store: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::child_process_for_w10",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KILN_W10_CHILD", format!("{mode}:{}", store.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` once it says it is halfway through its blob.
fn kill_when_ready(mut child: Child) {
    let out = child.stdout.take().unwrap();
    let ready = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains(READY));
    assert!(ready, "the child got halfway");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
}

fn names(store: &BlobStore) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn is_digest_name(n: &str) -> bool {
    n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn w10_a_writer_killed_mid_layer_leaves_no_final_name_and_a_rerun_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = BlobStore::open(&root).unwrap();
    for mode in ["layer", "blob"] {
        kill_when_ready(spawn(mode, &root));
        let left = names(&store);
        assert!(
            left.iter()
                .all(|n| n.starts_with(".tmp-") && !is_digest_name(n)),
            "{mode}: only temporary files, no blob under a digest name: {left:?}"
        );
        assert!(!left.is_empty(), "{mode}: the child had started writing");
    }
    // The rerun: the same layer and the same bytes, written whole this time.
    let mut w = LayerWriter::new(&policy(), Compression::Zstd, &store).unwrap();
    w.append_file("big", 0o644, None, BIG, noise(None)).unwrap();
    let layer: LayerBlob = w.finish().unwrap();
    let mut w = store.writer().unwrap();
    io::copy(&mut noise(None), &mut w).unwrap();
    let (blob, size) = w.commit().unwrap();
    assert_eq!(size, BIG);
    let fresh = BlobStore::open(&root).unwrap();
    for d in [&layer.digest, &blob] {
        assert_eq!(fresh.check(d).unwrap(), BlobCheck::Verified, "{d}");
    }
    let digests: Vec<String> = names(&fresh)
        .into_iter()
        .filter(|n| is_digest_name(n))
        .collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
}

#[test]
fn w10_two_processes_writing_the_same_layer_into_one_store_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let children: Vec<Child> = (0..2).map(|_| spawn("same", &root)).collect();
    let mut digests = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "both writers succeed");
        let text = String::from_utf8(out.stdout).unwrap();
        let digest = text
            .lines()
            .find_map(|l| l.split_once("DIGEST ").map(|(_, d)| d))
            .expect("the child printed its digest")
            .to_string();
        digests.push(digest);
    }
    assert_eq!(digests[0], digests[1]);
    let store = BlobStore::open(&root).unwrap();
    let expected = write_layer(&shared_contents(), &policy(), Compression::Gzip, &store).unwrap();
    assert_eq!(expected.digest.to_string(), digests[0]);
    assert_eq!(
        names(&store),
        [expected.digest.hex()],
        "one blob, no temporary file"
    );
    let fresh = BlobStore::open(&root).unwrap();
    assert_eq!(fresh.check(&expected.digest).unwrap(), BlobCheck::Verified);
}
