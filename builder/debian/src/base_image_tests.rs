//! Unit tests of `base_image.rs`.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn digest(files: &[LocalFile], store: &BlobStore) -> kiln_oci::Digest {
    let policy = TarPolicy {
        mtime: 1,
        owner: Ownership { uid: 0, gid: 0 },
    };
    let layer = local_files_layer(files).unwrap();
    kiln_layer::write_layer(&layer, &policy, Compression::Gzip, store)
        .unwrap()
        .diff_id
}

#[test]
fn local_files_depend_on_bytes_and_the_exec_bit_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let (a, b) = (tmp.path().join("a/kiln"), tmp.path().join("b/kiln"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"\x7fELF binary").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let file = |source: &PathBuf| LocalFile {
        source: source.clone(),
        path: "/usr/local/bin/kiln".into(),
    };
    let layer = local_files_layer(&[file(&a)]).unwrap();
    assert!(layer.paths().any(|p| p == "usr/local/bin/kiln"));
    assert_eq!(digest(&[file(&a)], &store), digest(&[file(&b)], &store));
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_ne!(digest(&[file(&a)], &store), digest(&[file(&b)], &store));
    let missing = LocalFile {
        source: tmp.path().join("nope"),
        path: "/x".into(),
    };
    assert!(matches!(
        local_files_layer(&[missing]),
        Err(BaseImageError::LocalFile { .. })
    ));
}
