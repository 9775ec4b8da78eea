//! The rebase phase: put an app image's layers on another run image, reading what the CNB
//! `io.buildpacks.lifecycle.metadata` label records of the old one
//! (<https://github.com/buildpacks/spec/blob/main/platform.md#iobuildpackslifecyclemetadata-json>).
//! Pure: it works on images already read; the caller reads them and pushes the result, so
//! no layer bytes move (the manifest names the same blobs).

use std::collections::{BTreeMap, BTreeSet};

use kiln_model::{Image, Layer};
use kiln_oci::Digest;
use kiln_oci::spec::{History, HistoryBuilder};
use serde_json::Value;

use crate::RunImage;

/// The label CNB platforms record the build in.
pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
/// The label an image sets to `false` to forbid rebasing.
pub const REBASABLE: &str = "io.buildpacks.rebasable";
/// The labels naming a base's identity: kiln and current CNB (`base`), older CNB (`stack`).
const BASE_ID_LABELS: &[&str] = &["io.buildpacks.base.id", "io.buildpacks.stack.id"];
/// Label prefixes that belong to the base, not the app.
const BASE_LABEL_PREFIXES: &[&str] = &[
    "io.buildpacks.base.",
    "io.buildpacks.stack.",
    "io.kiln.base.",
];
/// Labels the build wrote for the app: they stay the app's whatever the bases say.
const APP_LABELS: &[&str] = &[
    "io.buildpacks.build.metadata",
    LIFECYCLE_METADATA,
    "io.buildpacks.project.metadata",
    "org.opencontainers.image.created",
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
];

/// Why an image cannot be rebased.
#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    /// The image says it must not be rebased (`io.buildpacks.rebasable=false`).
    #[error("the image is marked `io.buildpacks.rebasable=false`: its layers depend on its base")]
    NotRebasable,
    /// The image has no usable lifecycle metadata.
    #[error(
        "the image has no usable `io.buildpacks.lifecycle.metadata` label ({0}): it was not built by kiln or a CNB platform"
    )]
    NoMetadata(String),
    /// The layers the metadata says are the base's are not a prefix of the image.
    #[error("the recorded base layers are not a prefix of the image: {0}")]
    NotPrefix(String),
    /// The old run image, read again, is not the bottom of the image: its layer `layer`
    /// (counted from 1 at the bottom) differs from the image's.
    #[error(
        "the image is not based on its old run image (layer {layer} mismatch: the image has {image}, the old run image {base})"
    )]
    NotBasedOn {
        /// The first layer that differs, counted from 1 at the bottom.
        layer: usize,
        /// The image's layer there (`` `sha256:…` `` or `no layer`).
        image: String,
        /// The old run image's layer there (`` `sha256:…` `` or `no layer`).
        base: String,
    },
    /// The new run image is not the same kind of base (OS, architecture, base id).
    #[error("the new run image `{name}` does not match the app's base: {why}")]
    BaseMismatch {
        /// The new run image.
        name: String,
        /// What differs.
        why: String,
    },
    /// The new run image itself is malformed.
    #[error("the new run image `{name}` is malformed: {why}")]
    BadBase {
        /// The new run image.
        name: String,
        /// What is wrong.
        why: String,
    },
}

impl RebaseError {
    /// Returns whether `--force` may override this refusal (only the new base's identity).
    pub fn forcible(&self) -> bool {
        matches!(self, Self::BaseMismatch { .. })
    }
}

/// What the app image records of the run image it was built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRunImage {
    /// `runImage.topLayer`: the diffID of the base's top layer.
    pub top_layer: Digest,
    /// `runImage.reference`: the base's manifest digest (or a full reference), if recorded.
    pub reference: Option<String>,
    /// `runImage.image`: the base's name as the build named it, if recorded.
    pub image: Option<String>,
}

/// Returns the run image the app records, or why it cannot be rebased at all.
pub fn recorded_run_image(app: &Image) -> Result<RecordedRunImage, RebaseError> {
    let labels = labels_of(app);
    if labels.get(REBASABLE).is_some_and(|v| v.trim() == "false") {
        return Err(RebaseError::NotRebasable);
    }
    let meta = metadata(&labels)?;
    let run = &meta["runImage"];
    let top_layer = run["topLayer"]
        .as_str()
        .ok_or_else(|| RebaseError::NoMetadata("no `runImage.topLayer`".into()))?
        .parse()
        .map_err(|e| RebaseError::NoMetadata(format!("`runImage.topLayer`: {e}")))?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(RecordedRunImage {
        top_layer,
        reference: text(&run["reference"]),
        image: text(&run["image"]).or_else(|| text(&meta["stack"]["runImage"]["image"])),
    })
}

/// Returns the base id an image's labels give (`io.buildpacks.base.id`, or the older
/// `io.buildpacks.stack.id`).
pub fn base_id(image: &Image) -> Option<String> {
    let labels = labels_of(image);
    BASE_ID_LABELS
        .iter()
        .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
}

