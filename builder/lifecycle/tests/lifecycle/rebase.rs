//! `Rebase::run` on an app the real exporter built on base v1: the app's layers go on base
//! v2 untouched, the config stays the app's, the base's labels and history are refreshed,
//! and every refusal names its reason. Every result is written to an OCI layout and
//! validated (digests, sizes, diffIDs recomputed).

use std::collections::BTreeMap;

use kiln_image::{Blobs, validate_layout, write_layout};
use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
use kiln_lifecycle::{
    BuildOutput, Export, LIFECYCLE_METADATA, LaunchLayer, LayerCache, Process, Rebase, RebaseError,
    RunImage, SourceFacts,
};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::spec::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};
use serde_json::Value;

const EPOCH: i64 = 1_600_000_000;

pub(crate) struct World {
    _tmp: tempfile::TempDir,
    pub(crate) store: BlobStore,
    pub(crate) root: std::path::PathBuf,
}

pub(crate) fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    World {
        store: BlobStore::open(root.join("store")).unwrap(),
        root,
        _tmp: tmp,
    }
}

/// A base of `files.len()` layers (one file each), with `labels`, for `arch`.
pub(crate) fn base(
    w: &World,
    name: &str,
    files: &[&str],
    labels: &[(&str, &str)],
    arch: &str,
) -> RunImage {
    let policy = TarPolicy {
        mtime: 1,
        owner: Ownership::new(0, 0),
    };
    let layers: Vec<Layer> = files
        .iter()
        .map(|f| {
            let mut c = LayerContents::new();
            c.add_file(f, f.as_bytes().to_vec(), 0o644, None);
            let blob = kiln_layer::write_layer(&c, &policy, Compression::Gzip, &w.store).unwrap();
            Layer {
                media_type: blob.media_type.to_string(),
                digest: blob.digest,
                size: blob.size,
                diff_id: blob.diff_id,
                origin: Origin::Local,
            }
        })
        .collect();
    let history: Vec<_> = files
        .iter()
        .map(|f| {
            HistoryBuilder::default()
                .created_by(format!("base {f}"))
                .build()
                .unwrap()
        })
        .collect();
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::from(arch))
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .env(vec!["PATH=/usr/bin:/bin".to_owned(), "BASE=1".to_owned()])
                .user("65532:65532".to_owned())
                .labels(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<std::collections::HashMap<_, _>>(),
                )
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()
                .unwrap(),
        )
        .history(history)
        .build()
        .unwrap();
    let image = Image { config, layers };
    let digest = image.finalize().unwrap().manifest_digest;
    RunImage {
        image,
        digest,
        name: name.to_owned(),
    }
}

pub(crate) fn v1(w: &World) -> RunImage {
    base(
        w,
        "registry.example.com/bases/node:v1",
        &["etc/os-release", "usr/bin/node"],
        &[
            ("io.buildpacks.base.id", "kiln/node"),
            ("io.kiln.base.packages", "{\"nodejs\":\"1\"}"),
            ("org.opencontainers.image.title", "node v1"),
            ("only.in.v1", "x"),
        ],
        "amd64",
    )
}

pub(crate) fn v2(w: &World) -> RunImage {
    base(
        w,
        "registry.example.com/bases/node:v2",
        &["etc/os-release", "usr/bin/node", "etc/kiln-v2"],
        &[
            ("io.buildpacks.base.id", "kiln/node"),
            ("io.kiln.base.packages", "{\"nodejs\":\"2\"}"),
            ("org.opencontainers.image.title", "node v2"),
        ],
        "amd64",
    )
}

/// The app: two launch layers exported by the real exporter onto `run`.
pub(crate) fn app(w: &World, run: &RunImage) -> Image {
    let dir = w.root.join("layers");
    for (layer, file) in [
        ("deps", "workspace/node_modules/x.js"),
        ("app", "workspace/server.js"),
    ] {
        let p = dir.join(layer).join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, file).unwrap();
    }
    let output = BuildOutput {
        layers: ["deps", "app"]
            .iter()
            .map(|n| LaunchLayer {
                name: n.to_string(),
                dir: dir.join(n),
                cache_key: None,
                ..Default::default()
            })
            .collect(),
        processes: vec![Process {
            name: "web".into(),
            command: vec!["/usr/bin/node".into(), "server.js".into()],
            default: true,
        }],
        env: BTreeMap::from([("NODE_ENV".into(), "production".into())]),
        warnings: Vec::new(),
        working_dir: None,
        packages: Vec::new(),
        platform_neutral: false,
        native: Vec::new(),
    };
    let exporter = Export {
        store: &w.store,
        epoch: EPOCH,
        compression: Compression::Gzip,
        workspace: "/workspace",
        buildpack: ("kiln/node", "0.1.0"),
        hashes: None,
        written: None,
        settings: &crate::NO_SETTINGS,
    };
    let mut cache = LayerCache::open(&w.root.join("layers.json"));
    exporter
        .run(run, &output, &SourceFacts::default(), &mut cache)
        .unwrap()
        .0
}

