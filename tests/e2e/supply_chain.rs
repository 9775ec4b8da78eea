//! Supply chain, against a real registry and real clients: the SBOMs of a Go app on the
//! static golden base validate with SPDX's and CycloneDX's reference tools and list the
//! Debian packages and Go modules syft finds; podman's pull engine with a `sigstoreSigned`
//! policy lets the signed image through (podman runs it) and refuses an unsigned one and
//! one changed after signing; the
//! provenance's DSSE signature verifies with openssl and names the image; `kiln inspect`
//! shows it all; no secret reaches any of it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::{Kiln, client, runtime, validate_pushed};
use base64::Engine as _;
use kiln_e2e::{
    Registry, policy_pull, run_checked, skopeo_copy_with, validate_cyclonedx, validate_spdx,
};
use serde_json::Value;

const USER: &str = "builder";
/// The registry password: it must appear in no SBOM, provenance, inspect output or report.
const PASSWORD: &str = "kiln-registry-canary-5d1f0a";
/// A token in the source's git remote URL, which provenance must not carry.
const GIT_TOKEN: &str = "kiln-git-token-canary-77c3e2";
/// The signing key's password.
const KEY_PASSWORD: &str = "kiln key password";

/// (name, version) of syft's artifacts of `kind` (`deb`, `go-module`).
fn syft_packages(sbom: &Value, kind: &str) -> BTreeSet<(String, String)> {
    sbom["artifacts"]
        .as_array()
        .expect("syft artifacts")
        .iter()
        .filter(|a| a["type"] == kind)
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Makes `app` a git checkout whose `origin` URL carries a token, as CI checkouts do.
fn git_checkout(app: &Path) -> String {
    let git = |args: &[&str]| {
        let out = run_checked(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=kiln",
                    "-c",
                    "user.email=kiln@example.invalid",
                ])
                .args(args)
                .current_dir(app),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("https://ci:{GIT_TOKEN}@git.example.invalid/team/goweb.git"),
    ]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "app"]);
    git(&["rev-parse", "HEAD"])
}

/// podman's pull path with a `policy.json` that requires signatures by `public_key` for
/// `registry`, read from cosign's `.sig` tags (`use-sigstore-attachments` in registries.d).
/// It is `policy-pull` (upstream containers/image, the engine podman pulls with): Debian's
/// podman has sigstore verification patched out (see `kiln_e2e::policy_pull`).
pub(crate) struct Verifier<'k> {
    kiln: &'k Kiln,
    policy: std::path::PathBuf,
    registries_d: std::path::PathBuf,
}

