//! The golden bases the tests build apps on, each built once per suite run and platform
//! from its committed lock (`kiln base build --platform linux/<arch>`), never relocked:
//! locking against the live mirror is the subject of `golden_base`'s own tests.
//!
//! An index is assembled from those per-platform images the way kiln's multi-platform
//! build lists them ([`kiln_model::FinalIndex`]), and "version 2" of a base is version 1
//! plus one layer holding `/etc/kiln-base-v2` (`v2`), as a patch release a platform team
//! rolls out: nothing is built twice.
//!
//! Each lives in `<target>/e2e-bases/<stamp>/<key>`, where the stamp hashes the kiln binary
//! (size and time) and every committed golden-base file, so reruns in one target dir reuse
//! them and a changed kiln or base builds afresh. A base is built in a temporary sibling
//! and renamed into place, so a half-built one is never used. The `.deb`s come from the
//! verified, content-addressed cache in the machine cache, shared by every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use kiln_e2e::{copy_dir, workspace_root};
use serde_json::{Value, json};

use super::{Kiln, suite};

/// The annotation that names an image in an OCI layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The ref name of base `name` in its store.
fn ref_name(name: &str) -> String {
    format!("kiln-base/{name}")
}

/// Returns the kiln cache dir whose store (`oci/`) holds golden base `base` for `platform`
/// as `kiln-base/<base>`; `platform` may name several (`linux/amd64,linux/arm64`: an
/// index). For amd64 the dir also holds `<base>.tar` (an OCI archive) and `sbom/` (kiln's
/// SBOMs of it).
pub fn shared_base(base: &str, platform: &str) -> PathBuf {
    shared_base_version(base, platform, false)
}

/// Like [`shared_base`], for "version 2" of the base when `v2` (see the module docs).
pub fn shared_base_version(base: &str, platform: &str, v2: bool) -> PathBuf {
    let arches: Vec<&str> = platform
        .split(',')
        .map(|p| {
            p.strip_prefix("linux/")
                .unwrap_or_else(|| panic!("`{p}`: the golden bases are linux/<arch>"))
        })
        .collect();
    let key = format!("{base}-{}{}", arches.join("-"), if v2 { "-v2" } else { "" });
    memo(&key, |dir| match (arches.as_slice(), v2) {
        ([arch], false) => build_image(base, arch, dir),
        ([arch], true) => {
            let v1 = shared_base_version(base, &format!("linux/{arch}"), false);
            add_v2_layer(&v1, base, dir);
        }
        (many, v2) => {
            let images: Vec<PathBuf> = many
                .iter()
                .map(|arch| shared_base_version(base, &format!("linux/{arch}"), v2))
                .collect();
            assemble_index(base, &images, dir);
        }
    })
}

/// Returns the OCI layout holding golden base `base` for `linux/<arch>` as `kiln-base/<base>`.
pub fn store(base: &str, arch: &str) -> PathBuf {
    shared_base(base, &format!("linux/{arch}")).join("oci")
}

/// Returns the image `kiln-base/<base>` of the layout `store`, validated.
pub fn image(store: &Path, base: &str) -> kiln_image::Validated {
    kiln_image::validate_layout(store, &ref_name(base)).unwrap_or_else(|e| {
        panic!(
            "validating `{}` in `{}`: {e}",
            ref_name(base),
            store.display()
        )
    })
}

/// Returns the diffIDs of golden base `base` for `linux/<arch>`, from its stored config
/// (the base was validated when it was built).
pub fn diff_ids(base: &str, arch: &str) -> Vec<String> {
    let layout = store(base, arch);
    let (_, manifest) = manifest_of(&layout, &ref_name(base));
    let config: Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    serde_json::from_value(config["rootfs"]["diff_ids"].clone()).unwrap()
}

/// Returns the OCI archive of the amd64 golden base `base` (`podman load`, syft).
pub fn archive(base: &str) -> PathBuf {
    shared_base(base, "linux/amd64").join(format!("{base}.tar"))
}

