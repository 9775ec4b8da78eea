//! The podman command that runs an image of an OCI layout, as printed after a local build.
//!
//! podman names an image it reads from a layout after the layout's path
//! (`localhost/<path>`), and refuses a path that is no image name: any component that starts
//! with a dot (`~/.cache`), holds capitals, or is otherwise no reference component. So the
//! command names the layout by the longest tail of its path that podman accepts, from the
//! directory above it.

use std::path::{Component, Path};

/// Returns a shell command that runs image `name` of the layout `dir` with podman:
/// `podman run --rm oci:DIR:NAME` when podman accepts `DIR`, else
/// `(cd PARENT && podman run --rm oci:TAIL:NAME)`.
pub fn run_command(dir: &Path, name: &str) -> String {
    let parts: Vec<String> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let accepted = parts
        .iter()
        .rev()
        .take_while(|p| is_name_component(p))
        .count();
    let run = |path: &str| format!("podman run --rm oci:{path}:{name}");
    if accepted == parts.len() && dir.is_absolute() && accepted > 0 {
        return run(&dir.display().to_string());
    }
    // At least the last component (kiln's store is `<cache>/oci`); all of it when none is
    // accepted, which podman then refuses with its own message.
    let keep = accepted.max(1).min(parts.len());
    let tail = parts[parts.len() - keep..].join("/");
    let parent = dir
        .ancestors()
        .nth(keep)
        .map_or_else(|| ".".to_owned(), |p| p.display().to_string());
    format!("(cd {} && {})", shell_quoted(&parent), run(&tail))
}

/// Returns whether `part` is a path component of an image name:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_name_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for b in bytes {
        if alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else {
            separator.push(*b as char);
        }
    }
    true
}

/// Returns `text` as one shell word: as is when it is plain, else single-quoted.
fn shell_quoted(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_path_is_named_whole() {
        assert_eq!(
            run_command(Path::new("/srv/kiln-cache/oci"), "team/app:1"),
            "podman run --rm oci:/srv/kiln-cache/oci:team/app:1"
        );
    }

    #[test]
    fn a_dot_directory_is_left_to_cd() {
        assert_eq!(
            run_command(Path::new("/home/dev/.cache/kiln/oci"), "app:1"),
            "(cd /home/dev/.cache && podman run --rm oci:kiln/oci:app:1)"
        );
        assert_eq!(
            run_command(Path::new("/home/Dev Team/cache/oci"), "app:1"),
            "(cd '/home/Dev Team' && podman run --rm oci:cache/oci:app:1)"
        );
        assert_eq!(
            run_command(Path::new("/work/My_Cache/oci"), "app:1"),
            "(cd /work/My_Cache && podman run --rm oci:oci:app:1)"
        );
    }

    #[test]
    fn name_components_follow_the_reference_grammar() {
        for ok in ["oci", "kiln", "a.b", "a__b", "a---b", "a_b", "x1"] {
            assert!(is_name_component(ok), "{ok}");
        }
        for bad in [".cache", "Kiln", "a..b", "a_-b", "-a", "a-", "a b", "a___b"] {
            assert!(!is_name_component(bad), "{bad}");
        }
    }
}
