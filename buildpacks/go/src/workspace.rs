//! The `workspace` launch layer: the app's non-code files (templates, static assets,
//! config), which Go apps usually open relative to their working directory.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Component, Path};

use kiln_lifecycle::BuildpackError;
use walkdir::WalkDir;

/// Returns whether the file or directory at `rel` (relative to the app root) stays out of the
/// `workspace` layer: Go sources and module files (compiled into the binary or only needed to
/// build it), `testdata/` anywhere, the root `vendor/`, kiln's own root `project.toml`, and
/// anything under a name starting with `.` (VCS metadata, editor and CI config, dot-env files).
/// A root-only rule for `vendor/` keeps web assets such as `static/vendor/` in the image.
pub fn is_excluded(rel: &Path, is_dir: bool) -> bool {
    let names: Vec<Cow<'_, str>> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_string_lossy()),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return false;
    };
    let at_root = parents.is_empty();
    if names.iter().any(|n| n.starts_with('.') || n == "testdata") || names[0] == "vendor" {
        return true;
    }
    if is_dir {
        return false;
    }
    last.ends_with(".go")
        || matches!(
            last.as_ref(),
            "go.mod" | "go.sum" | "go.work" | "go.work.sum"
        )
        || (at_root && last == "project.toml")
}

/// Copies the files of `app_dir` that [`is_excluded`] keeps into `dest` (created on demand).
/// Symlinks stay symlinks, permission bits are kept, other special files are skipped, and
/// directories are created only to hold a kept entry. Returns how many entries were copied.
pub(crate) fn copy(app_dir: &Path, dest: &Path) -> Result<usize, BuildpackError> {
    let mut copied = 0;
    let walk = WalkDir::new(app_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| match e.path().strip_prefix(app_dir) {
            Ok(rel) => !is_excluded(rel, e.file_type().is_dir()),
            Err(_) => false,
        });
    for entry in walk {
        let entry = entry.map_err(|e| {
            let doing = format!("reading the app directory `{}`", app_dir.display());
            BuildpackError::io(doing, e.into())
        })?;
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(app_dir) else {
            continue;
        };
        let target = dest.join(rel);
        let doing = || format!("copying `{}` into the workspace layer", rel.display());
        let result = copy_entry(entry.path(), &target, file_type);
        match result {
            Ok(true) => copied += 1,
            Ok(false) => {}
            Err(e) => return Err(BuildpackError::io(doing(), e)),
        }
    }
    Ok(copied)
}

/// Copies one file or symlink; returns `false` for special files, which are skipped.
fn copy_entry(src: &Path, target: &Path, file_type: fs::FileType) -> io::Result<bool> {
    if !(file_type.is_file() || file_type.is_symlink()) {
        return Ok(false);
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    if file_type.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, target)?;
    } else {
        // fs::copy carries the permission bits over, exec bits included.
        fs::copy(src, target)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn excluded(rel: &str) -> bool {
        is_excluded(Path::new(rel), false)
    }

    #[test]
    fn keeps_assets_and_config() {
        for kept in [
            "static/hello.txt",
            "templates/index.html",
            "config/app.yaml",
            "README.md",
            "static/vendor/jquery.js",
            "docs/go.mod.txt",
            "scripts/gen.go.tmpl",
            "sub/project.toml",
            "notes/private.txt",
        ] {
            assert!(!excluded(kept), "{kept} should be kept");
        }
    }

    #[test]
    fn leaves_out_code_module_files_and_dot_files() {
        for dropped in [
            "main.go",
            "main_test.go",
            "internal/greet/greet.go",
            "go.mod",
            "go.sum",
            "go.work",
            "go.work.sum",
            "tools/go.mod",
            "project.toml",
            "vendor/modules.txt",
            "vendor/github.com/google/uuid/uuid.go",
            "testdata/x.txt",
            "pkg/testdata/golden.json",
            ".gitignore",
            ".dockerignore",
            ".env",
            ".git/config",
            "static/.DS_Store",
            ".github/workflows/ci.yml",
        ] {
            assert!(excluded(dropped), "{dropped} should be left out");
        }
        assert!(is_excluded(Path::new("vendor"), true));
        assert!(is_excluded(Path::new("testdata"), true));
        assert!(is_excluded(Path::new(".git"), true));
        assert!(!is_excluded(Path::new("static/vendor"), true));
        assert!(!is_excluded(Path::new(""), true));
    }

    #[test]
    fn copies_kept_files_symlinks_and_exec_bits() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        for dir in ["static", "cmd/api", ".git", "testdata", "empty"] {
            fs::create_dir_all(s.join(dir)).unwrap();
        }
        for file in [
            "main.go",
            "go.mod",
            "static/a.txt",
            "cmd/api/main.go",
            ".git/HEAD",
            "testdata/x",
        ] {
            fs::write(s.join(file), file).unwrap();
        }
        fs::write(s.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(s.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("static/a.txt", s.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", s.join("dangling")).unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("workspace");
        assert_eq!(copy(s, &dest).unwrap(), 4);

        assert_eq!(
            fs::read_to_string(dest.join("static/a.txt")).unwrap(),
            "static/a.txt"
        );
        let mode = fs::metadata(dest.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            fs::read_link(dest.join("link.txt")).unwrap(),
            Path::new("static/a.txt")
        );
        assert_eq!(
            fs::read_link(dest.join("dangling")).unwrap(),
            Path::new("/nonexistent/target")
        );
        for gone in ["main.go", "go.mod", "cmd", ".git", "testdata", "empty"] {
            assert!(
                fs::symlink_metadata(dest.join(gone)).is_err(),
                "{gone} should be absent"
            );
        }
    }

    #[test]
    fn nothing_to_copy_creates_nothing() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("main.go"), "package main").unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("workspace");
        assert_eq!(copy(src.path(), &dest).unwrap(), 0);
        assert!(!dest.exists());
    }
}
