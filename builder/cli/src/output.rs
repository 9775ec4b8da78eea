//! What kiln prints: phase lines, toolchain output, per-layer push progress (bars on a
//! terminal, plain lines elsewhere). Everything but the final reference goes to stderr.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_image::{BlobOutcome, Destination, PushObserver, Written};
use kiln_oci::Digest;
use kiln_pipeline::{Progress, human_bytes};

/// How much to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors and the final reference only.
    Quiet,
    /// Phases, toolchain output, progress.
    Normal,
    /// Plus debug details.
    Verbose,
}

/// The terminal UI.
pub struct Ui {
    verbosity: Verbosity,
    tty: bool,
}

impl Ui {
    /// Returns a UI printing at `verbosity`; progress bars only when stderr is a terminal.
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Prints a phase header, `===> BUILDING` style.
    pub fn phase(&self, name: &str) {
        if self.verbosity != Verbosity::Quiet {
            eprintln!("===> {name}");
        }
    }

    /// Prints an informational line.
    pub fn info(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            eprintln!("{line}");
        }
    }

    /// Prints a warning (even with `-q`: it names something left out of the image).
    pub fn warn(&self, line: &str) {
        eprintln!("warning: {line}");
    }

    /// Prints a debug line (with `-v`).
    pub fn debug(&self, line: &str) {
        if self.verbosity == Verbosity::Verbose {
            eprintln!("debug: {line}");
        }
    }

    /// Prints a line of toolchain output.
    pub fn toolchain(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            eprintln!("    {line}");
        }
    }

    /// Returns a push observer rendering per-layer progress.
    pub fn push_progress(&self) -> PushProgress {
        let multi = if self.tty && self.verbosity != Verbosity::Quiet {
            Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            None
        };
        PushProgress {
            multi,
            quiet: self.verbosity == Verbosity::Quiet,
            bars: Mutex::new(HashMap::new()),
        }
    }
}

/// Per-layer upload progress.
pub struct PushProgress {
    multi: Option<MultiProgress>,
    quiet: bool,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

impl PushObserver for PushProgress {
    fn started(&self, digest: &Digest, size: u64) {
        if let Some(multi) = &self.multi {
            let bar = multi.add(ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template("  {prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(short(digest).to_string());
            self.bars
                .lock()
                .expect("progress lock")
                .insert(digest.clone(), bar);
        }
    }

    fn progress(&self, digest: &Digest, sent: u64) {
        if let Some(bar) = self.bars.lock().expect("progress lock").get(digest) {
            bar.set_position(sent);
        }
    }

    fn finished(&self, digest: &Digest, outcome: &BlobOutcome) {
        let what = match outcome {
            BlobOutcome::Existing => "exists".to_string(),
            BlobOutcome::Mounted => "mounted".to_string(),
            BlobOutcome::Uploaded { bytes } => format!("pushed {}", human_bytes(*bytes)),
        };
        match self.bars.lock().expect("progress lock").remove(digest) {
            Some(bar) => bar.finish_with_message(what),
            None if !self.quiet => eprintln!("  layer {}: {what}", short(digest)),
            None => {}
        }
    }
}

impl Progress for Ui {
    fn phase(&self, name: &str) {
        Ui::phase(self, name);
    }

    fn info(&self, line: &str) {
        Ui::info(self, line);
    }

    fn warn(&self, line: &str) {
        Ui::warn(self, line);
    }

    fn debug(&self, line: &str) {
        Ui::debug(self, line);
    }

    fn toolchain(&self, line: &str) {
        Ui::toolchain(self, line);
    }

    fn push_observer(&self) -> Box<dyn PushObserver + '_> {
        Box::new(self.push_progress())
    }

    fn delivered(&self, destination: Destination<'_>, written: &Written) {
        match (destination, written) {
            (Destination::Registry(_), Written::Pushed(report)) => self.info(&format!(
                "uploaded {} of layers",
                human_bytes(report.uploaded_bytes)
            )),
            (Destination::Layout { dir, name }, _) => {
                let run = crate::podman::run_command(dir, name);
                let dir = dir.display();
                self.info(&format!(
                    "saved to the OCI layout `{dir}` as `{name}`\n  run it:  {run}\n  copy it: skopeo copy oci:{dir}:{name} docker://REGISTRY/REPO:TAG"
                ));
            }
            (Destination::Archive { path, .. }, _) => {
                let path = path.display();
                self.info(&format!(
                    "wrote OCI archive `{path}` (podman load -i {path})"
                ));
            }
            (Destination::Registry(target), Written::Saved) => {
                self.info(&format!("wrote {target}"))
            }
        }
    }

    fn generated_base(&self, curated: &str) {
        self.info(&format!(
            "the curated base `{curated}` is not in kiln's store; using kiln's minimal generated base.\n  {}",
            crate::errors::curated_base_hint(curated)
        ));
    }
}
