//! The build's timestamp: every `created` and every file mtime in the image comes from it.

use std::path::Path;
use std::process::Command;

/// Used when neither `SOURCE_DATE_EPOCH` nor a git commit gives a time: 1980-01-01T00:00:01Z,
/// the earliest time a zip/jar can record, so Java layers built later agree with Go ones.
pub const DEFAULT_EPOCH: i64 = 315_532_801;

/// Where the build's timestamp came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochSource {
    /// `SOURCE_DATE_EPOCH`, as passed in by the caller.
    SourceDateEpoch,
    /// The commit time of the source's git `HEAD`.
    GitCommit,
    /// [`DEFAULT_EPOCH`].
    Default,
}

/// Git facts about the source, when it is a git checkout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// `HEAD` commit id.
    pub revision: Option<String>,
    /// `HEAD` commit time (unix seconds).
    pub commit_time: Option<i64>,
    /// The `origin` remote URL with any credentials removed.
    pub remote: Option<String>,
}

/// Reads `HEAD`'s id, time and the origin URL of the repository at `dir`, if it is one.
/// Runs `git` read-only; a missing `git` or a non-repository gives empty facts.
pub fn git_info(dir: &Path) -> GitInfo {
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    let Some(line) = run(&["log", "-1", "--format=%H %ct"]) else {
        return GitInfo::default();
    };
    let mut parts = line.split_whitespace();
    GitInfo {
        revision: parts.next().map(str::to_string),
        commit_time: parts.next().and_then(|t| t.parse().ok()),
        remote: run(&["config", "--get", "remote.origin.url"]).map(|u| strip_credentials(&u)),
    }
}

/// Returns the build epoch: `source_date_epoch`, else the git commit time, else [`DEFAULT_EPOCH`].
pub fn build_epoch(source_date_epoch: Option<i64>, git: &GitInfo) -> (i64, EpochSource) {
    match (source_date_epoch, git.commit_time) {
        (Some(t), _) => (t, EpochSource::SourceDateEpoch),
        (None, Some(t)) => (t, EpochSource::GitCommit),
        (None, None) => (DEFAULT_EPOCH, EpochSource::Default),
    }
}

/// Formats unix seconds as RFC 3339 UTC (`1980-01-01T00:00:01Z`).
pub fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Removes `user:password@` from a URL so a remote never leaks credentials into a label.
fn strip_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_precedence_and_format() {
        let git = GitInfo {
            commit_time: Some(1_700_000_000),
            ..Default::default()
        };
        assert_eq!(
            build_epoch(Some(5), &git),
            (5, EpochSource::SourceDateEpoch)
        );
        assert_eq!(
            build_epoch(None, &git),
            (1_700_000_000, EpochSource::GitCommit)
        );
        assert_eq!(
            build_epoch(None, &GitInfo::default()).1,
            EpochSource::Default
        );
        assert_eq!(rfc3339(DEFAULT_EPOCH), "1980-01-01T00:00:01Z");
    }

    #[test]
    fn strips_credentials_from_remotes() {
        assert_eq!(
            strip_credentials("https://u:tok@example.com/r.git"),
            "https://example.com/r.git"
        );
        assert_eq!(
            strip_credentials("git@example.com:r.git"),
            "git@example.com:r.git"
        );
    }

    #[test]
    fn reads_git_commit() {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(d.path())
                .args(args)
                .env("GIT_AUTHOR_DATE", "@1600000000 +0000")
                .env("GIT_COMMITTER_DATE", "@1600000000 +0000")
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(d.path().join("f"), "x").unwrap();
        git(&["add", "f"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "m",
        ]);
        let info = git_info(d.path());
        assert_eq!(info.commit_time, Some(1_600_000_000));
        assert_eq!(info.revision.unwrap().len(), 40);
        assert_eq!(
            git_info(tempfile::tempdir().unwrap().path()),
            GitInfo::default()
        );
    }
}
