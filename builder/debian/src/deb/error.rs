//! [`DebError`]: why a `.deb` could not be read or turned into a layer.

use std::io;
use std::path::PathBuf;

use kiln_layer::LayerError;

/// Why reading a `.deb` or writing packages into a layer failed. Every variant names the
/// `.deb` file or the package, and the in-package path when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebError {
    /// Opening or reading the `.deb` (or one of its compressed members) failed.
    #[error("reading `{file}`")]
    Read {
        /// The `.deb` file.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not start with the ar magic.
    #[error(
        "reading `{file}`: not a Debian package: it does not start with the ar magic \
         `!<arch>`; the download is corrupt or not a .deb"
    )]
    BadMagic {
        /// The `.deb` file.
        file: PathBuf,
    },
    /// An ar member header is malformed.
    #[error("reading `{file}`: malformed ar member header at byte {offset}: {reason}")]
    BadMember {
        /// The `.deb` file.
        file: PathBuf,
        /// Where the header starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An ar member (or its header) runs past the end of the file.
    #[error(
        "reading `{file}`: ar member `{member}` is truncated: it needs {needed} bytes but only \
         {available} are left in the file; delete the cached file and download it again"
    )]
    Truncated {
        /// The `.deb` file.
        file: PathBuf,
        /// The member's name (`(header)` when the header itself is cut off).
        member: String,
        /// The bytes the member header promises.
        needed: u64,
        /// The bytes left in the file.
        available: u64,
    },
    /// The `.deb` does not have the members dpkg requires, in dpkg's order.
    #[error("reading `{file}`: {reason}")]
    Layout {
        /// The `.deb` file.
        file: PathBuf,
        /// What is missing or out of place.
        reason: String,
    },
    /// The package's `control` file is missing, malformed or unusable.
    #[error("reading the control file of `{file}`: {reason}")]
    Control {
        /// The `.deb` file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The `.deb` is not the package the lockfile names.
    #[error(
        "`{file}` is `{found}`, but the lockfile expects `{expected}`; the cache holds a \
         different package under that name"
    )]
    WrongPackage {
        /// The `.deb` file.
        file: PathBuf,
        /// `name version` from the lockfile.
        expected: String,
        /// `name version` from the package's control file.
        found: String,
    },
    /// A package name that cannot be used as a `status.d` file name.
    #[error("package name `{name}` is not a valid Debian package name")]
    BadPackageName {
        /// The name.
        name: String,
    },
    /// A `data.tar` entry that must never reach a layer: an escaping or absolute path, a
    /// whiteout name, a device node, a FIFO, a sparse file, a non-UTF-8 name.
    #[error("package `{package}` (`{file}`): refusing data.tar entry `{path}`: {reason}")]
    Unsafe {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// The entry's path as written in the archive.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A `data.tar` entry whose path goes through a symlink created earlier.
    #[error(
        "package `{package}` (`{file}`): refusing data.tar entry `{path}`: it goes through the \
         symlink `/{link}` (from `{link_owner}`), which could redirect it anywhere"
    )]
    ThroughSymlink {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// The entry's path as written in the archive.
        path: String,
        /// The symlink on its path (in-image path, merged-usr applied).
        link: String,
        /// Who created the symlink.
        link_owner: String,
    },
    /// A hardlink whose target is not a regular file of the same package written before it.
    #[error(
        "package `{package}` (`{file}`): refusing hardlink `{path}` to `{target}`: the target \
         is not a regular file earlier in the same package"
    )]
    Hardlink {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// The hardlink's path as written in the archive.
        path: String,
        /// Its target as written in the archive.
        target: String,
    },
    /// The package expands to more than its `Installed-Size` allows.
    #[error(
        "package `{package}` (`{file}`): data.tar expands past {limit} bytes, more than \
         {percent} % of its Installed-Size of {installed_size} KiB; refusing a possible \
         decompression bomb (a definition can raise `max-expansion-percent`)"
    )]
    ExpansionBomb {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// `Installed-Size` in KiB.
        installed_size: u64,
        /// The byte bound that was exceeded.
        limit: u64,
        /// The bound in percent of `Installed-Size`.
        percent: u64,
    },
    /// Two packages (or one package twice) ship the same non-directory path, or one ships
    /// something where the other has a directory.
    #[error(
        "packages `{first}` and `{second}` both ship `/{path}`; an image can hold only one; \
         drop one of them from the base definition"
    )]
    Conflict {
        /// The in-image path (merged-usr applied).
        path: String,
        /// The package (or `merged-usr`, `status.d`) that claimed the path first.
        first: String,
        /// The package that claimed it again.
        second: String,
    },
    /// An entry whose parent is a file or symlink target of another kind.
    #[error(
        "package `{package}` (`{file}`): refusing data.tar entry `{path}`: its parent `/{parent}` \
         is not a directory (it comes from `{parent_owner}`)"
    )]
    ParentNotDir {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// The entry's path as written in the archive.
        path: String,
        /// The parent in-image path.
        parent: String,
        /// Who created the parent.
        parent_owner: String,
    },
    /// Reading `data.tar` failed (corrupt compression, bad tar headers, a decoder limit).
    #[error("package `{package}` (`{file}`): reading member `{member}`")]
    Data {
        /// The package name.
        package: String,
        /// The `.deb` file.
        file: PathBuf,
        /// The ar member (`data.tar.xz`).
        member: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Writing the layer failed.
    #[error("writing package `{package}` into a layer")]
    Layer {
        /// The package name (or `merged-usr`).
        package: String,
        /// The underlying error.
        source: LayerError,
    },
}
