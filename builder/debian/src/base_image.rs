//! Assembles a golden base image strictly from its definition, its lockfile and the
//! hash-checked `.deb` files.
//!
//! Layering rule (so bases share layers): bottom first,
//! 1. the merged-`/usr` root symlinks (identical for every base of an architecture);
//! 2. one layer per definition in the include chain, deepest first: the packages of the
//!    lockfile that the included definition's own lockfile also holds (`base` = `static`'s
//!    packages, then its own), so `base` reuses `static`'s package layer byte for byte
//!    whenever both were locked against the same archive;
//! 3. one layer of what kiln generates: `/etc/passwd`, `/etc/group`, the definition's files
//!    and directories, and `/etc/ssl/certs/ca-certificates.crt` assembled from the
//!    certificates `ca-certificates` ships plus the definition's files under
//!    `/usr/local/share/ca-certificates/`, the definition's `links`, and the Java trust
//!    store of `java-keystore` from the same certificates (Debian makes all three in
//!    maintainer scripts, which kiln never runs).
//!
//! Every time in the image is the `Release` file's `Date`, so the same lockfile gives the
//! same digest on any machine.
//!
//! No layer may hold an entry under a merged-usr root link ([`check_merged_usr`]). The
//! labels record what kiln did instead of dpkg: the maintainer scripts it skipped
//! ([`SKIPPED_SCRIPTS_LABEL`]) and the setuid files it kept or stripped ([`SETUID_LABEL`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kiln_layer::{BlobStore, Compression, LayerBlob, LayerContents, Ownership, TarPolicy};
use kiln_model::{Image, Layer, Origin};
use kiln_oci::spec::{
    ConfigBuilder, History, HistoryBuilder, ImageConfigurationBuilder, RootFsBuilder,
};

use crate::deb::{
    DebError, DebInfo, MERGED_USR_ALIASES, PathTracker, SetuidFile, SkippedScripts,
    read_data_files, write_merged_usr_layer, write_packages_layer,
};
use crate::jks::{pem_certificates, write_jks};
use crate::platform::oci_platform;
use crate::{Definition, LockedPackage, Lockfile};

/// The CA bundle path programs and `SSL_CERT_FILE` use.
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where `ca-certificates` ships its certificates.
const CA_SOURCE_DIR: &str = "usr/share/ca-certificates/";
/// Where the definition's own certificates go (as for update-ca-certificates).
const CA_LOCAL_DIR: &str = "/usr/local/share/ca-certificates/";
/// More certificate data than this in one package is not a certificate store.
const CA_MAX_BYTES: u64 = 16 << 20;

/// Why a base could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BaseImageError {
    /// A package could not be turned into a layer (boxed: the error is large).
    #[error(transparent)]
    Deb(#[from] Box<DebError>),
    /// Writing the generated layer failed.
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    /// kiln knows no OCI platform for the Debian architecture.
    #[error(
        "kiln knows no OCI platform for the Debian architecture `{0}`; use amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64 or loong64"
    )]
    UnknownArchitecture(String),
    /// The lockfile has no packages for the architecture.
    #[error(
        "the lockfile of `{definition}` has no packages for `{arch}`: it was locked without that architecture"
    )]
    NoArchitecture {
        /// The definition.
        definition: String,
        /// The architecture.
        arch: String,
    },
    /// A locked package has no downloaded `.deb`.
    #[error("no downloaded `.deb` for `{0}`")]
    MissingDeb(String),
    /// A trusted certificate file holds no well-formed PEM certificate.
    #[error(
        "`{0}` holds no well-formed PEM `CERTIFICATE` block; the Java trust store needs every CA certificate"
    )]
    Certificate(String),
    /// The lockfile's `Release` date is not an RFC 2822 date.
    #[error("the lockfile's release date `{0}` is not a date like `Sat, 12 Sep 2026 07:55:41 UTC`")]
    Date(String),
    /// A layer kiln generates would put an entry under a merged-usr root symlink.
    #[error(
        "the {layer} layer would hold `/{path}`, under the merged-usr symlink `/{alias}` \
         (which points to `/usr/{alias}`); put it under `/usr/{alias}` instead"
    )]
    MergedUsr {
        /// Which layer (`generated`, `local files`).
        layer: &'static str,
        /// The offending in-image path.
        path: String,
        /// The merged-usr alias it is under.
        alias: String,
    },
    /// A file to add from the build machine could not be read.
    #[error("reading `{}` to add to the image", path.display())]
    LocalFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Inputs of [`build_base`].
