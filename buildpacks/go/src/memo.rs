//! Answers the go tool gave for an unchanged source, so a rebuild of the same source does not
//! ask again: `go list` of the packages, and each binary's link key (`go list -deps
//! -export`, which alone costs what a cached `go build` costs).
//!
//! An answer is kept under a key made of the source's stamp (every file's path and `stat`,
//! from the lifecycle's scratch copy), the scratch copy's path, the `go` binary (path and
//! `stat`) and the tool's whole environment: all a `go list` reads that could change.
//! Module downloads are immutable (`go.sum` pins them), so they need no part in the key.
//! One file per question, holding the key it was asked under and the answer: a changed source
//! replaces it, so the memo never grows beyond the questions of the last build. It lives in
//! `.memo`, which no cache image carries: its keys hold this machine's inodes.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::toolchain::Go;

/// The go tool's answers for one source stamp.
pub(crate) struct Memo {
    dir: PathBuf,
    key: String,
}

impl Memo {
    /// Returns the memo for the source `stamp` built with `go`, kept under the buildpack's
    /// cache directory; `None` when the `go` binary cannot be looked at.
    pub(crate) fn new(cache_dir: &Path, go: &Go<'_>, stamp: &str) -> Option<Self> {
        let exe = kiln_lifecycle::FileStamp::read(go.exe())?;
        let mut h = Sha256::new();
        h.update(format!("kiln go memo v1\0{stamp}\0"));
        h.update(go.app_dir().as_os_str().as_encoded_bytes());
        h.update(go.exe().as_os_str().as_encoded_bytes());
        h.update(format!("\0{:?}", exe.0));
        for (k, v) in go.env() {
            h.update(format!("\0env {k}={v}"));
        }
        // One directory per target: the platforms of one build do not evict each other's.
        let target = |k: &str| go.env().get(k).map_or("host", String::as_str).to_owned();
        Some(Self {
            dir: cache_dir
                .join(".memo")
                .join(format!("{}-{}", target("GOOS"), target("GOARCH"))),
            key: hex::encode(h.finalize()),
        })
    }

    /// Returns the answer to `question` kept for this memo's key, if any.
    pub(crate) fn get(&self, question: &str) -> Option<String> {
        let text = fs::read_to_string(self.path(question)).ok()?;
        let (key, answer) = text.split_once('\n')?;
        (key == self.key).then(|| answer.to_owned())
    }

    /// Keeps `answer` to `question`. Best effort: failing costs only asking again next time.
    pub(crate) fn put(&self, question: &str, answer: &str) {
        let path = self.path(question);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let kept = fs::create_dir_all(&self.dir).is_ok()
            && fs::write(&tmp, format!("{}\n{answer}", self.key)).is_ok()
            && fs::rename(&tmp, &path).is_ok();
        if !kept {
            let _ = fs::remove_file(&tmp);
        }
    }

    fn path(&self, question: &str) -> PathBuf {
        self.dir
            .join(hex::encode(&Sha256::digest(question.as_bytes())[..12]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_given_back_only_under_the_key_it_was_kept_with() {
        let d = tempfile::tempdir().unwrap();
        let memo = |key: &str| Memo {
            dir: d.path().join("memo"),
            key: key.to_owned(),
        };
        assert_eq!(memo("a").get("q"), None);
        memo("a").put("q", "answer\nin two lines");
        memo("a").put("other", "x");
        assert_eq!(memo("a").get("q").as_deref(), Some("answer\nin two lines"));
        assert_eq!(memo("b").get("q"), None, "another source stamp");
        memo("b").put("q", "new");
        assert_eq!(memo("a").get("q"), None, "replaced");
        assert_eq!(memo("b").get("q").as_deref(), Some("new"));
        assert_eq!(fs::read_dir(d.path().join("memo")).unwrap().count(), 2);
    }
}
