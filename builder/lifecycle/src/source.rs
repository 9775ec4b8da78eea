//! The scratch copy of the source: what the toolchain sees and what can reach a layer.
//!
//! Files ignored by `.gitignore` (at any depth, plus `.git/info/exclude`), `.dockerignore`
//! (at the root) or the project descriptor never enter the copy, so nothing ignored — say a
//! `secrets.env` — can reach the toolchain or any layer. `.git` itself is never copied.

use std::fs;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

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
    /// A file that says what to copy (`.dockerignore`) could not be read (too large).
    #[error("reading `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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

/// What the copy holds, and what making it took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files in the copy.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files left as an earlier sync copied them ([`crate::sync_source`]).
    pub unchanged: u64,
    /// Bytes copied this time.
    pub copied_bytes: u64,
    /// Entries removed from the copy (a directory counts once).
    pub removed: u64,
    /// Files the last sync copied that the source no longer has.
    pub vanished: u64,
    /// The files copied this time, relative to the copy's root.
    pub copied: Vec<PathBuf>,
    /// How long making the copy took.
    pub took: std::time::Duration,
    /// A digest of every source file's path and `stat` ([`crate::BuildContext::source_stamp`]).
    pub stamp: Option<String>,
}

/// Copies `src` into the empty directory `dst`, leaving out ignored files.
/// Symlinks are copied as symlinks, never followed.
pub fn copy_source(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
) -> Result<CopyStats, SourceError> {
    copy_source_except(src, dst, project, &[])
}

/// Like [`copy_source`], never copying the directories `keep_out` (absolute): kiln's own
/// cache dir and the copy itself, when `src` holds them (a wide build context).
pub fn copy_source_except(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
    keep_out: &[PathBuf],
) -> Result<CopyStats, SourceError> {
    crate::stage::sync_source(src, dst, project, keep_out, &[], None)
}

/// Returns the walk over what enters the copy of `src` at `dst`: sorted by name, ignored
/// files and `keep_out` left out, symlinks not followed.
pub(crate) fn walker(
    src: &Path,
    dst: &Path,
    project: &ProjectDescriptor,
    keep_out: &[PathBuf],
) -> Result<ignore::Walk, SourceError> {
    let mut filter = Filter::new(src, project)?;
    filter.keep_out = keep_out
        .iter()
        .chain([&dst.to_path_buf()])
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .filter(|p| p.starts_with(src))
        .collect();
    let filter = std::sync::Arc::new(filter);
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
        .filter_entry(move |e| filter.keeps(e));
    Ok(walk.build())
}

pub(crate) fn ensure_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p),
        None => Ok(()),
    }
}

/// Decides which walked entries enter the copy, on top of the walker's `.gitignore` rules.
///
/// Not an `ignore` override set: overrides take precedence over `.gitignore` (an include
/// of `*` would bring a git-ignored `secrets.env` back), and a single whitelist glob in an
/// override set ignores every file it does not match (so a `!keep` line in `.dockerignore`
/// would drop the rest of the tree).
struct Filter {
    root: PathBuf,
    /// `[io.buildpacks] include`: when set, only files matching it (or under a matching
    /// directory) are kept.
    include: Option<Gitignore>,
    /// `[io.buildpacks] exclude` and `.dockerignore`, in gitignore form: last match wins.
    exclude: Gitignore,
    /// Directories under the root that are never copied (absolute).
    keep_out: Vec<PathBuf>,
}

