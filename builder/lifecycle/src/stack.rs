//! Stacks: which run image (golden base) each language's apps go on, from the data files
//! in `stacks/` (compiled in, so an installed kiln needs no repository checkout).

use serde::Deserialize;

/// The stacks kiln ships, as `(file name, TOML text)`.
const STACKS: &[(&str, &str)] = &[
    ("stacks/go.toml", include_str!("../../../stacks/go.toml")),
    (
        "stacks/java.toml",
        include_str!("../../../stacks/java.toml"),
    ),
    (
        "stacks/node.toml",
        include_str!("../../../stacks/node.toml"),
    ),
];

/// One stack.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stack {
    /// The buildpack id this stack serves (`kiln/go`).
    pub buildpack: String,
    /// What builds the app, for people.
    pub build_toolchain: String,
    /// The default run image: a registry reference, or a name in kiln's local image store.
    pub run_image: String,
    /// Whether kiln's generated minimal base may stand in when `run_image` is not available
    /// (only for apps that need nothing from a distribution: static binaries).
    #[serde(default)]
    pub static_fallback: bool,
}

/// Returns the stack of `buildpack`, if kiln ships one.
pub fn stack_for(buildpack: &str) -> Option<Stack> {
    STACKS.iter().find_map(|(file, text)| {
        let stack: Stack = toml::from_str(text)
            .unwrap_or_else(|e| panic!("`{file}` compiled into kiln is invalid: {e}"));
        (stack.buildpack == buildpack).then_some(stack)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_runs_on_its_golden_base() {
        let run_image = |bp| stack_for(bp).expect("a stack").run_image;
        assert_eq!(run_image("kiln/go"), "kiln-base/static");
        assert_eq!(run_image("kiln/java"), "kiln-base/java17");
        assert_eq!(run_image("kiln/node"), "kiln-base/node");
        assert!(stack_for("kiln/go").unwrap().static_fallback);
        assert!(!stack_for("kiln/java").unwrap().static_fallback);
        assert!(stack_for("kiln/cobol").is_none());
    }

    #[test]
    fn every_stack_file_is_compiled_in_and_names_a_curated_base() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../stacks");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = format!("stacks/{}", path.file_name().unwrap().to_str().unwrap());
            assert!(
                STACKS.iter().any(|(f, _)| *f == file),
                "`{file}` is not in STACKS"
            );
        }
        for (file, text) in STACKS {
            let stack: Stack = toml::from_str(text).unwrap();
            let base = stack.run_image.strip_prefix("kiln-base/").unwrap();
            let def = format!("{dir}/../golden-base/{base}.toml");
            assert!(std::path::Path::new(&def).exists(), "{file}: no `{def}`");
        }
    }
}
