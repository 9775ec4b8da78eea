//! Reading a SLSA v1 provenance statement back, for `kiln inspect` and verification.
//!
//! Written for kiln's own statements ([`super::provenance_statement`]) but lenient with
//! other builders' (GitHub's `git+https://…@refs/heads/main` sources, extra fields, an
//! in-toto v0.1 `_type`), as the SLSA parsing rules ask consumers to ignore unknown fields.

use std::collections::BTreeMap;

use kiln_oci::Digest;
use serde::Deserialize;

use super::SignError;
use super::provenance::{BUILDPACK_SCHEME, SLSA_PROVENANCE_V1, STATEMENT_V1};

// Statements made before in-toto Statement v1 carry SLSA v1 predicates unchanged.
const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";

/// The parts of a provenance statement kiln shows and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceSummary {
    /// The sha256 digests of the subjects (for kiln, the one image manifest).
    pub subject_digests: Vec<Digest>,
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// The git source URL, without `git+` and without the `@<ref>` suffix.
    pub source_uri: Option<String>,
    /// The git commit (`digest.gitCommit` of the source dependency).
    pub source_revision: Option<String>,
    /// The run image as `<name>@sha256:<hex>`.
    pub base_image: Option<String>,
    /// The buildpacks as `<id>@<version>`, in order.
    pub buildpacks: Vec<String>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Predicate {
    #[serde(rename = "buildDefinition")]
    build_definition: BuildDefinition,
    #[serde(rename = "runDetails")]
    run_details: RunDetails,
}

