//! Where a finished image goes: one small trait, [`Sink`], and its implementations side by
//! side, as go-containerregistry's `remote.Write`, `layout.Write` and `tarball.Write` are:
//! a registry repository ([`RegistrySink`]), an OCI image layout ([`LayoutSink`]) and an
//! OCI archive ([`ArchiveSink`]).

use std::fmt;
use std::path::{Path, PathBuf};

use futures_util::future::LocalBoxFuture;
use kiln_model::Artifact;
use kiln_oci::Reference;
use kiln_registry::Client;

use crate::{
    Blobs, ImageError, PushObserver, PushReport, already_tagged, push_image, write_archive,
    write_layout,
};

/// A destination of finished images. Its future is not `Send` (the registry push holds
/// borrowed state across awaits): drive it with `block_on` or on a local set, as the
/// pipeline does.
pub trait Sink: fmt::Display + Send + Sync {
    /// Writes `artifact` (an image or a multi-platform index), its layer blobs resolved
    /// through `blobs`. `observer` hears about each blob and, once every blob is in, before
    /// any manifest: attachments that must follow the image's blobs wait for that.
    fn write<'a>(
        &'a self,
        artifact: Artifact<'a>,
        blobs: &'a Blobs,
        observer: &'a dyn PushObserver,
    ) -> LocalBoxFuture<'a, Result<Written, ImageError>>;

    /// Returns where the sink writes, for whoever tells the user.
    fn destination(&self) -> Destination<'_>;
}

/// Where a sink writes.
#[derive(Clone, Copy, Debug)]
pub enum Destination<'a> {
    /// A registry repository and tag.
    Registry(&'a Reference),
    /// An OCI image layout directory, and the name the artifact gets in it.
    Layout {
        /// The layout directory.
        dir: &'a Path,
        /// The artifact's `org.opencontainers.image.ref.name`.
        name: &'a str,
    },
    /// An OCI archive file, and the name the artifact gets in it.
    Archive {
        /// The archive file.
        path: &'a Path,
        /// The artifact's name inside.
        name: &'a str,
    },
}

/// What a sink did.
#[derive(Clone, Debug)]
pub enum Written {
    /// Pushed to a registry, with what the push did.
    Pushed(PushReport),
    /// Written to a file or directory.
    Saved,
}

impl Written {
    /// Returns the push report, when the artifact was pushed.
    pub fn push_report(&self) -> Option<&PushReport> {
        match self {
            Self::Pushed(report) => Some(report),
            Self::Saved => None,
        }
    }
}

/// A registry repository: blobs first (skipped when there, mounted from another repository
/// of the registry, else uploaded), manifests next, the tag last ([`push_image`]).
pub struct RegistrySink {
    /// The client to push with.
    pub client: Client,
    /// Where to: the repository and tag.
    pub target: Reference,
    /// First ask whether the tag already names the artifact, and send nothing if so
    /// ([`already_tagged`]: one `HEAD`, which a push known to change the tag can skip).
    pub skip_when_tagged: bool,
}

impl Sink for RegistrySink {
    fn write<'a>(
        &'a self,
        artifact: Artifact<'a>,
        blobs: &'a Blobs,
        observer: &'a dyn PushObserver,
    ) -> LocalBoxFuture<'a, Result<Written, ImageError>> {
        Box::pin(async move {
            if self.skip_when_tagged
                && let Some(report) = already_tagged(&self.client, &self.target, artifact).await
            {
                observer.blobs_pushed();
                return Ok(Written::Pushed(report));
            }
            push_image(&self.client, &self.target, artifact, blobs, observer)
                .await
                .map(Written::Pushed)
        })
    }

    fn destination(&self) -> Destination<'_> {
        Destination::Registry(&self.target)
    }
}

impl fmt::Display for RegistrySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)
    }
}

/// An OCI image layout directory, the artifact named `name` in its `index.json` (replacing
/// an earlier one of that name), blobs hard-linked from the store where they can be
/// ([`write_layout`]).
pub struct LayoutSink {
    /// The layout directory.
    pub dir: PathBuf,
    /// The `org.opencontainers.image.ref.name` it gets.
    pub name: String,
}

impl Sink for LayoutSink {
    fn write<'a>(
        &'a self,
        artifact: Artifact<'a>,
        blobs: &'a Blobs,
        observer: &'a dyn PushObserver,
    ) -> LocalBoxFuture<'a, Result<Written, ImageError>> {
        Box::pin(async move {
            write_layout(&self.dir, artifact, &self.name, blobs).await?;
            observer.blobs_pushed();
            Ok(Written::Saved)
        })
    }

    fn destination(&self) -> Destination<'_> {
        Destination::Layout {
            dir: &self.dir,
            name: &self.name,
        }
    }
}

impl fmt::Display for LayoutSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci:{}:{}", self.dir.display(), self.name)
    }
}

/// An OCI archive: a tar of a layout holding just the artifact, named `name`, as `podman
/// load` and `skopeo copy oci-archive:` read it ([`write_archive`]).
pub struct ArchiveSink {
    /// The archive file.
    pub path: PathBuf,
    /// The name the artifact gets inside.
    pub name: String,
}

impl Sink for ArchiveSink {
    fn write<'a>(
        &'a self,
        artifact: Artifact<'a>,
        blobs: &'a Blobs,
        observer: &'a dyn PushObserver,
    ) -> LocalBoxFuture<'a, Result<Written, ImageError>> {
        Box::pin(async move {
            write_archive(&self.path, artifact, &self.name, blobs).await?;
            observer.blobs_pushed();
            Ok(Written::Saved)
        })
    }

    fn destination(&self) -> Destination<'_> {
        Destination::Archive {
            path: &self.path,
            name: &self.name,
        }
    }
}

impl fmt::Display for ArchiveSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci-archive:{}", self.path.display())
    }
}