fn labels(image: &Image) -> BTreeMap<String, String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn validate(w: &World, image: &Image) {
    let fin = image.finalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(write_layout(
        dir.path(),
        &fin,
        "app",
        &Blobs::new(w.store.clone(), None),
    ))
    .unwrap();
    let v = validate_layout(dir.path(), "app").unwrap();
    assert_eq!(v.manifest_digest, fin.manifest_digest);
}

#[test]
fn the_app_layers_go_on_the_new_base_and_the_config_stays_the_apps() {
    let w = world();
    let (old, new) = (v1(&w), v2(&w));
    let app = app(&w, &old);
    let rebased = Rebase {
        app: &app,
        new_base: &new,
        old_base: Some(&old.image),
        force: false,
    }
    .run()
    .unwrap();
    assert!(!rebased.unchanged);
    assert_eq!(rebased.old_base_layers, 2);
    assert_eq!(rebased.old_top_layer, old.image.layers[1].diff_id);
    let img = &rebased.image;
    let digests = |layers: &[Layer]| layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>();
    let mut want = digests(&new.image.layers);
    want.extend(digests(&app.layers[2..]));
    assert_eq!(
        digests(&img.layers),
        want,
        "new base layers, then the app's, untouched"
    );

    let (a, r) = (
        app.config.config().clone().unwrap(),
        img.config.config().clone().unwrap(),
    );
    assert_eq!(r.entrypoint(), a.entrypoint());
    assert_eq!(r.env(), a.env());
    assert_eq!(r.user(), a.user());
    assert_eq!(r.working_dir(), a.working_dir());
    assert_eq!(img.config.created(), app.config.created());

    let l = labels(img);
    assert_eq!(l["io.kiln.base.packages"], "{\"nodejs\":\"2\"}");
    assert_eq!(l["org.opencontainers.image.title"], "node v2");
    assert!(!l.contains_key("only.in.v1"), "old base labels go: {l:?}");
    assert_eq!(
        l["io.buildpacks.build.metadata"],
        labels(&app)["io.buildpacks.build.metadata"]
    );
    let meta: Value = serde_json::from_str(&l[LIFECYCLE_METADATA]).unwrap();
    assert_eq!(
        meta["runImage"]["topLayer"],
        new.image.layers[2].diff_id.to_string()
    );
    assert_eq!(meta["runImage"]["reference"], new.digest.to_string());
    assert_eq!(meta["runImage"]["image"], new.name);
    assert_eq!(
        meta["app"],
        serde_json::from_str::<Value>(&labels(&app)[LIFECYCLE_METADATA]).unwrap()["app"]
    );

    let history = img.config.history().clone().unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[2].created_by().as_deref(), Some("base etc/kiln-v2"));
    assert!(
        history[4]
            .created_by()
            .as_deref()
            .unwrap()
            .contains("layer app")
    );
    validate(&w, img);

    // Rebasing the result onto the same base changes nothing; so does a rebase back and forth.
    let again = Rebase {
        app: img,
        new_base: &new,
        old_base: None,
        force: false,
    }
    .run()
    .unwrap();
    assert!(again.unchanged);
    let back = Rebase {
        app: img,
        new_base: &old,
        old_base: Some(&new.image),
        force: false,
    }
    .run()
    .unwrap();
    assert_eq!(
        back.image.finalize().unwrap().config_digest,
        app.finalize().unwrap().config_digest.clone(),
        "v1 → v2 → v1 gives the app's own config back"
    );
}

fn refuse(app: &Image, new: &RunImage, old: Option<&Image>, force: bool) -> RebaseError {
    Rebase {
        app,
        new_base: new,
        old_base: old,
        force,
    }
    .run()
    .map(|_| ())
    .unwrap_err()
}

