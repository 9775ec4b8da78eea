//! The layer index of a layered Spring Boot jar, `BOOT-INF/layers.idx`
//! (<https://docs.spring.io/spring-boot/specification/executable-jar/>): a YAML-like list
//! of layers, each with the entries (file names, or directory prefixes ending in `/`) it holds.

/// The layers of a layered Spring Boot jar, in order, each with its entries: file names, or
/// directory prefixes ending in `/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayersIdx {
    /// `(layer name, entries)` in index order.
    pub layers: Vec<(String, Vec<String>)>,
}

impl LayersIdx {
    /// Returns the index in `text`, or the 1-based line number and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut layers: Vec<(String, Vec<String>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = quoted(line, "- \"", "\":") {
                if !is_layer_name(name) {
                    return Err((
                        n + 1,
                        format!("`{}` is not a layer name", name.escape_debug()),
                    ));
                }
                if layers.iter().any(|(l, _)| l == name) {
                    return Err((n + 1, format!("layer `{name}` is listed twice")));
                }
                layers.push((name.to_owned(), Vec::new()));
            } else if let Some(entry) = quoted(line, "  - \"", "\"") {
                let Some((_, entries)) = layers.last_mut() else {
                    return Err((n + 1, "entry before any layer".to_owned()));
                };
                entries.push(entry.to_owned());
            } else {
                return Err((n + 1, format!("unexpected `{}`", line.escape_debug())));
            }
        }
        Ok(Self { layers })
    }

    /// Returns the first layer listing `entry` by name or by a directory prefix.
    pub fn layer_for(&self, entry: &str) -> Option<&str> {
        self.layers.iter().find_map(|(name, entries)| {
            let hit = entries
                .iter()
                .any(|e| e == entry || (e.ends_with('/') && entry.starts_with(e.as_str())));
            hit.then_some(name.as_str())
        })
    }
}

/// Returns the text between `open` and `close` when `line` is exactly that.
fn quoted<'a>(line: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let inner = line.strip_prefix(open)?.strip_suffix(close)?;
    (!inner.contains('"')).then_some(inner)
}

/// Returns whether `name` may name a layer directory: `[A-Za-z0-9._-]`, not starting with `.`.
pub(crate) fn is_layer_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_idx_parses_in_order_and_matches_prefixes() {
        let idx = LayersIdx::parse(
            "- \"dependencies\":\n  - \"BOOT-INF/lib/\"\n- \"snapshot-dependencies\":\n\
             - \"application\":\n  - \"BOOT-INF/classes/\"\n  - \"BOOT-INF/layers.idx\"\n",
        )
        .unwrap();
        assert_eq!(idx.layers.len(), 3);
        assert!(idx.layers[1].1.is_empty());
        assert_eq!(idx.layer_for("BOOT-INF/lib/a.jar"), Some("dependencies"));
        assert_eq!(
            idx.layer_for("BOOT-INF/classes/A.class"),
            Some("application")
        );
        assert_eq!(idx.layer_for("BOOT-INF/layers.idx"), Some("application"));
        // Exact names do not match as prefixes.
        assert_eq!(idx.layer_for("BOOT-INF/layers.idx.bak"), None);
        assert_eq!(idx.layer_for("org/x.class"), None);
    }

    #[test]
    fn layers_idx_refuses_malformed_lines_and_names() {
        assert_eq!(LayersIdx::parse("  - \"a\"\n").unwrap_err().0, 1);
        assert_eq!(LayersIdx::parse("- \"ok\":\ngarbage\n").unwrap_err().0, 2);
        assert!(LayersIdx::parse("- \"../up\":\n").is_err());
        assert!(LayersIdx::parse("- \"a/b\":\n").is_err());
        assert!(LayersIdx::parse("- \"a\":\n- \"a\":\n").is_err());
    }
}
