//! SLSA v1 build provenance (<https://slsa.dev/spec/v1.0/provenance>) in an in-toto
//! Statement v1 (<https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>),
//! the payload of the attestation `cosign verify-attestation --type slsaprovenance1` reads.
//!
//! kiln's `buildType` defines `externalParameters` as the caller's parameters plus
//! `source`, a resource descriptor of the git source (the same one listed in
//! `resolvedDependencies`). Dependencies are the source (`git+<url>@<commit>`, digest
//! `gitCommit`), the run image (its name, digest `sha256`) and each buildpack
//! (`kiln-buildpack:<id>@<version>`, no digest: buildpacks are identified by version).

use chrono::{DateTime, SecondsFormat};
use kiln_oci::{Digest, canonical_json};
use serde_json::{Map, Value, json};

/// The in-toto statement type.
pub(crate) const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The scheme kiln gives buildpack dependencies.
pub(crate) const BUILDPACK_SCHEME: &str = "kiln-buildpack:";

/// What went into a build, for [`provenance_statement`].
#[derive(Debug, Clone, Copy)]
pub struct ProvenanceInput<'a> {
    /// The image's repository, e.g. `127.0.0.1:5000/team/app`.
    pub subject_name: &'a str,
    /// The image manifest digest.
    pub subject_digest: &'a Digest,
    /// `runDetails.builder.id`, e.g. `https://kiln.dev/builder@v0.1.0`.
    pub builder_id: &'a str,
    /// kiln's version, written as `runDetails.builder.version.kiln`.
    pub builder_version: &'a str,
    /// `buildDefinition.buildType`, e.g. `https://kiln.dev/build/v1`.
    pub build_type: &'a str,
    /// The git remote URL of the source; any userinfo, query or fragment is dropped, and
    /// an scp-like `git@host:path` is written as `ssh://host/path`.
    pub source_uri: Option<&'a str>,
    /// The git commit built.
    pub source_revision: Option<&'a str>,
    /// The buildpacks that ran, `(id, version)`, in group order.
    pub buildpacks: &'a [(String, String)],
    /// The run image: name and manifest digest.
    pub base_image: Option<(&'a str, &'a Digest)>,
    /// External parameters, already free of secrets; kiln writes its own `source` over any
    /// given one when a source is known.
    pub parameters: &'a Map<String, Value>,
    /// `runDetails.metadata.invocationId`.
    pub invocation_id: Option<&'a str>,
    /// Build start, unix seconds.
    pub started_on: Option<i64>,
    /// Build end, unix seconds.
    pub finished_on: Option<i64>,
}

/// Returns the in-toto Statement v1 JSON bytes with a SLSA v1 provenance predicate.
///
/// Keys are sorted and absent optional fields are left out (never `null`), so the same
/// input always gives the same bytes.
pub fn provenance_statement(input: &ProvenanceInput) -> Vec<u8> {
    let source = source_descriptor(input.source_uri, input.source_revision);
    let mut external = input.parameters.clone();
    if let Some(source) = &source {
        external.insert("source".to_string(), source.clone());
    }

    let mut dependencies: Vec<Value> = source.into_iter().collect();
    if let Some((name, digest)) = input.base_image {
        dependencies.push(json!({"uri": name, "digest": {"sha256": digest.hex()}}));
    }
    for (id, version) in input.buildpacks {
        dependencies.push(json!({"uri": format!("{BUILDPACK_SCHEME}{id}@{version}")}));
    }

    let mut build_definition = Map::new();
    build_definition.insert("buildType".into(), input.build_type.into());
    build_definition.insert("externalParameters".into(), external.into());
    if !dependencies.is_empty() {
        build_definition.insert("resolvedDependencies".into(), dependencies.into());
    }

    let mut metadata = Map::new();
    if let Some(id) = input.invocation_id {
        metadata.insert("invocationId".into(), id.into());
    }
    for (key, time) in [
        ("startedOn", input.started_on),
        ("finishedOn", input.finished_on),
    ] {
        if let Some(time) = time.and_then(rfc3339) {
            metadata.insert(key.into(), time.into());
        }
    }
    let mut run_details = Map::new();
    run_details.insert(
        "builder".into(),
        json!({"id": input.builder_id, "version": {"kiln": input.builder_version}}),
    );
    if !metadata.is_empty() {
        run_details.insert("metadata".into(), metadata.into());
    }

    let statement = json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": input.subject_name, "digest": {"sha256": input.subject_digest.hex()}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {"buildDefinition": build_definition, "runDetails": run_details},
    });
    canonical_json(&statement).expect("a json value always serializes")
}

/// Returns the resource descriptor of the git source, or `None` when nothing is known.
fn source_descriptor(uri: Option<&str>, revision: Option<&str>) -> Option<Value> {
    let mut descriptor = Map::new();
    if let Some(uri) = uri {
        let mut uri = format!(
            "git+{}",
            without_credentials(uri.trim_start_matches("git+"))
        );
        if let Some(revision) = revision {
            uri.push('@');
            uri.push_str(revision);
        }
        descriptor.insert("uri".into(), uri.into());
    }
    if let Some(revision) = revision {
        descriptor.insert("digest".into(), json!({"gitCommit": revision}));
    }
    (!descriptor.is_empty()).then(|| descriptor.into())
}

