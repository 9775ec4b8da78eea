//! Reading a run image by the name a user gives it: a registry reference, `oci:PATH[:NAME]`,
//! or a name in kiln's local image store. Shared by `kiln build` and `kiln rebase`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use kiln_image::{Blobs, fetch_remote, layout_has, read_layout};
use kiln_lifecycle::RunImage;
use kiln_oci::Reference;
use kiln_registry::Client;

use crate::failure::{Failure, exit};

/// Returns whether `name` names a registry (`host[:port]/repo…`, `localhost/…`) rather
/// than an image in kiln's store (`kiln-base/node`).
pub fn names_a_registry(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
}

/// Reads the run image `name` for `platform` (`os`, `arch`): from an OCI layout
/// (`oci:PATH[:NAME]`), from kiln's store at `store_dir` when it holds `name`, else from its
/// registry. `code` is the exit code of a failure.
pub async fn read_run_image(
    name: &str,
    client: &Client,
    blobs: &Blobs,
    store_dir: &Path,
    platform: (&str, &str),
    code: u8,
) -> Result<RunImage, Failure> {
    let fail = |e: anyhow::Error| Failure::new(code, e);
    let from_layout = |e: kiln_image::ImageError, doing: String| {
        let hint = e.hint();
        fail(anyhow!(e).context(doing)).hint(hint)
    };
    let (image, digest) = if let Some(rest) = name.strip_prefix("oci:") {
        let (path, ref_name) = split_layout_ref(rest);
        read_layout(&path, ref_name.as_deref(), platform, blobs)
            .map_err(|e| from_layout(e, format!("reading run image `{name}`")))?
    } else if !names_a_registry(name) && layout_has(store_dir, name) {
        read_layout(store_dir, Some(name), platform, blobs)
            .map_err(|e| from_layout(e, format!("reading run image `{name}` from kiln's store")))?
    } else {
        let reference: Reference = name
            .parse()
            .map_err(|e| Failure::new(exit::USAGE, anyhow!("run image `{name}`: {e}")))?;
        fetch_remote(client, &reference, platform.0, platform.1)
            .await
            .map_err(|e| {
                let hint = e.hint();
                fail(anyhow!(e).context(format!("reading run image `{name}`"))).hint(hint)
            })?
    };
    Ok(RunImage {
        image,
        digest,
        name: name.to_owned(),
    })
}

/// Splits `PATH[:NAME]` of an `oci:` reference; the path is everything up to the first `:`.
fn split_layout_ref(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((p, n)) => (PathBuf::from(p), Some(n.to_string())),
        None => (PathBuf::from(rest), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_registry_references_from_store_names() {
        for name in [
            "registry.example.com/bases/node:13",
            "127.0.0.1:5000/bases/node",
            "localhost/x",
        ] {
            assert!(names_a_registry(name), "{name}");
        }
        for name in ["kiln-base/node", "node", "team/app:1"] {
            assert!(!names_a_registry(name), "{name}");
        }
    }

    #[test]
    fn splits_layout_references() {
        assert_eq!(
            split_layout_ref("/tmp/x:kiln-base/node"),
            (PathBuf::from("/tmp/x"), Some("kiln-base/node".to_owned()))
        );
        assert_eq!(split_layout_ref("/tmp/x"), (PathBuf::from("/tmp/x"), None));
    }
}
