//! W10 and the concurrency promise of issue 20: any number of builds may share one cache
//! dir and one registry. Twenty builds of Go, Node.js and Java apps start at once on one
//! empty kiln cache dir (its store holding the bases) and push to one htpasswd registry;
//! every one succeeds, and each app's digest is the one a serial build in a cache of its
//! own gives. Afterwards the cache holds no half-written file and still serves a rebuild.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_e2e::{Registry, copy_dir, workspace_root};

use crate::common::bases::{link_tree, shared_base};
use crate::common::{Kiln, Run, cache_with_base};

/// The apps and how many of the twenty builds each gets (Maven's are the costly ones: each
/// compiles and packages the app again, where Go's and Node's reuse what the first made).
const APPS: [(&str, &str, usize); 3] = [
    ("go-web", "static", 9),
    ("node-express", "node", 9),
    ("java-plain", "java17", 2),
];

/// Returns a new cache dir whose store holds every base the apps run on.
fn cache_with_all_bases(kiln: &Kiln, name: &str) -> PathBuf {
    let cache = cache_with_base(kiln, name, APPS[0].1);
    let index_path = cache.join("oci/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    for (_, base, _) in &APPS[1..] {
        let built = shared_base(base, "linux/amd64");
        link_tree(&built.join("oci"), &cache.join("oci"));
        link_tree(&built.join("sbom-v1"), &cache.join("sbom-v1"));
        // `link_tree` keeps the first base's `index.json`: add this base's names to it.
        let more: serde_json::Value =
            serde_json::from_slice(&std::fs::read(built.join("oci/index.json")).unwrap()).unwrap();
        let manifests = index["manifests"].as_array_mut().unwrap();
        manifests.extend(more["manifests"].as_array().unwrap().iter().cloned());
    }
    // Replaced, never written through: the file is a hardlink to the suite's base.
    std::fs::remove_file(&index_path).unwrap();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    cache
}

/// Runs `kiln build IMAGE --path APP --publish --cache-dir CACHE`.
fn build(kiln: &Kiln, image: &str, app: &Path, cache: &Path) -> Run {
    kiln.run(&[
        "build",
        image,
        "--path",
        app.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--publish",
    ])
}

/// W10: twenty concurrent builds sharing one cache dir and one registry all succeed, with
/// the digests of serial builds.
pub(crate) fn w10_twenty_concurrent_builds_share_one_cache_dir_and_registry() {
    let registry = Registry::htpasswd("ci", "s3cret");
    let kiln = Kiln::new();
    kiln.run_with(
        &["login", &registry.host(), "-u", "ci", "--password-stdin"],
        Some("s3cret\n"),
        &[],
    )
    .ok();
    let shared = cache_with_all_bases(&kiln, "shared");
    // Each build from a copy of its own, as twenty CI jobs would have.
    let mut jobs = Vec::new();
    for (app, _, count) in APPS {
        for i in 0..count {
            let src = kiln.ws.join(format!("src/{app}-{i}"));
            copy_dir(&workspace_root().join("tests/fixtures").join(app), &src).unwrap();
            jobs.push((app, registry.reference(&format!("team/{app}:c{i}")), src));
        }
    }
    let runs: Vec<(&str, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(app, image, src)| {
                let (kiln, shared) = (&kiln, &shared);
                s.spawn(move || (*app, build(kiln, image, src, shared)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut digests: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (app, run) in &runs {
        assert_eq!(
            run.code, 0,
            "a concurrent build of {app} failed:\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        digests.entry(app).or_default().push(run.digest());
    }

    for (app, base, _) in APPS {
        let got = &digests[app];
        assert!(
            got.iter().all(|d| *d == got[0]),
            "{app}: concurrent builds gave different digests: {got:?}"
        );
        let own = cache_with_base(&kiln, &format!("serial-{app}"), base);
        let src = kiln.fixture(app, &format!("src/{app}-serial"));
        let serial = build(
            &kiln,
            &registry.reference(&format!("team/{app}:serial")),
            &src,
            &own,
        );
        assert_eq!(
            serial.digest(),
            got[0],
            "{app}: a serial build in a cache of its own gives another digest"
        );
    }

    assert_no_partial_files(&shared);
    // The shared cache still serves: a rebuild reuses what the concurrent builds left.
    let again = build(
        &kiln,
        &registry.reference("team/go-web:again"),
        &kiln.ws.join("src/go-web-0"),
        &shared,
    );
    assert_eq!(again.digest(), digests["go-web"][0]);
}

/// Asserts that no temp file or half-written blob is left in the store and that kiln's
/// shared indexes parse.
fn assert_no_partial_files(cache: &Path) {
    let blobs = cache.join("oci/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "`{}` is left in the store",
            blobs.join(&name).display()
        );
    }
    for index in ["layers.json", "oci/index.json"] {
        let bytes = std::fs::read(cache.join(index)).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("`{index}` does not parse after concurrent builds: {e}"));
    }
}
