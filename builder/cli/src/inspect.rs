//! `kiln inspect IMAGE`: an image in its registry, as a table or JSON: base, buildpacks,
//! processes, layers, SBOM summary, signatures and provenance (checked with `--key`).
//! The reading is [`kiln_pipeline::inspect`]; this renders it.

use anyhow::Context as _;
use anyhow::anyhow;
use kiln_pipeline::{ImageSource, Inspection, human_bytes, inspect, inspect_layout};
use serde_json::Value;

use crate::args::{FormatArg, InspectArgs};
use crate::failure::{Failure, exit};
use crate::keys::load_public;
use crate::session::{open, parse_image};
use crate::settings::Environment;

/// Runs `kiln inspect`: an image in kiln's store or an OCI layout is read there, any other
/// in its registry.
pub fn run(args: &InspectArgs, env: &Environment) -> Result<(), Failure> {
    let key = args.key.as_deref().map(load_public).transpose()?;
    let store_dir = env
        .cache_dir(args.cache.cache_dir.as_ref())
        .map_err(|e| Failure::new(exit::USAGE, e))?
        .join("oci");
    let local = match ImageSource::parse(&args.image, &store_dir) {
        Ok(ImageSource::Store(name)) => Some((store_dir, name)),
        Ok(ImageSource::Layout { dir, name }) => {
            let name = name.ok_or_else(|| {
                Failure::new(exit::USAGE, anyhow!("name the image: `oci:PATH:NAME`"))
            })?;
            Some((dir, name))
        }
        _ => None,
    };
    let found = match local {
        Some((dir, name)) => inspect_layout(&dir, &name).map_err(anyhow::Error::from)?,
        None => {
            let reference = parse_image(&args.image)?;
            let session = open(env, &args.registry)?;
            session
                .block_on(inspect(session.client(), &reference, key.as_ref()))
                .map_err(anyhow::Error::from)?
        }
    };
    match args.format {
        FormatArg::Json => println!(
            "{}",
            serde_json::to_string_pretty(&found).context("rendering JSON")?
        ),
        FormatArg::Table => print!("{}", table(&found)),
    }
    Ok(())
}

/// Rows of `Key        value` lines.
#[derive(Default)]
struct Table(String);

impl Table {
    fn line(&mut self, key: &str, value: &str) {
        self.0.push_str(&format!("{key:<12} {value}\n"));
    }
}

fn table(i: &Inspection) -> String {
    let mut t = Table::default();
    t.line("Image", &i.image);
    t.line("Digest", &i.digest);
    match &i.platform_digest {
        Some(d) => t.line("Platform", &format!("{} ({d})", i.platform)),
        None => t.line("Platform", &i.platform),
    }
    for (n, entry) in i.platforms.iter().enumerate() {
        let key = if n == 0 { "Platforms" } else { "" };
        t.line(key, &format!("{} ({})", entry.platform, entry.digest));
    }
    t.line("Created", i.created.as_deref().unwrap_or("-"));
    t.line("User", i.user.as_deref().unwrap_or("-"));
    let base = match &i.base {
        Some(b) if b["image"].is_string() => format!(
            "{} ({})",
            b["image"].as_str().unwrap_or_default(),
            b["digest"].as_str().unwrap_or("-")
        ),
        Some(b) => format!("base image `{}`", b["base_id"].as_str().unwrap_or("-")),
        None => "-".into(),
    };
    t.line("Base", &base);
    build_lines(&mut t, i);
    attachment_lines(&mut t, i);
    t.0.push_str(&format!("Layers ({}):\n", i.layers.len()));
    for l in &i.layers {
        t.0.push_str(&format!(
            "  {}  {:>10}  {}\n",
            l.digest,
            human_bytes(l.size),
            l.created_by
        ));
    }
    t.0
}

/// The buildpacks and processes.
fn build_lines(t: &mut Table, i: &Inspection) {
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
    t.line("Buildpacks", &or_dash(&bps.join(", ")));
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
        let kind = p["type"].as_str().unwrap_or("?");
        t.line(
            "Process",
            &format!("{kind}{default}: {}", command.join(" ")),
        );
    }
}

/// The SBOM, signatures and provenance.
fn attachment_lines(t: &mut Table, i: &Inspection) {
    match &i.sbom {
        Some(s) => {
            let types: Vec<String> = s.by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
            let summary = format!(
                "{} packages ({}) {}",
                s.packages,
                types.join(", "),
                s.digest
            );
            t.line("SBOM", &summary);
        }
        None => t.line("SBOM", "none attached"),
    }
    if i.signatures.is_empty() {
        t.line("Signatures", "none");
    }
    for s in &i.signatures {
        let m = if s.digest_matches {
            ""
        } else {
            ", names another digest"
        };
        t.line(
            "Signature",
            &format!("{} ({}{m})", s.docker_reference, s.status),
        );
    }
    match &i.provenance {
        Some(p) => {
            t.line("Provenance", &format!("{} ({})", p.builder_id, p.status));
            let source = match (&p.source, &p.revision) {
                (Some(s), Some(r)) => format!("{s}@{r}"),
                (Some(s), None) => s.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => "-".into(),
            };
            t.line("  source", &source);
        }
        None => t.line("Provenance", "none attached"),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}