impl Filter {
    fn new(src: &Path, project: &ProjectDescriptor) -> Result<Self, SourceError> {
        let build = |patterns: &[(String, &'static str)]| {
            let mut b = GitignoreBuilder::new(src);
            for (p, origin) in patterns {
                b.add_line(None, p).map_err(|e| SourceError::Pattern {
                    pattern: p.clone(),
                    origin,
                    message: e.to_string(),
                })?;
            }
            b.build().map_err(|e| SourceError::Pattern {
                pattern: String::new(),
                origin: "project.toml",
                message: e.to_string(),
            })
        };
        let include = if project.include.is_empty() {
            None
        } else {
            let patterns: Vec<_> = project
                .include
                .iter()
                .map(|p| (p.clone(), "project.toml include"))
                .collect();
            Some(build(&patterns)?)
        };
        let mut excludes: Vec<(String, &'static str)> = project
            .exclude
            .iter()
            .map(|p| (p.clone(), "project.toml exclude"))
            .collect();
        // A `.dockerignore` too large to read is an error, not "no exclusions": what it
        // keeps out of the image may be secrets.
        let dockerignore = src.join(".dockerignore");
        match crate::read_bounded_string(&dockerignore, crate::MANIFEST_LIMIT) {
            Ok(text) => excludes.extend(
                dockerignore_patterns(&text)
                    .into_iter()
                    .map(|p| (p, ".dockerignore")),
            ),
            Err(source) if source.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(SourceError::Read {
                    path: dockerignore,
                    source,
                });
            }
            Err(_) => {}
        }
        Ok(Self {
            root: src.to_path_buf(),
            include,
            exclude: build(&excludes)?,
            keep_out: Vec::new(),
        })
    }

    /// Returns whether the walker should keep (and, for a directory, descend into) `e`.
    fn keeps(&self, e: &ignore::DirEntry) -> bool {
        if e.file_name() == ".git" {
            return false;
        }
        let Ok(rel) = e.path().strip_prefix(&self.root) else {
            return true;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        if is_dir && self.keep_out.iter().any(|p| p == e.path()) {
            return false;
        }
        // Excluded directories are pruned here, so matching the path itself covers the
        // files below them.
        if self.exclude.matched(rel, is_dir).is_ignore() {
            return false;
        }
        match &self.include {
            // Directories are always walked: an include like `cmd/app/*.go` needs `cmd`.
            Some(include) if !is_dir => include.matched_path_or_any_parents(rel, false).is_ignore(),
            _ => true,
        }
    }
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
    fn dockerignore_doublestar_and_nested_gitignore() {
        let src = tree(&[
            ("main.go", "x"),
            (
                ".dockerignore",
                "**/*.log\n**/testdata\n/build/\n!**/keep.log\n",
            ),
            ("app.log", "x"),
            ("keep.log", "x"),
            ("a/b/deep.log", "x"),
            ("a/b/keep.log", "x"),
            ("a/b/code.go", "x"),
            ("testdata/fixture.txt", "x"),
            ("pkg/testdata/fixture.txt", "x"),
            ("pkg/lib.go", "x"),
            ("build/out.bin", "x"),
            ("pkg/build/gen.go", "x"),
            ("pkg/.gitignore", "*.pem\n/local/\n"),
            ("pkg/key.pem", "KILN_CANARY"),
            ("pkg/sub/key.pem", "KILN_CANARY"),
            ("pkg/local/x.go", "x"),
            ("local/y.go", "x"),
            ("root.pem", "x"),
        ]);
        assert_eq!(
            copied(src.path(), &ProjectDescriptor::default()),
            vec![
                ".dockerignore",
                "a/b/code.go",
                "a/b/keep.log",
                "keep.log",
                "local/y.go",
                "main.go",
                "pkg/.gitignore",
                "pkg/build/gen.go",
                "pkg/lib.go",
                "root.pem",
            ]
        );
    }

    #[test]
    fn include_list_never_brings_back_ignored_files() {
        let src = tree(&[
            (".gitignore", "secrets.env\n"),
            ("secrets.env", "KILN_CANARY"),
            (".dockerignore", "cmd/tool/\n"),
            ("main.go", "x"),
            ("cmd/app/main.go", "x"),
            ("cmd/tool/main.go", "x"),
            ("README.md", "x"),
        ]);
        let project = ProjectDescriptor {
            include: vec!["*".into()],
            ..Default::default()
        };
        assert_eq!(
            copied(src.path(), &project),
            vec![
                ".dockerignore",
                ".gitignore",
                "README.md",
                "cmd/app/main.go",
                "main.go"
            ]
        );
        let project = ProjectDescriptor {
            include: vec!["cmd/".into(), "main.go".into()],
            ..Default::default()
        };
        assert_eq!(
            copied(src.path(), &project),
            vec!["cmd/app/main.go", "main.go"]
        );
    }

    #[test]
    fn bad_pattern_names_its_origin() {
        let src = tree(&[("main.go", "x"), (".dockerignore", "a{b\n")]);
        let dst = tempfile::tempdir().unwrap();
        let err = copy_source(src.path(), dst.path(), &ProjectDescriptor::default()).unwrap_err();
        assert!(
            matches!(&err, SourceError::Pattern { origin: ".dockerignore", pattern, .. } if pattern == "/a{b"),
            "{err}"
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

    /// W01: links out of the source (to a credentials file, to `/etc`, to a host
    /// directory), loops and self links are copied as links with their targets verbatim;
    /// nothing they point to is read into the scratch copy, and the walk ends.
    #[test]
    fn w01_symlinks_are_copied_verbatim_and_never_followed() {
        const CANARY: &[u8] = b"KILN-CANARY-W01-scratch";
        let host = tempfile::tempdir().unwrap();
        fs::create_dir_all(host.path().join(".docker")).unwrap();
        fs::write(host.path().join(".docker/config.json"), CANARY).unwrap();
        fs::create_dir_all(host.path().join("etc")).unwrap();
        fs::write(host.path().join("etc/shadow"), CANARY).unwrap();
        let src = tree(&[("main.go", "package main")]);
        let creds = host.path().join(".docker/config.json");
        let links: Vec<(&str, String)> = vec![
            ("creds", creds.display().to_string()),
            ("creds-tilde", "~/.docker/config.json".into()),
            ("etc", "/etc".into()),
            ("hostetc", host.path().join("etc").display().to_string()),
            ("loop", "loop".into()),
            ("a", "b".into()),
            ("b", "a".into()),
            ("sub/self", ".".into()),
            ("sub/up", "../../../..".into()),
        ];
        for (path, target) in &links {
            let p = src.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        }
        let dst = tempfile::tempdir().unwrap();
        let stats = copy_source(src.path(), dst.path(), &ProjectDescriptor::default()).unwrap();
        assert_eq!(stats.files, 1, "only main.go is a file");
        for (path, target) in &links {
            let p = dst.path().join(path);
            assert!(
                p.symlink_metadata().unwrap().file_type().is_symlink(),
                "{path}"
            );
            assert_eq!(fs::read_link(&p).unwrap(), Path::new(target), "{path}");
        }
        for e in walkdir::WalkDir::new(dst.path()).follow_links(false) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let bytes = fs::read(e.path()).unwrap();
                assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY), "{e:?}");
            }
        }
    }

