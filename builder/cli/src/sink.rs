//! Where a finished image goes: a registry (`--publish`), kiln's local OCI layout store,
//! and optionally an OCI archive (`--output`). Shared by `kiln build` and `kiln base build`.

use std::path::Path;

use anyhow::anyhow;
use kiln_image::{
    BlobOutcome, Blobs, PushObserver, PushReport, push_image, write_archive, write_layout,
};
use kiln_model::Artifact;
use kiln_oci::Digest;
use kiln_oci::Reference;
use kiln_registry::Client;
use tokio::runtime::Runtime;

use crate::failure::{Failure, exit};
use crate::output::{PushProgress, Ui, human_bytes};

/// The destinations of one image.
pub struct Sinks<'a> {
    /// Push here, if set; otherwise save into the local layout `store_dir` as `name`.
    pub publish: Option<&'a Reference>,
    /// kiln's local OCI layout store (also the blob store).
    pub store_dir: &'a Path,
    /// The image's name in the layout and archive (as the user wrote it).
    pub name: &'a str,
    /// Also write an OCI archive here.
    pub output: Option<&'a Path>,
}

impl Sinks<'_> {
    /// Delivers `image` (one image or a multi-platform index); returns the push report when
    /// it was pushed. When it is pushed, `blobs_in` is called once all its blobs are in the
    /// registry, before its manifests go up.
    pub fn deliver<'i>(
        &self,
        runtime: &Runtime,
        client: &Client,
        image: impl Into<Artifact<'i>>,
        blobs: &Blobs,
        ui: &Ui,
        blobs_in: &(dyn Fn() + Sync),
    ) -> Result<Option<PushReport>, Failure> {
        let image = image.into();
        let export_err = |e: kiln_image::ImageError| {
            let hint = e.hint();
            Failure::new(exit::EXPORT, e).hint(hint)
        };
        let mut push = None;
        if let Some(target) = self.publish {
            ui.phase("PUSHING");
            let progress = Signalling {
                progress: ui.push_progress(),
                blobs_in,
            };
            let report = runtime
                .block_on(push_image(client, target, image, blobs, &progress))
                .map_err(|e| {
                    let hint = e.hint();
                    Failure::new(
                        exit::EXPORT,
                        anyhow!(e).context(format!("pushing `{target}`")),
                    )
                    .hint(hint)
                })?;
            ui.info(&format!(
                "uploaded {} of layers",
                human_bytes(report.uploaded_bytes)
            ));
            push = Some(report);
        } else {
            runtime
                .block_on(write_layout(self.store_dir, image, self.name, blobs))
                .map_err(export_err)?;
            let (dir, name) = (self.store_dir.display(), self.name);
            ui.info(&format!(
                "saved to the OCI layout `{dir}` as `{name}`\n  run it:  podman run --rm oci:{dir}:{name}\n  copy it: skopeo copy oci:{dir}:{name} docker://REGISTRY/REPO:TAG"
            ));
        }
        if let Some(path) = self.output {
            runtime
                .block_on(write_archive(path, image, self.name, blobs))
                .map_err(export_err)?;
            ui.info(&format!(
                "wrote OCI archive `{}` (podman load -i {})",
                path.display(),
                path.display()
            ));
        }
        Ok(push)
    }
}

/// The push progress, and a signal once every blob is in.
struct Signalling<'a> {
    progress: PushProgress,
    blobs_in: &'a (dyn Fn() + Sync),
}

impl PushObserver for Signalling<'_> {
    fn started(&self, digest: &Digest, size: u64) {
        self.progress.started(digest, size);
    }

    fn progress(&self, digest: &Digest, sent: u64) {
        self.progress.progress(digest, sent);
    }

    fn finished(&self, digest: &Digest, outcome: &BlobOutcome) {
        self.progress.finished(digest, outcome);
    }

    fn blobs_pushed(&self) {
        (self.blobs_in)();
    }
}
