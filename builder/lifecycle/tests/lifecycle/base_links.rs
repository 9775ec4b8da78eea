//! W08: app files meant for `/lib/…`, `/bin/…` or `/var/run/…` on a run image where those
//! are symlinks (`lib -> usr/lib`, `var/run -> /run`) are exported behind the links, so no
//! app layer ever holds a directory entry that would replace a base symlink; when the run
//! image's layers cannot be read, such directories are refused with a hint.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use kiln_layer::{BlobStore, Compression, LayerWriter, Ownership, TarPolicy};
use kiln_lifecycle::{
    BuildOutput, Export, LaunchLayer, LayerCache, Process, RunImage, SourceFacts, static_base,
};
use kiln_model::{Layer, Origin};
use kiln_oci::{Digest, Reference};

const EPOCH: i64 = 1_600_000_000;

/// A merged-/usr run image: the static base plus a layer of root links.
fn merged_usr_base(store: &BlobStore) -> RunImage {
    let mut image = static_base(EPOCH, Compression::Gzip, store).unwrap();
    let policy = TarPolicy {
        mtime: EPOCH as u64,
        owner: Ownership::new(0, 0),
    };
    let mut w = LayerWriter::new(&policy, Compression::Gzip, store).unwrap();
    for dir in ["usr", "usr/bin", "usr/lib", "run", "var"] {
        w.append_dir(dir, 0o755, None).unwrap();
    }
    w.append_file("usr/lib/libc.so.6", 0o755, None, 4, &b"libc"[..])
        .unwrap();
    for (link, target) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("var/run", "/run")] {
        w.append_symlink(link, target, None).unwrap();
    }
    let blob = w.finish().unwrap();
    image.layers.push(Layer {
        media_type: blob.media_type.to_string(),
        digest: blob.digest,
        size: blob.size,
        diff_id: blob.diff_id,
        origin: Origin::Local,
    });
    let digest = image.finalize().unwrap().manifest_digest;
    RunImage {
        image,
        digest,
        name: "merged-usr".into(),
    }
}

fn output(root: &Path, files: &[&str]) -> BuildOutput {
    for f in files {
        let p = root.join("app").join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f.as_bytes()).unwrap();
    }
    BuildOutput {
        layers: vec![LaunchLayer {
            name: "app".into(),
            dir: root.join("app"),
            cache_key: None,
            ..Default::default()
        }],
        processes: vec![Process {
            name: "web".into(),
            command: vec!["/bin/tool".into()],
            default: true,
        }],
        env: BTreeMap::new(),
        warnings: Vec::new(),
        working_dir: None,
        packages: Vec::new(),
        platform_neutral: false,
        native: Vec::new(),
    }
}

fn exporter(store: &BlobStore) -> Export<'_> {
    Export {
        store,
        epoch: EPOCH,
        compression: Compression::Gzip,
        workspace: "/workspace",
        buildpack: ("kiln/test", "0.1.0"),
        hashes: None,
        written: None,
        settings: &crate::NO_SETTINGS,
    }
}

/// The entries of a stored layer blob: path (no trailing `/`) → (type, link target).
fn entries(store: &BlobStore, digest: &Digest) -> Vec<(String, tar::EntryType, String)> {
    let file = std::fs::File::open(store.path(digest)).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = Vec::new();
    for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        out.push((path, e.header().entry_type(), link));
    }
    out
}

/// Applies layers the way a runtime does (a later entry replaces what is at its path, a
/// directory included), and returns the resulting file types by path.
fn apply(layers: &[Vec<(String, tar::EntryType, String)>]) -> BTreeMap<String, tar::EntryType> {
    let mut fs = BTreeMap::new();
    for layer in layers {
        for (path, kind, _) in layer {
            let keep_dir = *kind == tar::EntryType::Directory
                && fs.get(path) == Some(&tar::EntryType::Directory);
            if !keep_dir {
                fs.insert(path.clone(), *kind);
            }
        }
    }
    fs
}

