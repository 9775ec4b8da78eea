//! Rebasing an app image onto a newer run image without rebuilding it: read the app (every
//! platform of an index), choose each platform's new base, put the app's layers on it
//! ([`kiln_lifecycle::Rebase`]), and deliver the result through the same path builds take.
//! Pushed, the app's layer blobs stay where they are, the new base's are mounted from its
//! repository, only configs and manifests are uploaded, and the tag moves last, so a
//! failure or a kill leaves the old image in place.

use kiln_image::{
    ImageError, RegistrySink, Sink, fetch_remote, fetch_remote_all, layout_has, read_layout,
};
use kiln_lifecycle::{
    RebaseError, Rebased, RecordedRunImage, RunImage, base_id, host_arch, recorded_run_image,
};
use kiln_model::{Artifact, FinalImage, FinalIndex, Image, ModelError};
use kiln_oci::{Digest, Reference, ReferenceError};
use kiln_registry::Client;

use crate::deliver::{Deliver, DeliverError, sinks};
use crate::source::{ImageSource, SourceError, names_a_registry, read_image};
use crate::stream::{StreamError, newest_in_stream};
use crate::{Quiet, Store};

/// Why an app could not be rebased.
#[derive(Debug, thiserror::Error)]
pub enum RebaseAppError {
    /// The app's name is no image reference.
    #[error("`{name}` is no image reference")]
    Reference {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: ReferenceError,
    },
    /// The app could not be read.
    #[error("reading `{name}`{}", if *.from_store { " from kiln's store" } else { "" })]
    Read {
        /// The app.
        name: String,
        /// Whether it was read from kiln's store.
        from_store: bool,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// The app does not say which run image it was built on, so there is no stream to
    /// follow.
    #[error("the app does not record which run image it was built on")]
    NoRecordedBase,
    /// The app's recorded run image is neither in kiln's store nor a registry reference.
    #[error(
        "the app was built on `{image}`, which is neither in kiln's store nor a registry reference"
    )]
    UnknownBase {
        /// The recorded name.
        image: String,
        /// Why it is no reference.
        #[source]
        source: ReferenceError,
    },
    /// The new run image could not be read.
    #[error(transparent)]
    RunImage(#[from] SourceError),
    /// The recorded run image's stream has no image to rebase onto.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The rebase was refused: the new base does not fit the app.
    #[error("rebasing `{name}`")]
    Refused {
        /// The app.
        name: String,
        /// Why.
        #[source]
        source: RebaseError,
    },
    /// The rebased image could not be assembled.
    #[error(transparent)]
    Assemble(#[from] ModelError),
    /// The rebased image could not be pushed or saved.
    #[error(transparent)]
    Deliver(#[from] DeliverError),
}

/// What a rebase came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebaseResult {
    /// The app already sits on the newest base.
    UpToDate,
    /// A dry run: it would be rebased.
    WouldRebase,
    /// Rebased, and pushed or saved into kiln's store.
    Rebased {
        /// Layer bytes uploaded (nothing but configs and manifests, normally).
        uploaded_bytes: u64,
        /// Whether it went to its registry (else to kiln's store).
        pushed: bool,
    },
}

/// One app's rebase, as far as it got.
#[derive(Debug)]
pub struct RebaseOutcome {
    /// The app, as named.
    pub image: String,
    /// The base it was on (`name (sha256:…)`), when known.
    pub old_base: Option<String>,
    /// The base it goes on, when chosen.
    pub new_base: Option<String>,
    /// The rebased image, `name@digest`, when assembled.
    pub reference: Option<String>,
    /// What happened.
    pub result: Result<RebaseResult, RebaseAppError>,
}

/// The rebase of app images, one [`RebaseApp::run`] per app.
pub struct RebaseApp<'a> {
    /// Reads apps and bases, pushes results.
    pub client: &'a Client,
    /// kiln's local store: apps and bases by name, layer blobs.
    pub store: &'a Store,
    /// The new run image; else the newest image of the stream the app's base belongs to.
    pub run_image: Option<&'a ImageSource>,
    /// Rebase even when the new base does not look like the old one's stream.
    pub force: bool,
    /// Only say what would happen.
    pub dry_run: bool,
    /// Push to the app's registry (and read it there); else read and save in kiln's store.
    pub publish: bool,
}

