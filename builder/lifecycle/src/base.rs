//! The minimal static run image kiln generates itself when no `--run-image` is given:
//! `/etc/passwd` and `/etc/group` with root, nobody and nonroot (65532), `/home/nonroot`,
//! and `/tmp` (1777). Nothing is copied from the host.

use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::spec::{ConfigBuilder, ImageConfigurationBuilder, RootFsBuilder};

use crate::ExportError;

/// The uid and gid apps run as.
pub const NONROOT_ID: u64 = 65532;
/// The `PATH` of kiln images.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";

/// Writes the static base layer into `store` and returns the base image, for this machine's
/// architecture.
pub fn static_base(
    epoch: i64,
    compression: Compression,
    store: &BlobStore,
) -> Result<Image, ExportError> {
    static_base_for((host_arch(), None), epoch, compression, store)
}

/// Writes the static base layer into `store` and returns the base image for `arch` (GOARCH
/// style: `arm64`) and its `variant` (`v8`). Its one layer holds no executable, so it is the
/// same for every architecture: only the config differs.
pub fn static_base_for(
    (arch, variant): (&str, Option<&str>),
    epoch: i64,
    compression: Compression,
    store: &BlobStore,
) -> Result<Image, ExportError> {
    let root = Some(Ownership { uid: 0, gid: 0 });
    let nonroot = Some(Ownership {
        uid: NONROOT_ID,
        gid: NONROOT_ID,
    });
    let mut c = LayerContents::new();
    c.add_dir("etc", 0o755, root);
    c.add_file("etc/passwd", PASSWD.as_bytes().to_vec(), 0o644, root);
    c.add_file("etc/group", GROUP.as_bytes().to_vec(), 0o644, root);
    c.add_dir("home", 0o755, root);
    c.add_dir("home/nonroot", 0o700, nonroot);
    c.add_dir("root", 0o700, root);
    c.add_dir("tmp", 0o1777, root);
    let policy = TarPolicy {
        mtime: epoch.max(0) as u64,
        owner: Ownership { uid: 0, gid: 0 },
    };
    let blob = kiln_layer::write_layer(&c, &policy, compression, store)?;
    let mut config = ImageConfigurationBuilder::default()
        .architecture(kiln_oci::spec::Arch::from(arch))
        .os(kiln_oci::spec::Os::Linux)
        .config(
            ConfigBuilder::default()
                .env(vec![format!("PATH={DEFAULT_PATH}")])
                .user(format!("{NONROOT_ID}:{NONROOT_ID}"))
                .build()
                .expect("static config fields are valid"),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![blob.diff_id.to_string()])
                .build()
                .expect("static rootfs fields are valid"),
        )
        .build()
        .expect("static image config fields are valid");
    config.set_variant(variant.map(str::to_owned));
    Ok(Image {
        config,
        layers: vec![Layer {
            media_type: blob.media_type.to_string(),
            digest: blob.digest,
            size: blob.size,
            diff_id: blob.diff_id,
            origin: Origin::Local,
        }],
    })
}

/// Returns the GOARCH-style name of the architecture kiln was built for (`amd64`, `arm64`),
/// which is what the host toolchains target by default.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read as _;

    use super::*;

    /// Per entry path: (mode, uid, gid, mtime, type, content).
    type Entries = BTreeMap<String, (u32, u64, u64, u64, tar::EntryType, Vec<u8>)>;

    fn entries(store: &BlobStore, image: &Image) -> Entries {
        let layer = &image.layers[0];
        let file = std::fs::File::open(store.path(&layer.digest)).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut out = BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.username_bytes(), Some(&b""[..]), "no user names");
            assert_eq!(h.groupname_bytes(), Some(&b""[..]), "no group names");
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let path = e.path().unwrap().display().to_string();
            out.insert(
                path,
                (
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    h.entry_type(),
                    data,
                ),
            );
        }
        out
    }

    #[test]
    fn static_base_layer_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        let epoch = 1_700_000_000;
        let image = static_base(epoch, Compression::Gzip, &store).unwrap();
        assert_eq!(image.layers.len(), 1);
        assert_eq!(
            image.config.rootfs().diff_ids(),
            &vec![image.layers[0].diff_id.to_string()]
        );
        let exec = image.config.config().clone().unwrap();
        assert_eq!(exec.user().as_deref(), Some("65532:65532"));
        assert_eq!(
            exec.env().clone().unwrap(),
            vec![format!("PATH={DEFAULT_PATH}")]
        );
        let e = entries(&store, &image);
        let mut names: Vec<_> = e.keys().map(|k| k.trim_end_matches('/')).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "etc",
                "etc/group",
                "etc/passwd",
                "home",
                "home/nonroot",
                "root",
                "tmp"
            ]
        );
        let get = |name: &str| {
            e.iter()
                .find(|(k, _)| k.trim_end_matches('/') == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let passwd = String::from_utf8(get("etc/passwd").5).unwrap();
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("nonroot:x:65532:65532:")),
            "{passwd}"
        );
        assert!(
            String::from_utf8(get("etc/group").5)
                .unwrap()
                .contains("nonroot:x:65532:")
        );
        let tmp_dir = get("tmp");
        assert_eq!(tmp_dir.0 & 0o7777, 0o1777);
        assert_eq!(tmp_dir.4, tar::EntryType::Directory);
        let home = get("home/nonroot");
        assert_eq!((home.1, home.2), (NONROOT_ID, NONROOT_ID));
        assert_eq!(home.0 & 0o7777, 0o700);
        assert_eq!((get("etc/passwd").1, get("etc/passwd").2), (0, 0));
        for (path, (_, _, _, mtime, _, _)) in &e {
            assert_eq!(*mtime, epoch as u64, "{path}");
        }
    }

    #[test]
    fn static_base_is_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (sa, sb) = (
            BlobStore::open(a.path()).unwrap(),
            BlobStore::open(b.path()).unwrap(),
        );
        let one = static_base(1_000, Compression::Gzip, &sa).unwrap();
        let two = static_base(1_000, Compression::Gzip, &sb).unwrap();
        assert_eq!(one.layers, two.layers);
        assert_eq!(
            one.finalize().unwrap().manifest_digest,
            two.finalize().unwrap().manifest_digest
        );
        let later = static_base(2_000, Compression::Gzip, &sa).unwrap();
        assert_ne!(later.layers[0].diff_id, one.layers[0].diff_id);
        let zstd = static_base(1_000, Compression::Zstd, &sa).unwrap();
        assert_eq!(zstd.layers[0].diff_id, one.layers[0].diff_id);
        assert_ne!(zstd.layers[0].digest, one.layers[0].digest);
    }
}
