//! What kiln prints: phase lines, toolchain output, per-layer push progress (spinners and
//! bars on a terminal, plain lines elsewhere, JSON lines with `--log-format json`).
//! Everything but the final reference goes to stderr.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_image::{Destination, PushObserver, Written};
use kiln_pipeline::{Progress, human_bytes};
use serde_json::json;

pub use push::PushProgress;
use style::event;
pub use style::{Paint, Style, configure, paint, style};

mod push;
mod style;

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

/// The terminal UI. On a terminal, at normal verbosity and in text, each phase shows a
/// spinner with its elapsed time and the last line of toolchain output (the whole output
/// is printed when the command fails, and always with `-v` or off a terminal).
pub struct Ui {
    verbosity: Verbosity,
    /// Spinners and bars: a terminal, text, normal verbosity.
    live: Option<MultiProgress>,
    spinner: Mutex<Option<ProgressBar>>,
    /// The last toolchain lines, kept for a failure.
    tail: Mutex<VecDeque<String>>,
}

/// How many toolchain lines a live UI keeps to print when the command fails.
const TAIL_LINES: usize = 40;

impl Ui {
    /// Returns a UI printing at `verbosity` in the run's [`style`].
    pub fn new(verbosity: Verbosity) -> Self {
        let live =
            std::io::stderr().is_terminal() && !style().json && verbosity == Verbosity::Normal;
        Self {
            verbosity,
            live: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            spinner: Mutex::new(None),
            tail: Mutex::new(VecDeque::new()),
        }
    }

    /// Prints a phase header, `===> BUILDING` style, and starts its spinner.
    pub fn phase(&self, name: &str) {
        if style().json {
            return event("phase", name, json!({ "phase": name }));
        }
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        self.stop_spinner();
        self.print(&format!("{} {name}", paint("===>", Paint::Phase)));
        if let Some(multi) = &self.live {
            let spinner = multi.add(ProgressBar::new_spinner());
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                    .expect("static template"),
            );
            spinner.set_prefix(name.to_owned());
            spinner.enable_steady_tick(Duration::from_millis(120));
            *lock(&self.spinner) = Some(spinner);
            lock(&self.tail).clear();
        }
    }

    /// Prints an informational line.
    pub fn info(&self, line: &str) {
        if style().json {
            return event("info", line, json!({}));
        }
        if self.verbosity != Verbosity::Quiet {
            self.print(line);
        }
    }

    /// Prints a warning (even with `-q`: it names something left out of the image).
    pub fn warn(&self, line: &str) {
        if style().json {
            return event("warn", line, json!({}));
        }
        self.print(&format!("{} {line}", paint("warning:", Paint::Warn)));
    }

    /// Prints a debug line (with `-v`).
    pub fn debug(&self, line: &str) {
        if self.verbosity != Verbosity::Verbose {
            return;
        }
        match style().json {
            true => event("debug", line, json!({})),
            false => self.print(&paint(&format!("debug: {line}"), Paint::Dim)),
        }
    }

    /// Prints a line of toolchain output; on a live terminal, shows it on the spinner.
    pub fn toolchain(&self, line: &str) {
        if style().json {
            return event("toolchain", line, json!({}));
        }
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        match &*lock(&self.spinner) {
            Some(spinner) => {
                spinner.set_message(line.trim().to_owned());
                let mut tail = lock(&self.tail);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
            }
            None => eprintln!("    {line}"),
        }
    }

    /// Shows how far the current phase is (`done` of `total` items) on its spinner.
    pub fn count(&self, done: u64, total: u64) {
        if style().json {
            let message = format!("{done}/{total}");
            return event(
                "progress",
                &message,
                json!({ "done": done, "total": total }),
            );
        }
        if let Some(spinner) = &*lock(&self.spinner) {
            if spinner.length() != Some(total) {
                spinner.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed:>4} {wide_msg}",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                );
                spinner.set_length(total);
            }
            spinner.set_position(done);
        }
    }

    /// Prints a line of the command's result on stdout, after clearing the spinner (which
    /// shares the terminal).
    pub fn stdout(&self, line: &str) {
        self.stop_spinner();
        println!("{line}");
    }

    /// Ends the UI: clears the spinner and, when the command failed on a live terminal,
    /// prints the toolchain output it had only shown a line of.
    pub fn finish(&self, failed: bool) {
        self.stop_spinner();
        let tail = std::mem::take(&mut *lock(&self.tail));
        if failed && !tail.is_empty() {
            eprintln!("{}", paint("last lines of toolchain output:", Paint::Dim));
            for line in tail {
                eprintln!("    {line}");
            }
        }
    }

    /// Returns a push observer rendering per-layer progress.
    pub fn push_progress(&self) -> PushProgress {
        PushProgress {
            multi: self.live.clone(),
            quiet: self.verbosity == Verbosity::Quiet,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Prints a line above the spinner and bars, if any.
    fn print(&self, line: &str) {
        match &self.live {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn stop_spinner(&self) {
        if let Some(spinner) = lock(&self.spinner).take() {
            spinner.finish_and_clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    fn count(&self, done: u64, total: u64) {
        Ui::count(self, done, total);
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
