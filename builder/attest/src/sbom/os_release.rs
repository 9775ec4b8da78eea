//! The distribution from `os-release(5)`
//! (<https://www.freedesktop.org/software/systemd/man/latest/os-release.html>).

use super::package::Distro;

/// Returns the distribution `text` describes, or `None` without an `ID`.
///
/// The spec's fallback `ID=linux` is not applied: a Debian package namespaced `linux`
/// would be worse than the `debian` default purls fall back to.
pub(crate) fn parse(text: &str) -> Option<Distro> {
    let mut id = None;
    let mut version_id = None;
    let mut codename = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version_id = Some(value),
            "VERSION_CODENAME" => codename = Some(value),
            _ => {}
        }
    }
    Some(Distro {
        id: id?,
        version_id,
        codename,
    })
}

/// Strips shell-style quotes and backslash escapes, which the spec allows in values.
fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_bare_values() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
                    # comment\n\
                    ID=debian\n\
                    VERSION_ID=\"12\"\n\
                    VERSION_CODENAME='bookworm'\n";
        assert_eq!(
            parse(text),
            Some(Distro {
                id: "debian".into(),
                version_id: Some("12".into()),
                codename: Some("bookworm".into()),
            })
        );
    }

    #[test]
    fn without_id_there_is_no_distro() {
        assert_eq!(parse("VERSION_ID=12\n"), None);
        let d = parse("ID=\"ubuntu\"\nVERSION_ID=\"\"\n").unwrap();
        assert_eq!(d.id, "ubuntu");
        assert_eq!(d.version_id, None);
    }
}
