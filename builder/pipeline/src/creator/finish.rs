//! The creator's last steps: export, attest and deliver, and the cache image's push beside
//! the image's own.

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use kiln_image::{LayoutSink, RegistrySink, Sink};
use kiln_layer::{HashCache, LayerBlob, LayerContents, TarPolicy};
use kiln_lifecycle::{
    BuildResult, Export, ExportedLayer, LayerCache, RunImage, SourceFacts, WrittenHook,
};
use kiln_model::{Artifact, FinalImage};
use kiln_oci::{Digest, Reference};

use super::{CreateError, Creator, Detected, WORKSPACE};
use crate::attest::{
    Attest, Attestations, BuildProvenance, SupplyReport, catalog_written, provenance_statement,
};
use crate::deliver::{Deliver, Delivered, sinks};
use crate::restore;
use crate::{Progress, human_bytes};

/// A cache image push going on beside the build's own, on a thread of its own.
pub(super) type CachePush<'r> = (
    &'r Reference,
    std::thread::JoinHandle<Result<kiln_image::PushReport, String>>,
);

impl Creator<'_> {
    /// Writes (or reuses) the launch layers and assembles the image over `run`; given the
    /// buildpack's cache dir, starts the cache image's push, when there is one.
    pub(super) fn export(
        &self,
        detected: &Detected<'_>,
        run: &RunImage,
        built: &BuildResult,
        buildpack_cache: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<(FinalImage, Vec<ExportedLayer>, Option<CachePush<'_>>), CreateError> {
        progress.phase("EXPORTING");
        let mut index = LayerCache::open(&self.cache_dir.join("layers.json"));
        let facts = SourceFacts {
            url: detected.git.remote.clone(),
            revision: detected.git.revision.clone(),
        };
        let hashes = RefCell::new(HashCache::open(&built.work_dir.join("file.hashes")));
        // New layers are cataloged for the SBOM as they are written, from their files.
        let catalog = |blob: &LayerBlob, contents: &LayerContents, policy: &TarPolicy| {
            catalog_written(&self.cache_dir, blob, contents, policy);
        };
        let (image, layers) = Export {
            store: self.store.blobs().store(),
            epoch: detected.epoch,
            compression: self.compression,
            workspace: WORKSPACE,
            buildpack: (detected.buildpack.id(), env!("CARGO_PKG_VERSION")),
            hashes: Some(&hashes),
            written: self.sbom.then_some(&catalog as &WrittenHook),
            settings: &self.image,
        }
        .run(run, &built.output, &facts, &mut index)?;
        let hashes = hashes.into_inner();
        let (known, read) = hashes.counts();
        progress.debug(&format!(
            "layer files: {known} known by their stat, {read} read to hash"
        ));
        if let Err(e) = hashes.save() {
            progress.debug(&format!("could not save the file hashes: {e}"));
        }
        // The cache image goes out beside the app image, not after it.
        let cache_image = self.cache_image.as_ref().zip(buildpack_cache);
        let cache_push = cache_image.and_then(|(target, buildpack_cache)| {
            let blobs = self.store.blobs();
            let buildpack = detected.buildpack.id();
            let image = restore::pack(
                buildpack_cache,
                buildpack,
                blobs,
                self.compression,
                &mut index,
                progress,
            )?;
            let handle = self.session.runtime().handle().clone();
            let (client, blobs, to) =
                (self.session.client().clone(), blobs.clone(), target.clone());
            let thread = std::thread::spawn(move || {
                handle.block_on(restore::push(client, blobs, to, image))
            });
            Some((target, thread))
        });
        if let Err(e) = index.save() {
            progress.debug(&format!("could not save the layer cache index: {e}"));
        }
        for l in &layers {
            for w in &l.warnings {
                progress.warn(&format!("layer {}: {w}", l.name));
            }
            let how = if l.reused { "reused" } else { "written" };
            progress.info(&format!(
                "layer {} {} ({}, {how})",
                l.name,
                l.blob.digest,
                human_bytes(l.blob.size)
            ));
        }
        Ok((image.finalize()?, layers, cache_push))
    }

    /// Makes the SBOM of each image of `artifact`, its provenance (when pushed) and its
    /// signatures.
    pub(super) fn attest(
        &self,
        artifact: Artifact<'_>,
        detected: &Detected<'_>,
        built: &BuildResult,
        started: Instant,
        progress: &dyn Progress,
    ) -> Result<Attestations, CreateError> {
        let provenance = self.provenance.as_ref().filter(|_| self.publish);
        let run_image = &detected.runs[0].1.name;
        let statement = |digest: &Digest, base: Option<&RunImage>| {
            let p = provenance?;
            Some(provenance_statement(&BuildProvenance {
                builder_id: &p.builder_id,
                target: &self.target,
                digest,
                buildpack: detected.buildpack.id(),
                run_image,
                base,
                git: &detected.git,
                process: self.process.as_deref(),
                env_names: &p.env_names,
                cache_image: self.cache_image.as_ref(),
                compression: self.compression,
                started: p.times.then_some(started),
            }))
        };
        // An index's images each get their own provenance, naming their platform's base.
        let (top, image_statements) = match artifact {
            Artifact::Image(_) => (
                statement(artifact.digest(), Some(&detected.runs[0].1)),
                Vec::new(),
            ),
            Artifact::Index(_) => {
                let each = artifact
                    .images()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, image)| {
                        let digest = &image.manifest_digest;
                        Some((
                            digest.clone(),
                            statement(digest, Some(&detected.runs[i].1))?,
                        ))
                    })
                    .collect();
                (statement(artifact.digest(), None), each)
            }
        };
        let attest = Attest {
            blobs: self.store.blobs(),
            cache_dir: &self.cache_dir,
            sbom: self.sbom,
            sbom_dir: self.sbom_dir.as_deref(),
            name: &self.target.name(),
            declared: &built.output.packages,
            created: detected.epoch,
            key: self.sign_key.filter(|_| self.publish),
            target: Some(&self.target),
            statement: top,
            image_statements,
        };
        Ok(self.session.block_on(attest.run(artifact, progress))?)
    }

    /// Pushes the image (with its attestations) or saves it into kiln's store, and writes
    /// the archive.
    pub(super) fn deliver(
        &self,
        artifact: Artifact<'_>,
        attestations: Attestations,
        progress: &dyn Progress,
    ) -> Result<(Delivered, SupplyReport), CreateError> {
        let mut sinks = sinks(
            self.session.client(),
            self.publish.then_some(&self.target),
            self.store,
            &self.name,
            self.archive.as_deref(),
        );
        // Each further tag right after the first: the same manifest, a tag at a time.
        let also = self.also_tags.iter().map(|(tag, name)| -> Box<dyn Sink> {
            match self.publish {
                true => Box::new(RegistrySink {
                    client: self.session.client().clone(),
                    target: tag.clone(),
                    skip_when_tagged: true,
                }),
                false => Box::new(LayoutSink {
                    dir: self.store.dir().to_path_buf(),
                    name: name.clone(),
                }),
            }
        });
        sinks.splice(1..1, also);
        let attach = self.publish.then_some((&self.target, &attestations));
        let delivered = self.session.block_on(
            Deliver {
                client: self.session.client(),
                blobs: self.store.blobs(),
                sinks: &sinks,
                attach,
            }
            .run(artifact, progress),
        )?;
        let mut supply = attestations.report;
        if let Some(attached) = &delivered.attached {
            supply.record(attached.clone());
        }
        for (digest, attached) in &supply.signatures {
            progress.info(&format!("signed {digest} ({})", attached.tag));
        }
        Ok((delivered, supply))
    }
}
