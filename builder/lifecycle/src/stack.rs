//! Stacks: which run image (golden base) each language's apps go on, from the data files
//! in `stacks/` (compiled in, so an installed kiln needs no repository checkout).

use serde::Deserialize;

/// The stacks kiln ships, as `(file name, TOML text)`.
const STACKS: &[(&str, &str)] = &[("stacks/go.toml", include_str!("../../../stacks/go.toml"))];

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
    fn go_runs_on_the_static_golden_base() {
        let s = stack_for("kiln/go").expect("a Go stack");
        assert_eq!(s.run_image, "kiln-base/static");
        assert!(stack_for("kiln/cobol").is_none());
    }
}
