//! The minimal static run image kiln generates itself when no `--run-image` is given:
//! `/etc/passwd` and `/etc/group` with root, nobody and nonroot (65532), `/home/nonroot`,
//! and `/tmp` (1777). Nothing is copied from the host.

use kiln_image::{Image, Layer, Origin};
use kiln_layer::{BlobStore, Compression, LayerContents, Ownership, TarPolicy};
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

/// Writes the static base layer into `store` and returns the base image.
pub fn static_base(
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
    let config = ImageConfigurationBuilder::default()
        .architecture(kiln_oci::spec::Arch::from(host_arch()))
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