/// Returns `uri` without userinfo, query or fragment; an scp-like `user@host:path`
/// remote becomes `ssh://host/path`.
///
/// Remotes are supposed to arrive credential-free, but a `https://user:token@host/x.git`
/// in a signed, published attestation could never be taken back, and signed-URL tokens
/// ride in the query.
pub(crate) fn without_credentials(uri: &str) -> String {
    if let Some((scheme, rest)) = uri.split_once("://") {
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit('@').next().unwrap_or_default();
        return format!("{scheme}://{host}{path}");
    }
    // scp-like syntax is `[user@]host:path` with no slash before the colon.
    if let Some((authority, path)) = uri.split_once(':')
        && !authority.contains('/')
    {
        let host = authority.rsplit('@').next().unwrap_or_default();
        return format!("ssh://{host}/{}", path.trim_start_matches('/'));
    }
    uri.to_string()
}

fn rfc3339(unix_seconds: i64) -> Option<String> {
    DateTime::from_timestamp(unix_seconds, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::of(&[byte])
    }

    #[test]
    fn writes_the_slsa_v1_fields() {
        let subject = digest(1);
        let base = digest(2);
        let buildpacks = vec![("kiln/node".to_string(), "1.2.0".to_string())];
        let mut parameters = Map::new();
        parameters.insert("platform".into(), "linux/amd64".into());
        parameters.insert("source".into(), "overridden".into());
        let input = ProvenanceInput {
            subject_name: "127.0.0.1:5000/team/app",
            subject_digest: &subject,
            builder_id: "https://kiln.dev/builder@v0.1.0",
            builder_version: "0.1.0",
            build_type: "https://kiln.dev/build/v1",
            source_uri: Some("https://git.example/team/app.git"),
            source_revision: Some("0123abcd"),
            buildpacks: &buildpacks,
            base_image: Some(("registry.example/run", &base)),
            parameters: &parameters,
            invocation_id: Some("run-7"),
            started_on: Some(1_700_000_000),
            finished_on: Some(1_700_000_061),
        };
        let bytes = provenance_statement(&input);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let source = json!({"uri": "git+https://git.example/team/app.git@0123abcd", "digest": {"gitCommit": "0123abcd"}});
        let expected = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "127.0.0.1:5000/team/app", "digest": {"sha256": subject.hex()}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://kiln.dev/build/v1",
                    "externalParameters": {"platform": "linux/amd64", "source": source},
                    "resolvedDependencies": [
                        source,
                        {"uri": "registry.example/run", "digest": {"sha256": base.hex()}},
                        {"uri": "kiln-buildpack:kiln/node@1.2.0"},
                    ],
                },
                "runDetails": {
                    "builder": {"id": "https://kiln.dev/builder@v0.1.0", "version": {"kiln": "0.1.0"}},
                    "metadata": {
                        "invocationId": "run-7",
                        "startedOn": "2023-11-14T22:13:20Z",
                        "finishedOn": "2023-11-14T22:14:21Z",
                    },
                },
            },
        });
        assert_eq!(v, expected);
        // Canonical: sorted keys, no whitespace.
        assert_eq!(bytes, serde_json::to_vec(&expected).unwrap());
        assert!(bytes.starts_with(br#"{"_type":"https://in-toto.io/Statement/v1","predicate":{"buildDefinition":{"buildType""#));
    }

    #[test]
    fn omits_absent_optionals_and_is_deterministic() {
        let subject = digest(3);
        let empty = Map::new();
        let input = ProvenanceInput {
            subject_name: "r/app",
            subject_digest: &subject,
            builder_id: "b",
            builder_version: "v",
            build_type: "t",
            source_uri: None,
            source_revision: None,
            buildpacks: &[],
            base_image: None,
            parameters: &empty,
            invocation_id: None,
            started_on: None,
            finished_on: None,
        };
        let bytes = provenance_statement(&input);
        assert_eq!(bytes, provenance_statement(&input));
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("null"), "{text}");
        for absent in [
            "resolvedDependencies",
            "metadata",
            "source",
            "internalParameters",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert!(text.contains(r#""externalParameters":{}"#));

        // Parameter insertion order does not change the bytes.
        let (mut a, mut b) = (Map::new(), Map::new());
        a.insert("z".into(), 1.into());
        a.insert("a".into(), json!({"y": 1, "b": 2}));
        b.insert("a".into(), json!({"b": 2, "y": 1}));
        b.insert("z".into(), 1.into());
        let with = |parameters| {
            provenance_statement(&ProvenanceInput {
                parameters,
                ..input
            })
        };
        assert_eq!(with(&a), with(&b));
    }

    #[test]
    fn source_descriptor_without_uri_or_revision() {
        assert_eq!(
            source_descriptor(None, Some("abc")),
            Some(json!({"digest": {"gitCommit": "abc"}}))
        );
        assert_eq!(
            source_descriptor(Some("git+https://h/x.git"), None),
            Some(json!({"uri": "git+https://h/x.git"}))
        );
        assert_eq!(source_descriptor(None, None), None);
    }

    #[test]
    fn strips_credentials_from_source_uris() {
        for (input, expected) in [
            ("https://user:tok@host/x.git", "https://host/x.git"),
            (
                "https://tok@host:8443/x.git?X-Amz-Signature=s#frag",
                "https://host:8443/x.git",
            ),
            ("ssh://git@host/team/x.git", "ssh://host/team/x.git"),
            ("git@github.com:team/x.git", "ssh://github.com/team/x.git"),
            ("https://host/x@y.git", "https://host/x@y.git"),
            ("https://host", "https://host"),
            ("/srv/git/x.git", "/srv/git/x.git"),
        ] {
            assert_eq!(without_credentials(input), expected, "{input}");
        }
        let d = source_descriptor(Some("https://user:tok@host/x.git"), Some("c0ffee")).unwrap();
        assert_eq!(d["uri"], "git+https://host/x.git@c0ffee");
        assert!(!d.to_string().contains("tok"));
    }
}
