//! The kiln lifecycle: detect, build and export phases, the [`Buildpack`] API, the layer
//! reuse cache, the generated static run image, and the CNB-compatible metadata labels
//! (<https://github.com/buildpacks/spec/blob/main/platform.md>).
//!
//! Synchronous: phases run toolchains and CPU-bound layer work; the CLI calls them on
//! blocking threads.

mod base;
mod bounded;
mod buildpack;
mod cache_image;
mod context;
mod epoch;
mod export;
mod layer_cache;
mod metadata;
mod native;
mod phases;
mod project;
mod rebase;
mod sandbox;
mod scratch;
mod source;
mod stack;
mod stage;
mod tool;
mod unsupported;

pub use base::{DEFAULT_PATH, NONROOT_ID, host_arch, static_base, static_base_for};
pub use bounded::{LOCKFILE_LIMIT, MANIFEST_LIMIT, read_bounded, read_bounded_string};
pub use buildpack::{
    BASE_PACKAGES_LABEL, BuildContext, BuildOutput, Buildpack, BuildpackError, BuildpackSettings,
    CACHE_LOCKS, DeclaredPackage, LaunchLayer, Plan, Process, RUN_IMAGE_FACT, RunImageInfo,
    SOURCE_ROOT_FACT, SOURCE_ROOT_REASON_FACT,
};
pub use cache_image::{
    CACHE_BUILDPACK_LABEL, CACHE_ENTRIES_LABEL, CacheEntry, CacheImageError, RestoreError,
    Restored, cache_entries, pack_cache, restore_entry, restored_fingerprints,
};
pub use context::{ContextError, SourceRoot, relative_path, source_root};
pub use epoch::{DEFAULT_EPOCH, EpochSource, GitInfo, build_epoch, git_info, rfc3339};
pub use export::{
    Export, ExportError, ExportedLayer, ImageSettings, RunImage, SourceFacts, WrittenHook,
    base_links,
};
/// Locks and atomic writes for what builds sharing a cache dir update (buildpacks' caches).
pub use kiln_layer::{FileLock, FileStamp, write_atomic};
pub use layer_cache::{LayerCache, Reuse, layer_cache_entries, remove_layer_cache_entries};
pub use native::{NativeCode, elf_architecture, elf_file_architecture};
pub use phases::{ALLOWED_ENV, Build, BuildResult, Detect, PhaseError, build_env};
pub use project::{ProjectDescriptor, ProjectError};
pub use rebase::{
    LIFECYCLE_METADATA, REBASABLE, Rebase, RebaseError, Rebased, RecordedRunImage, base_id,
    recorded_run_image,
};
pub use sandbox::{
    Confinement, HOME_SECRETS, SANDBOX_EXEC_ARG, SYSTEM_READ, SYSTEM_SECRETS, Sandbox,
    SandboxError, SandboxMode, SandboxSettings, SandboxSupport, confine_and_exec, probe,
    toolchain_dirs,
};
pub use scratch::Scratch;
pub use source::{CopyStats, SourceError, copy_source, copy_source_except};
pub use stack::{Stack, stack_for};
pub use stage::sync_source;
pub use tool::{Tool, ToolRun, environment_failure, find_executable, for_each_line, prepend_path};
