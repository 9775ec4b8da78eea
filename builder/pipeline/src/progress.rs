//! What the pipeline tells whoever runs it, as it goes: the CLI renders it; a library user
//! may ignore it ([`Quiet`]).

use kiln_image::{Destination, PushObserver, Written};

/// Receives what the pipeline has to say. Every method does nothing unless implemented,
/// except those that describe an event in words, which pass it to [`Progress::info`].
pub trait Progress: Sync {
    /// A phase begins (`DETECTING`, `BUILDING`, `EXPORTING`, ...).
    fn phase(&self, _name: &str) {}
    /// Something worth a line: what was detected, which run image, each layer.
    fn info(&self, _line: &str) {}
    /// Something the user should know even when asking for quiet (a file left out of a
    /// layer, a cache that could not be used).
    fn warn(&self, _line: &str) {}
    /// A detail for the curious.
    fn debug(&self, _line: &str) {}
    /// A line of a toolchain's output.
    fn toolchain(&self, _line: &str) {}
    /// How far the current phase is: `done` of its `total` items (packages fetched).
    fn count(&self, _done: u64, _total: u64) {}
    /// Returns what hears about each blob of a push.
    fn push_observer(&self) -> Box<dyn PushObserver + '_> {
        Box::new(())
    }
    /// An artifact was written to `destination`.
    fn delivered(&self, destination: Destination<'_>, written: &Written) {
        let line = match (destination, written) {
            (Destination::Registry(target), Written::Pushed(report)) => format!(
                "pushed {target} ({} bytes of layers uploaded)",
                report.uploaded_bytes
            ),
            (Destination::Layout { dir, name }, _) => {
                format!("saved to the OCI layout `{}` as `{name}`", dir.display())
            }
            (Destination::Archive { path, .. }, _) => {
                format!("wrote OCI archive `{}`", path.display())
            }
            (Destination::Registry(target), Written::Saved) => format!("wrote {target}"),
        };
        self.info(&line);
    }
    /// The stack's curated run image `curated` is not in kiln's store, and the app (a
    /// static binary) goes on kiln's minimal generated base instead.
    fn generated_base(&self, curated: &str) {
        self.info(&format!(
            "the curated base `{curated}` is not in kiln's store; using kiln's minimal generated base"
        ));
    }
}

/// Says nothing.
pub struct Quiet;

impl Progress for Quiet {}
