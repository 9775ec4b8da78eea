//! The export phase: launch layers → deterministic layer blobs on top of the run image, and
//! the image config (entrypoint, user, working dir, env, labels).

use std::cell::RefCell;
use std::collections::BTreeMap;

use kiln_layer::{
    BaseLinks, BlobStore, Compression, HashCache, LayerBlob, LayerContents, Ownership, TarPolicy,
};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::Digest;
use kiln_oci::spec::HistoryBuilder;

use crate::base::{DEFAULT_PATH, NONROOT_ID};
use crate::epoch::rfc3339;
use crate::metadata::{LabelInputs, labels};
use crate::{BuildOutput, LaunchLayer, LayerCache, Reuse};

/// Why export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    /// Assembling the image failed.
    #[error(transparent)]
    Image(#[from] kiln_model::ModelError),
    /// The build produced nothing to run.
    #[error("the build produced no process to run")]
    NoProcess,
}

/// The run image the app goes on top of.
#[derive(Clone)]
pub struct RunImage {
    /// The image.
    pub image: Image,
    /// Its manifest digest.
    pub digest: Digest,
    /// How the user named it (or `kiln:static` for the generated base).
    pub name: String,
}

/// Facts about the source, for labels.
#[derive(Clone, Debug, Default)]
pub struct SourceFacts {
    /// Repository URL.
    pub url: Option<String>,
    /// Commit id.
    pub revision: Option<String>,
}

/// One exported launch layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportedLayer {
    /// Layer name (`workspace`, `app`).
    pub name: String,
    /// The blob.
    pub blob: LayerBlob,
    /// Whether the blob was reused from an earlier build without re-tarring.
    pub reused: bool,
    /// Files left out of the layer (sockets, FIFOs, devices), one sentence each.
    pub warnings: Vec<String>,
}

/// Turns a build's launch layers into an image on a run image.
pub struct Export<'a> {
    /// Where layer blobs go.
    pub store: &'a BlobStore,
    /// The build epoch (unix seconds): every mtime and `created`.
    pub epoch: i64,
    /// Layer compression.
    pub compression: Compression,
    /// The image's working directory, e.g. `/workspace`.
    pub workspace: &'a str,
    /// Buildpack id and version, for labels.
    pub buildpack: (&'a str, &'a str),
    /// The content hashes of files met before, so unchanged files are not read again
    /// (one per build scratch directory; the caller saves it).
    pub hashes: Option<&'a RefCell<HashCache>>,
    /// Told about every layer written (not reused), with what it holds: for a cataloger
    /// that would otherwise decompress the blob again ([`kiln_layer::write_tar`]).
    pub written: Option<&'a WrittenHook<'a>>,
    /// What the user sets on the image config.
    pub settings: &'a ImageSettings,
}

/// What the user sets on an image's config, beside (and over) what the buildpack says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// Labels, added to kiln's (which they may not replace: the caller checks).
    pub labels: BTreeMap<String, String>,
    /// Environment at launch, over the run image's and the buildpack's.
    pub env: BTreeMap<String, String>,
    /// Ports the app listens on, `8080/tcp`, as the config's `ExposedPorts`.
    pub exposed_ports: Vec<String>,
    /// The user the app runs as (`UID[:GID]`), instead of kiln's non-root 65532.
    pub user: Option<String>,
    /// The working directory, instead of the workspace (or the buildpack's).
    pub working_dir: Option<String>,
}

/// See [`Export::written`].
pub type WrittenHook<'a> = dyn Fn(&LayerBlob, &LayerContents, &TarPolicy) + Sync + 'a;

