//! Per-layer push progress: a bar each on a live terminal, a line each elsewhere.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kiln_image::{BlobOutcome, PushObserver};
use kiln_oci::Digest;
use kiln_pipeline::human_bytes;
use serde_json::json;

use super::style::{event, style};

/// Per-layer upload progress.
pub struct PushProgress {
    pub(super) multi: Option<MultiProgress>,
    pub(super) quiet: bool,
    pub(super) bars: Mutex<HashMap<Digest, ProgressBar>>,
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
            None if style().json => event(
                "info",
                &format!("layer {}: {what}", short(digest)),
                json!({ "digest": digest.to_string() }),
            ),
            None if !self.quiet => eprintln!("  layer {}: {what}", short(digest)),
            None => {}
        }
    }
}
