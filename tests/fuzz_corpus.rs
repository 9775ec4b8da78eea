//! The fuzz corpora as regression tests, on stable: every file under `fuzz/corpus/<target>/`
//! (seeds, and every input a fuzzer ever crashed on) goes through the same check its fuzz
//! target runs (`fuzz/src/lib.rs`, included here), so `cargo test --workspace` fails if a
//! fixed parser bug comes back. Fuzzing itself: `fuzz/README.md`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod checks;

/// Runs every corpus file of `target` through its check; fails naming each file that panics.
fn corpus_passes(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a fuzz target of that name");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading `{}`: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "`{}` holds no corpus", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).expect("a corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} `{target}` corpus files fail their check: {failed:?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn fuzz_corpus_tar_extract() {
    corpus_passes("tar_extract");
}

#[test]
fn fuzz_corpus_deb() {
    corpus_passes("deb");
}

#[test]
fn fuzz_corpus_deb822() {
    corpus_passes("deb822");
}

#[test]
fn fuzz_corpus_inrelease() {
    corpus_passes("inrelease");
}

#[test]
fn fuzz_corpus_manifest() {
    corpus_passes("manifest");
}

#[test]
fn fuzz_corpus_www_authenticate() {
    corpus_passes("www_authenticate");
}

#[test]
fn fuzz_corpus_reference() {
    corpus_passes("reference");
}

/// The targets above are every target the fuzz crate has.
#[test]
fn fuzz_corpus_covers_every_target() {
    let names: Vec<_> = checks::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "tar_extract",
            "deb",
            "deb822",
            "inrelease",
            "manifest",
            "www_authenticate",
            "reference"
        ]
    );
}