#[test]
fn r17_c_another_os_architecture_or_base_id_is_refused_unless_forced() {
    let w = world();
    let old = v1(&w);
    let app = app(&w, &old);
    let arm = base(
        &w,
        "b:arm",
        &["a"],
        &[("io.buildpacks.base.id", "kiln/node")],
        "arm64",
    );
    let err = refuse(&app, &arm, None, false);
    assert!(
        matches!(err, RebaseError::BaseMismatch { .. }) && err.forcible(),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("architecture is `arm64`, the app's `amd64`"),
        "{err}"
    );
    let other = base(
        &w,
        "b:other",
        &["a"],
        &[("io.buildpacks.base.id", "kiln/java17")],
        "amd64",
    );
    let err = refuse(&app, &other, None, false);
    assert!(
        err.to_string()
            .contains("base id is `kiln/java17`, the app's `kiln/node`"),
        "{err}"
    );
    let anon = base(&w, "b:anon", &["a"], &[], "amd64");
    assert!(refuse(&app, &anon, None, false).forcible());
    let mut windows = base(
        &w,
        "b:windows",
        &["a"],
        &[("io.buildpacks.base.id", "kiln/node")],
        "amd64",
    );
    windows.image.config.set_os(Os::Windows);
    let err = refuse(&app, &windows, None, false);
    assert!(err.forcible(), "{err}");
    assert!(
        err.to_string()
            .contains("the new run image `b:windows` does not match the app's base: its OS is `windows`, the app's `linux`"),
        "{err}"
    );
    let forced = Rebase {
        app: &app,
        new_base: &other,
        old_base: None,
        force: true,
    }
    .run()
    .unwrap();
    assert_eq!(forced.image.layers.len(), 3);
}

#[test]
fn r17_a_unrebasable_unknown_and_non_prefix_images_are_refused_even_forced() {
    let w = world();
    let (old, new) = (v1(&w), v2(&w));
    let app = app(&w, &old);
    let with_label = |key: &str, value: &str| {
        let mut img = app.clone();
        let mut exec = img.config.config().clone().unwrap();
        let mut l = exec.labels().clone().unwrap();
        l.insert(key.to_owned(), value.to_owned());
        exec.set_labels(Some(l));
        img.config.set_config(Some(exec));
        img
    };
    let err = refuse(
        &with_label("io.buildpacks.rebasable", "false"),
        &new,
        None,
        true,
    );
    assert!(matches!(err, RebaseError::NotRebasable), "{err}");
    let err = refuse(&with_label(LIFECYCLE_METADATA, "{}"), &new, None, true);
    assert!(matches!(err, RebaseError::NoMetadata(_)), "{err}");
    let err = refuse(
        &with_label(LIFECYCLE_METADATA, "not json"),
        &new,
        None,
        true,
    );
    assert!(matches!(err, RebaseError::NoMetadata(_)), "{err}");
    let lying = with_label(
        LIFECYCLE_METADATA,
        &format!(
            "{{\"runImage\":{{\"topLayer\":\"{}\"}}}}",
            new.image.layers[2].diff_id
        ),
    );
    let err = refuse(&lying, &new, None, true);
    assert!(
        matches!(err, RebaseError::NotPrefix(_)) && !err.forcible(),
        "{err}"
    );
    // The old base can be read, and its layers are not the app's first ones.
    let err = refuse(&app, &new, Some(&new.image), true);
    assert!(matches!(err, RebaseError::NotBasedOn { .. }), "{err}");
    // A layer above the base that the metadata does not record.
    let mut stray = app.clone();
    stray.layers.insert(2, new.image.layers[2].clone());
    let err = refuse(&stray, &new, None, true);
    assert!(
        err.to_string().contains("not a layer the metadata records"),
        "{err}"
    );
}

#[test]
fn r17_b_a_base_whose_history_does_not_match_its_layers_is_an_error_not_a_panic() {
    let w = world();
    let old = v1(&w);
    let app = app(&w, &old);
    let mut crafted = v2(&w);
    let mut history = crafted.image.config.history().clone().unwrap();
    history.push(
        HistoryBuilder::default()
            .created_by("ghost".to_owned())
            .build()
            .unwrap(),
    );
    crafted.image.config.set_history(Some(history));
    let err = refuse(&app, &crafted, None, false);
    assert!(matches!(err, RebaseError::BadBase { .. }), "{err}");
    assert!(
        err.to_string().contains("describes 4 layers, but it has 3"),
        "{err}"
    );
    // Fewer non-empty entries than layers (one marked empty) is refused the same way.
    let mut short = v2(&w);
    let mut history = short.image.config.history().clone().unwrap();
    history[0].set_empty_layer(Some(true));
    short.image.config.set_history(Some(history));
    let err = refuse(&app, &short, None, false);
    assert!(
        err.to_string().contains("describes 2 layers, but it has 3"),
        "{err}"
    );

    // The app's own history crafted with more non-empty entries than it has layers: the
    // rebase goes on, with one plain entry per app layer, and the result is valid.
    let mut crafted_app = app.clone();
    let mut history = crafted_app.config.history().clone().unwrap();
    for _ in 0..5 {
        history.push(
            HistoryBuilder::default()
                .created_by("ghost".to_owned())
                .build()
                .unwrap(),
        );
    }
    crafted_app.config.set_history(Some(history));
    let new = v2(&w);
    let rebased = Rebase {
        app: &crafted_app,
        new_base: &new,
        old_base: Some(&old.image),
        force: false,
    }
    .run()
    .unwrap();
    let history = rebased.image.config.history().clone().unwrap();
    assert_eq!(history.len(), rebased.image.layers.len());
    assert!(
        history[3..]
            .iter()
            .all(|h| h.created_by().as_deref() == Some("kiln rebase: app layer")),
        "{history:?}"
    );
    validate(&w, &rebased.image);
}

