//! Command-line definitions (clap only; no behaviour here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `kiln --version`: the crate version, the commit and its date (see `build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KILN_BUILD_DETAIL"),
    ")"
);

/// kiln builds reproducible OCI images from source — no Dockerfile, no daemon, no root.
#[derive(Debug, Parser)]
#[command(name = "kiln", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// When to colour the output: on a terminal unless `NO_COLOR` is set (`auto`),
    /// `always` or `never`.
    #[arg(long, value_enum, global = true, default_value_t, value_name = "WHEN")]
    pub color: ColorArg,
    /// How to write progress and errors on stderr: `text`, or `json` (one object a line:
    /// `time`, `elapsed_ms`, `level`, `message`; a failure ends with `level` `error`, its
    /// `exit_code`, `causes` and `hint`). The final reference stays on stdout.
    #[arg(
        long,
        value_enum,
        global = true,
        default_value_t,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormatArg,
}

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object a line, for CI.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect the app's language, build it with the real toolchain, and export an image.
    Build(Box<BuildArgs>),
    /// Put app images on a newer run image, registry-side: no rebuild, no layer bytes moved.
    Rebase(RebaseArgs),
    /// Store registry credentials the way `docker login` does.
    Login(LoginArgs),
    /// Remove the credentials `kiln login` (or `docker login`) stored for a registry.
    Logout(LogoutArgs),
    /// Print a shell completion script (`kiln completions bash > /etc/bash_completion.d/kiln`).
    Completions(CompletionsArgs),
    /// Print kiln's man page, roff (`kiln man > /usr/local/share/man/man1/kiln.1`).
    Man,
    /// Maintain golden base images built from signed Debian packages.
    #[command(subcommand)]
    Base(BaseCommand),
    /// Sign an image in its registry (a cosign-compatible signature at its `.sig` tag).
    Sign(SignArgs),
    /// Check an image's signatures against a public key.
    Verify(VerifyArgs),
    /// Show an image's base, buildpacks, processes, layers, SBOM, signatures and provenance.
    Inspect(InspectArgs),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// List the images in kiln's local store: name, digest, size, created.
    Images(ImagesArgs),
    /// Remove images from kiln's local store by name (their blobs stay while others share them).
    Rm(RmArgs),
    /// kiln's cache dir.
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// Where kiln's cache dir is.
#[derive(Debug, Args, Clone, Default)]
pub struct CacheDirArgs {
    /// kiln's cache dir (default `$XDG_CACHE_HOME/kiln` or `~/.cache/kiln`).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// `kiln images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: FormatArg,
    /// The cache dir.
    #[command(flatten)]
    pub cache: CacheDirArgs,
}

/// `kiln rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The images' names, as `kiln images` lists them.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
    /// The cache dir.
    #[command(flatten)]
    pub cache: CacheDirArgs,
}

/// `kiln cache …`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show how much each part of the cache dir holds: the image store, each buildpack's
    /// toolchain caches, the scratch copies, the `.deb` cache.
    Du(CacheDirArgs),
    /// Free space: remove what nothing uses (blobs no image or cache entry names, scratch
    /// copies, leftovers), then cached items unused for `--older-than`, then the least
    /// recently used ones while the cache dir is over `--max-size`. Named images, and every
    /// blob they need, stay (`kiln rm` drops a name). Waits for builds using the cache dir.
    Prune(PruneArgs),
}

/// `kiln cache prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove cached items (toolchain caches, layer-reuse entries, `.deb` downloads, SBOM
    /// catalogs) not used for this long: `30d`, `12h`, `45m`, `2w`.
    #[arg(long, value_name = "AGE", value_parser = crate::units::parse_age)]
    pub older_than: Option<std::time::Duration>,
    /// Then remove the least recently used cached items until the cache dir holds at most
    /// this much: `10G`, `500M` (powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_size: Option<u64>,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: FormatArg,
    /// The cache dir.
    #[command(flatten)]
    pub cache: CacheDirArgs,
}

/// `kiln key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new ECDSA P-256 key pair: PREFIX.key (cosign's encrypted format when a
    /// password is given) and PREFIX.pub.
    Generate(KeyGenerateArgs),
}

