//! `.deb` packages: the ar container, `control.tar` and `data.tar`, and the tar→tar
//! transform of `data.tar` into layer entries.
//!
//! [`write_packages_layer`] reads each `.deb` once, front to back: [`ArReader`] checks the
//! container, [`ControlFile`] keeps the `control` stanza and `md5sums`, and `data.tar` is
//! streamed entry by entry into a [`kiln_layer::LayerWriter`], never extracted. Hostile
//! packages are refused with an error naming the package, the file and the entry: `..`
//! and absolute paths, whiteout names, device nodes and FIFOs, paths through an earlier
//! symlink, dangling hardlinks, files another package ships ([`PathTracker`]), and data
//! expanding far beyond `Installed-Size`. Setuid and setgid bits of files are stripped
//! unless [`PackageRules`] names the path; maintainer scripts are never run, only listed
//! ([`PackagesLayer`]). Then [`status_text`] gives each package its
//! `/var/lib/dpkg/status.d` entry.
//!
//! Merged `/usr` ([`merged_usr_links`]): `bin`, `sbin` and `lib*` paths are stored under
//! `usr/`, and [`write_merged_usr_layer`] writes the root symlinks.
//!
//! Spec: deb(5) (<https://manpages.debian.org/deb.5>), deb-control(5), Debian Policy §5.

mod ar;
mod control;
mod data;
mod decompress;
mod error;
mod layer;
mod merged_usr;
mod paths;
mod read_files;
mod rules;
mod status;

pub use ar::{ArMember, ArReader};
pub use control::ControlFile;
pub use error::DebError;
pub use layer::{DebInfo, read_control, write_merged_usr_layer, write_packages_layer};
pub use merged_usr::{MERGED_USR_ALIASES, MergedUsrLink, merged_usr_links};
pub use paths::PathTracker;
pub use read_files::read_data_files;
pub use rules::{
    DEFAULT_MAX_EXPANSION_PERCENT, PackageRules, PackagesLayer, SetuidFile, SkippedScripts,
};
pub use status::{STATUS_DIR, is_package_name, md5sums_path, status_path, status_text};
