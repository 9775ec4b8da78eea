//! W01: symlinks in the workspace pointing at host secrets, at host directories, at
//! themselves or at each other are stored as symlink entries with their targets verbatim;
//! nothing they point to is read, and a loop is one more entry, not a hang.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::common;
use crate::common::*;
use kiln_layer::{BlobStore, Compression, LayerContents, LayerOrder, validate_tar, write_layer};
use tar::EntryType;

const CANARY: &str = "KILN-CANARY-W01-host-bytes";

/// A workspace full of links out of it, and the host files they point to (each holding
/// the canary). Returns the links and their targets.
fn linked_workspace(tmp: &Path) -> Vec<(&'static str, String)> {
    let home = tmp.join("home");
    common::write(&home, ".docker/config.json", CANARY.as_bytes(), 0o600);
    common::write(&tmp.join("hostetc"), "shadow", CANARY.as_bytes(), 0o600);
    let ws = tmp.join("ws");
    common::write(&ws, "main.go", b"package main\n", 0o644);
    let links = vec![
        (
            "creds",
            home.join(".docker/config.json").display().to_string(),
        ),
        ("creds-tilde", "~/.docker/config.json".to_string()),
        ("etc", "/etc".to_string()),
        ("hostetc", tmp.join("hostetc").display().to_string()),
        ("up", "../../../../../../../../..".to_string()),
        ("loop", "loop".to_string()),
        ("a", "b".to_string()),
        ("b", "a".to_string()),
        ("sub/self", ".".to_string()),
        ("sub/parent", "..".to_string()),
    ];
    for (path, target) in &links {
        let p = ws.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }
    links
}

/// Runs `f` on another thread and fails if it takes longer than a generous bound: a walk
/// that followed a link loop would never end.
fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("writing the layer finished (no symlink was followed)")
}

#[test]
fn w01_links_out_of_the_workspace_are_verbatim_entries_and_no_host_bytes_enter_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let links = linked_workspace(tmp.path());
    let ws = tmp.path().join("ws");
    for compression in [Compression::Gzip, Compression::Zstd] {
        let store_dir = tmp.path().join(format!("store-{compression}"));
        let ws = ws.clone();
        let (contents, blob, store) = finishes(move || {
            let mut c = LayerContents::new();
            c.add_tree(&ws, "workspace").unwrap();
            c.fingerprint(&policy(), compression).unwrap();
            let store = BlobStore::open(store_dir).unwrap();
            let blob = write_layer(&c, &policy(), compression, &store).unwrap();
            (c, blob, store)
        });
        assert!(contents.warnings().is_empty());
        let tar = tar_bytes(&store, &blob);
        validate_tar(tar.as_slice(), LayerOrder::Sorted).unwrap();
        let canary = CANARY.as_bytes();
        assert!(
            !tar.windows(canary.len()).any(|w| w == canary),
            "{compression}: no byte of a linked host file is in the layer"
        );
        let es = entries(&tar);
        for (path, target) in &links {
            let e = find(&es, &format!("workspace/{path}"));
            assert_eq!(e.kind, EntryType::Symlink, "{path}");
            assert_eq!(e.link.as_deref(), Some(target.as_str()), "{path}");
            assert!(e.data.is_empty(), "{path}");
        }
        let paths: Vec<&str> = es.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths
                .iter()
                .all(|p| !p.starts_with("workspace/etc/") && !p.starts_with("workspace/hostetc/")),
            "{compression}: nothing below a directory link: {paths:?}"
        );
        // workspace/, sub/, main.go and the links: nothing else.
        assert_eq!(es.len(), 3 + links.len(), "{paths:?}");
    }
}
