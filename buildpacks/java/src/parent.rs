//! Maven parent POMs above the app: a module's `<parent>` that Maven finds on the file
//! system (`<relativePath>`, by default `../pom.xml`) must be in the build's copy, or Maven
//! looks for it in repositories that never had it ("Non-resolvable parent POM"). Files only.

use std::path::{Path, PathBuf};

use kiln_lifecycle::relative_path;
use quick_xml::Reader;
use quick_xml::events::Event;

/// How many parents up kiln follows, and the most levels a build context may be above the app.
const MAX_LEVELS: usize = 8;

/// The local parents of a module: the ancestor holding them all, and their POMs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parents {
    /// How many levels above the app the farthest parent's directory is (0: none above).
    pub levels: usize,
    /// What needs it, in the user's words.
    pub reason: String,
    /// The text of each local parent POM, nearest first.
    pub poms: Vec<String>,
}

/// What of a `pom.xml` says who it is and who its parent is.
#[derive(Debug, Default, PartialEq, Eq)]
struct Coordinates {
    group: Option<String>,
    artifact: Option<String>,
    parent_group: Option<String>,
    parent_artifact: Option<String>,
    /// `None`: not given (Maven's default `../pom.xml`); `Some("")`: `<relativePath/>`,
    /// no local lookup.
    relative_path: Option<String>,
}

/// Returns the local parents of the module at `app_dir` whose POM is `pom_xml`: each
/// `<parent>` found where its `<relativePath>` says, with the coordinates it names.
pub(crate) fn local_parents(app_dir: &Path, pom_xml: &str) -> Parents {
    let Ok(app) = app_dir.canonicalize() else {
        return Parents::default();
    };
    let mut out = Parents::default();
    let (mut dir, mut xml) = (app.clone(), pom_xml.to_owned());
    for _ in 0..MAX_LEVELS {
        let Some(child) = read(&xml) else { break };
        let Some(wanted) = child.parent_artifact.clone() else {
            break;
        };
        let relative = child.relative_path.as_deref().unwrap_or("../pom.xml");
        if relative.is_empty() {
            break;
        }
        let Some((path, text)) = locate(&dir, relative) else {
            break;
        };
        let Some(parent) = read(&text) else { break };
        let group = parent.group.clone().or(parent.parent_group.clone());
        let same_group = match (&child.parent_group, &group) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if parent.artifact.as_deref() != Some(wanted.as_str()) || !same_group {
            break;
        }
        let parent_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(levels) = app.ancestors().position(|a| parent_dir.starts_with(a))
            && levels > out.levels
            && levels <= MAX_LEVELS
            && app
                .ancestors()
                .nth(levels)
                .is_some_and(|a| a.parent().is_some())
        {
            out.levels = levels;
            out.reason = format!(
                "the parent POM `{wanted}` is in {}",
                relative_path(&app, &path)
            );
        }
        out.poms.push(text.clone());
        (dir, xml) = (parent_dir, text);
    }
    out
}

/// Returns the POM `relative` names from `dir` (a file, or a directory holding `pom.xml`).
fn locate(dir: &Path, relative: &str) -> Option<(PathBuf, String)> {
    let mut path = dir.join(relative);
    if path.is_dir() {
        path = path.join("pom.xml");
    }
    let path = path.canonicalize().ok()?;
    let bytes = kiln_lifecycle::read_bounded(&path, kiln_lifecycle::MANIFEST_LIMIT).ok()?;
    Some((path, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Returns the coordinates of a POM, `None` when it is not well-formed.
fn read(xml: &str) -> Option<Coordinates> {
    let mut reader = Reader::from_str(xml);
    let mut out = Coordinates::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path == ["project", "parent"] && name == "relativePath" {
                    out.relative_path = Some(String::new());
                }
            }
            Event::Text(t) => text.push_str(&t.decode().ok()?),
            Event::End(_) => {
                let value = Some(text.trim().to_owned());
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    ["project", "groupId"] => out.group = value,
                    ["project", "artifactId"] => out.artifact = value,
                    ["project", "parent", "groupId"] => out.parent_group = value,
                    ["project", "parent", "artifactId"] => out.parent_artifact = value,
                    ["project", "parent", "relativePath"] => out.relative_path = value,
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    path.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pom(own: &str, parent: &str) -> String {
        format!("<project><modelVersion>4.0.0</modelVersion>{parent}{own}</project>")
    }

    fn parent(group: &str, artifact: &str, relative: Option<&str>) -> String {
        let relative = match relative {
            Some("") => "<relativePath/>".to_owned(),
            Some(p) => format!("<relativePath>{p}</relativePath>"),
            None => String::new(),
        };
        format!(
            "<parent><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>1</version>{relative}</parent>"
        )
    }

    fn tree(files: &[(&str, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn the_default_relative_path_finds_the_parent_one_level_up() {
        let app = pom(
            "<artifactId>app</artifactId>",
            &parent("com.example", "root", None),
        );
        let dir = tree(&[
            (
                "root/pom.xml",
                pom(
                    "<groupId>com.example</groupId><artifactId>root</artifactId>",
                    "",
                ),
            ),
            ("root/app/pom.xml", app.clone()),
        ]);
        let got = local_parents(&dir.path().join("root/app"), &app);
        assert_eq!(got.levels, 1);
        assert_eq!(got.reason, "the parent POM `root` is in ../pom.xml");
        assert_eq!(got.poms.len(), 1);
    }

    #[test]
    fn a_chain_of_parents_reaches_the_farthest() {
        let app = pom(
            "<artifactId>app</artifactId>",
            &parent("com.example", "services", Some("../pom.xml")),
        );
        let services = pom(
            "<artifactId>services</artifactId>",
            &parent("com.example", "root", Some("../build/parent")),
        );
        let root = pom(
            "<groupId>com.example</groupId><artifactId>root</artifactId>",
            "",
        );
        let dir = tree(&[
            ("repo/build/parent/pom.xml", root),
            ("repo/services/pom.xml", services),
            ("repo/services/app/pom.xml", app.clone()),
        ]);
        let got = local_parents(&dir.path().join("repo/services/app"), &app);
        assert_eq!(got.levels, 2);
        assert_eq!(got.poms.len(), 2);
        assert!(got.reason.contains("`root`"), "{}", got.reason);
    }

    #[test]
    fn no_local_lookup_a_mismatch_or_no_parent_reach_nothing() {
        let dir = tree(&[(
            "root/pom.xml",
            pom(
                "<groupId>com.example</groupId><artifactId>root</artifactId>",
                "",
            ),
        )]);
        let app = dir.path().join("root/app");
        std::fs::create_dir_all(&app).unwrap();
        for xml in [
            pom(
                "<artifactId>app</artifactId>",
                &parent("com.example", "root", Some("")),
            ),
            pom(
                "<artifactId>app</artifactId>",
                &parent("com.example", "other", None),
            ),
            pom(
                "<artifactId>app</artifactId>",
                &parent("org.other", "root", None),
            ),
            pom("<artifactId>app</artifactId>", ""),
            "<project><parent>".to_owned(),
        ] {
            assert_eq!(local_parents(&app, &xml).levels, 0, "{xml}");
        }
    }
}