/// Returns the committed lock of golden base `base`.
pub fn committed_lock(base: &str) -> PathBuf {
    workspace_root().join(format!("golden-base/{base}.lock"))
}

/// Holds the amd64 golden base `base` against syft and its committed lock
/// ([`Kiln::assert_syft_matches_lock`]), with the SBOMs kiln wrote when building it.
pub fn assert_syft_matches_lock(kiln: &Kiln, base: &str) {
    let dir = shared_base(base, "linux/amd64");
    kiln.assert_syft_matches_lock(&archive(base), &committed_lock(base), &dir.join("sbom"));
}

/// Points the `.deb` cache of kiln cache dir `cache` at the suite's verified one (in the
/// machine cache): for base builds whose downloads are not their subject.
pub fn share_deb_cache(cache: &Path) {
    let debs = kiln_e2e::machine_cache().join("debian");
    std::fs::create_dir_all(&debs).unwrap();
    std::fs::create_dir_all(cache).unwrap();
    std::os::unix::fs::symlink(&debs, cache.join("debian")).unwrap();
}

/// Returns the directory of fixture `key`, making it with `make` (into the directory it is
/// given) unless this run or an earlier one with the same stamp already did. Concurrent
/// callers for one key wait for the first; different keys build in parallel.
fn memo(key: &str, make: impl FnOnce(&Path)) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = BUILT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_owned())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let dir = stamp_dir().join(key);
        if !dir.join("oci/index.json").is_file() {
            let tmp = stamp_dir().join(format!(".tmp-{}-{key}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).unwrap();
            suite::timed(format!("fixture: base {key}"), || make(&tmp));
            // Another test process may have finished the same base first: keep that one.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        dir
    })
    .clone()
}

/// Returns `<target>/e2e-bases/<stamp>`, removing the directories of other stamps (bases
/// an earlier kiln built) the first time.
fn stamp_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = kiln_e2e::target_dir().join("e2e-bases");
        let stamp = stamp();
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if entry.file_name().to_str() != Some(stamp.as_str()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(stamp);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Returns a hash of what a base depends on: the kiln binary (size and modification time)
/// and the committed golden-base files.
fn stamp() -> String {
    let mut seen = String::new();
    let bin = std::fs::metadata(kiln_e2e::kiln_bin()).expect("the kiln binary");
    let mtime = bin
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    seen.push_str(&format!("kiln {} {}\n", bin.len(), mtime.as_nanos()));
    let mut files = walk_files(&workspace_root().join("golden-base"));
    files.sort();
    for f in files {
        seen.push_str(&format!("{}\n", f.display()));
        seen.push_str(&kiln_oci::Digest::of(&std::fs::read(&f).unwrap()).to_string());
    }
    kiln_oci::Digest::of(seen.as_bytes()).hex()[..16].to_owned()
}

/// Returns every file under `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Returns a copy of the committed `golden-base/` (definitions, locks, keyrings), made once.
fn definitions() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = suite::run_dir().join("golden-base");
        copy_dir(&workspace_root().join("golden-base"), &dir).expect("copying golden-base/");
        dir
    })
}

/// Builds `base` for `linux/<arch>` from its committed lock into the kiln cache dir `dir`.
fn build_image(base: &str, arch: &str, dir: &Path) {
    share_deb_cache(dir);
    let def = definitions().join(format!("{base}.toml"));
    let platform = format!("linux/{arch}");
    let mut args = vec![
        "base".to_owned(),
        "build".to_owned(),
        def.display().to_string(),
        "--platform".to_owned(),
        platform,
        "--cache-dir".to_owned(),
        dir.display().to_string(),
    ];
    if arch == "amd64" {
        for (flag, path) in [
            ("--output", dir.join(format!("{base}.tar"))),
            ("--sbom-dir", dir.join("sbom")),
        ] {
            args.extend([flag.to_owned(), path.display().to_string()]);
        }
    }
    let kiln = Kiln::new();
    kiln.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    std::fs::remove_file(dir.join("debian")).unwrap();
    kiln_image::validate_layout(&dir.join("oci"), &ref_name(base))
        .unwrap_or_else(|e| panic!("validating `{}` for {arch}: {e}", ref_name(base)));
}

