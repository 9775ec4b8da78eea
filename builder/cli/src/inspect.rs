//! `kiln inspect IMAGE`: an image in its registry, as a table or JSON: base, buildpacks,
//! processes, layers, SBOM summary, signatures and provenance (checked with `--key`).

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use kiln_attest::artifact::{Attachment, DSSE_MEDIA_TYPE, SPDX_MEDIA_TYPE, manifest_layers};
use kiln_attest::sign::{Envelope, PublicKey, read_provenance, verify_envelope};
use kiln_lifecycle::host_arch;
use kiln_oci::{Digest, Reference};
use kiln_registry::Client;
use serde::Serialize;
use serde_json::Value;

use crate::args::{FormatArg, InspectArgs};
use crate::attach::{find, read_blob};
use crate::failure::Failure;
use crate::keys::load_public;
use crate::output::human_bytes;
use crate::session::Session;
use crate::session::parse_image as parse;
use crate::settings::Environment;
use crate::sign::{FoundSignature, resolve, signatures};

/// What `kiln inspect` shows.
#[derive(Debug, Serialize)]
struct Inspection {
    image: String,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_digest: Option<String>,
    platform: String,
    created: Option<String>,
    user: Option<String>,
    base: Option<Value>,
    buildpacks: Vec<Value>,
    processes: Vec<Value>,
    layers: Vec<LayerRow>,
    sbom: Option<SbomSummary>,
    signatures: Vec<FoundSignature>,
    provenance: Option<ProvenanceRow>,
}

#[derive(Debug, Serialize)]
struct LayerRow {
    digest: String,
    size: u64,
    created_by: String,
}

