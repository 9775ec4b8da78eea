//! `validate_layout` catches tampered blobs, wrong diffIDs and wrong sizes.

use std::path::{Path, PathBuf};

use kiln_image::{Blobs, ImageError, validate_layout, write_layout};
use kiln_model::{FinalImage, Image};
use kiln_oci::Digest;

use crate::common::{flip_byte, image, store};

/// Writes `img` (blobs in the store under `tmp`) into a layout; returns the layout dir.
async fn layout(tmp: &Path, img: &Image) -> (PathBuf, FinalImage) {
    let blobs = Blobs::new(store(&tmp.join("store")), None);
    let fin = img.finalize().unwrap();
    let dir = tmp.join("layout");
    write_layout(&dir, &fin, "app", &blobs).await.unwrap();
    (dir, fin)
}

#[tokio::test]
async fn accepts_a_good_image_and_names_missing_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(&store(&tmp.path().join("store")), 1);
    let (dir, fin) = layout(tmp.path(), &img).await;
    let v = validate_layout(&dir, "app").unwrap();
    assert_eq!(v.manifest_digest, fin.manifest_digest);
    assert_eq!(v.layers, 2);
    assert_eq!(
        v.config.rootfs().diff_ids(),
        &img.layers
            .iter()
            .map(|l| l.diff_id.to_string())
            .collect::<Vec<_>>()
    );
    let err = validate_layout(&dir, "other").unwrap_err();
    assert!(err.to_string().contains("`other`"), "{err}");
}

#[tokio::test]
async fn catches_a_flipped_layer_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(&store(&tmp.path().join("store")), 1);
    let (dir, fin) = layout(tmp.path(), &img).await;
    flip_byte(&dir.join("blobs/sha256").join(fin.layers[0].digest.hex()));
    match validate_layout(&dir, "app") {
        Err(ImageError::Mismatch { what, expected, .. }) => {
            assert_eq!(what, "blob");
            assert!(expected.contains(&fin.layers[0].digest.to_string()));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn catches_a_flipped_config_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(&store(&tmp.path().join("store")), 1);
    let (dir, fin) = layout(tmp.path(), &img).await;
    flip_byte(&dir.join("blobs/sha256").join(fin.config_digest.hex()));
    assert!(matches!(
        validate_layout(&dir, "app"),
        Err(ImageError::Mismatch { what: "blob", .. })
    ));
}

#[tokio::test]
async fn catches_a_wrong_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut img = image(&store(&tmp.path().join("store")), 1);
    let real = img.layers[1].diff_id.clone();
    img.layers[1].diff_id = Digest::of(b"not the layer");
    let (dir, _) = layout(tmp.path(), &img).await;
    match validate_layout(&dir, "app") {
        Err(ImageError::Mismatch {
            what,
            expected,
            found,
        }) => {
            assert_eq!(what, "layer diffID");
            assert_eq!(expected, Digest::of(b"not the layer").to_string());
            assert_eq!(found, real.to_string());
        }
        other => panic!("expected a diffID mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn catches_a_wrong_size() {
    let tmp = tempfile::tempdir().unwrap();
    let mut img = image(&store(&tmp.path().join("store")), 1);
    let real = img.layers[0].size;
    img.layers[0].size += 1;
    let (dir, _) = layout(tmp.path(), &img).await;
    match validate_layout(&dir, "app") {
        Err(ImageError::Mismatch { what, found, .. }) => {
            assert_eq!(what, "blob");
            assert!(found.contains(&format!("({real} bytes)")), "{found}");
        }
        other => panic!("expected a size mismatch, got {other:?}"),
    }
}
