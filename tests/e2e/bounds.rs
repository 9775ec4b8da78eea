//! Untrusted input is read within bounds (RELIABILITY.md B04): project files larger than
//! any real one are refused from their size, unread, as the project's error (exit 2) naming
//! the file and the cap.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::Kiln;

/// Makes `dir/name` a sparse file of 2 GiB (no disk used, nothing to read quickly).
fn huge(dir: &Path, name: &str) {
    std::fs::File::create(dir.join(name))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
}

/// The huge file, the small files beside it, and what the error must name.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// B04: a 2 GiB `package.json`, `go.mod`, `pom.xml`, `project.toml` or `.dockerignore`
/// fails the build at once with exit 2 and words naming the file; kiln never reads it
/// whole (it used to: 2.1 GB RSS for the `package.json`).
pub(crate) fn b04_huge_project_files_are_refused_unread() {
    let kiln = Kiln::new();
    let cache = kiln.ws.mkdir("cache");
    let cases: [Case; 5] = [
        ("package.json", &[], "package.json"),
        ("go.mod", &[], "go.mod"),
        ("pom.xml", &[], "pom.xml"),
        (
            "project.toml",
            &[("go.mod", "module example.com/x\n\ngo 1.22\n")],
            "project.toml",
        ),
        (
            ".dockerignore",
            &[
                ("go.mod", "module example.com/x\n\ngo 1.22\n"),
                ("main.go", "package main\n\nfunc main() {}\n"),
            ],
            ".dockerignore",
        ),
    ];
    for (file, others, named) in cases {
        let app = kiln
            .ws
            .mkdir(format!("apps/{}", file.trim_start_matches('.')));
        for (name, text) in others {
            std::fs::write(app.join(name), text).unwrap();
        }
        huge(&app, file);
        let started = Instant::now();
        let run = kiln.run(&[
            "build",
            "local/huge:1",
            "--path",
            app.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ]);
        let took = started.elapsed();
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        assert!(
            run.stderr.contains(named) && run.stderr.contains("2.0 GiB"),
            "{file}: the error names neither the file nor its size:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("hint:"), "{file}: {}", run.stderr);
        assert!(
            took < Duration::from_secs(20),
            "{file}: refusing took {took:?}"
        );
    }
}
