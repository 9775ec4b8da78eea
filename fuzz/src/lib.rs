//! The checks behind kiln's fuzz targets: each takes the fuzzer's bytes, feeds them to the
//! function kiln itself parses that kind of untrusted input with, and asserts what must
//! hold beyond "no panic" (confinement, round trips, invariants of what parsed).
//!
//! The fuzz targets (`fuzz_targets/*.rs`, nightly) are one line each around these; the
//! stable smoke test `tests/fuzz_corpus.rs` (kiln-e2e) includes this file and runs every
//! committed corpus file through [`TARGETS`], so the corpora are regression tests of
//! `cargo test --workspace`.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use kiln_debian::deb::{self, DebInfo, PathTracker};
use kiln_debian::release::{IndexFile, Release, format_date, parse_date};
use kiln_debian::{InRelease, Keyring, Version};
use kiln_layer::{BlobStore, Compression, Ownership, TarPolicy};
use kiln_model::{Image, Origin, Platform};
use kiln_oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
use kiln_oci::{Digest, Reference};
use kiln_registry::Challenge;

/// A target's check: panics when the input breaks what kiln owes.
pub type Check = fn(&[u8]);

/// Every target by name (the name of its `fuzz/corpus/<name>` directory) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("tar_extract", tar_extract),
    ("deb", deb),
    ("deb822", deb822),
    ("inrelease", inrelease),
    ("manifest", manifest),
    ("www_authenticate", www_authenticate),
    ("reference", reference),
];

/// The repository root (this file is compiled from `fuzz/` and from `tests/`, both one
/// level down).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory")
}

/// A layer's tar (the input, uncompressed) through `kiln_layer::extract_layer`, the cache
/// restore of build pods. On success nothing points out of the directory; on failure the
/// directory is gone; either way nothing appears beside it.
pub fn tar_extract(data: &[u8]) {
    let tmp = scratch();
    let dir = tmp.path().join("out");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip in memory");
    let blob = gz.finish().expect("gzip in memory");
    let result =
        kiln_layer::extract_layer(blob.as_slice(), Compression::Gzip, &Digest::of(data), &dir);
    match result {
        Ok(_) => assert_confined(&dir),
        Err(e) => assert!(!dir.exists(), "a failed extraction left `out` behind: {e}"),
    }
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("the scratch directory")
        .map(|e| e.expect("an entry").file_name())
        .filter(|n| n != "out")
        .collect();
    assert!(
        beside.is_empty(),
        "extraction wrote beside `out`: {beside:?}"
    );
}

/// Asserts that `dir` holds only directories, regular files and symlinks. Symlinks are
/// kept verbatim wherever they point (RELIABILITY.md W12: legitimate over-deep links stay);
/// what must hold is that nothing was written through one, which the caller checks by
/// finding nothing beside `dir`.
fn assert_confined(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("an extracted directory") {
            let path = entry.expect("an entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("an extracted entry");
            if meta.is_dir() {
                stack.push(path);
            } else {
                assert!(
                    meta.is_file() || meta.file_type().is_symlink(),
                    "`{}` is neither a file nor a symlink",
                    path.display()
                );
            }
        }
    }
}

/// A `.deb` (the input) through the three readers of `kiln_debian::deb`: the control file,
/// the small-file reader (CA bundle) and the tar→tar layer transform. A layer that comes
/// out holds only safe, relative paths; a failure leaves the path tracker untouched.
pub fn deb(data: &[u8]) {
    let tmp = scratch();
    let file = tmp.path().join("p.deb");
    std::fs::write(&file, data).expect("writing the input");
    let _ = deb::read_data_files(&file, &|_| true, 1 << 20);
    let Ok(control) = deb::read_control(&file) else {
        return;
    };
    assert!(!control.package.is_empty() && !control.version.is_empty());
    let info = DebInfo {
        name: control.package.clone(),
        version: control.version.clone(),
        installed_size: control.installed_size.unwrap_or(0),
    };
    let store = BlobStore::open(tmp.path().join("store")).expect("a blob store");
    let policy = TarPolicy {
        mtime: 0,
        owner: Ownership::new(0, 0),
    };
    let mut seen = PathTracker::new();
    match deb::write_packages_layer(
        &[(info, file)],
        &mut seen,
        &deb::PackageRules::default(),
        &policy,
        Compression::Gzip,
        &store,
    ) {
        Ok(layer) => {
            let digest = &layer.blob.digest;
            let bytes = std::fs::read(store.path(digest)).expect("the layer blob");
            assert_eq!(Digest::of(&bytes), *digest);
            assert_safe_layer(&bytes);
            assert!(
                layer.setuid.iter().all(|f| !f.kept),
                "no path is allowed setuid, yet one kept it: {:?}",
                layer.setuid
            );
        }
        Err(_) => assert!(seen.is_empty(), "a refused package left claims behind"),
    }
}