#[derive(Debug, Serialize)]
struct SbomSummary {
    digest: String,
    packages: usize,
    by_type: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
struct ProvenanceRow {
    digest: String,
    builder_id: String,
    source: Option<String>,
    revision: Option<String>,
    base_image: Option<String>,
    buildpacks: Vec<String>,
    subject_matches: bool,
    /// `verified`, `invalid`, `unchecked` (no key given) or `unsigned`.
    status: &'static str,
}

/// Runs `kiln inspect`.
pub fn run(args: &InspectArgs, env: &Environment) -> Result<(), Failure> {
    let key = args.key.as_deref().map(load_public).transpose()?;
    let reference = parse(&args.image)?;
    let s = Session::open(env, &args.registry)?;
    let found = s
        .runtime
        .block_on(inspect(&s.client, &reference, key.as_ref()))?;
    match args.format {
        FormatArg::Json => println!(
            "{}",
            serde_json::to_string_pretty(&found).context("rendering JSON")?
        ),
        FormatArg::Table => print!("{}", table(&found)),
    }
    Ok(())
}

async fn inspect(
    client: &Client,
    reference: &Reference,
    key: Option<&PublicKey>,
) -> anyhow::Result<Inspection> {
    let digest = resolve(client, reference).await?;
    let top = client.get_manifest(reference, &digest.to_string()).await?;
    let top_json: Value = serde_json::from_slice(&top.bytes).context("reading the manifest")?;
    // An index: show the image for this host's platform.
    let (image_digest, manifest) = match top_json["manifests"].as_array() {
        Some(entries) => {
            let arch = host_arch();
            let entry = entries
                .iter()
                .find(|e| {
                    kiln_model::Platform::of_entry(e)
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .ok_or_else(|| anyhow!("the index `{digest}` has no linux/{arch} image"))?;
            let d: Digest = entry["digest"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .context("reading the index entry's digest")?;
            let m = client.get_manifest(reference, &d.to_string()).await?;
            (d, serde_json::from_slice::<Value>(&m.bytes)?)
        }
        None => (digest.clone(), top_json),
    };
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("reading the config digest")?;
    let config_bytes = client
        .get_blob_bytes(reference, &config_digest, 16 * 1024 * 1024)
        .await?;
    let config: Value = serde_json::from_slice(&config_bytes).context("reading the config")?;
    let labels = &config["config"]["Labels"];
    let label = |k: &str| -> Value {
        labels[k]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null)
    };
    let lifecycle = label("io.buildpacks.lifecycle.metadata");
    let build = label("io.buildpacks.build.metadata");
    let history: Vec<&Value> = config["history"]
        .as_array()
        .map(|h| h.iter().filter(|e| e["empty_layer"] != true).collect())
        .unwrap_or_default();
    let layers = manifest["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            digest: l["digest"].as_str().unwrap_or_default().to_owned(),
            size: l["size"].as_u64().unwrap_or(0),
            created_by: history
                .get(i)
                .and_then(|h| h["created_by"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    let base = match &lifecycle["runImage"] {
        Value::Null => labels["io.buildpacks.base.id"]
            .as_str()
            .map(|id| serde_json::json!({ "base_id": id, "note": "this is a base image" })),
        run => Some(serde_json::json!({
            "image": run["image"],
            "digest": run["reference"],
            "top_layer": run["topLayer"],
        })),
    };
    let sbom = sbom_summary(client, reference, &image_digest).await?;
    let signatures = signatures(client, reference, &digest, key).await?;
    let provenance = provenance(client, reference, &digest, key).await?;
    Ok(Inspection {
        image: reference.to_string(),
        digest: digest.to_string(),
        platform_digest: (image_digest != digest).then(|| image_digest.to_string()),
        platform: format!(
            "{}/{}",
            config["os"].as_str().unwrap_or("?"),
            config["architecture"].as_str().unwrap_or("?")
        ),
        created: config["created"].as_str().map(str::to_owned),
        user: config["config"]["User"].as_str().map(str::to_owned),
        base,
        buildpacks: build["buildpacks"].as_array().cloned().unwrap_or_default(),
        processes: build["processes"].as_array().cloned().unwrap_or_default(),
        layers,
        sbom,
        signatures,
        provenance,
    })
}

async fn sbom_summary(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
) -> anyhow::Result<Option<SbomSummary>> {
    let Some(m) = find(client, repo, digest, Attachment::Sbom, SPDX_MEDIA_TYPE).await? else {
        return Ok(None);
    };
    let Some(layer) = manifest_layers(&m.bytes).into_iter().next() else {
        return Ok(None);
    };
    let document = read_blob(client, repo, &layer).await?;
    let packages = kiln_attest::sbom::read_packages(&document)?;
    let mut by_type = std::collections::BTreeMap::new();
    for (eco, _) in &packages {
        *by_type
            .entry(crate::sbom::ecosystem_name(*eco).to_owned())
            .or_insert(0) += 1;
    }
    Ok(Some(SbomSummary {
        digest: m.digest.to_string(),
        packages: packages.len(),
        by_type,
    }))
}

async fn provenance(
    client: &Client,
    repo: &Reference,
    digest: &Digest,
    key: Option<&PublicKey>,
) -> anyhow::Result<Option<ProvenanceRow>> {
    let Some(m) = find(
        client,
        repo,
        digest,
        Attachment::Attestation,
        DSSE_MEDIA_TYPE,
    )
    .await?
    else {
        return Ok(None);
    };
    let Some(layer) = manifest_layers(&m.bytes).into_iter().next() else {
        return Ok(None);
    };
    let envelope: Envelope = serde_json::from_slice(&read_blob(client, repo, &layer).await?)
        .context("reading the provenance envelope")?;
    let status = match key {
        _ if envelope.signatures.is_empty() => "unsigned",
        None => "unchecked",
        Some(k) if verify_envelope(&envelope, k).is_ok() => "verified",
        Some(_) => "invalid",
    };
    let statement = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .context("decoding the provenance payload")?;
    let p = read_provenance(&statement)?;
    Ok(Some(ProvenanceRow {
        digest: m.digest.to_string(),
        subject_matches: p.subject_digests.contains(digest),
        builder_id: p.builder_id,
        source: p.source_uri,
        revision: p.source_revision,
        base_image: p.base_image,
        buildpacks: p.buildpacks,
        status,
    }))
}

fn table(i: &Inspection) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<12} {v}\n"));
    line("Image", &i.image);
    line("Digest", &i.digest);
    if let Some(d) = &i.platform_digest {
        line("Platform", &format!("{} ({d})", i.platform));
    } else {
        line("Platform", &i.platform);
    }
    line("Created", i.created.as_deref().unwrap_or("-"));
    line("User", i.user.as_deref().unwrap_or("-"));
    let base = match &i.base {
        Some(b) if b["image"].is_string() => format!(
            "{} ({})",
            b["image"].as_str().unwrap_or_default(),
            b["digest"].as_str().unwrap_or("-")
        ),
        Some(b) => format!("base image `{}`", b["base_id"].as_str().unwrap_or("-")),
        None => "-".into(),
    };
    line("Base", &base);
    let bps: Vec<String> = i
        .buildpacks
        .iter()
        .map(|b| {
            format!(
                "{}@{}",
                b["id"].as_str().unwrap_or("?"),
                b["version"].as_str().unwrap_or("?")
            )
        })
        .collect();
    line("Buildpacks", &or_dash(&bps.join(", ")));
    for p in &i.processes {
        let command: Vec<&str> = p["command"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let default = if p["default"] == true {
            " (default)"
        } else {
            ""
        };
        line(
            "Process",
            &format!(
                "{}{default}: {}",
                p["type"].as_str().unwrap_or("?"),
                command.join(" ")
            ),
        );
    }
    match &i.sbom {
        Some(s) => {
            let types: Vec<String> = s.by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
            line(
                "SBOM",
                &format!(
                    "{} packages ({}) {}",
                    s.packages,
                    types.join(", "),
                    s.digest
                ),
            );
        }
        None => line("SBOM", "none attached"),
    }
    if i.signatures.is_empty() {
        line("Signatures", "none");
    }
    for s in &i.signatures {
        let m = if s.digest_matches {
            ""
        } else {
            ", names another digest"
        };
        line(
            "Signature",
            &format!("{} ({}{m})", s.docker_reference, s.status),
        );
    }
    match &i.provenance {
        Some(p) => {
            line("Provenance", &format!("{} ({})", p.builder_id, p.status));
            let source = match (&p.source, &p.revision) {
                (Some(s), Some(r)) => format!("{s}@{r}"),
                (Some(s), None) => s.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => "-".into(),
            };
            line("  source", &source);
        }
        None => line("Provenance", "none attached"),
    }
    out.push_str(&format!("Layers ({}):\n", i.layers.len()));
    for l in &i.layers {
        out.push_str(&format!(
            "  {}  {:>10}  {}\n",
            l.digest,
            human_bytes(l.size),
            l.created_by
        ));
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}
