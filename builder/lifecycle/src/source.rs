//! The scratch copy of the source: what the toolchain sees and what can reach a layer.
//!
//! Files ignored by `.gitignore` (at any depth, plus `.git/info/exclude`), `.dockerignore`
//! (at the root) or the project descriptor never enter the copy, so nothing ignored — say a
//! `secrets.env` — can reach the toolchain or any layer. `.git` itself is never copied.

use std::fs;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;

use crate::ProjectDescriptor;

/// Why the source could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Walking or copying failed.
    #[error("copying the source `{}` to `{}`: {message}", from.display(), to.display())]
    Copy {
        /// Source root.
        from: PathBuf,
        /// Scratch root.
        to: PathBuf,
        /// What failed.
        message: String,
    },
    /// A pattern in `.dockerignore` or `project.toml` is invalid.
    #[error("invalid ignore pattern `{pattern}` in {origin}: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Which file it came from.
        origin: &'static str,
        /// The parser's words.
        message: String,
    },
}

/// What the copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Copies `src` into the empty directory `dst`, leaving out ignored files.
/// Symlinks are copied as symlinks, never followed.
pub fn copy_source(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
) -> Result<CopyStats, SourceError> {
    let err = |message: String| SourceError::Copy {
        from: src.to_path_buf(),
        to: dst.to_path_buf(),
        message,
    };
    let overrides = overrides(src, project)?;
    let mut walk = WalkBuilder::new(src);
    walk.hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .ignore(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .overrides(overrides)
        .filter_entry(|e| e.file_name() != ".git");
    let mut stats = CopyStats::default();
    for entry in walk.build() {
        let entry = entry.map_err(|e| err(e.to_string()))?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .map_err(|e| err(e.to_string()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dst.join(rel);
        let ft = entry
            .file_type()
            .ok_or_else(|| err(format!("no file type for `{}`", rel.display())))?;
        if ft.is_dir() {
            fs::create_dir_all(&target)
                .map_err(|e| err(format!("creating `{}`: {e}", rel.display())))?;
        } else if ft.is_symlink() {
            let link = fs::read_link(entry.path())
                .map_err(|e| err(format!("reading link `{}`: {e}", rel.display())))?;
            ensure_parent(&target).map_err(|e| err(e.to_string()))?;
            std::os::unix::fs::symlink(&link, &target)
                .map_err(|e| err(format!("creating link `{}`: {e}", rel.display())))?;
        } else if ft.is_file() {
            ensure_parent(&target).map_err(|e| err(e.to_string()))?;
            stats.bytes += fs::copy(entry.path(), &target)
                .map_err(|e| err(format!("copying `{}`: {e}", rel.display())))?;
            stats.files += 1;
        }
        // Sockets, FIFOs and devices in a source tree are never build inputs.
    }
    Ok(stats)
}

fn ensure_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p),
        None => Ok(()),
    }
}

/// Builds the override set: project includes as whitelist, or excludes and `.dockerignore`
/// lines as ignore patterns (`!` inverts a gitignore-style override).
fn overrides(
    src: &Path,
    project: &ProjectDescriptor,
) -> Result<ignore::overrides::Override, SourceError> {
    let mut b = OverrideBuilder::new(src);
    let add = |b: &mut OverrideBuilder, pattern: &str, origin: &'static str| {
        b.add(pattern)
            .map(|_| ())
            .map_err(|e| SourceError::Pattern {
                pattern: pattern.to_string(),
                origin,
                message: e.to_string(),
            })
    };
    for p in &project.include {
        add(&mut b, p, "project.toml include")?;
    }
    let mut ignores: Vec<(String, &'static str)> = project
        .exclude
        .iter()
        .map(|p| (p.clone(), "project.toml exclude"))
        .collect();
    if let Ok(text) = fs::read_to_string(src.join(".dockerignore")) {
        ignores.extend(
            dockerignore_patterns(&text)
                .into_iter()
                .map(|p| (p, ".dockerignore")),
        );
    }
    for (p, origin) in ignores {
        // In an override set a bare glob whitelists; `!glob` ignores, and `!!glob` (a negated
        // dockerignore line) re-includes.
        let pattern = match p.strip_prefix('!') {
            Some(kept) => kept.to_string(),
            None => format!("!{p}"),
        };
        add(&mut b, &pattern, origin)?;
    }
    b.build().map_err(|e| SourceError::Pattern {
        pattern: String::new(),
        origin: "project.toml",
        message: e.to_string(),
    })
}

/// Returns the patterns of a `.dockerignore`, converted to gitignore form: comments and
/// blank lines dropped, and paths anchored at the root as Docker anchors them.
fn dockerignore_patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (neg, body) = match l.strip_prefix('!') {
                Some(b) => ("!", b.trim()),
                None => ("", l),
            };
            let body = body.trim_start_matches("./").trim_start_matches('/');
            // Docker matches from the context root; a pattern with no slash still only matches
            // at the root ("secrets" is ./secrets, not a/secrets), unlike gitignore.
            format!("{neg}/{body}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = d.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, c).unwrap();
        }
        d
    }

    fn copied(src: &Path, project: &ProjectDescriptor) -> Vec<String> {
        let dst = tempfile::tempdir().unwrap();
        copy_source(src, dst.path(), project).unwrap();
        let mut out: Vec<String> = walkdir::WalkDir::new(dst.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(dst.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn honours_gitignore_dockerignore_and_project_excludes() {
        let src = tree(&[
            ("main.go", "x"),
            (".gitignore", "secrets.env\n*.log\n"),
            ("secrets.env", "KILN_CANARY"),
            ("sub/.gitignore", "local.txt\n"),
            ("sub/local.txt", "x"),
            ("sub/keep.txt", "x"),
            ("sub/app.log", "x"),
            (".dockerignore", "# c\nnotes\n*.tmp\n!keep.tmp\n"),
            ("a.tmp", "x"),
            ("keep.tmp", "x"),
            ("notes/private.txt", "x"),
            ("notes/keep.md", "x"),
            ("docs/a.md", "x"),
            (".git/config", "x"),
        ]);
        let project = ProjectDescriptor {
            exclude: vec!["docs/".into()],
            ..Default::default()
        };
        assert_eq!(
            copied(src.path(), &project),
            vec![
                ".dockerignore",
                ".gitignore",
                "keep.tmp",
                "main.go",
                "sub/.gitignore",
                "sub/keep.txt"
            ]
        );
    }

    #[test]
    fn include_list_whitelists() {
        let src = tree(&[("main.go", "x"), ("static/a.txt", "x"), ("other.txt", "x")]);
        let project = ProjectDescriptor {
            include: vec!["*.go".into(), "static/**".into()],
            ..Default::default()
        };
        assert_eq!(
            copied(src.path(), &project),
            vec!["main.go", "static/a.txt"]
        );
    }

    #[test]
    fn symlinks_copied_not_followed() {
        let src = tree(&[("a.txt", "x")]);
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("link")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        copy_source(src.path(), dst.path(), &ProjectDescriptor::default()).unwrap();
        assert_eq!(
            fs::read_link(dst.path().join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }
}
