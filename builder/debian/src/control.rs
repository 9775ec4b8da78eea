//! Debian control data (deb822): paragraphs of `Field: value` lines separated by blank lines,
//! with continuation lines starting with a space or a tab. `Release`, `Packages` and a
//! package's `control` file are all written this way.
//!
//! Spec: Debian Policy §5.1 "Syntax of control files"
//! (<https://www.debian.org/doc/debian-policy/ch-controlfields.html#syntax-of-control-files>).

/// One paragraph: its fields in file order. Field names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, Field<'a>)>,
    /// The 1-based line number of the paragraph's first field, for error messages.
    pub line: usize,
}

/// A field value: its first line and the raw continuation lines after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    text: &'a str,
}

impl<'a> Field<'a> {
    /// Returns the first line of the value, trimmed.
    pub fn first_line(&self) -> &'a str {
        self.text.lines().next().unwrap_or("").trim()
    }

    /// Returns the continuation lines, each trimmed, empty lines dropped (`Release` hash
    /// lists and `Description` bodies).
    pub fn continuation_lines(&self) -> impl Iterator<Item = &'a str> {
        self.text
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }

    /// Returns the whole value with every line trimmed and joined by one space (folded
    /// fields such as `Depends` may be wrapped over several lines).
    pub fn folded(&self) -> String {
        let mut out = String::new();
        for line in self.text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(line);
        }
        out
    }
}

impl<'a> Paragraph<'a> {
    /// Returns the field called `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<Field<'a>> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// Returns the first line of field `name`, if present.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).map(|f| f.first_line())
    }

    /// Returns every field name, in order.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.fields.iter().map(|(k, _)| *k)
    }
}

/// Why control data could not be split into fields.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ControlError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Splits `text` into paragraphs. Lines starting with `#` are comments (allowed in
/// `debian/control`-style input); a line that is neither a field, a continuation nor blank
/// is an error, as is a continuation line with no field before it.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    // The byte range of the current field's value in `text`.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            close(&mut open, &mut current, text);
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') && open.is_none() && current.fields.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match &mut open {
                Some((_, _, end)) => *end = start + line.len(),
                None => {
                    return Err(ControlError {
                        line: line_no,
                        reason: "a continuation line with no field before it",
                    });
                }
            }
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(ControlError {
                line: line_no,
                reason: "expected `Field: value`",
            });
        };
        close(&mut open, &mut current, text);
        if current.fields.is_empty() {
            current.line = line_no;
        }
        let name = &line[..colon];
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ControlError {
                line: line_no,
                reason: "a field name must be non-empty and without spaces",
            });
        }
        // Policy §5.1 forbids a field twice in a paragraph; which one a reader takes would
        // be a guess, and a guess is what an attacker plays on.
        if current.get(name).is_some() {
            return Err(ControlError {
                line: line_no,
                reason: "a field appears twice in one paragraph",
            });
        }
        open = Some((name, start + colon + 1, start + line.len()));
    }
    close(&mut open, &mut current, text);
    if !current.fields.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn close<'a>(open: &mut Option<(&'a str, usize, usize)>, p: &mut Paragraph<'a>, text: &'a str) {
    if let Some((name, start, end)) = open.take() {
        p.fields.push((
            name,
            Field {
                text: &text[start..end],
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDepends: b,\n c (>= 1)\nDescription: short\n long line\n .\n\n\nPackage: z\n";
        let ps = parse_paragraphs(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].value("package"), Some("a"));
        assert_eq!(ps[0].get("Depends").unwrap().folded(), "b, c (>= 1)");
        assert_eq!(ps[0].value("Description"), Some("short"));
        assert_eq!(
            ps[0]
                .get("Description")
                .unwrap()
                .continuation_lines()
                .collect::<Vec<_>>(),
            ["long line", "."]
        );
        assert_eq!(ps[1].line, 9);
    }

    #[test]
    fn garbage_lines_are_errors() {
        assert_eq!(parse_paragraphs("no colon here\n").unwrap_err().line, 1);
        assert_eq!(parse_paragraphs(" leading\n").unwrap_err().line, 1);
    }

    #[test]
    fn a_field_twice_in_a_paragraph_is_an_error() {
        let err = parse_paragraphs("A: 1\nB: 2\nb: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("twice"), "{err}");
        assert_eq!(parse_paragraphs("A: 1\n\nA: 2\n").unwrap().len(), 2);
    }
}