/// Where a signing key's password comes from: never a flag's value.
#[derive(Debug, Args, Clone, Default)]
pub struct KeyPasswordArgs {
    /// Read the key's password from this file (its first line). Without it, kiln reads
    /// `KILN_KEY_PASSWORD`, then `COSIGN_PASSWORD`.
    #[arg(long, value_name = "FILE")]
    pub key_password_file: Option<PathBuf>,
}

/// `kiln key generate`.
#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX", default_value = "kiln")]
    pub output_prefix: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// The password.
    #[command(flatten)]
    pub password: KeyPasswordArgs,
}

/// `kiln sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image, by tag or digest.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The private key (PEM: cosign's format or PKCS#8).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// The key's password.
    #[command(flatten)]
    pub password: KeyPasswordArgs,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `kiln verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image, by tag or digest.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The public key (PEM).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: in a registry by tag or digest, a name in kiln's local store (as
    /// `kiln images` lists it), or `oci:PATH[:NAME]`.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: FormatArg,
    /// Verify signatures and provenance with this public key.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The cache dir whose store local names are looked up in.
    #[command(flatten)]
    pub cache: CacheDirArgs,
}

/// Output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A table for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// SBOM and signing options of `kiln build` and `kiln base build`.
#[derive(Debug, Args, Clone, Default)]
pub struct SupplyArgs {
    /// Also write the SBOMs (SPDX 2.3 and CycloneDX 1.5 JSON) into this directory (pack's
    /// `--sbom-output-dir`).
    #[arg(long, visible_alias = "sbom-output-dir", value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
    /// Make no SBOM.
    #[arg(long, conflicts_with = "sbom_dir")]
    pub no_sbom: bool,
    /// Sign the pushed image (and its provenance) with this private key.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// The signing key's password.
    #[command(flatten)]
    pub password: KeyPasswordArgs,
}

/// `kiln base …`.
#[derive(Debug, Subcommand)]
pub enum BaseCommand {
    /// Resolve a base definition against the signed archive and write its lockfile.
    Lock(BaseLockArgs),
    /// Re-resolve, print what changed (package old → new), then write the new lockfile.
    Update(BaseLockArgs),
    /// Build the base image strictly from its lockfile.
    Build(Box<BaseBuildArgs>),
}

/// Options shared by `kiln base` commands.
#[derive(Debug, Args)]
pub struct BaseCommon {
    /// The base definition, e.g. `golden-base/static.toml`; `kiln base build` also takes
    /// the name of a curated base kiln carries (`static`, `base`, `build`, `node`, `java17`,
    /// `java21`).
    #[arg(value_name = "DEF")]
    pub definition: PathBuf,
    /// The Debian mirror URL (default: the machine's apt sources).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// The Debian security archive URL, for `*-security` suites (default: the apt sources'
    /// source of a `-security` suite).
    #[arg(long, value_name = "URL")]
    pub security_mirror: Option<String>,
    /// Where kiln keeps downloaded packages and images.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// `kiln base lock` / `kiln base update`.
#[derive(Debug, Args)]
pub struct BaseLockArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: BaseCommon,
}

/// `--base-registry`.
#[derive(Debug, Args)]
pub struct BaseRegistryArg {
    /// The registry your platform team publishes kiln's curated bases to, as
    /// `host[:port]/path`: `kiln-base/node` is then pulled from `host[:port]/path/node`
    /// instead of built from the lock kiln carries. Default: `KILN_BASE_REGISTRY`, else
    /// `[io.kiln] base-registry` in project.toml.
    #[arg(long, value_name = "HOST/PATH")]
    pub base_registry: Option<String>,
}

/// `kiln base build`.
#[derive(Debug, Args)]
pub struct BaseBuildArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: BaseCommon,
    /// Push the base to this image reference; alone, to the base registry
    /// (`--base-registry`) under the base's name.
    #[arg(long, value_name = "IMAGE", num_args = 0..=1, default_missing_value = "")]
    pub publish: Option<String>,
    /// Where the curated bases are published.
    #[command(flatten)]
    pub bases: BaseRegistryArg,
    /// Also write an OCI archive.
    #[arg(long, value_name = "FILE.tar")]
    pub output: Option<PathBuf>,
    /// The platforms to build, comma-separated (`linux/amd64,linux/arm64`); each must be
    /// locked. Default: every architecture of the lockfile. Several make an image index.
    #[arg(long, value_name = "OS/ARCH,...", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t)]
    pub compression: CompressionArg,
    /// Add a file of this machine to the image, `SOURCE:/path/in/image` (a builder image's
    /// `kiln` binary), in a layer of its own: owned by root, 0755 if executable else 0644.
    /// Repeatable.
    #[arg(long, value_name = "SRC:DEST")]
    pub add_file: Vec<String>,
    /// SBOM and signing.
    #[command(flatten)]
    pub supply: SupplyArgs,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Layer compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// gzip (every registry and runtime reads it).
    #[default]
    Gzip,
    /// zstd (smaller and faster; needs a recent runtime).
    Zstd,
}

/// How build steps are confined (`--sandbox`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxArg {
    /// Landlock where the kernel allows it; where not, say so and build unconfined.
    Auto,
    /// Landlock, or fail the build.
    Require,
    /// No confinement (steps still get a kiln-owned HOME and temp dir).
    Off,
}

impl From<CompressionArg> for kiln_layer::Compression {
    fn from(arg: CompressionArg) -> Self {
        match arg {
            CompressionArg::Gzip => Self::Gzip,
            CompressionArg::Zstd => Self::Zstd,
        }
    }
}

impl From<SandboxArg> for kiln_lifecycle::SandboxMode {
    fn from(arg: SandboxArg) -> Self {
        match arg {
            SandboxArg::Auto => Self::Auto,
            SandboxArg::Require => Self::Require,
            SandboxArg::Off => Self::Off,
        }
    }
}

/// Options shared by commands that talk to registries.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry host[:port] (loopback hosts always may). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Trust this PEM CA file for registry TLS, besides the system roots. Repeatable.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// Send credentials to a plain-HTTP (`--insecure-registry`) registry on another machine,
    /// where anyone on the network can read them. Without it kiln refuses.
    #[arg(long)]
    pub allow_http_credentials: bool,
}

/// `kiln build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The image to build, e.g. `registry.example.com/team/app:1.2`.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The app's source directory.
    #[arg(long, short = 'p', value_name = "DIR", default_value = ".")]
    pub path: PathBuf,
    /// The directory to copy for the build: an ancestor of `--path` holding what the app
    /// refers to outside it (a Go `replace ../lib`, a Maven parent POM, a workspace root).
    /// Default: kiln finds the enclosing Go workspace, Maven parent or npm/pnpm/Yarn
    /// workspace root itself (like docker's build context).
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Push the image to its registry (otherwise it goes into the local OCI layout store).
    #[arg(long)]
    pub publish: bool,
    /// The image the app runs on: a registry reference or `oci:PATH[:NAME]`.
    #[arg(long, value_name = "REF")]
    pub run_image: Option<String>,
    /// The platforms to build, comma-separated (`linux/amd64,linux/arm64`): several make an
    /// image index, one image each, cross-built on this machine. Default: `[io.kiln]
    /// platforms` in project.toml, else the run image's platform of this machine.
    #[arg(long, value_name = "OS/ARCH,...", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Where the curated bases come from.
    #[command(flatten)]
    pub bases: BaseRegistryArg,
    /// Build-time environment variable for the toolchain, `K=V`. Repeatable.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Build-time environment from a file of `K=V` lines (`#` comments and blank lines
    /// skipped), under `--env` (pack's `--env-file`).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The default process when the app has several (e.g. one per `cmd/*`; pack's
    /// `--default-process`).
    #[arg(
        long = "default-process",
        visible_alias = "process",
        value_name = "NAME"
    )]
    pub process: Option<String>,
    /// The image's creation time: `now`, or seconds since 1970 (pack's `--creation-time`).
    /// Default: `SOURCE_DATE_EPOCH`, else the last commit's time, else a constant.
    #[arg(long, value_name = "now|EPOCH")]
    pub creation_time: Option<String>,
    /// The project descriptor to read instead of the app's own `project.toml` (pack's
    /// `--descriptor`).
    #[arg(long, value_name = "FILE")]
    pub descriptor: Option<PathBuf>,
    /// Another reference for the image, pushed (or saved) after IMAGE as the same manifest,
    /// a tag at a time (pack's `--tag`). Repeatable. Default: `[io.kiln] tags`.
    #[arg(long, value_name = "REF")]
    pub tag: Vec<String>,
    /// Write `name@digest` of IMAGE and of each `--tag`, a line each, to this file (ko's
    /// `--image-refs`), for the next step of a pipeline.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
    /// An image config label, `K=V` (Jib's `labels`, a Dockerfile's `LABEL`). Repeatable;
    /// over `[io.kiln] labels`.
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Environment the app runs with, `K=V` (Jib's `environment`, a Dockerfile's `ENV`; the
    /// build's own is `--env`). Repeatable; over `[io.kiln] launch-env`.
    #[arg(long, value_name = "K=V")]
    pub launch_env: Vec<String>,
    /// A port the app listens on, `8080` or `53/udp` (Jib's `ports`, a Dockerfile's
    /// `EXPOSE`). Repeatable; added to `[io.kiln] expose`.
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// The user the app runs as, `UID[:GID]` (Jib's `user`, a Dockerfile's `USER`; default
    /// kiln's non-root 65532, or `[io.kiln] user`). Root only with `--allow-root`.
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Let the image run as root (`--user 0`).
    #[arg(long)]
    pub allow_root: bool,
    /// The image's working directory (Jib's `workingDirectory`, a Dockerfile's `WORKDIR`;
    /// default the app's directory, or `[io.kiln] workdir`).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// The buildpack to use when several detect the app (`kiln/go`, `kiln/java`, `kiln/node`).
    #[arg(long, value_name = "ID")]
    pub buildpack: Option<String>,
    /// Where kiln keeps toolchain caches, layer blobs and the local image store.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep the buildpack's cache (module caches, Maven repository, npm cache,
    /// `node_modules`) as this image in a registry: restored before the build, pushed after
    /// it beside the app. For build pods without a persistent disk.
    #[arg(long, value_name = "REF")]
    pub cache_image: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t)]
    pub compression: CompressionArg,
    /// Also write the image as an OCI archive (`podman load -i FILE`).
    #[arg(long, value_name = "FILE.tar")]
    pub output: Option<PathBuf>,
    /// Write a JSON report: digest, layers (size, reused), timings.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// How to confine the build's steps (the toolchains and the project's own scripts):
    /// write access to their scratch copy and caches only, no access to your home,
    /// credentials or keys. Default: `KILN_SANDBOX`, else `auto`.
    #[arg(long, value_enum, value_name = "MODE")]
    pub sandbox: Option<SandboxArg>,
    /// SBOM and signing.
    #[command(flatten)]
    pub supply: SupplyArgs,
    /// Attach no build provenance.
    #[arg(long)]
    pub no_provenance: bool,
    /// Record the build's wall-clock start and finish in the provenance. Without it they
    /// are left out (SLSA makes them optional), so an unchanged rebuild pushes nothing new.
    #[arg(long)]
    pub provenance_times: bool,
    /// With `--publish`, skip the check, before building, that the registry answers,
    /// accepts the credentials and allows the push.
    #[arg(long)]
    pub no_preflight: bool,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print only errors and the final reference.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print debug details.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// `kiln rebase`.
#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app images to rebase (built by kiln or another CNB platform such as `pack`).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// The run image to put them on: a registry reference, `oci:PATH[:NAME]` or a name in
    /// kiln's store. Default: the newest image of each app's base stream (its run image's
    /// repository, same base id).
    #[arg(long, value_name = "REF")]
    pub run_image: Option<String>,
    /// Push each rebased image under its own tag (otherwise it goes into kiln's local store).
    #[arg(long)]
    pub publish: bool,
    /// Rebase even when the new run image's OS, architecture or base id differ from the app's.
    #[arg(long)]
    pub force: bool,
    /// Show what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where kiln keeps its local image store.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Write a JSON report: per image, old and new base, result, digest, bytes uploaded.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print only errors and the rebased references.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `kiln completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `kiln logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry host[:port].
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// Registry options.
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// `kiln login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry host[:port].
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// User name (asked for on a terminal when not given).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from standard input. Without it, kiln asks for the password on a
    /// terminal, not echoing it; there is no password flag (command lines leak).
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry options.
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}