/// Writes into `dir` base `base` version 2: the image of the store `v1` plus one layer
/// holding `/etc/kiln-base-v2` (`v2\n`), one more history entry, and a `created` a day
/// later; labels (base id, packages) stay v1's.
fn add_v2_layer(v1: &Path, base: &str, dir: &Path) {
    let layout = dir.join("oci");
    link_tree(&v1.join("oci"), &layout);
    let store = kiln_layer::BlobStore::open(&layout).unwrap();
    let (manifest_digest, manifest) = manifest_of(&layout, &ref_name(base));
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let mut config: Value = serde_json::from_slice(&blob(&layout, &config_digest)).unwrap();

    let mut contents = kiln_layer::LayerContents::new();
    contents.add_dir("etc", 0o755, None);
    contents.add_file("etc/kiln-base-v2", b"v2\n".to_vec(), 0o644, None);
    let created = chrono_plus_a_day(config["created"].as_str().unwrap());
    let policy = kiln_layer::TarPolicy {
        mtime: 0,
        owner: kiln_layer::Ownership::new(0, 0),
    };
    let layer =
        kiln_layer::write_layer(&contents, &policy, kiln_layer::Compression::Gzip, &store).unwrap();

    config["created"] = json!(created);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(layer.diff_id.to_string()));
    config["history"].as_array_mut().unwrap().push(json!({
        "created": created,
        "created_by": "kiln e2e: base v2 adds /etc/kiln-base-v2",
    }));
    let config_bytes = kiln_oci::canonical_json(&config).unwrap();
    let new_config = store.put_bytes(&config_bytes).unwrap();
    let mut manifest = manifest;
    manifest["config"]["digest"] = json!(new_config.to_string());
    manifest["config"]["size"] = json!(config_bytes.len());
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": layer.media_type,
        "digest": layer.digest.to_string(),
        "size": layer.size,
    }));
    let manifest_bytes = kiln_oci::canonical_json(&manifest).unwrap();
    let new_manifest = store.put_bytes(&manifest_bytes).unwrap();
    assert_ne!(new_manifest.to_string(), manifest_digest);
    write_index_json(
        &layout,
        kiln_oci::media_types::OCI_MANIFEST,
        &new_manifest,
        manifest_bytes.len(),
        base,
    );
    let v2 = kiln_image::validate_layout(&layout, &ref_name(base))
        .unwrap_or_else(|e| panic!("validating v2 of `{}`: {e}", ref_name(base)));
    assert_eq!(v2.manifest_digest, new_manifest);
}

/// Returns RFC 3339 time `at` plus one day (the formats kiln writes: `…Z`, no fraction).
fn chrono_plus_a_day(at: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("`{at}` is not RFC 3339: {e}"));
    (t + chrono::Duration::days(1))
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes into `dir` the index of the per-platform images of base `base` in the stores
/// `images` (in that order), every blob hardlinked from them.
fn assemble_index(base: &str, images: &[PathBuf], dir: &Path) {
    let layout = dir.join("oci");
    let mut finals = Vec::new();
    for image in images {
        link_tree(&image.join("oci/blobs"), &layout.join("blobs"));
        finals.push(final_image(&image.join("oci"), &ref_name(base)));
    }
    let index = kiln_model::FinalIndex::new(finals).unwrap();
    let store = kiln_layer::BlobStore::open(&layout).unwrap();
    let digest = store.put_bytes(&index.index_bytes).unwrap();
    assert_eq!(digest, index.index_digest);
    write_index_json(
        &layout,
        kiln_oci::media_types::OCI_INDEX,
        &digest,
        index.index_bytes.len(),
        base,
    );
    kiln_image::validate_layout_index(&layout, &ref_name(base))
        .unwrap_or_else(|e| panic!("validating the index of `{}`: {e}", ref_name(base)));
}

