//! A base stream: the images of one run image repository that carry the same base id
//! (`io.buildpacks.base.id`), whatever their tags. Rebase moves an app to the stream's newest
//! image, so a patch bump of the base's tag (`13.1` → `13.2`) is no reason to force it.

use std::cmp::Ordering;

use futures_util::{StreamExt, stream};
use kiln_image::fetch_remote;
use kiln_lifecycle::{RunImage, base_id};
use kiln_oci::Reference;
use kiln_registry::{Client, RegistryError};

/// Tags read at once.
const PARALLEL: usize = 8;

/// Why a stream's newest image could not be found.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The repository's tags could not be listed.
    #[error("listing the tags of `{repository}`")]
    Tags {
        /// The repository.
        repository: String,
        /// The registry's error.
        #[source]
        source: RegistryError,
    },
    /// No tag of the repository is an image of the stream for the platform.
    #[error("`{repository}` has no image for `{os}/{arch}`{}", id.as_ref().map_or(String::new(), |id| format!(" with base id `{id}`")))]
    Empty {
        /// The repository.
        repository: String,
        /// The base id looked for.
        id: Option<String>,
        /// The platform's OS.
        os: String,
        /// The platform's architecture.
        arch: String,
    },
}

/// Returns the newest image of `repository`'s stream for `platform` whose base id is
/// `id` (any, when `None`): the latest `created`, and among equals the highest tag in
/// natural order (`v10` after `v9`).
pub async fn newest_in_stream(
    client: &Client,
    repository: &Reference,
    id: Option<&str>,
    (os, arch): (&str, &str),
) -> Result<RunImage, StreamError> {
    let tags = client
        .list_tags(repository)
        .await
        .map_err(|source| StreamError::Tags {
            repository: repository.name(),
            source,
        })?;
    let read: Vec<_> = stream::iter(tags)
        .map(|tag| async move {
            let reference = repository.with_tag(&tag);
            (tag, fetch_remote(client, &reference, os, arch).await)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut candidates: Vec<(String, RunImage)> = read
        .into_iter()
        .filter_map(|(tag, got)| {
            let (image, digest) = got.ok()?;
            let run = RunImage {
                name: format!("{}:{tag}", repository.name()),
                image,
                digest,
            };
            (id.is_none() || base_id(&run.image).as_deref() == id).then_some((tag, run))
        })
        .collect();
    candidates.sort_by(|(ta, a), (tb, b)| {
        a.image
            .config
            .created()
            .cmp(b.image.config.created())
            .then_with(|| natural(ta, tb))
    });
    candidates
        .pop()
        .map(|(_, run)| run)
        .ok_or_else(|| StreamError::Empty {
            repository: repository.name(),
            id: id.map(str::to_owned),
            os: os.to_owned(),
            arch: arch.to_owned(),
        })
}

/// Compares tags in natural order: runs of digits as numbers, the rest as text.
fn natural(a: &str, b: &str) -> Ordering {
    let chunks = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, text)) if *d == digit => text.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    };
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, ta), (db, tb)) in ca.iter().zip(&cb) {
        let order = match (da, db) {
            (true, true) => {
                let (na, nb) = (ta.trim_start_matches('0'), tb.trim_start_matches('0'));
                na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
            }
            _ => ta.cmp(tb),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sort_naturally() {
        let mut tags = vec!["v10", "v9", "13.10", "13.2", "13.2.1", "latest", "v9-rc"];
        tags.sort_by(|a, b| natural(a, b));
        assert_eq!(
            tags,
            ["13.2", "13.2.1", "13.10", "latest", "v9", "v9-rc", "v10"]
        );
        assert_eq!(natural("007", "7"), Ordering::Equal);
    }
}