pub struct BaseBuild<'a> {
    /// The definition, includes merged.
    pub definition: &'a Definition,
    /// Its lockfile.
    pub lock: &'a Lockfile,
    /// The lockfiles of the included definitions, deepest first (for the layer groups).
    pub included: &'a [Lockfile],
    /// The Debian architecture to build (`amd64`).
    pub arch: &'a str,
    /// Package name → hash-checked `.deb` path.
    pub debs: &'a BTreeMap<String, PathBuf>,
    /// Where layers go.
    pub store: &'a BlobStore,
    /// Layer compression.
    pub compression: Compression,
    /// Files from the build machine to add in a layer of their own, on top (a builder
    /// image's `kiln` binary).
    pub local_files: &'a [LocalFile],
}

/// A file from the build machine that goes into a base image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is read from.
    pub source: PathBuf,
    /// Its absolute path in the image.
    pub path: String,
}

/// Returns the layer of `files`: owned by root, mode 0755 for a file the build machine
/// marks executable and 0644 otherwise, so only the bytes and that bit decide the digest.
fn local_files_layer(files: &[LocalFile]) -> Result<LayerContents, BaseImageError> {
    use std::os::unix::fs::PermissionsExt;
    let root = Some(Ownership { uid: 0, gid: 0 });
    let mut c = LayerContents::new();
    for f in files {
        let read = |e| BaseImageError::LocalFile {
            path: f.source.clone(),
            source: e,
        };
        let meta = std::fs::metadata(&f.source).map_err(read)?;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let bytes = std::fs::read(&f.source).map_err(read)?;
        let path = f.path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            c.add_dir(parent, 0o755, root);
        }
        c.add_file(path, bytes, mode, root);
    }
    Ok(c)
}

