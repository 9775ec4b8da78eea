//! Listing a repository's tags, page by page.
//! Spec: distribution-spec "Listing Tags" <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags>

use kiln_oci::Reference;
use reqwest::Method;
use reqwest::header::LINK;
use serde::Deserialize;

use crate::pull::read_capped;
use crate::request::{Request, Target, expect};
use crate::{Client, RegistryError};

/// Tags asked for per page.
const PAGE: usize = 1000;
/// The largest page kiln reads.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// Pages followed at most (a registry that links pages in a loop must not hang kiln).
const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Client {
    /// Returns every tag of `repo`'s repository, following the `Link` header's `next` pages.
    pub async fn list_tags(&self, repo: &Reference) -> Result<Vec<String>, RegistryError> {
        let t = &Target::pull(repo, format!("listing the tags of `{}`", repo.name()));
        let inner = &*self.inner;
        let mut tags = Vec::new();
        let mut path = format!("{}/tags/list?n={PAGE}", repo.repository());
        for _ in 0..MAX_PAGES {
            let page_path = path.clone();
            let (link, bytes) = inner
                .settings
                .retry
                .run(&t.action, || {
                    let page_path = page_path.clone();
                    async move {
                        let url = inner.url(t, &page_path).await?;
                        let req = Request::new(Method::GET, url);
                        let resp = expect(t, inner.send(t, &req).await?, &[200]).await?;
                        let link = resp
                            .headers()
                            .get(LINK)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        Ok((link, read_capped(t, resp, MAX_PAGE_BYTES).await?))
                    }
                })
                .await?;
            let page: TagList =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                    action: t.action.clone(),
                    detail: format!("the tag list is not JSON of the spec's shape: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match link.as_deref().and_then(next_page) {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            action: t.action.clone(),
            detail: format!("the registry linked more than {MAX_PAGES} pages of tags"),
        })
    }
}

/// Returns the path under `/v2/` of a `Link: </v2/…?last=x&n=1000>; rel="next"` header.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params
            .split(';')
            .any(|p| p.trim().trim_end_matches('"').ends_with("next"))
        {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        // Relative to the registry root, as the spec shows (absolute URLs are cut to it).
        let path = target.split_once("/v2/").map(|(_, p)| p)?;
        Some(path.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_next_links_relative_or_absolute() {
        assert_eq!(
            next_page(r#"</v2/team/app/tags/list?last=b&n=1000>; rel="next""#).as_deref(),
            Some("team/app/tags/list?last=b&n=1000")
        );
        assert_eq!(
            next_page(r#"<https://r.example/v2/x/tags/list?last=c>; rel=next"#).as_deref(),
            Some("x/tags/list?last=c")
        );
        assert_eq!(next_page(r#"</v2/x/tags/list?last=c>; rel="prev""#), None);
        assert_eq!(next_page("garbage"), None);
    }
}
