//! `Export::export` on the generated static base with a fake build output: the image
//! config, the CNB labels, layer reuse through the `LayerCache`, and determinism. Every
//! image is written to an OCI layout and validated (digests, sizes, diffIDs recomputed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_image::{Blobs, validate_layout, write_layout};
use kiln_layer::{BlobStore, Compression};
use kiln_lifecycle::{
    BuildOutput, DEFAULT_PATH, Export, ExportError, ExportedLayer, LaunchLayer, LayerCache,
    Process, RunImage, SourceFacts, static_base,
};
use kiln_model::{FinalImage, Image};
use serde_json::Value;

const EPOCH: i64 = 1_600_000_000;

/// A fake build's layer dirs: `app` (the binary) and `workspace` (static files).
fn layer_dirs(root: &Path) -> BuildOutput {
    let files: &[(&str, &str, &[u8])] = &[
        ("app", "workspace/bin/server", b"\x7fELF fake binary"),
        ("workspace", "workspace/static/index.html", b"<h1>hi</h1>"),
        ("workspace", "workspace/static/app.css", b"body{}"),
    ];
    for (layer, path, bytes) in files {
        let p = root.join(layer).join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    BuildOutput {
        layers: ["app", "workspace"]
            .iter()
            .map(|n| LaunchLayer {
                name: n.to_string(),
                dir: root.join(n),
                cache_key: None,
                ..Default::default()
            })
            .collect(),
        processes: vec![
            Process {
                name: "migrate".into(),
                command: vec!["/workspace/bin/server".into(), "migrate".into()],
                default: false,
            },
            Process {
                name: "web".into(),
                command: vec!["/workspace/bin/server".into()],
                default: true,
            },
        ],
        env: BTreeMap::from([("PORT".to_string(), "8080".to_string())]),
        warnings: Vec::new(),
        working_dir: None,
        packages: Vec::new(),
        platform_neutral: false,
        native: Vec::new(),
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: BlobStore,
    run: RunImage,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let store = BlobStore::open(root.join("store")).unwrap();
    let image = static_base(EPOCH, Compression::Gzip, &store).unwrap();
    let digest = image.finalize().unwrap().manifest_digest;
    let run = RunImage {
        image,
        digest,
        name: "kiln:static".into(),
    };
    Env {
        _tmp: tmp,
        root,
        store,
        run,
    }
}

fn exporter(store: &BlobStore) -> Export<'_> {
    Export {
        store,
        epoch: EPOCH,
        compression: Compression::Gzip,
        workspace: "/workspace",
        buildpack: ("kiln/go", "0.1.0"),
        hashes: None,
        written: None,
        settings: &crate::NO_SETTINGS,
    }
}

fn export(
    e: &Env,
    output: &BuildOutput,
    cache: &mut LayerCache,
) -> (Image, Vec<ExportedLayer>, FinalImage) {
    let source = SourceFacts {
        url: Some("https://example.com/app.git".into()),
        revision: Some("abc123".into()),
    };
    let (image, layers) = exporter(&e.store)
        .run(&e.run, output, &source, cache)
        .unwrap();
    let fin = image.finalize().unwrap();
    validate(&e.store, &fin);
    (image, layers, fin)
}

/// Writes `image` into a fresh OCI layout and validates it.
fn validate(store: &BlobStore, image: &FinalImage) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let blobs = Blobs::new(store.clone(), None);
    rt.block_on(write_layout(dir.path(), image, "app", &blobs))
        .unwrap();
    let v = validate_layout(dir.path(), "app").unwrap();
    assert_eq!(v.manifest_digest, image.manifest_digest);
    assert_eq!(v.layers, image.layers.len());
}

fn label(image: &Image, name: &str) -> Value {
    let labels = image
        .config
        .config()
        .as_ref()
        .unwrap()
        .labels()
        .clone()
        .unwrap();
    serde_json::from_str(&labels[name]).unwrap_or_else(|_| Value::String(labels[name].clone()))
}

