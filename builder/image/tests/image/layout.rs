//! `write_layout` / `read_layout`: round trip, `index.json` names, and `skopeo` reading it.

use kiln_image::{Blobs, ImageError, read_layout, validate_layout, write_layout};
use kiln_model::Origin;
use serde_json::Value;

use crate::common::{image, store};

fn index(dir: &std::path::Path) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn round_trip_into_a_fresh_store() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let fin = image(blobs.store(), 1).finalize().unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &fin, "app", &blobs).await.unwrap();
    assert_eq!(
        std::fs::read(dir.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert_eq!(
        index(&dir),
        vec![("app".to_string(), fin.manifest_digest.to_string())]
    );
    validate_layout(&dir, "app").unwrap();

    let fresh = Blobs::new(store(&tmp.path().join("fresh")), None);
    for l in &fin.layers {
        assert!(!fresh.store().contains(&l.digest));
    }
    let (read, digest) = read_layout(&dir, Some("app"), ("linux", "amd64"), &fresh).unwrap();
    assert_eq!(digest, fin.manifest_digest);
    assert_eq!(read.layers, fin.layers);
    assert!(read.layers.iter().all(|l| l.origin == Origin::Local));
    for l in &read.layers {
        assert!(fresh.store().contains(&l.digest));
        assert_eq!(
            std::fs::read(fresh.store().path(&l.digest)).unwrap(),
            std::fs::read(blobs.store().path(&l.digest)).unwrap()
        );
    }
    // The config survives parsing: re-finalizing gives the very same image.
    let again = read.finalize().unwrap();
    assert_eq!(again.config_bytes, fin.config_bytes);
    assert_eq!(again.manifest_digest, fin.manifest_digest);
    // A single image is found without a name.
    assert_eq!(
        read_layout(&dir, None, ("linux", "amd64"), &fresh)
            .unwrap()
            .1,
        fin.manifest_digest
    );

    // A real OCI tool reads the layout.
    // `skopeo_inspect_with` panics with skopeo's stderr unless it exits 0.
    let v = kiln_e2e::skopeo_inspect_with(&format!("oci:{}:app", dir.display()), &[]);
    assert_eq!(v["Digest"], fin.manifest_digest.to_string());
}

#[tokio::test]
async fn index_keeps_other_names_and_replaces_the_same_name() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let (a, b, c) = (
        image(blobs.store(), 1).finalize().unwrap(),
        image(blobs.store(), 2).finalize().unwrap(),
        image(blobs.store(), 3).finalize().unwrap(),
    );
    let dir = tmp.path().join("layout");
    write_layout(&dir, &a, "a", &blobs).await.unwrap();
    write_layout(&dir, &b, "b", &blobs).await.unwrap();
    write_layout(&dir, &c, "a", &blobs).await.unwrap();
    let mut names = index(&dir);
    names.sort();
    assert_eq!(
        names,
        vec![
            ("a".to_string(), c.manifest_digest.to_string()),
            ("b".to_string(), b.manifest_digest.to_string()),
        ]
    );
    validate_layout(&dir, "a").unwrap();
    validate_layout(&dir, "b").unwrap();
    let fresh = Blobs::new(store(&tmp.path().join("fresh")), None);
    assert_eq!(
        read_layout(&dir, Some("a"), ("linux", "amd64"), &fresh)
            .unwrap()
            .1,
        c.manifest_digest
    );
    assert_eq!(
        read_layout(&dir, Some("b"), ("linux", "amd64"), &fresh)
            .unwrap()
            .1,
        b.manifest_digest
    );

    let err = read_layout(&dir, None, ("linux", "amd64"), &fresh).unwrap_err();
    assert!(matches!(err, ImageError::SeveralInLayout { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("oci:{}:NAME", dir.display())),
        "{err}"
    );
    let err = read_layout(&dir, Some("nope"), ("linux", "amd64"), &fresh).unwrap_err();
    assert!(matches!(err, ImageError::NotInLayout { .. }), "{err:?}");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[tokio::test]
async fn read_layout_refuses_a_tampered_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Blobs::new(store(&tmp.path().join("store")), None);
    let fin = image(blobs.store(), 1).finalize().unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &fin, "app", &blobs).await.unwrap();
    crate::common::flip_byte(&dir.join("blobs/sha256").join(fin.layers[1].digest.hex()));
    let fresh = Blobs::new(store(&tmp.path().join("fresh")), None);
    let err = read_layout(&dir, Some("app"), ("linux", "amd64"), &fresh).unwrap_err();
    assert!(matches!(err, ImageError::Mismatch { .. }), "{err:?}");
    assert!(!fresh.store().contains(&fin.layers[1].digest));
}