/// The inputs of one rebase.
pub struct Rebase<'a> {
    /// The app image (its layers' blobs stay where they are).
    pub app: &'a Image,
    /// The run image to put it on.
    pub new_base: &'a RunImage,
    /// The run image it was built on, when it can still be read: its layers are then
    /// checked to be the app's prefix, and its labels told from the app's.
    pub old_base: Option<&'a Image>,
    /// Skip the new base's identity checks (OS, architecture, base id).
    pub force: bool,
}

/// A rebased image and what changed.
#[derive(Clone, Debug)]
pub struct Rebased {
    /// The new image: the new base's layers, then the app's.
    pub image: Image,
    /// The old base's top layer diffID.
    pub old_top_layer: Digest,
    /// The old base's recorded reference.
    pub old_reference: Option<String>,
    /// How many of the app image's layers were the old base's.
    pub old_base_layers: usize,
    /// Whether the image already was on the new base (same layers): nothing to push.
    pub unchanged: bool,
}

impl Rebase<'_> {
    /// Checks everything, then returns the app on the new base: config, entrypoint, env,
    /// user and `created` of the app; the base's labels and history refreshed; the
    /// lifecycle metadata naming the new base.
    pub fn run(&self) -> Result<Rebased, RebaseError> {
        let recorded = recorded_run_image(self.app)?;
        let app_ids: Vec<&Digest> = self.app.layers.iter().map(|l| &l.diff_id).collect();
        let top = app_ids
            .iter()
            .position(|d| **d == recorded.top_layer)
            .ok_or_else(|| {
                RebaseError::NotPrefix(format!(
                    "the recorded top layer `{}` is not one of the image's layers",
                    recorded.top_layer
                ))
            })?;
        let base_count = top + 1;
        if let Some(old) = self.old_base {
            check_based_on(&old.layers, &self.app.layers, base_count)?;
        }
        let labels = labels_of(self.app);
        let app_shas = recorded_layer_shas(&metadata(&labels)?);
        if let Some(stray) = app_ids[base_count..]
            .iter()
            .find(|d| !app_shas.is_empty() && !app_shas.contains(&d.to_string()))
        {
            return Err(RebaseError::NotPrefix(format!(
                "layer `{stray}` above the base is not a layer the metadata records"
            )));
        }
        if !self.force {
            self.check_identity()?;
        }
        let base_history = base_history(self.new_base)?;
        let new_top = self
            .new_base
            .image
            .layers
            .last()
            .map(|l| l.diff_id.clone())
            .ok_or_else(|| RebaseError::BadBase {
                name: self.new_base.name.clone(),
                why: "it has no layers".into(),
            })?;

        let mut config = self.app.config.clone();
        let app_layers = &self.app.layers[base_count..];
        let mut history = base_history;
        history.extend(app_history(self.app, base_count, app_layers.len()));
        config.set_history(Some(history));
        let mut exec = config.config().clone().unwrap_or_default();
        let new_labels = self.labels(labels, &new_top)?;
        exec.set_labels(Some(new_labels.into_iter().collect()));
        config.set_config(Some(exec));
        let layers: Vec<Layer> = self
            .new_base
            .image
            .layers
            .iter()
            .chain(app_layers)
            .cloned()
            .collect();
        let unchanged = layers.iter().map(|l| &l.digest).eq(self
            .app
            .layers
            .iter()
            .map(|l| &l.digest))
            && recorded.reference.as_deref() == Some(&self.new_base.digest.to_string());
        Ok(Rebased {
            image: Image { config, layers },
            old_top_layer: recorded.top_layer,
            old_reference: recorded.reference,
            old_base_layers: base_count,
            unchanged,
        })
    }

    fn check_identity(&self) -> Result<(), RebaseError> {
        let (app, base) = (&self.app.config, &self.new_base.image.config);
        let mismatch = |why: String| RebaseError::BaseMismatch {
            name: self.new_base.name.clone(),
            why,
        };
        if app.os() != base.os() {
            return Err(mismatch(format!(
                "its OS is `{}`, the app's `{}`",
                base.os(),
                app.os()
            )));
        }
        if app.architecture() != base.architecture() || app.variant() != base.variant() {
            let arch = |c: &kiln_oci::spec::ImageConfiguration| match c.variant() {
                Some(v) => format!("{}/{v}", c.architecture()),
                None => c.architecture().to_string(),
            };
            return Err(mismatch(format!(
                "its architecture is `{}`, the app's `{}`",
                arch(base),
                arch(app)
            )));
        }
        match (base_id(self.app), base_id(&self.new_base.image)) {
            (Some(a), Some(b)) if a != b => {
                Err(mismatch(format!("its base id is `{b}`, the app's `{a}`")))
            }
            (Some(a), None) => Err(mismatch(format!("it has no base id; the app's is `{a}`"))),
            _ => Ok(()),
        }
    }

    /// Returns the app's labels with the old base's replaced by the new base's and the
    /// lifecycle metadata naming the new base.
    fn labels(
        &self,
        mut labels: BTreeMap<String, String>,
        new_top: &Digest,
    ) -> Result<BTreeMap<String, String>, RebaseError> {
        let new_base = labels_of(&self.new_base.image);
        let old_base = self.old_base.map(labels_of);
        let from_base = |key: &str| match &old_base {
            Some(old) => old.contains_key(key),
            None => {
                new_base.contains_key(key) || BASE_LABEL_PREFIXES.iter().any(|p| key.starts_with(p))
            }
        };
        labels.retain(|k, _| APP_LABELS.contains(&k.as_str()) || !from_base(k));
        for (k, v) in new_base {
            if !APP_LABELS.contains(&k.as_str()) {
                labels.insert(k, v);
            }
        }
        let mut meta = metadata(&labels)?;
        let run = &mut meta["runImage"];
        run["topLayer"] = Value::String(new_top.to_string());
        run["reference"] = Value::String(self.new_base.digest.to_string());
        run["image"] = Value::String(self.new_base.name.clone());
        if meta["stack"]["runImage"].is_object() {
            meta["stack"]["runImage"]["image"] = Value::String(self.new_base.name.clone());
        }
        labels.insert(LIFECYCLE_METADATA.to_owned(), meta.to_string());
        Ok(labels)
    }
}