impl Export<'_> {
    /// Writes (or reuses) every launch layer and returns the app image and the layers.
    pub fn run(
        &self,
        run: &RunImage,
        output: &BuildOutput,
        source: &SourceFacts,
        cache: &mut LayerCache,
    ) -> Result<(Image, Vec<ExportedLayer>), ExportError> {
        let policy = TarPolicy {
            mtime: self.epoch.max(0) as u64,
            owner: Ownership { uid: 0, gid: 0 },
        };
        let base = base_links(self.store, &run.image.layers);
        let mut exported = Vec::new();
        for layer in &output.layers {
            exported.push(self.export_layer(layer, &policy, &base, cache)?);
        }
        let default = output
            .processes
            .iter()
            .find(|p| p.default)
            .ok_or(ExportError::NoProcess)?;
        let created = rfc3339(self.epoch);
        let app_layers: Vec<(String, Digest)> = exported
            .iter()
            .map(|l| (l.name.clone(), l.blob.diff_id.clone()))
            .collect();
        let top = run
            .image
            .layers
            .last()
            .map(|l| l.diff_id.clone())
            .unwrap_or_else(|| Digest::of(b""));
        let labels = labels(&LabelInputs {
            buildpack: self.buildpack,
            processes: &output.processes,
            app_layers: &app_layers,
            run_image: &run.name,
            run_image_digest: &run.digest,
            run_image_top_layer: &top,
            source: source.url.as_deref(),
            revision: source.revision.as_deref(),
            created: &created,
        });

        let mut config = run.image.config.clone();
        let mut exec = config.config().clone().unwrap_or_default();
        let settings = self.settings;
        let mut env = output.env.clone();
        env.extend(settings.env.clone());
        exec.set_env(Some(merge_env(
            exec.env().as_deref().unwrap_or_default(),
            &env,
        )));
        exec.set_entrypoint(Some(default.command.clone()));
        exec.set_cmd(None);
        exec.set_user(Some(
            settings
                .user
                .clone()
                .unwrap_or_else(|| format!("{NONROOT_ID}:{NONROOT_ID}")),
        ));
        exec.set_working_dir(Some(
            settings
                .working_dir
                .clone()
                .or_else(|| output.working_dir.clone())
                .unwrap_or_else(|| self.workspace.to_string()),
        ));
        if !settings.exposed_ports.is_empty() {
            let mut ports = exec.exposed_ports().clone().unwrap_or_default();
            ports.extend(settings.exposed_ports.iter().cloned());
            ports.sort();
            ports.dedup();
            exec.set_exposed_ports(Some(ports));
        }
        let mut all_labels = exec.labels().clone().unwrap_or_default();
        all_labels.extend(settings.labels.clone());
        all_labels.extend(labels);
        exec.set_labels(Some(all_labels.into_iter().collect()));
        config.set_config(Some(exec));
        config.set_created(Some(created.clone()));

        let mut history = match config.history() {
            Some(h)
                if h.iter()
                    .filter(|e| !e.empty_layer().unwrap_or(false))
                    .count()
                    == run.image.layers.len() =>
            {
                h.clone()
            }
            _ => run
                .image
                .layers
                .iter()
                .map(|_| history_entry(&created, &format!("kiln: run image {}", run.name)))
                .collect(),
        };
        let mut layers = run.image.layers.clone();
        for l in &exported {
            history.push(history_entry(
                &created,
                &format!("kiln: {} layer {}", self.buildpack.0, l.name),
            ));
            layers.push(Layer {
                media_type: l.blob.media_type.to_string(),
                digest: l.blob.digest.clone(),
                size: l.blob.size,
                diff_id: l.blob.diff_id.clone(),
                origin: Origin::Local,
            });
        }
        config.set_history(Some(history));
        Ok((Image { config, layers }, exported))
    }

    fn export_layer(
        &self,
        layer: &LaunchLayer,
        policy: &TarPolicy,
        base: &BaseLinks,
        cache: &mut LayerCache,
    ) -> Result<ExportedLayer, ExportError> {
        let done = |blob, reused, warnings| ExportedLayer {
            name: layer.name.clone(),
            blob,
            reused,
            warnings,
        };
        // A buildpack's key stands for the directory's contents: the blob written for it
        // is reused without walking, let alone reading, the directory.
        let keyed = layer
            .cache_key
            .as_ref()
            .map(|key| self.key_fingerprint(&layer.name, key, policy, base));
        let mut warnings: Vec<String> = Vec::new();
        let mut note = |reuse: Reuse| match reuse {
            Reuse::Discarded(rotten) => {
                warnings.push(format!(
                    "the stored blob `{}` of layer `{}` no longer matched its digest: kiln removed it and wrote the layer again",
                    rotten.digest, layer.name
                ));
                None
            }
            other => other.hit(),
        };
        if let Some(blob) = keyed.as_ref().and_then(|k| note(cache.get(k, self.store))) {
            return Ok(done(blob, true, Vec::new()));
        }
        let mut contents = LayerContents::new();
        let except: Vec<&str> = layer.except.iter().map(String::as_str).collect();
        contents.add_tree_except(&layer.dir, &layer.prefix, &except)?;
        // App files for `/lib/…` go to `usr/lib/…` on a merged-/usr base: a `lib/`
        // directory entry would replace the base's `lib -> usr/lib` link (W08).
        contents.place_on(base)?;
        let mut hashes = self.hashes.map(RefCell::borrow_mut);
        let fingerprint =
            contents.fingerprint_with(policy, self.compression, hashes.as_deref_mut())?;
        let (blob, reused) = match note(cache.get(&fingerprint, self.store)) {
            Some(blob) => (blob, true),
            None => {
                let blob =
                    kiln_layer::write_layer(&contents, policy, self.compression, self.store)?;
                cache.insert(&fingerprint, blob.clone());
                if let Some(written) = self.written {
                    written(&blob, &contents, policy);
                }
                (blob, false)
            }
        };
        warnings.extend(contents.warnings().iter().map(ToString::to_string));
        if let Some(k) = &keyed {
            cache.insert(k, blob.clone());
        }
        Ok(done(blob, reused, warnings))
    }

    /// Returns the reuse-index key of a layer the buildpack keyed itself: the key, the
    /// layer's name, the tar policy and compression, kiln's version (which fixes the tar
    /// format and the compression levels), and the run image's symlinks (which decide
    /// where paths land).
    fn key_fingerprint(
        &self,
        name: &str,
        key: &str,
        policy: &TarPolicy,
        base: &BaseLinks,
    ) -> Digest {
        Digest::of(
            format!(
                "kiln {} buildpack layer key\0{}\0{name}\0{key}\0{}\0{}:{}\0{}\0{}",
                env!("CARGO_PKG_VERSION"),
                self.buildpack.0,
                policy.mtime,
                policy.owner.uid,
                policy.owner.gid,
                self.compression.as_str(),
                base.digest()
            )
            .as_bytes(),
        )
    }
}