/// Asserts that the gzip'd layer `bytes` is a tar of relative, `..`-free, whiteout-free
/// paths with no device nodes or FIFOs.
fn assert_safe_layer(bytes: &[u8]) {
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
    for entry in tar.entries().expect("the layer's tar") {
        let entry = entry.expect("a layer entry");
        let path = entry.path().expect("a layer path").into_owned();
        for c in path.components() {
            match c {
                Component::Normal(n) => assert!(
                    !n.as_encoded_bytes().starts_with(b".wh."),
                    "whiteout name `{}` in a package layer",
                    path.display()
                ),
                other => panic!("`{}` has a `{other:?}` component", path.display()),
            }
        }
        assert!(
            !matches!(
                entry.header().entry_type(),
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
            ),
            "device or FIFO `{}` in a package layer",
            path.display()
        );
        let mode = entry.header().mode().expect("a mode");
        assert!(
            !entry.header().entry_type().is_file() || mode & 0o6000 == 0,
            "`{}` keeps setuid/setgid bits ({mode:o}) nobody allowed",
            path.display()
        );
    }
}

/// The xz magic: input starting with it is a `Packages.xz`.
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";

/// deb822 text (the input) through every parser of it: control paragraphs, a package's
/// `control`, a `Packages` index (or, for xz input, `Packages.xz`), `Release`, dates and
/// versions.
pub fn deb822(data: &[u8]) {
    if data.starts_with(XZ_MAGIC) {
        let expected = IndexFile {
            path: "main/binary-amd64/Packages.xz".into(),
            size: data.len() as u64,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data)),
        };
        if let Ok(index) = kiln_debian::packages::parse_packages_xz(data, &expected, None) {
            check_packages(&index);
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(paragraphs) = kiln_debian::control::parse_paragraphs(text) {
        for p in &paragraphs {
            for name in p.names() {
                let field = p.get(name).expect("a listed field");
                let _ = (field.first_line(), field.folded());
                let _ = field.continuation_lines().count();
            }
        }
    }
    if let Ok(c) = deb::ControlFile::parse(text.to_owned()) {
        assert!(!c.package.is_empty() && !c.version.is_empty());
    }
    if let Ok(index) = kiln_debian::packages::parse_packages(text, "Packages") {
        check_packages(&index);
    }
    if let Ok(release) = Release::parse(text) {
        assert_eq!(parse_date(&format_date(release.date)), Some(release.date));
        for f in release.sha256.values() {
            assert!(is_sha256(&f.sha256), "`{}` is not a sha256", f.sha256);
        }
        let _ = release.check_time(release.date);
    }
    let mut previous: Option<Version> = None;
    for line in text.lines().take(64) {
        let _ = parse_date(line);
        if let Ok(v) = Version::parse(line) {
            let again = Version::parse(v.as_str()).expect("a parsed version parses again");
            assert!(again == v, "`{v}` differs from itself");
            if let Some(p) = &previous {
                assert_eq!(
                    p.cmp(&v),
                    v.cmp(p).reverse(),
                    "`{p}` and `{v}` compare unevenly"
                );
            }
            previous = Some(v);
        }
    }
}

