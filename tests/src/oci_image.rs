//! Tiny OCI images built with `umoci`, independent of kiln.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run_checked;

/// An image in an OCI layout directory, edited in place with `umoci`.
pub struct UmociImage {
    layout: PathBuf,
    tag: String,
}

impl UmociImage {
    /// Creates the OCI layout `layout` (must not exist yet) with an empty image tagged `tag`.
    pub fn new(layout: &Path, tag: &str) -> Self {
        run_checked(
            Command::new("umoci")
                .arg("init")
                .arg("--layout")
                .arg(layout),
        );
        let image = Self {
            layout: layout.to_path_buf(),
            tag: tag.to_string(),
        };
        run_checked(Command::new("umoci").args(["new", "--image", &image.image_arg()]));
        image
    }

    fn image_arg(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    /// Adds a layer holding `src` (a file or directory tree) at `dest` in the image.
    pub fn insert(&self, src: &Path, dest: &str) -> &Self {
        run_checked(
            Command::new("umoci")
                .args(["insert", "--image", &self.image_arg()])
                .arg(src)
                .arg(dest),
        );
        self
    }

    /// Runs `umoci config` with `args`, e.g. `["--config.user", "65532"]`.
    pub fn config(&self, args: &[&str]) -> &Self {
        run_checked(
            Command::new("umoci")
                .args(["config", "--image", &self.image_arg()])
                .args(args),
        );
        self
    }

    /// Returns the layout directory.
    pub fn layout(&self) -> &Path {
        &self.layout
    }

    /// Returns the skopeo/podman reference `oci:<layout>:<tag>`.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}", self.image_arg())
    }
}