    /// A build context that holds kiln's cache dir and the copy itself copies neither.
    #[test]
    fn the_cache_dir_and_the_copy_inside_the_context_stay_out() {
        let src = tree(&[
            ("app/main.go", "package main"),
            ("cache/oci/index.json", "{}"),
            ("cache/work/x/old", "old"),
        ]);
        let root = src.path().canonicalize().unwrap();
        let dst = root.join("cache/work/x/app");
        fs::create_dir_all(&dst).unwrap();
        let stats = copy_source_except(
            &root,
            &dst,
            &ProjectDescriptor::default(),
            &[root.join("cache")],
        )
        .unwrap();
        assert_eq!(stats.files, 1);
        assert!(dst.join("app/main.go").is_file());
        assert!(!dst.join("cache").exists());
    }

    /// W05: a file hardlinked to an ignored one is copied as a plain file with its bytes;
    /// the ignored peer stays out.
    #[test]
    fn w05_a_hardlink_whose_peer_is_ignored_is_copied_as_a_plain_file() {
        let src = tree(&[
            (".gitignore", "secrets.env\n"),
            ("secrets.env", "KILN_CANARY"),
        ]);
        fs::hard_link(src.path().join("secrets.env"), src.path().join("app.env")).unwrap();
        fs::write(src.path().join("pair-a"), b"pair").unwrap();
        fs::hard_link(src.path().join("pair-a"), src.path().join("pair-b")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        copy_source(src.path(), dst.path(), &ProjectDescriptor::default()).unwrap();
        assert!(!dst.path().join("secrets.env").exists());
        let app = dst.path().join("app.env");
        assert!(app.symlink_metadata().unwrap().is_file());
        assert_eq!(fs::read(&app).unwrap(), b"KILN_CANARY");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            app.metadata().unwrap().nlink(),
            1,
            "not linked to anything ignored"
        );
        assert_eq!(fs::read(dst.path().join("pair-b")).unwrap(), b"pair");
    }
}
