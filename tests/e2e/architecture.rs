//! DESIGN.md's rules that the sources themselves can be checked for: the dependency
//! direction of §2, enforced from `cargo metadata` (`oci` ← `layer`, `model`, `registry` ←
//! `image`; `model`, `layer` ← `lifecycle`; buildpacks depend on the lifecycle's Buildpack
//! API only, and nothing of theirs reaches the network stack; nothing depends on `cli`),
//! libraries that neither print nor read the environment, and error messages that do not
//! repeat their source (§4).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Kiln crates each crate may depend on (normal dependencies).
fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut m = BTreeMap::new();
    let mut put = |k: &'static str, v: &[&'static str]| {
        m.insert(k, v.iter().copied().collect::<BTreeSet<_>>());
    };
    put("kiln-oci", &[]);
    put("kiln-layer", &["kiln-oci"]);
    put("kiln-model", &["kiln-oci"]);
    put("kiln-registry", &["kiln-oci"]);
    put(
        "kiln-image",
        &["kiln-oci", "kiln-layer", "kiln-model", "kiln-registry"],
    );
    put("kiln-lifecycle", &["kiln-oci", "kiln-layer", "kiln-model"]);
    put(
        "kiln-debian",
        &["kiln-oci", "kiln-layer", "kiln-model", "kiln-image"],
    );
    put("kiln-attest", &["kiln-oci"]);
    put(
        "kiln-pipeline",
        &[
            "kiln-oci",
            "kiln-layer",
            "kiln-model",
            "kiln-registry",
            "kiln-image",
            "kiln-lifecycle",
            "kiln-debian",
            "kiln-attest",
            "kiln-buildpack-go",
            "kiln-buildpack-java",
            "kiln-buildpack-node",
        ],
    );
    put("kiln-buildpack-go", &["kiln-lifecycle"]);
    put("kiln-buildpack-java", &["kiln-lifecycle"]);
    put("kiln-buildpack-node", &["kiln-lifecycle"]);
    put(
        "kiln-cli",
        &[
            "kiln-oci",
            "kiln-layer",
            "kiln-model",
            "kiln-registry",
            "kiln-image",
            "kiln-lifecycle",
            "kiln-debian",
            "kiln-attest",
            "kiln-pipeline",
            "kiln-buildpack-go",
            "kiln-buildpack-java",
            "kiln-buildpack-node",
        ],
    );
    m
}

/// Returns `cargo metadata --format-version 1 --offline EXTRA` of the workspace.
fn cargo_metadata(extra: &[&str]) -> serde_json::Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(extra)
        .current_dir(kiln_e2e::workspace_root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn crates_depend_only_in_the_designed_direction() {
    let meta = cargo_metadata(&["--no-deps"]);
    let allowed = allowed();
    let mut seen = BTreeSet::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        if name == "kiln-e2e" {
            continue;
        }
        seen.insert(name.to_string());
        let rules = allowed.get(name).unwrap_or_else(|| {
            panic!("crate `{name}` has no place in the dependency rules; add it")
        });
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let normal = dep["kind"].is_null();
            if dep_name.starts_with("kiln-") && normal {
                assert!(
                    rules.contains(dep_name),
                    "`{name}` depends on `{dep_name}`, against DESIGN.md's dependency direction"
                );
            }
            assert_ne!(
                dep_name, "kiln-cli",
                "nothing may depend on `kiln-cli` (`{name}` does)"
            );
        }
    }
    assert_eq!(seen.len(), allowed.len(), "workspace crates: {seen:?}");
}

/// Crates a buildpack may never reach: the network stack and its async runtime.
const NETWORK_CRATES: &[&str] = &["reqwest", "hyper", "hyper-util", "tokio", "rustls", "h2"];

/// The buildpack API is network-free: no buildpack crate reaches reqwest, hyper, tokio or
/// rustls, through its normal dependencies nor its dev-dependencies, however indirectly.
pub(crate) fn buildpacks_reach_no_network_crate() {
    let meta = cargo_metadata(&[]);
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    // Edges per node: (dependency id, whether any of its kinds is normal or dev).
    let mut edges: BTreeMap<&str, Vec<(&str, bool, bool)>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"].as_array().unwrap();
        let list = deps
            .iter()
            .map(|d| {
                let kinds = d["dep_kinds"].as_array().unwrap();
                let kind = |k: &str| {
                    kinds.iter().any(|x| match x["kind"].as_str() {
                        None => k == "normal",
                        Some(s) => s == k,
                    })
                };
                (d["pkg"].as_str().unwrap(), kind("normal"), kind("dev"))
            })
            .collect();
        edges.insert(node["id"].as_str().unwrap(), list);
    }
    for buildpack in [
        "kiln-buildpack-go",
        "kiln-buildpack-java",
        "kiln-buildpack-node",
    ] {
        let root = name_of
            .iter()
            .find(|(_, n)| **n == buildpack)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("no package `{buildpack}`"));
        // The buildpack's own normal and dev dependencies, then theirs (normal) transitively.
        let mut path: BTreeMap<&str, &str> = BTreeMap::new();
        let mut todo: Vec<&str> = edges[root]
            .iter()
            .filter(|(_, normal, dev)| *normal || *dev)
            .map(|(id, _, _)| *id)
            .collect();
        for id in &todo {
            path.insert(id, buildpack);
        }
        while let Some(id) = todo.pop() {
            let name = name_of[id];
            assert!(
                !NETWORK_CRATES.contains(&name),
                "`{buildpack}` reaches `{name}` (through `{}`): the buildpack API must stay network-free",
                path[id]
            );
            for (dep, normal, _) in &edges[id] {
                if *normal && !path.contains_key(dep) {
                    path.insert(dep, name);
                    todo.push(dep);
                }
            }
        }
    }
}

