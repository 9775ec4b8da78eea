//! What an app kiln does not build looks like: the files that name another language or a
//! Dockerfile, so "nothing detected" can say what kiln saw instead of only what it wanted.

use std::path::Path;

/// `(file name or extension, what it means)`; an entry starting with `.` matches a file
/// extension.
const MARKERS: &[(&str, &str)] = &[
    ("requirements.txt", "a Python app"),
    ("pyproject.toml", "a Python app"),
    ("setup.py", "a Python app"),
    ("Pipfile", "a Python app"),
    ("Gemfile", "a Ruby app"),
    (".csproj", "a .NET app"),
    (".fsproj", "a .NET app"),
    (".sln", "a .NET app"),
    ("Cargo.toml", "a Rust app"),
    ("composer.json", "a PHP app"),
    ("mix.exs", "an Elixir app"),
    ("Dockerfile", "a Dockerfile build"),
    ("Containerfile", "a Dockerfile build"),
];

/// Returns `(file, what it means)` for each marker of a language or build kiln does not
/// support in `dir` (its top level only, sorted by file name).
pub fn unsupported_markers(dir: &Path) -> Vec<(String, &'static str)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, &'static str)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let what = MARKERS.iter().find_map(|(marker, what)| {
                let hit = match marker.strip_prefix('.') {
                    Some(ext) => Path::new(&name).extension().is_some_and(|e| e == ext),
                    None => name == *marker,
                };
                hit.then_some(*what)
            })?;
            Some((name, what))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_languages_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["requirements.txt", "Api.csproj", "Dockerfile", "README.md"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(
            unsupported_markers(dir.path()),
            [
                ("Api.csproj".to_owned(), "a .NET app"),
                ("Dockerfile".to_owned(), "a Dockerfile build"),
                ("requirements.txt".to_owned(), "a Python app"),
            ]
        );
    }
}