#[derive(Deserialize)]
struct BuildDefinition {
    #[serde(default, rename = "resolvedDependencies")]
    resolved_dependencies: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    uri: Option<String>,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RunDetails {
    builder: Builder,
}

#[derive(Deserialize)]
struct Builder {
    id: String,
}

/// Parses an in-toto statement holding SLSA v1 provenance and returns its summary.
///
/// Fails on another statement or predicate type, a subject `sha256` that is not 64 hex
/// characters, no sha256 subject at all, or a missing builder id. Does not check any
/// signature; take the statement from [`super::verify_envelope`].
pub fn read_provenance(statement: &[u8]) -> Result<ProvenanceSummary, SignError> {
    let statement: Statement =
        serde_json::from_slice(statement).map_err(|e| SignError::Provenance(e.to_string()))?;
    if statement.kind != STATEMENT_V1 && statement.kind != STATEMENT_V01 {
        return Err(SignError::Provenance(format!(
            "`_type` is `{}`, not `{STATEMENT_V1}`",
            statement.kind
        )));
    }
    if statement.predicate_type != SLSA_PROVENANCE_V1 {
        return Err(SignError::Provenance(format!(
            "`predicateType` is `{}`, not `{SLSA_PROVENANCE_V1}`; hint: kiln reads SLSA v1 provenance only",
            statement.predicate_type
        )));
    }
    let subject_digests = statement
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256"))
        .map(|hex| sha256(hex, "subject"))
        .collect::<Result<Vec<_>, _>>()?;
    if subject_digests.is_empty() {
        return Err(SignError::Provenance(
            "no subject has a `sha256` digest".to_string(),
        ));
    }

    let mut summary = ProvenanceSummary {
        subject_digests,
        builder_id: statement.predicate.run_details.builder.id,
        source_uri: None,
        source_revision: None,
        base_image: None,
        buildpacks: Vec::new(),
    };
    for dependency in statement.predicate.build_definition.resolved_dependencies {
        let uri = dependency.uri.as_deref();
        if let Some(buildpack) = uri.and_then(|u| u.strip_prefix(BUILDPACK_SCHEME)) {
            summary.buildpacks.push(buildpack.to_string());
        } else if let Some(git) = uri
            .and_then(|u| u.strip_prefix("git+"))
            .filter(|_| summary.source_uri.is_none() && summary.source_revision.is_none())
        {
            summary.source_uri = Some(without_ref(git).to_string());
            summary.source_revision = dependency.digest.get("gitCommit").cloned();
        } else if let Some(commit) = dependency.digest.get("gitCommit") {
            if summary.source_revision.is_none() {
                summary.source_revision = Some(commit.clone());
            }
        } else if let Some(hex) = dependency.digest.get("sha256")
            && summary.base_image.is_none()
        {
            let digest = sha256(hex, "resolved dependency")?;
            summary.base_image = Some(match uri {
                Some(name) => format!("{name}@{digest}"),
                None => digest.to_string(),
            });
        }
    }
    Ok(summary)
}

fn sha256(hex: &str, what: &str) -> Result<Digest, SignError> {
    format!("sha256:{hex}")
        .parse()
        .map_err(|e| SignError::Provenance(format!("{what} digest: {e}")))
}

/// Returns a `git+` dependency URI without its `@<ref>` suffix; an `@` in the authority
/// would be userinfo, so only one after the path starts counts.
fn without_ref(uri: &str) -> &str {
    let path_start = uri.find("://").map(|i| i + 3).map_or(0, |host| {
        uri[host..].find('/').map_or(uri.len(), |p| host + p)
    });
    match uri[path_start..].rfind('@') {
        Some(at) => &uri[..path_start + at],
        None => uri,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::super::provenance::{ProvenanceInput, provenance_statement};
    use super::*;

    #[test]
    fn round_trips_kiln_statements() {
        let subject = Digest::of(b"manifest");
        let base = Digest::of(b"run image");
        let buildpacks = vec![
            ("kiln/node".to_string(), "1.2.0".to_string()),
            ("kiln/procfile".to_string(), "0.3.1".to_string()),
        ];
        let parameters = Map::new();
        let input = ProvenanceInput {
            subject_name: "127.0.0.1:5000/team/app",
            subject_digest: &subject,
            builder_id: "https://kiln.dev/builder@v0.1.0",
            builder_version: "0.1.0",
            build_type: "https://kiln.dev/build/v1",
            source_uri: Some("https://user:tok@git.example/team/app.git"),
            source_revision: Some("0123abcd"),
            buildpacks: &buildpacks,
            base_image: Some(("registry.example/run:jammy", &base)),
            parameters: &parameters,
            invocation_id: None,
            started_on: None,
            finished_on: None,
        };
        let summary = read_provenance(&provenance_statement(&input)).unwrap();
        assert_eq!(
            summary,
            ProvenanceSummary {
                subject_digests: vec![subject.clone()],
                builder_id: "https://kiln.dev/builder@v0.1.0".to_string(),
                source_uri: Some("https://git.example/team/app.git".to_string()),
                source_revision: Some("0123abcd".to_string()),
                base_image: Some(format!("registry.example/run:jammy@{base}")),
                buildpacks: vec![
                    "kiln/node@1.2.0".to_string(),
                    "kiln/procfile@0.3.1".to_string()
                ],
            }
        );

        let bare = ProvenanceInput {
            source_uri: None,
            source_revision: None,
            base_image: None,
            buildpacks: &[],
            ..input
        };
        let summary = read_provenance(&provenance_statement(&bare)).unwrap();
        assert_eq!(
            (
                summary.source_uri,
                summary.source_revision,
                summary.base_image
            ),
            (None, None, None)
        );
        assert!(summary.buildpacks.is_empty());
    }

    fn statement(dependencies: serde_json::Value) -> serde_json::Value {
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": "ab".repeat(32)}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {"buildType": "x", "externalParameters": {}, "resolvedDependencies": dependencies},
                "runDetails": {"builder": {"id": "https://github.com/actions/runner"}, "extra": 1},
            },
        })
    }

    #[test]
    fn reads_other_builders_sources() {
        let v = statement(json!([{
            "uri": "git+https://github.com/octocat/hello-world@refs/heads/main",
            "digest": {"gitCommit": "c27d339ee6075c1f744c5d4b200f7901aad2c369"},
        }]));
        let summary = read_provenance(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            summary.source_uri.as_deref(),
            Some("https://github.com/octocat/hello-world")
        );
        assert_eq!(
            summary.source_revision.as_deref(),
            Some("c27d339ee6075c1f744c5d4b200f7901aad2c369")
        );
        assert_eq!(summary.builder_id, "https://github.com/actions/runner");
        assert_eq!(without_ref("ssh://host/x.git@abc"), "ssh://host/x.git");
        assert_eq!(without_ref("https://host"), "https://host");
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        let good = statement(json!([]));
        read_provenance(good.to_string().as_bytes()).unwrap();
        let mut cases = Vec::new();
        for (pointer, value) in [
            ("/_type", json!("https://in-toto.io/Statement/v2")),
            ("/predicateType", json!("https://slsa.dev/provenance/v0.2")),
            ("/subject/0/digest", json!({"sha256": "XYZ"})),
            ("/subject/0/digest", json!({"sha512": "ab"})),
            ("/predicate/runDetails/builder", json!({})),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(pointer).unwrap() = value;
            cases.push(v.to_string());
        }
        cases.push(statement(json!([{"uri": "run", "digest": {"sha256": "short"}}])).to_string());
        cases.push("not json".to_string());
        for case in cases {
            let err = read_provenance(case.as_bytes()).unwrap_err();
            assert!(matches!(err, SignError::Provenance(_)), "{case}: {err}");
        }
    }
}