/// Returns an error naming the first of `paths` (in-image, no leading `/`) that lies under
/// (or replaces) a merged-usr root symlink: the validator every layer kiln writes from
/// configuration passes, so no layer can shadow `bin -> usr/bin` and its siblings.
/// Package layers need no check: their paths are remapped under `usr/` as they are read.
pub fn check_merged_usr<P: AsRef<str>>(
    layer: &'static str,
    paths: impl IntoIterator<Item = P>,
) -> Result<(), BaseImageError> {
    // The deepest offending path names the file that brought its parents along.
    let worst = paths
        .into_iter()
        .filter_map(|p| {
            let p = p.as_ref().trim_start_matches("./").trim_matches('/');
            let first = p.split('/').next().unwrap_or("");
            let alias = MERGED_USR_ALIASES.iter().find(|a| **a == first)?;
            Some((p.to_owned(), *alias))
        })
        .max_by_key(|(p, _)| p.len());
    match worst {
        Some((path, alias)) => Err(BaseImageError::MergedUsr {
            layer,
            path,
            alias: alias.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Returns the unix time of the newest `Release` date of the lockfile (its suite's or an
/// extra suite's): what the image's `created` and file times are.
pub fn release_epoch(lock: &Lockfile) -> Result<i64, BaseImageError> {
    let parse = |date: &str| {
        let text = date.trim().replace(" UTC", " +0000");
        chrono::DateTime::parse_from_rfc2822(&text)
            .map(|d| d.timestamp())
            .map_err(|_| BaseImageError::Date(date.to_owned()))
    };
    let mut epoch = parse(&lock.release_date)?;
    for extra in &lock.extra_suites {
        epoch = epoch.max(parse(&extra.release_date)?);
    }
    Ok(epoch)
}

/// Returns the package groups of [`BaseBuild`], one per layer, bottom first (see the module docs).
pub fn layer_groups<'l>(
    name: &str,
    packages: &'l [LockedPackage],
    included: &[Lockfile],
    arch: &str,
) -> Vec<(String, Vec<&'l LockedPackage>)> {
    let mut taken = BTreeSet::new();
    let mut groups = Vec::new();
    for inc in included {
        let names: BTreeSet<&str> = inc
            .packages
            .get(arch)
            .map(|p| p.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        let group: Vec<&LockedPackage> = packages
            .iter()
            .filter(|p| names.contains(p.name.as_str()) && !taken.contains(&p.name))
            .collect();
        taken.extend(group.iter().map(|p| p.name.clone()));
        if !group.is_empty() {
            groups.push((inc.definition.clone(), group));
        }
    }
    let rest: Vec<&LockedPackage> = packages
        .iter()
        .filter(|p| !taken.contains(&p.name))
        .collect();
    if !rest.is_empty() {
        groups.push((name.to_string(), rest));
    }
    groups
}

/// Builds the base image for one architecture.
pub fn build_base(b: &BaseBuild<'_>) -> Result<Image, BaseImageError> {
    let platform = oci_platform(b.arch)
        .ok_or_else(|| BaseImageError::UnknownArchitecture(b.arch.to_string()))?;
    let definition = b.definition.for_arch(b.arch);
    let b = &BaseBuild {
        definition: &definition,
        ..*b
    };
    let epoch = release_epoch(b.lock)?;
    let policy = TarPolicy {
        mtime: epoch.max(0) as u64,
        owner: Ownership { uid: 0, gid: 0 },
    };
    let packages = b
        .lock
        .packages
        .get(b.arch)
        .ok_or_else(|| BaseImageError::NoArchitecture {
            definition: b.definition.name.clone(),
            arch: b.arch.to_string(),
        })?;
    let mut seen = PathTracker::new();
    let rules = b.definition.package_rules();
    let mut report = Report::default();
    let mut blobs: Vec<(String, LayerBlob)> = Vec::new();
    blobs.push((
        "merged-usr".into(),
        write_merged_usr_layer(b.arch, &mut seen, &policy, b.compression, b.store)
            .map_err(Box::new)?,
    ));
    for (group, pkgs) in layer_groups(&b.definition.name, packages, b.included, b.arch) {
        let debs = pkgs
            .iter()
            .map(|p| {
                let path = b
                    .debs
                    .get(&p.name)
                    .ok_or_else(|| BaseImageError::MissingDeb(p.name.clone()))?;
                Ok((DebInfo::from(*p), path.clone()))
            })
            .collect::<Result<Vec<_>, BaseImageError>>()?;
        let layer = write_packages_layer(&debs, &mut seen, &rules, &policy, b.compression, b.store)
            .map_err(Box::new)?;
        report.setuid.extend(layer.setuid);
        report.skipped_scripts.extend(layer.skipped_scripts);
        blobs.push((format!("packages of {group}"), layer.blob));
    }
    let generated = generated_layer(b, epoch)?;
    check_merged_usr("generated", generated.paths())?;
    blobs.push((
        "generated by kiln".into(),
        kiln_layer::write_layer(&generated, &policy, b.compression, b.store)?,
    ));
    if !b.local_files.is_empty() {
        let local = local_files_layer(b.local_files)?;
        check_merged_usr("local files", local.paths())?;
        blobs.push((
            "local files".into(),
            kiln_layer::write_layer(&local, &policy, b.compression, b.store)?,
        ));
    }
    Ok(assemble(b, platform, epoch, blobs, &report))
}

/// What writing the package layers found, recorded in the image's labels.
#[derive(Default)]
struct Report {
    setuid: Vec<SetuidFile>,
    skipped_scripts: Vec<SkippedScripts>,
}

/// Returns the certificates the base trusts, `(path, PEM)`: those `ca-certificates` ships,
/// sorted (update-ca-certificates follows /etc/ca-certificates.conf, the sorted list of them),
/// then the definition's files under `/usr/local/share/ca-certificates/` ending in `.crt`,
/// sorted, as update-ca-certificates appends local certificates.
fn ca_certificates(b: &BaseBuild<'_>) -> Result<Vec<(String, Vec<u8>)>, BaseImageError> {
    let mut certs = match b.debs.get("ca-certificates") {
        Some(deb) => read_data_files(
            deb,
            &|p| p.starts_with(CA_SOURCE_DIR) && p.ends_with(".crt"),
            CA_MAX_BYTES,
        )
        .map_err(Box::new)?,
        None => Vec::new(),
    };
    certs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut local: Vec<(String, Vec<u8>)> = b
        .definition
        .files
        .iter()
        .filter(|f| f.path.starts_with(CA_LOCAL_DIR) && f.path.ends_with(".crt"))
        .map(|f| (f.path.clone(), f.content.clone().into_bytes()))
        .collect();
    local.sort_by(|a, b| a.0.cmp(&b.0));
    certs.extend(local);
    Ok(certs)
}

/// Returns `/etc/passwd`, `/etc/group`, the definition's files, directories and links, the
/// CA bundle and the Java trust store.
fn generated_layer(b: &BaseBuild<'_>, epoch: i64) -> Result<LayerContents, BaseImageError> {
    let root = Some(Ownership { uid: 0, gid: 0 });
    let mut c = LayerContents::new();
    let d = b.definition;
    let passwd: String = d
        .users
        .iter()
        .map(|u| {
            format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                u.name, u.uid, u.gid, u.gecos, u.home, u.shell
            )
        })
        .collect();
    let group: String = d
        .groups
        .iter()
        .map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")))
        .collect();
    if !passwd.is_empty() {
        c.add_file("etc/passwd", passwd.into_bytes(), 0o644, root);
    }
    if !group.is_empty() {
        c.add_file("etc/group", group.into_bytes(), 0o644, root);
    }
    for dir in &d.directories {
        let owner = Some(Ownership {
            uid: dir.uid.into(),
            gid: dir.gid.into(),
        });
        c.add_dir(dir.path.trim_start_matches('/'), dir.mode, owner);
    }
    for f in &d.files {
        let owner = Some(Ownership {
            uid: f.uid.into(),
            gid: f.gid.into(),
        });
        c.add_file(
            f.path.trim_start_matches('/'),
            f.content.clone().into_bytes(),
            f.mode,
            owner,
        );
    }
    for l in &d.links {
        c.add_symlink(l.path.trim_start_matches('/'), &l.target);
    }
    let certs = ca_certificates(b)?;
    if b.debs.contains_key("ca-certificates") {
        let mut bundle = Vec::new();
        for (_, pem) in &certs {
            bundle.extend_from_slice(pem);
            if !pem.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
        c.add_file(CA_BUNDLE, bundle, 0o644, root);
    }
    if let Some(k) = &d.java_keystore {
        let mut entries = Vec::new();
        for (path, pem) in &certs {
            let file = path.rsplit('/').next().unwrap_or(path).to_lowercase();
            let ders = pem_certificates(pem)
                .filter(|d| !d.is_empty())
                .ok_or_else(|| BaseImageError::Certificate(path.clone()))?;
            let many = ders.len() > 1;
            for (i, der) in ders.into_iter().enumerate() {
                // JKS aliases are lower case (keytool folds them); one per certificate.
                let alias = match many {
                    true => format!("debian:{file}-{i}"),
                    false => format!("debian:{file}"),
                };
                entries.push((alias, der));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let millis = (epoch.max(0) as u64) * 1000;
        let path = k.path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            c.add_dir(parent, 0o755, root);
        }
        c.add_file(path, write_jks(&entries, &k.password, millis), 0o644, root);
    }
    Ok(c)
}

/// The label listing the definition's own packages with their locked versions, as a JSON
/// object (`{"libc6":"2.41-12","nodejs":"20.19.2+dfsg-1+deb13u3"}`): what a buildpack checks
/// against (the Node.js a Node app needs) without reading the base's layers.
pub const PACKAGES_LABEL: &str = "io.kiln.base.packages";

/// Returns the [`PACKAGES_LABEL`] value: each package the definition asks for (includes
/// merged; not their dependencies) with its version locked for `arch`, keys sorted.
fn wanted_packages(d: &Definition, lock: &Lockfile, arch: &str) -> String {
    let locked = lock
        .packages
        .get(arch)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let wanted: BTreeMap<&str, &str> = d
        .packages
        .iter()
        .filter_map(|name| {
            let p = locked.iter().find(|p| &p.name == name)?;
            Some((name.as_str(), p.version.as_str()))
        })
        .collect();
    serde_json::to_string(&wanted).expect("a map of strings serializes")
}

/// The label recording the maintainer scripts and triggers kiln did not run, as a JSON
/// object of package → script names (`{"ca-certificates":["postinst","triggers"]}`): what
/// `dpkg` would have done that the base gets from kiln's generators instead, or not at all.
pub const SKIPPED_SCRIPTS_LABEL: &str = "io.kiln.base.skipped-scripts";

/// The label recording the setuid and setgid files of the packages, as a JSON object of
/// in-image path → `kept` or `stripped` (present only when a package ships such a file).
pub const SETUID_LABEL: &str = "io.kiln.base.setuid";

/// Returns the [`SKIPPED_SCRIPTS_LABEL`] and [`SETUID_LABEL`] values (the latter `None`
/// when no package ships a setuid or setgid file).
fn report_labels(report: &Report) -> (String, Option<String>) {
    let scripts: BTreeMap<&str, &[String]> = report
        .skipped_scripts
        .iter()
        .map(|s| (s.package.as_str(), s.scripts.as_slice()))
        .collect();
    let setuid: BTreeMap<String, &str> = report
        .setuid
        .iter()
        .map(|f| {
            (
                format!("/{}", f.path),
                if f.kept { "kept" } else { "stripped" },
            )
        })
        .collect();
    (
        serde_json::to_string(&scripts).expect("a map of strings serializes"),
        (!setuid.is_empty())
            .then(|| serde_json::to_string(&setuid).expect("a map of strings serializes")),
    )
}

/// Returns the image: config (user, env, labels, created) and layers.
fn assemble(
    b: &BaseBuild<'_>,
    (arch, variant): (&str, Option<&str>),
    epoch: i64,
    blobs: Vec<(String, LayerBlob)>,
    report: &Report,
) -> Image {
    let d = b.definition;
    let created = chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut labels = d.labels.clone();
    labels.insert("io.buildpacks.base.id".into(), format!("kiln/{}", d.name));
    labels.insert("io.buildpacks.base.distro.name".into(), "debian".into());
    if let Some(v) = &b.lock.release_version {
        labels.insert("io.buildpacks.base.distro.version".into(), v.clone());
    }
    labels.insert("io.buildpacks.rebasable".into(), "true".into());
    labels.insert(PACKAGES_LABEL.into(), wanted_packages(d, b.lock, b.arch));
    let (scripts, setuid) = report_labels(report);
    labels.insert(SKIPPED_SCRIPTS_LABEL.into(), scripts);
    if let Some(setuid) = setuid {
        labels.insert(SETUID_LABEL.into(), setuid);
    }
    labels.insert("org.opencontainers.image.created".into(), created.clone());
    labels.insert(
        "org.opencontainers.image.description".into(),
        d.description
            .clone()
            .unwrap_or_else(|| format!("kiln golden base {}", d.name)),
    );
    labels.insert(
        "org.opencontainers.image.version".into(),
        format!("{}-{}", b.lock.codename, b.lock.release_date),
    );
    let env: Vec<String> = d.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut config = ConfigBuilder::default().env(env).labels(
        labels
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
    );
    if let Some(user) = &d.user {
        config = config.user(user.clone());
    }
    let history: Vec<History> = blobs
        .iter()
        .map(|(what, _)| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("kiln base build: {what}"))
                .build()
                .expect("history fields are valid")
        })
        .collect();
    let layers: Vec<Layer> = blobs
        .into_iter()
        .map(|(_, blob)| Layer {
            media_type: blob.media_type.to_string(),
            digest: blob.digest,
            size: blob.size,
            diff_id: blob.diff_id,
            origin: Origin::Local,
        })
        .collect();
    let mut config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(kiln_oci::spec::Arch::from(arch))
        .os(kiln_oci::spec::Os::Linux)
        .config(config.build().expect("config fields are valid"))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(
                    layers
                        .iter()
                        .map(|l| l.diff_id.to_string())
                        .collect::<Vec<_>>(),
                )
                .build()
                .expect("rootfs fields are valid"),
        )
        .history(history)
        .build()
        .expect("image config fields are valid");
    config.set_variant(variant.map(str::to_owned));
    Image { config, layers }
}

#[cfg(test)]
#[path = "base_image_tests.rs"]
mod tests;