#[test]
fn w08_app_files_for_lib_bin_and_var_run_land_behind_the_base_links() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let run = merged_usr_base(&store);
    let files = [
        "lib/libapp.so",
        "lib/x86_64-linux-gnu/libfoo.so.1",
        "bin/tool",
        "var/run/app.pid",
        "workspace/app.js",
    ];
    let out = output(tmp.path(), &files);
    let mut cache = LayerCache::open(&tmp.path().join("cache.json"));
    let (image, layers) = exporter(&store)
        .run(&run, &out, &SourceFacts::default(), &mut cache)
        .unwrap();
    image.finalize().unwrap();
    let app = entries(&store, &layers[0].blob.digest);
    let paths: Vec<&str> = app.iter().map(|(p, _, _)| p.as_str()).collect();
    for link in ["lib", "bin", "var/run"] {
        assert!(
            !paths.contains(&link),
            "no entry at the base link `{link}`: {paths:?}"
        );
        assert!(
            !paths.iter().any(|p| p.starts_with(&format!("{link}/"))),
            "nothing through `{link}`: {paths:?}"
        );
    }
    for placed in [
        "usr/lib/libapp.so",
        "usr/lib/x86_64-linux-gnu/libfoo.so.1",
        "usr/bin/tool",
        "run/app.pid",
        "workspace/app.js",
    ] {
        assert!(paths.contains(&placed), "`{placed}` in {paths:?}");
    }

    // Stacked as a runtime stacks them, the base's links survive the app layer.
    let base: Vec<_> = image.layers[..run.image.layers.len()]
        .iter()
        .map(|l| entries(&store, &l.digest))
        .collect();
    let fs = apply(&[base, vec![app]].concat());
    for link in ["lib", "bin", "var/run"] {
        assert_eq!(fs.get(link), Some(&tar::EntryType::Symlink), "`{link}`");
    }
    assert_eq!(fs.get("usr/lib/libc.so.6"), Some(&tar::EntryType::Regular));
    assert_eq!(fs.get("usr/lib/libapp.so"), Some(&tar::EntryType::Regular));

    // The second build reads the links from the store's record, with the same result.
    assert!(
        tmp.path()
            .join("store/kiln-base-links")
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
    let mut cache = LayerCache::open(&tmp.path().join("other-cache.json"));
    let (_, again) = exporter(&store)
        .run(&run, &out, &SourceFacts::default(), &mut cache)
        .unwrap();
    assert_eq!(again[0].blob, layers[0].blob);
}

#[test]
fn w08_on_a_run_image_kiln_cannot_read_a_lib_directory_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let mut run = merged_usr_base(&store);
    // A layer only a registry has: its links are unknown.
    let remote: Reference = "127.0.0.1:5000/bases/other".parse().unwrap();
    run.image.layers.push(Layer {
        media_type: Compression::Gzip.media_type().to_string(),
        digest: Digest::of(b"not in the store"),
        size: 16,
        diff_id: Digest::of(b"its diffID"),
        origin: Origin::Remote(remote),
    });
    let out = output(
        &tmp.path().join("a"),
        &["lib64/ld-linux-x86-64.so.2", "workspace/x"],
    );
    let mut cache = LayerCache::open(&tmp.path().join("cache.json"));
    let err = exporter(&store)
        .run(&run, &out, &SourceFacts::default(), &mut cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lib64`"), "{err}");
    assert!(err.contains("usually has a symlink there"), "{err}");
    assert!(err.contains("put the files under `usr/`"), "{err}");
    // What the readable layers say is still used: `lib` is a known link.
    let out = output(&tmp.path().join("b"), &["lib/libapp.so", "workspace/x"]);
    let (_, layers) = exporter(&store)
        .run(&run, &out, &SourceFacts::default(), &mut cache)
        .unwrap();
    let paths: Vec<String> = entries(&store, &layers[0].blob.digest)
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert!(
        paths.contains(&"usr/lib/libapp.so".to_string()),
        "{paths:?}"
    );
    assert!(!paths.contains(&"lib".to_string()), "{paths:?}");
}