#[test]
fn export_writes_config_labels_and_history() {
    let e = env();
    let output = layer_dirs(&e.root.join("layers"));
    let mut cache = LayerCache::open(&e.root.join("cache.json"));
    let (image, layers, _) = export(&e, &output, &mut cache);

    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].name, "app");
    assert_eq!(layers[1].name, "workspace");
    assert!(layers.iter().all(|l| !l.reused));
    assert_eq!(image.layers.len(), 3);
    assert_eq!(image.layers[0], e.run.image.layers[0]);
    for (l, x) in image.layers[1..].iter().zip(&layers) {
        assert_eq!(l.digest, x.blob.digest);
        assert_eq!(l.diff_id, x.blob.diff_id);
        assert!(e.store.contains(&l.digest));
    }

    let exec = image.config.config().clone().unwrap();
    assert_eq!(exec.user().as_deref(), Some("65532:65532"));
    assert_eq!(exec.working_dir().as_deref(), Some("/workspace"));
    assert_eq!(
        exec.entrypoint().clone().unwrap(),
        vec!["/workspace/bin/server".to_string()]
    );
    assert_eq!(exec.cmd(), &None);
    assert_eq!(
        exec.env().clone().unwrap(),
        vec![format!("PATH={DEFAULT_PATH}"), "PORT=8080".to_string()]
    );
    assert_eq!(
        image.config.created().as_deref(),
        Some("2020-09-13T12:26:40Z")
    );

    let lifecycle = label(&image, "io.buildpacks.lifecycle.metadata");
    assert_eq!(
        lifecycle["runImage"]["topLayer"],
        e.run.image.layers.last().unwrap().diff_id.to_string()
    );
    assert_eq!(lifecycle["runImage"]["reference"], e.run.digest.to_string());
    assert_eq!(lifecycle["runImage"]["image"], "kiln:static");
    let app: Vec<&str> = lifecycle["app"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        app,
        layers
            .iter()
            .map(|l| l.blob.diff_id.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lifecycle["buildpacks"][0]["layers"]["app"]["sha"],
        layers[0].blob.diff_id.to_string()
    );

    let build = label(&image, "io.buildpacks.build.metadata");
    let processes = build["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2);
    assert_eq!(processes[1]["type"], "web");
    assert_eq!(processes[1]["default"], true);
    assert_eq!(processes[1]["command"][0], "/workspace/bin/server");
    assert_eq!(processes[0]["type"], "migrate");
    assert_eq!(processes[0]["default"], false);
    assert_eq!(build["buildpacks"][0]["id"], "kiln/go");
    assert_eq!(
        label(&image, "org.opencontainers.image.revision"),
        Value::String("abc123".into())
    );

    let history = image.config.history().clone().unwrap();
    assert_eq!(history.len(), image.layers.len());
    assert!(
        history[2]
            .created_by()
            .as_deref()
            .unwrap()
            .contains("workspace")
    );
}

#[test]
fn second_export_reuses_layers_and_a_changed_file_rewrites_its_layer() {
    let e = env();
    let output = layer_dirs(&e.root.join("layers"));
    let cache_path = e.root.join("cache/layers.json");
    let mut cache = LayerCache::open(&cache_path);
    let (_, first, fin1) = export(&e, &output, &mut cache);
    cache.save().unwrap();

    let mut cache = LayerCache::open(&cache_path);
    let (_, second, fin2) = export(&e, &output, &mut cache);
    assert!(second.iter().all(|l| l.reused), "{second:?}");
    assert_eq!(fin1.manifest_digest, fin2.manifest_digest);
    assert_eq!(
        first.iter().map(|l| &l.blob).collect::<Vec<_>>(),
        second.iter().map(|l| &l.blob).collect::<Vec<_>>()
    );

    // Same size, different bytes: only content hashes can tell.
    let css = e.root.join("layers/workspace/workspace/static/app.css");
    assert_eq!(std::fs::read(&css).unwrap().len(), 6);
    std::fs::write(&css, b"body[]").unwrap();
    let (_, third, fin3) = export(&e, &output, &mut cache);
    assert!(third[0].reused);
    assert_eq!(third[0].blob, first[0].blob);
    assert!(!third[1].reused);
    assert_ne!(third[1].blob.digest, first[1].blob.digest);
    assert_ne!(third[1].blob.diff_id, first[1].blob.diff_id);
    assert_ne!(fin3.manifest_digest, fin1.manifest_digest);
}

#[test]
fn same_inputs_from_different_copies_give_the_same_digest() {
    let digest = |mtime_offset: i64| {
        let e = env();
        let output = layer_dirs(&e.root.join("some").join("other-path"));
        // Different file times must not matter.
        for l in &output.layers {
            for entry in walkdir::WalkDir::new(&l.dir) {
                let p = entry.unwrap().into_path();
                let t = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs((1_000_000 + mtime_offset) as u64);
                std::fs::File::open(&p)
                    .unwrap()
                    .set_modified(t)
                    .unwrap_or(());
            }
        }
        let mut cache = LayerCache::open(&e.root.join("cache.json"));
        export(&e, &output, &mut cache).2.manifest_digest
    };
    assert_eq!(digest(0), digest(12_345));
}

#[test]
fn export_without_a_default_process_fails() {
    let e = env();
    let mut output = layer_dirs(&e.root.join("layers"));
    for p in &mut output.processes {
        p.default = false;
    }
    let mut cache = LayerCache::open(&e.root.join("cache.json"));
    let err = exporter(&e.store)
        .run(&e.run, &output, &SourceFacts::default(), &mut cache)
        .unwrap_err();
    assert!(matches!(err, ExportError::NoProcess), "{err}");
}