impl<'k> Verifier<'k> {
    pub(crate) fn new(kiln: &'k Kiln, registry: &Registry, public_key: &Path) -> Self {
        let host = registry.host();
        let policy = kiln.ws.write(
            "policy.json",
            serde_json::json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {host.clone(): [{
                    "type": "sigstoreSigned",
                    "keyPath": public_key,
                    "signedIdentity": {"type": "matchRepoDigestOrExact"},
                }]}},
            })
            .to_string(),
        );
        kiln.ws.write(
            "registries.d/kiln.yaml",
            format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
        );
        Self {
            kiln,
            policy,
            registries_d: kiln.ws.join("registries.d"),
        }
    }

    /// Pulls `reference` into a new OCI layout; returns whether the policy let it through,
    /// the layout reference (`oci:DIR:img`) and the error text.
    pub(crate) fn pull(&self, reference: &str, dir: &str) -> (bool, String, String) {
        let layout = self.kiln.ws.join(dir);
        let dest = format!("oci:{}:img", layout.display());
        let out = policy_pull(
            &self.policy,
            &self.registries_d,
            &format!("{USER}:{PASSWORD}"),
            &format!("docker://{reference}"),
            &dest,
        );
        (
            out.status.success(),
            dest,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Returns the DSSE envelope attached at `tag` (`sha256-<hex>.att`).
fn attached_envelope(c: &kiln_registry::Client, reference_of_tag: &str) -> Value {
    let manifest = skopeo_inspect_raw_creds(reference_of_tag);
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(
        layer["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert!(manifest["subject"]["digest"].is_string(), "{manifest}");
    let (repo, _) = reference_of_tag.rsplit_once(':').unwrap();
    let blob = blob_bytes(c, &format!("{repo}@{}", layer["digest"].as_str().unwrap()));
    serde_json::from_slice(&blob).unwrap()
}

fn skopeo_inspect_raw_creds(reference: &str) -> Value {
    kiln_e2e::skopeo_inspect_with(
        reference,
        &[
            "--raw",
            "--tls-verify=false",
            &format!("--creds={USER}:{PASSWORD}"),
        ],
    )
}

/// Returns blob `repo@digest`.
fn blob_bytes(c: &kiln_registry::Client, reference: &str) -> Vec<u8> {
    let (repo, digest) = reference.split_once('@').unwrap();
    let repo: kiln_oci::Reference = repo.parse().unwrap();
    let digest: kiln_oci::Digest = digest.parse().unwrap();
    runtime()
        .block_on(c.get_blob_bytes(&repo, &digest, 64 << 20))
        .expect("blob")
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

pub(crate) fn sboms_signatures_and_provenance_of_a_go_app() {
    let kiln = Kiln::new();
    let registry = Registry::htpasswd(USER, PASSWORD);
    kiln.run_with(
        &["login", &registry.host(), "-u", USER, "--password-stdin"],
        Some(PASSWORD),
        &[],
    )
    .ok();
    let config_dir = kiln.env["DOCKER_CONFIG"].clone();
    let base = common::publish_base(&registry, "static", "linux/amd64", false, "v1");

    let key_env = [("KILN_KEY_PASSWORD", KEY_PASSWORD)];
    let prefix = kiln.ws.join("keys/release");
    std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
    kiln.run_with(
        &[
            "key",
            "generate",
            "--output-prefix",
            prefix.to_str().unwrap(),
        ],
        None,
        &key_env,
    )
    .ok();
    let (private_key, public_key) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    let pem = std::fs::read_to_string(&private_key).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{pem}"
    );
    // No password, no key.
    let refused = kiln.run(&["sign", "x", "--key", private_key.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("KILN_KEY_PASSWORD"),
        "{}",
        refused.stderr
    );

    let app = kiln.fixture("go-web", "src/go-web");
    let revision = git_checkout(&app);
    let cache = common::warm_cache(&kiln, "cache");
    let sbom_dir = kiln.ws.join("sbom");
    let report_path = kiln.ws.join("report.json");
    let image = registry.reference("apps/goweb:1");
    let build = kiln.run_with(
        &[
            "build",
            &image,
            "--path",
            app.to_str().unwrap(),
            "--publish",
            "--run-image",
            &base,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--sbom-dir",
            sbom_dir.to_str().unwrap(),
            "--sign-key",
            private_key.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ],
        None,
        &key_env,
    );
    let pinned = build.ok();
    let digest = pinned.split_once('@').unwrap().1.to_owned();
    let c = client(Some(Path::new(&config_dir)), None);
    validate_pushed(&c, &pinned);

    // The SBOMs validate with the formats' reference tools.
    let (spdx_path, cdx_path) = (
        sbom_dir.join("sbom.spdx.json"),
        sbom_dir.join("sbom.cdx.json"),
    );
    assert_eq!(
        validate_spdx(&spdx_path),
        "",
        "pyspdxtools rejects kiln's SPDX"
    );
    assert_eq!(
        validate_cyclonedx(&cdx_path),
        "",
        "cyclonedx-python-lib rejects kiln's CycloneDX"
    );
    let cdx: Value = serde_json::from_slice(&std::fs::read(&cdx_path).unwrap()).unwrap();
    assert_eq!(cdx["metadata"]["component"]["version"], digest.as_str());

    // They list the Debian packages and Go modules syft finds in the pushed image.
    let archive = kiln.ws.join("goweb.tar");
    let out = skopeo_copy_with(
        &pinned,
        &format!("oci-archive:{}", archive.display()),
        &[
            "--src-tls-verify=false",
            &format!("--src-creds={USER}:{PASSWORD}"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let syft = kiln_e2e::syft_scan(
        &format!("oci-archive:{}", archive.display()),
        &kiln.ws.mkdir("syft"),
    );
    let (kiln_debs, syft_debs) = (
        common::sbom_components(&cdx, "deb"),
        syft_packages(&syft, "deb"),
    );
    assert!(kiln_debs.len() >= 3, "{kiln_debs:?}");
    assert_eq!(
        kiln_debs, syft_debs,
        "Debian packages: kiln (left) vs syft (right)"
    );
    let (kiln_go, syft_go) = (
        common::sbom_components(&cdx, "golang"),
        syft_packages(&syft, "go-module"),
    );
    assert!(
        kiln_go.contains(&("github.com/google/uuid".into(), "v1.6.0".into())),
        "{kiln_go:?}"
    );
    // The main module: Go records `(devel)` (kiln builds without VCS stamping, for
    // reproducibility), which syft shows as `UNKNOWN`; every other module must match.
    let names = |set: &BTreeSet<(String, String)>| -> BTreeSet<String> {
        set.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(
        names(&kiln_go),
        names(&syft_go),
        "Go modules: kiln (left) vs syft (right)"
    );
    assert!(kiln_go.contains(&("example.com/goweb".into(), "(devel)".into())));
    let versioned = |set: &BTreeSet<(String, String)>| -> BTreeSet<(String, String)> {
        set.iter()
            .filter(|(n, _)| n != "example.com/goweb")
            .cloned()
            .collect()
    };
    assert_eq!(
        versioned(&kiln_go),
        versioned(&syft_go),
        "Go module versions: kiln vs syft"
    );

    // The SBOM is attached: the registry (distribution 2.8) has no referrers API, so at
    // cosign's `.sbom` tag, an artifact whose subject is the image and whose blobs are the
    // files written.
    let hex = digest.strip_prefix("sha256:").unwrap();
    let repo = registry.reference("apps/goweb");
    let sbom_manifest = skopeo_inspect_raw_creds(&format!("{repo}:sha256-{hex}.sbom"));
    assert_eq!(sbom_manifest["subject"]["digest"], digest.as_str());
    assert_eq!(sbom_manifest["artifactType"], "application/spdx+json");
    let attached = blob_bytes(
        &c,
        &format!(
            "{repo}@{}",
            sbom_manifest["layers"][0]["digest"].as_str().unwrap()
        ),
    );
    assert_eq!(attached, std::fs::read(&spdx_path).unwrap());

    // A policy that requires kiln's key lets the signed image through, by tag and by
    // digest, and podman runs what came through...
    let verifying = Verifier::new(&kiln, &registry, &public_key);
    let (ok, layout, err) = verifying.pull(&image, "pulled-signed");
    assert!(ok, "the policy refused the signed image: {err}");
    let (ok, _, err) = verifying.pull(&pinned, "pulled-by-digest");
    assert!(ok, "the policy refused the signed image by digest: {err}");
    let layout_dir = layout
        .strip_prefix("oci:")
        .unwrap()
        .strip_suffix(":img")
        .unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(Path::new(layout_dir).join("index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    let podman = common::suite::podman();
    podman.pull_with(
        &pinned,
        &["--tls-verify=false", &format!("--creds={USER}:{PASSWORD}")],
    );
    let port = kiln_e2e::free_port().to_string();
    let env = format!("PORT={port}");
    let _ctr = podman.run_detached(&pinned, &["-e", env.as_str()]);
    let url = format!("http://127.0.0.1:{port}/");
    kiln_e2e::wait_http(&url, std::time::Duration::from_secs(60));
    assert!(!kiln_e2e::http_get(&url).unwrap().text().is_empty());
    let verify = kiln.run(&["verify", &image, "--key", public_key.to_str().unwrap()]);
    assert!(verify.ok().contains("verified signature"));

    // ...refuses an unsigned one...
    let unsigned_image = registry.reference("apps/unsigned:1");
    kiln.run(&[
        "build",
        &unsigned_image,
        "--path",
        app.to_str().unwrap(),
        "--publish",
        "--run-image",
        &base,
        "--cache-dir",
        cache.to_str().unwrap(),
    ])
    .ok();
    let (ok, _, err) = verifying.pull(&unsigned_image, "pulled-unsigned");
    assert!(!ok, "the policy let an unsigned image through");
    assert!(err.contains("signature"), "{err}");
    let refused = kiln.run(&[
        "verify",
        &unsigned_image,
        "--key",
        public_key.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("has no signatures"),
        "{}",
        refused.stderr
    );

    // ...and one whose manifest changed after signing, even with the old signature copied
    // to the new digest's `.sig` tag.
    let manifest = skopeo_inspect_raw_creds(&pinned);
    let original = skopeo_manifest_bytes(&pinned);
    assert_eq!(kiln_oci::Digest::of(&original).to_string(), digest);
    let mut changed = manifest.clone();
    changed["annotations"] = serde_json::json!({"changed": "after signing"});
    let changed_bytes = serde_json::to_vec(&changed).unwrap();
    let changed_digest = kiln_oci::Digest::of(&changed_bytes);
    let reference: kiln_oci::Reference = image.parse().unwrap();
    runtime().block_on(async {
        c.push_manifest(
            &reference,
            "1",
            manifest["mediaType"].as_str().unwrap(),
            &changed_bytes,
        )
        .await
        .unwrap();
        let sig = c
            .get_manifest(&reference, &format!("sha256-{hex}.sig"))
            .await
            .unwrap();
        c.push_manifest(
            &reference,
            &format!("sha256-{}.sig", changed_digest.hex()),
            &sig.media_type,
            &sig.bytes,
        )
        .await
        .unwrap();
    });
    let (ok, _, err) = verifying.pull(&image, "pulled-changed");
    assert!(!ok, "the policy let an image changed after signing through");
    assert!(err.contains("signature") || err.contains("digest"), "{err}");
    let refused = kiln.run(&["verify", &image, "--key", public_key.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    // Put the signed manifest back for what follows.
    runtime().block_on(async {
        c.push_manifest(
            &reference,
            "1",
            manifest["mediaType"].as_str().unwrap(),
            &original,
        )
        .await
        .unwrap();
    });

    // Provenance: the DSSE signature verifies with openssl over the PAE, and the statement
    // names the image's digest, the source without its token, the base and the buildpack.
    let envelope = attached_envelope(&c, &format!("{repo}:sha256-{hex}.att"));
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let pae_path = kiln
        .ws
        .write("pae.bin", pae("application/vnd.in-toto+json", &payload));
    let sig_path = kiln.ws.write("pae.sig", sig);
    run_checked(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public_key)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&pae_path),
    );
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
    let text = statement.to_string();
    assert!(
        text.contains("https://git.example.invalid/team/goweb.git"),
        "{text}"
    );
    assert!(text.contains(&revision), "{text}");
    assert!(text.contains("kiln/go"), "{text}");
    assert!(
        text.contains(base.split(':').next_back().unwrap()) || text.contains("bases/static"),
        "{text}"
    );

    // kiln inspect shows it all, and checks it with the key.
    let inspect = kiln.run(&[
        "inspect",
        &image,
        "--format",
        "json",
        "--key",
        public_key.to_str().unwrap(),
    ]);
    inspect.ok();
    let shown: Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(shown["digest"], digest.as_str());
    assert!(
        shown["base"]["image"]
            .as_str()
            .unwrap()
            .contains("bases/static"),
        "{shown}"
    );
    assert_eq!(shown["buildpacks"][0]["id"], "kiln/go");
    assert!(!shown["processes"].as_array().unwrap().is_empty());
    assert_eq!(
        shown["layers"].as_array().unwrap().len(),
        manifest["layers"].as_array().unwrap().len()
    );
    assert_eq!(
        shown["sbom"]["packages"],
        cdx["components"].as_array().unwrap().len()
    );
    assert_eq!(shown["signatures"][0]["status"], "verified");
    assert_eq!(shown["signatures"][0]["digest_matches"], true);
    assert_eq!(shown["provenance"]["status"], "verified");
    assert_eq!(shown["provenance"]["subject_matches"], true);
    let run = kiln.run(&["inspect", &image]);
    run.ok();
    let table = run.stdout;
    for want in [
        "Base",
        "kiln/go",
        "SBOM",
        "Signature",
        "Provenance",
        "Layers (",
    ] {
        assert!(table.contains(want), "no `{want}` in:\n{table}");
    }

    // No secret anywhere.
    let report = std::fs::read_to_string(&report_path).unwrap();
    let spdx = std::fs::read_to_string(&spdx_path).unwrap();
    for (what, text) in [
        ("build output", format!("{}{}", build.stdout, build.stderr)),
        ("report", report),
        ("SPDX", spdx),
        ("CycloneDX", cdx.to_string()),
        ("provenance", text.clone()),
        ("inspect", format!("{}{table}", inspect.stdout)),
    ] {
        for secret in [PASSWORD, GIT_TOKEN, KEY_PASSWORD] {
            assert!(!text.contains(secret), "`{secret}` in the {what}");
        }
    }
}

/// Returns the manifest bytes of `reference` exactly as stored.
fn skopeo_manifest_bytes(reference: &str) -> Vec<u8> {
    let out = run_checked(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("--creds={USER}:{PASSWORD}"))
            .arg(format!("docker://{reference}")),
    );
    out.stdout
}