fn check_packages(index: &kiln_debian::packages::PackageIndex) {
    for (name, e) in &index.packages {
        assert_eq!(name, &e.package);
        assert!(is_sha256(&e.sha256), "`{}` is not a sha256", e.sha256);
        assert!(
            !e.filename.starts_with('/') && !e.filename.split('/').any(|c| c == ".."),
            "`{}` escapes the mirror",
            e.filename
        );
        Version::parse(&e.version).expect("an accepted entry's version parses");
        let _ = kiln_debian::depends::parse_depends(&e.depends);
        let _ = kiln_debian::depends::parse_depends(&e.pre_depends);
        let _ = kiln_debian::depends::parse_provides(&e.provides);
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The time the fuzzer verifies at: a day after the `Date` of the real trixie `InRelease`
/// in `builder/debian/tests/fixtures` (Sat, 12 Sep 2026 07:55:41 UTC), within its validity.
const INRELEASE_NOW: i64 = 1_789_199_741 + 86_400;

/// An `InRelease` (the input) through `InRelease::verify` against Debian's pinned trixie
/// keyrings: framing, clearsign splitting, OpenPGP packets, issuer lookup, and (for the
/// real fixture) the signature. Whatever verifies parses again from its signed text.
pub fn inrelease(data: &[u8]) {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    let keyring = KEYRING.get_or_init(|| {
        let dir = repo_root().join("golden-base/keyrings");
        Keyring::load(&[
            dir.join("debian-archive-trixie-automatic.gpg"),
            dir.join("debian-archive-trixie-stable.gpg"),
        ])
        .expect("the pinned trixie keyrings")
    });
    if let Ok(v) = InRelease::verify(data, keyring, INRELEASE_NOW) {
        assert!(!v.signers.is_empty());
        let again = Release::parse(&v.signed_text).expect("the signed text parses again");
        assert_eq!(again.date, v.release.date);
    }
}

/// What a pulled image is made of, as `fetch_remote` reads it: the input is an index or
/// manifest, then optionally a NUL byte and the config. Index: the platform pick; manifest
/// and config: parsing, the config digest, the layer/diffID pairing, and finalizing the
/// image kiln would build on it.
pub fn manifest(data: &[u8]) {
    let (top, config) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok((digest, _size)) = kiln_model::pick_platform(top, "linux", "amd64", "fuzz") {
        assert_eq!(digest.to_string().parse::<Digest>().as_ref(), Ok(&digest));
    }
    let _ = serde_json::from_slice::<ImageIndex>(top);
    let _ = Platform::of_config(config);
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(top) else {
        return;
    };
    if Digest::try_from(manifest.config().digest()).is_err() {
        return;
    }
    let Ok(config) = serde_json::from_slice::<ImageConfiguration>(config) else {
        return;
    };
    let Ok(layers) = kiln_image::layers_of(&manifest, &config, Origin::Local) else {
        return;
    };
    assert_eq!(layers.len(), manifest.layers().len());
    let image = Image { config, layers };
    if let Ok(fin) = image.finalize() {
        assert_eq!(Digest::of(&fin.config_bytes), fin.config_digest);
        assert_eq!(Digest::of(&fin.manifest_bytes), fin.manifest_digest);
        let m: ImageManifest =
            serde_json::from_slice(&fin.manifest_bytes).expect("kiln's manifest parses");
        let c: ImageConfiguration =
            serde_json::from_slice(&fin.config_bytes).expect("kiln's config parses");
        let again = kiln_image::layers_of(&m, &c, Origin::Local).expect("kiln's layers pair");
        assert_eq!(again, fin.layers);
    }
}

/// A `WWW-Authenticate` value (the input, as `HeaderValue::to_str` passes it) through the
/// challenge parser. Schemes and names come out lowercase and non-empty, and the
/// challenges, written back canonically, parse to the same challenges.
pub fn www_authenticate(data: &[u8]) {
    // What `HeaderValue::to_str` lets through: visible ASCII, space and tab.
    if !data.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        return;
    }
    let text = std::str::from_utf8(data).expect("ASCII");
    let challenges = kiln_registry::parse_www_authenticate(text);
    for c in &challenges {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for (name, _) in &c.params {
            assert!(!name.is_empty());
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }
    let again = kiln_registry::parse_www_authenticate(&render(&challenges));
    assert_eq!(again, challenges, "written back: {}", render(&challenges));
}

/// Writes `challenges` as one header value, every parameter value quoted.
fn render(challenges: &[Challenge]) -> String {
    let mut out = Vec::new();
    for c in challenges {
        let params: Vec<String> = c
            .params
            .iter()
            .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        out.push(if params.is_empty() {
            c.scheme.clone()
        } else {
            format!("{} {}", c.scheme, params.join(", "))
        });
    }
    out.join(", ")
}

/// An image reference or digest (the input) through kiln's parsers: whatever parses prints
/// back to something that parses to the same value.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Digest>() {
        assert_eq!(d.to_string(), text);
    }
    if let Ok(r) = text.parse::<Reference>() {
        let printed = r.to_string();
        let again: Reference = printed.parse().expect("a printed reference parses");
        assert_eq!(again, r, "printed as `{printed}`");
        assert!(!r.repository().is_empty());
        let _ = (r.api_host(), r.manifest_ref(), r.name());
    }
}