fn history_entry(created: &str, by: &str) -> kiln_oci::spec::History {
    HistoryBuilder::default()
        .created(created.to_string())
        .created_by(by.to_string())
        .build()
        .expect("history fields are valid")
}

/// Returns the base env with `extra` set on top, `PATH` defaulted, sorted by name so the
/// config does not depend on map order.
fn merge_env(base: &[String], extra: &BTreeMap<String, String>) -> Vec<String> {
    let mut map: BTreeMap<String, String> = base
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    map.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.to_string());
    for (k, v) in extra {
        map.insert(k.clone(), v.clone());
    }
    map.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Returns the symlinks of the file system of an image with `layers` (the run image's,
/// RELIABILITY.md W08): read from its layers in `store`, and kept there under the chain of
/// their diffIDs so that no build reads them again. Layers the store lacks (a run image
/// only a registry has) or cannot read make the set incomplete, and then app directories
/// where bases usually have links are refused rather than guessed at.
pub fn base_links(store: &BlobStore, layers: &[Layer]) -> BaseLinks {
    let mut chain = String::from("kiln base links\0");
    for l in layers {
        chain.push_str(&l.diff_id.to_string());
        chain.push('\0');
    }
    let saved = store
        .root()
        .join("kiln-base-links")
        .join(Digest::of(chain.as_bytes()).hex());
    if let Some(links) = BaseLinks::load(&saved) {
        return links;
    }
    let mut links = BaseLinks::new();
    for layer in layers {
        let read = std::fs::File::open(store.path(&layer.digest))
            .map(std::io::BufReader::new)
            .ok()
            .and_then(|file| {
                let media = layer.media_type.as_str();
                if media.ends_with("gzip") {
                    Compression::Gzip.decoder(file).ok()
                } else if media.ends_with("zstd") {
                    Compression::Zstd.decoder(file).ok()
                } else if media.ends_with(".tar") {
                    Some(Box::new(file) as Box<dyn std::io::Read>)
                } else {
                    None
                }
            })
            .map(|tar| links.add_layer(tar));
        if !matches!(read, Some(Ok(()))) {
            links.mark_incomplete();
        }
    }
    // Only a cache: a build that cannot keep it just reads the layers next time.
    let _ = links.save(&saved);
    links
}