/// Checks that the old run image's layers are exactly the image's first `base_count` (up
/// to the recorded top layer), by diffID; names the first that differs.
fn check_based_on(old: &[Layer], app: &[Layer], base_count: usize) -> Result<(), RebaseError> {
    let at = |layers: &[Layer], i: usize| {
        layers
            .get(i)
            .map_or_else(|| "no layer".to_owned(), |l| format!("`{}`", l.diff_id))
    };
    let differs = |i: usize| {
        i >= base_count || old.get(i).map(|l| &l.diff_id) != app.get(i).map(|l| &l.diff_id)
    };
    match (0..old.len().max(base_count)).find(|&i| differs(i)) {
        None => Ok(()),
        Some(i) => Err(RebaseError::NotBasedOn {
            layer: i + 1,
            image: at(app, i),
            base: at(old, i),
        }),
    }
}

fn labels_of(image: &Image) -> BTreeMap<String, String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn metadata(labels: &BTreeMap<String, String>) -> Result<Value, RebaseError> {
    let text = labels
        .get(LIFECYCLE_METADATA)
        .ok_or_else(|| RebaseError::NoMetadata("the label is missing".into()))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| RebaseError::NoMetadata(format!("not JSON: {e}")))?;
    if !value["runImage"].is_object() {
        return Err(RebaseError::NoMetadata("no `runImage`".into()));
    }
    Ok(value)
}

/// Returns every layer diffID the metadata records outside `runImage` and `stack`: the app
/// layers, buildpack layers, and pack's launcher, config, process-types and SBOM layers.
fn recorded_layer_shas(meta: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("runImage" | "stack", _) => {}
                        ("sha", Value::String(s)) => {
                            out.insert(s.clone());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(meta, &mut out);
    out
}

/// Returns the new base's history, checked against its layers: one non-empty entry per
/// layer (a base without history gets an entry per layer).
fn base_history(base: &RunImage) -> Result<Vec<History>, RebaseError> {
    let layers = base.image.layers.len();
    match base.image.config.history() {
        Some(h) if !h.is_empty() => {
            let non_empty = h
                .iter()
                .filter(|e| !e.empty_layer().unwrap_or(false))
                .count();
            if non_empty != layers {
                return Err(RebaseError::BadBase {
                    name: base.name.clone(),
                    why: format!("its history describes {non_empty} layers, but it has {layers}"),
                });
            }
            Ok(h.clone())
        }
        _ => Ok((0..layers)
            .map(|_| entry("kiln rebase: run image layer"))
            .collect()),
    }
}

/// Returns the app's history entries above its old base: those after the base's
/// `base_layers` non-empty entries, or one entry per app layer when the history does not
/// add up.
fn app_history(app: &Image, base_layers: usize, app_layers: usize) -> Vec<History> {
    let history = app.config.history().clone().unwrap_or_default();
    let mut seen = 0;
    let mut tail = Vec::new();
    for e in history {
        let empty = e.empty_layer().unwrap_or(false);
        if seen >= base_layers {
            tail.push(e);
        } else if !empty {
            seen += 1;
        }
    }
    let counted = tail
        .iter()
        .filter(|e| !e.empty_layer().unwrap_or(false))
        .count();
    if seen == base_layers && counted == app_layers {
        tail
    } else {
        (0..app_layers)
            .map(|_| entry("kiln rebase: app layer"))
            .collect()
    }
}

fn entry(by: &str) -> History {
    HistoryBuilder::default()
        .created_by(by.to_owned())
        .build()
        .expect("history fields are valid")
}
