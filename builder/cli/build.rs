//! Records the commit kiln is built from, for `kiln --version`: git's answer in the source
//! tree (the commit and its date, never the build's own time, so builds stay
//! reproducible), else `unknown commit` (a source archive without `.git`).

use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let detail = match (
        git(&["rev-parse", "--short=12", "HEAD"]),
        git(&["log", "-1", "--format=%cs"]),
    ) {
        (Some(commit), Some(date)) => format!("{commit} {date}"),
        (Some(commit), None) => commit,
        _ => "unknown commit".to_owned(),
    };
    println!("cargo:rustc-env=KILN_BUILD_DETAIL={detail}");
    // Built again when HEAD moves (a commit or a checkout appends to HEAD's log).
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/logs/HEAD");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