/// An old run image, read again, that is not the bottom of the image names the first layer
/// that differs, whether it differs, runs past the image's recorded base, or stops short;
/// `--force` does not override it.
#[test]
fn r17_a_an_image_not_on_its_old_run_image_names_the_first_mismatching_layer() {
    let w = world();
    let (old, new) = (v1(&w), v2(&w));
    let app = app(&w, &old);
    let other = base(
        &w,
        "b:other",
        &["etc/other", "usr/bin/node"],
        &[("io.buildpacks.base.id", "kiln/node")],
        "amd64",
    );
    let short = base(
        &w,
        "b:short",
        &["etc/os-release"],
        &[("io.buildpacks.base.id", "kiln/node")],
        "amd64",
    );
    let id = |l: &Layer| format!("`{}`", l.diff_id);
    for (old_base, layer, image, base) in [
        (&other, 1, id(&app.layers[0]), id(&other.image.layers[0])),
        (&new, 3, id(&app.layers[2]), id(&new.image.layers[2])),
        (&short, 2, id(&app.layers[1]), "no layer".to_owned()),
    ] {
        let err = refuse(&app, &new, Some(&old_base.image), true);
        assert!(!err.forcible(), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "the image is not based on its old run image (layer {layer} mismatch: the image has {image}, the old run image {base})"
            )
        );
    }
}

/// An image in pack's shape: the older `io.buildpacks.stack.id`, a whole reference in
/// `runImage.reference`, and layers the metadata records as launcher, config and
/// process-types besides the app's. It is rebased, and pack's metadata fields survive.
#[test]
fn pack_shaped_metadata_is_understood() {
    let w = world();
    let (old, new) = (v1(&w), v2(&w));
    let mut app = app(&w, &old);
    let ids: Vec<String> = app.layers[2..]
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    let pack_meta = serde_json::json!({
        "app": [{ "sha": ids[1] }],
        "config": { "sha": ids[0] },
        "launcher": { "sha": "sha256:".to_owned() + &"0".repeat(64) },
        "buildpacks": [{ "key": "paketo-buildpacks/node-engine", "version": "1.0.0", "layers": {} }],
        "runImage": {
            "topLayer": old.image.layers[1].diff_id.to_string(),
            "reference": format!("registry.example.com/bases/node@{}", old.digest),
        },
        "stack": { "runImage": { "image": "registry.example.com/bases/node:v1" } },
    });
    let mut exec = app.config.config().clone().unwrap();
    let mut l = exec.labels().clone().unwrap();
    l.insert(LIFECYCLE_METADATA.to_owned(), pack_meta.to_string());
    l.remove("io.buildpacks.base.id");
    l.insert("io.buildpacks.stack.id".to_owned(), "kiln/node".to_owned());
    exec.set_labels(Some(l));
    app.config.set_config(Some(exec));

    let recorded = kiln_lifecycle::recorded_run_image(&app).unwrap();
    assert_eq!(
        recorded.image.as_deref(),
        Some("registry.example.com/bases/node:v1")
    );
    assert_eq!(kiln_lifecycle::base_id(&app).as_deref(), Some("kiln/node"));
    let rebased = Rebase {
        app: &app,
        new_base: &new,
        old_base: None,
        force: false,
    }
    .run()
    .unwrap();
    let meta: Value = serde_json::from_str(&labels(&rebased.image)[LIFECYCLE_METADATA]).unwrap();
    assert_eq!(meta["launcher"], pack_meta["launcher"]);
    assert_eq!(meta["buildpacks"], pack_meta["buildpacks"]);
    assert_eq!(meta["runImage"]["reference"], new.digest.to_string());
    assert_eq!(meta["stack"]["runImage"]["image"], new.name);
    validate(&w, &rebased.image);
}
