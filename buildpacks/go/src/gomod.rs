//! A reader for the few `go.mod` / `go.work` directives detection needs.
//!
//! Both files share one grammar (<https://go.dev/ref/mod#go-mod-file-grammar>,
//! <https://go.dev/ref/mod#go-work-file>): one directive a line, `//` comments, and
//! `verb ( ... )` blocks. Reading it here keeps detection from running any program;
//! anything this reader does not understand is left for the `go` tool to reject in build.

/// The directives of a `go.mod` or `go.work` file that kiln uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoMod {
    /// The `module` path (`go.mod` only).
    pub module: Option<String>,
    /// The `go` directive: the minimum Go version, e.g. `1.22` or `1.22.3`.
    pub go: Option<String>,
    /// The `toolchain` directive, e.g. `go1.23.4`: a preference only, kiln builds with the host's Go.
    pub toolchain: Option<String>,
    /// The `use` directories (`go.work` only), in file order.
    pub uses: Vec<String>,
    /// The directories of `replace` directives whose target is a local path
    /// (`replace example.com/lib => ../lib`), as `(module, path)`, in file order.
    pub local_replaces: Vec<(String, String)>,
}

impl GoMod {
    /// Returns the directives read from the text of a `go.mod` or `go.work` file.
    /// Unknown directives and malformed lines are skipped; the first of a repeated directive wins.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        let mut block: Option<String> = None;
        for line in text.lines() {
            let words = tokens(strip_comment(line));
            let Some(first) = words.first() else { continue };
            let (verb, args) = match &block {
                Some(_) if first == ")" => {
                    block = None;
                    continue;
                }
                Some(verb) => (verb.clone(), &words[..]),
                None if words.len() == 2 && words[1] == "(" => {
                    block = Some(first.clone());
                    continue;
                }
                None => (first.clone(), &words[1..]),
            };
            out.apply(&verb, args);
        }
        out
    }

    fn apply(&mut self, verb: &str, args: &[String]) {
        let [arg, ..] = args else { return };
        match verb {
            "module" => {
                self.module.get_or_insert_with(|| arg.clone());
            }
            "go" => {
                self.go.get_or_insert_with(|| arg.clone());
            }
            "toolchain" => {
                self.toolchain.get_or_insert_with(|| arg.clone());
            }
            "use" => self.uses.push(arg.clone()),
            "replace" => {
                let target = args
                    .iter()
                    .position(|w| w == "=>")
                    .and_then(|i| args.get(i + 1));
                if let Some(path) = target.filter(|p| is_local_path(p)) {
                    self.local_replaces.push((arg.clone(), path.clone()));
                }
            }
            _ => {}
        }
    }
}

/// Returns whether a `replace` target is a directory rather than a module path: Go's rule,
/// a path starting with `./` or `../` (or `.\`, `..\`), or an absolute one.
fn is_local_path(target: &str) -> bool {
    target == "."
        || target == ".."
        || ["./", "../", ".\\", "..\\", "/"]
            .iter()
            .any(|prefix| target.starts_with(prefix))
}

/// Returns `line` without its `//` comment; a `//` inside a quoted string is not a comment.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev_slash = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '/' && prev_slash => return &line[..i - 1],
            None => {}
        }
        prev_slash = quote.is_none() && c == '/';
    }
    line
}

/// Splits a comment-free line into words; `"..."` and `` `...` `` strings are one word, unquoted.
fn tokens(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            words.push(c.to_string());
        } else if c == '"' || c == '`' {
            chars.next();
            let mut word = String::new();
            while let Some(c2) = chars.next() {
                match c2 {
                    '\\' if c == '"' => word.extend(chars.next()),
                    _ if c2 == c => break,
                    _ => word.push(c2),
                }
            }
            words.push(word);
        } else {
            let mut word = String::new();
            while let Some(&c2) = chars.peek() {
                if c2.is_whitespace() || c2 == '(' || c2 == ')' {
                    break;
                }
                word.push(c2);
                chars.next();
            }
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_module_go_and_toolchain() {
        let m = GoMod::parse(
            "// leading comment\nmodule example.com/goweb // the module\n\ngo 1.22.3\ntoolchain go1.23.4\n\n\
             require (\n\tgithub.com/google/uuid v1.6.0 // indirect\n\tgo v9.9.9\n)\n",
        );
        assert_eq!(m.module.as_deref(), Some("example.com/goweb"));
        assert_eq!(m.go.as_deref(), Some("1.22.3"));
        assert_eq!(m.toolchain.as_deref(), Some("go1.23.4"));
        assert!(m.uses.is_empty());
    }

    #[test]
    fn go_directive_is_optional_and_toolchain_absent() {
        let m = GoMod::parse("module x\n");
        assert_eq!(m.module.as_deref(), Some("x"));
        assert_eq!(m.go, None);
        assert_eq!(m.toolchain, None);
    }

    #[test]
    fn quoted_module_path_and_comment_markers_in_strings() {
        let m = GoMod::parse("module \"example.com/a//b\" // c\ngo 1.21rc2\n");
        assert_eq!(m.module.as_deref(), Some("example.com/a//b"));
        assert_eq!(m.go.as_deref(), Some("1.21rc2"));
        let raw = GoMod::parse("module `example.com/raw`\n");
        assert_eq!(raw.module.as_deref(), Some("example.com/raw"));
    }

    #[test]
    fn commented_out_directives_are_ignored() {
        let m = GoMod::parse("module m\n// go 1.99\n//toolchain go1.99.0\ngo 1.20\n");
        assert_eq!(m.go.as_deref(), Some("1.20"));
        assert_eq!(m.toolchain, None);
    }

    #[test]
    fn block_forms() {
        let m = GoMod::parse("module (\n\texample.com/block\n)\nreplace (\n\tgo => ./x\n)\n");
        assert_eq!(m.module.as_deref(), Some("example.com/block"));
        assert_eq!(m.go, None);
    }

    #[test]
    fn reads_go_work() {
        let m = GoMod::parse(
            "go 1.23\n\ntoolchain go1.23.1\n\nuse (\n\t./api // the api\n\t\"./with space\"\n)\nuse ./worker\n\
             replace example.com/x => ./x\n",
        );
        assert_eq!(m.module, None);
        assert_eq!(m.go.as_deref(), Some("1.23"));
        assert_eq!(m.toolchain.as_deref(), Some("go1.23.1"));
        assert_eq!(m.uses, ["./api", "./with space", "./worker"]);
        assert_eq!(
            m.local_replaces,
            [("example.com/x".to_owned(), "./x".to_owned())]
        );
    }

    #[test]
    fn local_replacements_are_directories_only() {
        let m = GoMod::parse(
            "module m\nreplace example.com/lib => ../../lib\nreplace (\n\texample.com/a v1.0.0 => ./a\n\t\
             example.com/b => example.com/fork v1.2.0\n\texample.com/c => /abs/c\n)\n",
        );
        let paths: Vec<&str> = m.local_replaces.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["../../lib", "./a", "/abs/c"]);
        assert_eq!(m.local_replaces[1].0, "example.com/a");
    }

    #[test]
    fn crlf_and_blank_lines() {
        let m = GoMod::parse("module m\r\n\r\ngo 1.22\r\n");
        assert_eq!(m.module.as_deref(), Some("m"));
        assert_eq!(m.go.as_deref(), Some("1.22"));
    }
}