/// Returns the image `ref_name` of the layout `layout` as a [`kiln_model::FinalImage`],
/// from its stored bytes (so its digests are the stored ones).
fn final_image(layout: &Path, ref_name: &str) -> kiln_model::FinalImage {
    let (digest, manifest) = manifest_of(layout, ref_name);
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = blob(layout, config_digest);
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| kiln_model::Layer {
            media_type: l["mediaType"].as_str().unwrap().to_owned(),
            digest: l["digest"].as_str().unwrap().parse().unwrap(),
            size: l["size"].as_u64().unwrap(),
            diff_id: diff_id.as_str().unwrap().parse().unwrap(),
            origin: kiln_model::Origin::Local,
        })
        .collect();
    kiln_model::FinalImage {
        layers,
        config_digest: config_digest.parse().unwrap(),
        config_bytes,
        manifest_bytes: blob(layout, &digest),
        manifest_digest: digest.parse().unwrap(),
    }
}

/// Returns the digest and the JSON of the manifest `ref_name` names in `layout`.
fn manifest_of(layout: &Path, ref_name: &str) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == ref_name)
        .unwrap_or_else(|| panic!("no `{ref_name}` in `{}`", layout.display()));
    let digest = entry["digest"].as_str().unwrap().to_owned();
    let manifest = serde_json::from_slice(&blob(layout, &digest)).unwrap();
    (digest, manifest)
}

/// Returns the bytes of blob `digest` (`sha256:…`) of `layout`.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// Writes `layout`'s `oci-layout` and an `index.json` naming only `digest` as
/// `kiln-base/<base>`.
fn write_index_json(
    layout: &Path,
    media_type: &str,
    digest: &kiln_oci::Digest,
    size: usize,
    base: &str,
) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": kiln_oci::media_types::OCI_INDEX,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": { REF_NAME: ref_name(base) },
        }],
    });
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    // Replaced, never written through: the file may be a hardlink to v1's.
    let path = layout.join("index.json");
    let _ = std::fs::remove_file(&path);
    std::fs::write(path, kiln_oci::canonical_json(&index).unwrap()).unwrap();
}

/// Copies a tree with every file hardlinked (existing files are kept).
pub fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            link_tree(&entry.path(), &dst);
        } else if !dst.exists() {
            std::fs::hard_link(entry.path(), &dst).unwrap();
        }
    }
}

/// Returns a new cache dir `name` in `kiln`'s workspace whose store holds the amd64 golden
/// base `base` as `kiln-base/<base>` (with kiln's SBOM catalogs of its layers), what the
/// stacks run on, and whose toolchain download caches are the suite's warm ones ([`super::caches::share_downloads`]). Its blobs are
/// hardlinks to the suite's base: the store writes through temp files and renames, so no
/// test writes through a link, and no two tests share a cache.
pub fn cache_with_base(kiln: &Kiln, name: &str, base: &str) -> PathBuf {
    let cache = super::caches::warm_cache(kiln, name);
    let built = shared_base(base, "linux/amd64");
    link_tree(&built.join("oci"), &cache.join("oci"));
    // What kiln's SBOM cataloger read out of the base's layers when it built them, by layer
    // digest: an app build reads only its own layers, as on a machine that built the base.
    link_tree(&built.join("sbom-v1"), &cache.join("sbom-v1"));
    cache
}

/// Copies golden base `base` (v1, or v2 with `v2`) for `platform` from the suite's store to
/// `registry` as `bases/<base>:<tag>` with its digests unchanged (with the registry's
/// credentials, if it has any); returns the reference.
pub fn publish_base(
    registry: &kiln_e2e::Registry,
    base: &str,
    platform: &str,
    v2: bool,
    tag: &str,
) -> String {
    let dir = shared_base_version(base, platform, v2);
    let dest = registry.reference(&format!("bases/{base}:{tag}"));
    let src = format!("oci:{}:{}", dir.join("oci").display(), ref_name(base));
    let creds = registry
        .credentials()
        .map(|(u, p)| format!("--dest-creds={u}:{p}"));
    let mut extra = vec!["--all", "--preserve-digests", "--dest-tls-verify=false"];
    extra.extend(creds.as_deref());
    let out = kiln_e2e::skopeo_copy_with(&src, &dest, &extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}
