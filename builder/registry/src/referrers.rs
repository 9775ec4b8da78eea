//! Listing the artifacts that point at a manifest (its referrers).
//! Spec: distribution-spec "Listing Referrers" <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers>

use kiln_oci::{Digest, Reference};
use reqwest::Method;
use reqwest::header::ACCEPT;
use serde::Deserialize;

use crate::pull::read_capped;
use crate::request::{Request, Target, expect};
use crate::{Client, RegistryError};

/// The largest referrers index kiln reads.
const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024;
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// One entry of a referrers list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Referrer {
    /// The referrer manifest's media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its artifact type, when the registry says.
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
}

#[derive(Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Referrer>,
}

impl Client {
    /// Returns the referrers of `digest` in `repo`, or `None` when the registry has no
    /// referrers API (it answers 404, or 400/405 as older registries do); clients then
    /// look for cosign's fallback tags instead.
    pub async fn referrers(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Option<Vec<Referrer>>, RegistryError> {
        let t = &Target::pull(
            repo,
            format!("listing the referrers of `{digest}` in `{}`", repo.name()),
        );
        let inner = &*self.inner;
        let body = inner
            .settings
            .retry
            .run(&t.action, move || async move {
                let url = inner
                    .url(t, &format!("{}/referrers/{digest}", repo.repository()))
                    .await?;
                let req = Request::new(Method::GET, url).header(ACCEPT, INDEX_MEDIA_TYPE);
                let resp = inner.send(t, &req).await?;
                if matches!(resp.status().as_u16(), 400 | 404 | 405) {
                    return Ok(None);
                }
                let resp = expect(t, resp, &[200]).await?;
                Ok(Some(read_capped(t, resp, MAX_INDEX_BYTES).await?))
            })
            .await?;
        let Some(bytes) = body else {
            return Ok(None);
        };
        let index: ReferrersIndex =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                action: t.action.clone(),
                detail: format!("the referrers list is not an image index: {e}"),
            })?;
        Ok(Some(index.manifests))
    }
}