/// The library crates (not the CLI).
const BUILDER_LIBRARIES: &[&str] = &[
    "builder/oci",
    "builder/layer",
    "builder/model",
    "builder/registry",
    "builder/image",
    "builder/lifecycle",
    "builder/debian",
    "builder/attest",
    "builder/pipeline",
];

/// Returns `path:line: text` of each line of code (not a comment, not a unit test) in the
/// crates `dirs` for which `offends` holds, skipping the files `exempt`.
fn offending_lines(
    dirs: &[&str],
    exempt: &[std::path::PathBuf],
    offends: impl Fn(&str) -> bool,
) -> Vec<String> {
    let root = kiln_e2e::workspace_root();
    let mut offenders = Vec::new();
    for dir in dirs {
        for path in library_files(&root.join(dir)) {
            if exempt.contains(&path) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests at the bottom of a file may use anything.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if offends(line) && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    offenders
}

/// Libraries never print and never read environment variables: the CLI resolves settings
/// and renders output (DESIGN.md §2).
pub(crate) fn libraries_neither_print_nor_read_the_environment() {
    let forbidden = [
        "env::var",
        "env::vars",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "dbg!(",
    ];
    let buildpacks = ["buildpacks/go", "buildpacks/java", "buildpacks/node"];
    let dirs: Vec<&str> = BUILDER_LIBRARIES
        .iter()
        .copied()
        .chain(buildpacks)
        .collect();
    let offenders = offending_lines(&dirs, &[], |line| {
        forbidden.iter().any(|f| line.contains(f))
    });
    assert!(
        offenders.is_empty(),
        "library code that prints or reads env:\n{}",
        offenders.join("\n")
    );
}

/// Library errors and hints name no flag and no `kiln` command: a library does not know
/// which command line (if any) runs it, so the CLI maps its errors to hints in its own
/// terms (`builder/cli/src/errors.rs`). Buildpacks are exempt: their usage hints speak to
/// the app developer about kiln's settings, as a buildpack's do.
pub(crate) fn library_errors_name_no_command_line() {
    // The lockfile's header tells a human editing it which commands write it.
    let exempt = [kiln_e2e::workspace_root().join("builder/debian/src/lockfile.rs")];
    let offenders = offending_lines(BUILDER_LIBRARIES, &exempt, |line| {
        let names_a_flag = line
            .match_indices("`--")
            .any(|(i, _)| line[i + 3..].starts_with(|c: char| c.is_ascii_lowercase()));
        names_a_flag || line.contains("`kiln ")
    });
    assert!(
        offenders.is_empty(),
        "library messages that name the command line (hint from the CLI instead):\n{}",
        offenders.join("\n")
    );
}

/// The CLI stays thin (issue 21): a command per file that resolves flags, runs the
/// library's phases and renders; no function over 80 lines, and no registry request of its
/// own (those go through `kiln-pipeline`).
pub(crate) fn cli_commands_stay_thin() {
    let root = kiln_e2e::workspace_root();
    let registry_calls = [
        ".get_manifest(",
        ".put_manifest(",
        ".manifest_digest(",
        ".get_blob",
        ".push_blob",
        ".list_tags(",
        ".mount_blob(",
        "push_image(",
        "push_index(",
    ];
    let mut offenders = Vec::new();
    for path in library_files(&root.join("builder/cli")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines: Vec<&str> = code.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if registry_calls.iter().any(|c| line.contains(c)) {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
            let Some(indent) = fn_start(line) else {
                continue;
            };
            let close = format!("{indent}}}");
            let length = lines[n..]
                .iter()
                .position(|l| *l == close)
                .map_or(1, |end| end + 1);
            if length > 80 {
                offenders.push(format!(
                    "{}:{}: a function of {length} lines",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the CLI grows a pipeline again (move it into kiln-pipeline):\n{}",
        offenders.join("\n")
    );
}

/// Returns the indentation of a line that starts a function with a body.
fn fn_start(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let rest = ["pub(crate) ", "pub "]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p))
        .unwrap_or(trimmed);
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    (rest.starts_with("fn ") && !trimmed.ends_with(';')).then_some(indent)
}

/// Returns the source files of the crate in `dir`, without unit-test modules kept in files
/// of their own.
fn library_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.join("src")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let test_only = test_only_modules(&files);
    files.retain(|p| !test_only.contains(p));
    files
}

/// Returns the files of `files` that are modules declared `#[cfg(test)] mod name;` (unit
/// test code kept in a file of its own).
fn test_only_modules(files: &[std::path::PathBuf]) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        let dir = match path.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => path.parent().unwrap().to_path_buf(),
            _ => path.with_extension(""),
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]"
                && let Some(name) = pair[1]
                    .strip_prefix("mod ")
                    .and_then(|m| m.strip_suffix(';'))
            {
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    out
}

/// Offenders in the two crates the lead is restructuring (issue 21), as `crate dir:
/// Type::Variant`: the lead removes these when fixing them. No other crate may be listed,
/// and an entry that no longer offends fails the check, so the list only shrinks.
const PENDING_SOURCE_IN_MESSAGE: &[&str] = &[];

/// DESIGN.md §4: a variant that has a source (a field named `source`, or one marked
/// `#[source]` or `#[from]`) never names it in its own `#[error("...")]` message: the CLI
/// prints every `source()` under `Caused by:`, so the cause would show twice.
pub(crate) fn error_messages_never_repeat_their_source() {
    // The scanner itself, on the shapes it must tell apart.
    let sample = r#"
        pub enum SampleError {
            #[error("reading `{path}`: {source}")]
            Named { path: PathBuf, source: io::Error },
            #[error("reading `{}`: {}", .path.display(), .source)]
            Args { path: PathBuf, source: io::Error },
            /// A doc comment, and another attribute.
            #[error("parsing: {0}")]
            #[allow(dead_code)]
            Tuple(#[from] ControlError),
            #[error("wrapping `{0}`: {1:?}")]
            Marked(String, #[source] Box<dyn Error + Send>),
            #[error("reading `{path}`")]
            Fine { path: PathBuf, source: io::Error },
            #[error("parsing `{0}`: {{source}} {1:?}")]
            NoSource(String, BTreeMap<String, String>),
            #[error(transparent)]
            Wrapped(#[from] io::Error),
        }
        // #[error("{source}")] in a comment
        #[error("serializing: {0}")]
        pub struct SampleStruct(#[from] serde_json::Error);
    "#;
    let found: Vec<String> = variants_repeating_their_source(sample)
        .into_iter()
        .map(|(_, item)| item)
        .collect();
    assert_eq!(
        found,
        [
            "SampleError::Named",
            "SampleError::Args",
            "SampleError::Tuple",
            "SampleError::Marked",
            "SampleStruct",
        ],
        "the scanner misreads its sample"
    );

    let root = kiln_e2e::workspace_root();
    let (mut scanned, mut found) = (0, BTreeMap::new());
    for group in ["builder", "buildpacks"] {
        let mut crates: Vec<_> = std::fs::read_dir(root.join(group))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        crates.sort();
        for krate in crates {
            let mut stack = vec![root.join(group).join(&krate).join("src")];
            while let Some(d) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    if path.extension().is_none_or(|e| e != "rs") {
                        continue;
                    }
                    let text = std::fs::read_to_string(&path).unwrap();
                    scanned += text.matches("#[error(").count();
                    for (line, item) in variants_repeating_their_source(&text) {
                        let shown = path.strip_prefix(&root).unwrap_or(&path).display();
                        found.insert(
                            format!("{group}/{krate}: {item}"),
                            format!("{shown}:{line}"),
                        );
                    }
                }
            }
        }
    }
    assert!(scanned > 100, "only {scanned} `#[error(` attributes found");
    for pending in PENDING_SOURCE_IN_MESSAGE {
        assert!(
            pending.starts_with("builder/image: ") || pending.starts_with("builder/cli: "),
            "`{pending}`: only the image and cli crates may have pending offenders"
        );
        assert!(
            found.remove(*pending).is_some(),
            "`{pending}` no longer repeats its source: remove it from PENDING_SOURCE_IN_MESSAGE"
        );
    }
    let offenders: Vec<String> = found
        .into_iter()
        .map(|(item, at)| format!("{at}: {item}"))
        .collect();
    assert!(
        offenders.is_empty(),
        "error messages that repeat their own source (drop it from the message: the CLI \
         prints the chain):\n{}",
        offenders.join("\n")
    );
}

/// Returns `(line, Type::Variant)` (or `(line, Type)` for a struct) of each item of `text`
/// whose `#[error("...")]` message names the item's own source field.
fn variants_repeating_their_source(text: &str) -> Vec<(usize, String)> {
    const ATTR: &str = "#[error(";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(ATTR).map(|i| i + from) {
        from = at + ATTR.len();
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..at].contains("//") {
            continue;
        }
        let Some(len) = balanced(&text[from..]) else {
            continue;
        };
        let attr = &text[from..from + len];
        if attr.trim() == "transparent" {
            continue;
        }
        // `)]`, then doc comments and other attributes, then the item.
        let mut rest = text[from + len..].trim_start_matches([')', ']']);
        loop {
            rest = rest.trim_start();
            if rest.starts_with("//") {
                rest = rest.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(inner) = rest.strip_prefix("#[") {
                rest = &inner[balanced(inner).unwrap_or(inner.len())..];
                rest = rest.strip_prefix(']').unwrap_or(rest);
            } else {
                break;
            }
        }
        if ident(rest) == "pub" {
            rest = rest["pub".len()..].trim_start();
            if let Some(inner) = rest.strip_prefix('(') {
                rest = inner[balanced(inner).unwrap_or(inner.len()) + 1..].trim_start();
            }
        }
        let word = ident(rest);
        let item = match word {
            "enum" => continue,
            "struct" => {
                rest = rest["struct".len()..].trim_start();
                ident(rest).to_owned()
            }
            variant => {
                let owner = text[..at]
                    .rfind("enum ")
                    .map_or("?", |i| ident(&text[i + "enum ".len()..]));
                format!("{owner}::{variant}")
            }
        };
        rest = rest[ident(rest).len()..].trim_start();
        let fields = match rest.chars().next() {
            Some(open @ ('{' | '(')) => {
                let body = &rest[1..];
                let body = &body[..balanced(body).unwrap_or(body.len())];
                fields(body, open == '(')
            }
            _ => continue,
        };
        let source = fields
            .iter()
            .find(|(_, attrs)| attrs.iter().any(|a| a == "source" || a == "from"))
            .or_else(|| fields.iter().find(|(name, _)| name == "source"))
            .map(|(name, _)| name.as_str());
        if let Some(source) = source
            && names_field(attr, source)
        {
            out.push((text[..at].matches('\n').count() + 1, item));
        }
    }
    out
}

/// Returns the length of `s` up to the bracket that closes one opened before it, skipping
/// string literals.
fn balanced(s: &str) -> Option<usize> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Returns the identifier `s` starts with.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Returns `(name, attributes)` of each field of a variant or struct body: the name for
/// named fields, the position for tuple fields.
fn fields(body: &str, tuple: bool) -> Vec<(String, Vec<String>)> {
    let code: String = body
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in code.char_indices() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&code[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&code[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(n, mut part)| {
            let mut attrs = Vec::new();
            while let Some(inner) = part.strip_prefix("#[") {
                let len = balanced(inner).unwrap_or(inner.len());
                attrs.push(inner[..len].trim().to_owned());
                part = inner[len..].trim_start_matches(']').trim_start();
            }
            let name = if tuple {
                n.to_string()
            } else {
                let part = part.strip_prefix("pub").map_or(part, str::trim_start);
                let part = match part.strip_prefix('(') {
                    Some(inner) => inner[balanced(inner).unwrap_or(0) + 1..].trim_start(),
                    None => part,
                };
                ident(part).to_owned()
            };
            (name, attrs)
        })
        .collect()
}

/// Returns whether the `#[error(...)]` arguments `attr` show the field `name`: as `{name}`
/// (or `{name:?}`) in the format string, or as `name` / `.name` among the arguments after it.
fn names_field(attr: &str, name: &str) -> bool {
    let attr = attr.trim_start();
    let Some(body) = attr.strip_prefix('"') else {
        return false;
    };
    let end = balanced_string_end(body);
    let (format, args) = (&body[..end], &body[end..]);
    let mut rest = format;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('{') {
            rest = after;
            continue;
        }
        let inner = &rest[..rest.find('}').unwrap_or(rest.len())];
        if inner.split(':').next().unwrap_or_default().trim() == name {
            return true;
        }
    }
    args.match_indices(name).any(|(i, _)| {
        let before = args[..i].chars().next_back().unwrap_or(' ');
        let after = args[i + name.len()..].chars().next().unwrap_or(' ');
        let word = |c: char| c.is_alphanumeric() || c == '_';
        !word(before) && !word(after) && (before == '.' || name.parse::<usize>().is_err())
    })
}

/// Returns the length of a string literal's contents, `s` starting just after its `"`.
fn balanced_string_end(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i,
            _ => {}
        }
    }
    s.len()
}