impl RebaseApp<'_> {
    /// Rebases the app `name`, reporting how far it got whatever happens.
    pub async fn run(&self, name: &str) -> RebaseOutcome {
        let mut out = RebaseOutcome {
            image: name.to_owned(),
            old_base: None,
            new_base: None,
            reference: None,
            result: Ok(RebaseResult::UpToDate),
        };
        out.result = self.try_run(name, &mut out).await;
        out
    }

    async fn try_run(
        &self,
        name: &str,
        out: &mut RebaseOutcome,
    ) -> Result<RebaseResult, RebaseAppError> {
        let target: Reference = name.parse().map_err(|source| RebaseAppError::Reference {
            name: name.to_owned(),
            source,
        })?;
        let (apps, is_index) = self.read_app(name, &target).await?;
        let mut rebased: Vec<Rebased> = Vec::new();
        for app in &apps {
            let refused = |source| RebaseAppError::Refused {
                name: name.to_owned(),
                source,
            };
            let recorded = recorded_run_image(app).map_err(refused)?;
            let (os, arch) = (
                app.config.os().to_string(),
                app.config.architecture().to_string(),
            );
            // Independent reads: at once.
            let (new_base, old_base) = futures_util::join!(
                self.choose_base(app, &recorded, (&os, &arch)),
                self.old_base(&recorded, (&os, &arch))
            );
            let new_base = new_base?;
            out.old_base = Some(describe_old(&recorded));
            out.new_base = Some(format!("{} ({})", new_base.name, short(&new_base.digest)));
            let r = kiln_lifecycle::Rebase {
                app,
                new_base: &new_base,
                old_base: old_base.as_ref(),
                force: self.force,
            }
            .run()
            .map_err(refused)?;
            rebased.push(r);
        }
        if rebased.iter().all(|r| r.unchanged) {
            return Ok(RebaseResult::UpToDate);
        }
        let images: Vec<FinalImage> = rebased
            .iter()
            .map(|r| r.image.finalize())
            .collect::<Result<_, _>>()?;
        let index = match is_index {
            true => Some(FinalIndex::new(images.clone())?),
            false => None,
        };
        let artifact: Artifact<'_> = match &index {
            Some(i) => i.into(),
            None => (&images[0]).into(),
        };
        out.reference = Some(format!("{}@{}", target.name(), artifact.digest()));
        if self.dry_run {
            return Ok(RebaseResult::WouldRebase);
        }
        self.deliver(artifact, target, name).await
    }

    /// Pushes the rebased image to its registry, or saves it into kiln's store, by the path
    /// every image takes.
    async fn deliver(
        &self,
        artifact: Artifact<'_>,
        target: Reference,
        name: &str,
    ) -> Result<RebaseResult, RebaseAppError> {
        // A rebase changes what the tag names: no point asking whether it already does.
        let sinks: Vec<Box<dyn Sink>> = match self.publish {
            true => vec![Box::new(RegistrySink {
                client: self.client.clone(),
                target: target.clone(),
                skip_when_tagged: false,
            })],
            false => sinks(self.client, None, self.store, name, None),
        };
        let delivered = Deliver {
            client: self.client,
            blobs: self.store.blobs(),
            sinks: &sinks,
            attach: None,
        }
        .run(artifact, &Quiet)
        .await?;
        Ok(RebaseResult::Rebased {
            uploaded_bytes: delivered.push_report().map_or(0, |r| r.uploaded_bytes),
            pushed: self.publish,
        })
    }

    /// Reads the app: from kiln's store when it holds `name` and nothing is to be
    /// published, else from its registry (every platform of an index).
    async fn read_app(
        &self,
        name: &str,
        target: &Reference,
    ) -> Result<(Vec<Image>, bool), RebaseAppError> {
        let read = |from_store, source| RebaseAppError::Read {
            name: name.to_owned(),
            from_store,
            source,
        };
        if !self.publish && layout_has(self.store.dir(), name) {
            let platform = ("linux", host_arch());
            let (image, _) =
                read_layout(self.store.dir(), Some(name), platform, self.store.blobs())
                    .map_err(|e| read(true, e))?;
            return Ok((vec![image], false));
        }
        let (images, is_index) = fetch_remote_all(self.client, target)
            .await
            .map_err(|e| read(false, e))?;
        Ok((images.into_iter().map(|(i, _)| i).collect(), is_index))
    }

    /// Returns the run image to put `app` on: the one named, else the newest image of the
    /// stream its recorded run image belongs to (or that image in kiln's store).
    async fn choose_base(
        &self,
        app: &Image,
        recorded: &RecordedRunImage,
        platform: (&str, &str),
    ) -> Result<RunImage, RebaseAppError> {
        if let Some(source) = self.run_image {
            return Ok(read_image(source, "run image", self.client, self.store, platform).await?);
        }
        let Some(image) = &recorded.image else {
            return Err(RebaseAppError::NoRecordedBase);
        };
        if !names_a_registry(image) && layout_has(self.store.dir(), image) {
            let source = ImageSource::Store(image.clone());
            return Ok(read_image(&source, "run image", self.client, self.store, platform).await?);
        }
        // A registry reference, Docker Hub's short names (what pack records) included.
        let reference: Reference = image
            .parse()
            .map_err(|source| RebaseAppError::UnknownBase {
                image: image.clone(),
                source,
            })?;
        let repository = reference.with_tag("latest");
        let id = base_id(app);
        Ok(newest_in_stream(self.client, &repository, id.as_deref(), platform).await?)
    }

    /// Reads the run image the app was built on, by its recorded digest, when that still
    /// can be.
    async fn old_base(
        &self,
        recorded: &RecordedRunImage,
        (os, arch): (&str, &str),
    ) -> Option<Image> {
        let reference = recorded.reference.as_deref()?;
        let full: Reference = match reference.parse::<Digest>() {
            Ok(digest) => {
                let image = recorded.image.as_deref()?;
                // A name in kiln's store is no registry's; its old digest is gone from it.
                if !names_a_registry(image) && layout_has(self.store.dir(), image) {
                    return None;
                }
                image.parse::<Reference>().ok()?.with_digest(digest)
            }
            // pack records a whole reference (`registry/repo@sha256:…`).
            Err(_) => reference.parse().ok()?,
        };
        fetch_remote(self.client, &full, os, arch)
            .await
            .ok()
            .map(|(i, _)| i)
    }
}

fn describe_old(recorded: &RecordedRunImage) -> String {
    let name = recorded.image.as_deref().unwrap_or("?");
    match &recorded.reference {
        Some(r) => match r.parse::<Digest>() {
            Ok(d) => format!("{name} ({})", short(&d)),
            Err(_) => r.clone(),
        },
        None => name.to_owned(),
    }
}

fn short(d: &Digest) -> String {
    format!("{}:{}", d.algorithm(), &d.hex()[..12])
}
