//! `write_archive`: a tar of an OCI layout that `skopeo` reads and that names the ref.

use std::collections::BTreeMap;
use std::io::Read as _;

use kiln_e2e::skopeo;
use kiln_image::{Blobs, write_archive};
use kiln_oci::Digest;
use serde_json::Value;

use crate::common::{image, store};

#[tokio::test]
async fn skopeo_reads_the_archive_by_its_ref_name() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let img = image(blobs.store(), 1);
    let fin = img.finalize().unwrap();
    let path = tmp.path().join("app.tar");
    write_archive(&path, &fin, "app", &blobs).await.unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("kiln-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Every member: blobs named by the sha256 of their bytes, and an index naming the ref.
    let mut members = BTreeMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&path).unwrap());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        members.insert(name, bytes);
    }
    for (name, bytes) in &members {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::of(bytes).hex(), hex);
        }
    }
    for d in [&fin.manifest_digest, &fin.config_digest]
        .into_iter()
        .chain(fin.layers.iter().map(|l| &l.digest))
    {
        assert!(
            members.contains_key(&format!("blobs/sha256/{}", d.hex())),
            "{d}"
        );
    }
    let index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "app"
    );
    assert_eq!(
        index["manifests"][0]["digest"],
        fin.manifest_digest.to_string()
    );

    let target = format!("oci-archive:{}:app", path.display());
    let out = skopeo(&["inspect", &target]);
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], fin.manifest_digest.to_string());
    assert_eq!(
        v["Layers"],
        serde_json::json!(
            fin.layers
                .iter()
                .map(|l| l.digest.to_string())
                .collect::<Vec<_>>()
        )
    );
    let out = skopeo(&["inspect", "--config", &target]);
    assert!(out.status.success());
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(
            img.layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>()
        )
    );
    let out = skopeo(&["inspect", &format!("oci-archive:{}:other", path.display())]);
    assert!(
        !out.status.success(),
        "an unknown ref name must not resolve"
    );
}
