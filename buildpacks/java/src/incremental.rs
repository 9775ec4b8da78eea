//! Incremental Spring Boot builds: the image's layers without `mvn package`.
//!
//! A full build of a Spring Boot app explodes its jar into a template kept in the scratch
//! copy's `target/` (which survives between builds: see `Buildpack::scratch_keeps`), and
//! records which files of the application layer came from `target/classes`. While the
//! template stands, that is while neither a POM, Maven's configuration nor kiln's settings
//! changed and no source file was removed (each of which empties `target/`), the next build
//! runs only `mvn process-classes`: Maven compiles what changed, and the application
//! layer is the template's with `target/classes` placed as Spring Boot's repackaging places
//! it. The other layers are the template's, as they are.
//!
//! A template is only recorded when that placement reproduces the jar's own: every file of
//! `target/classes` is in the exploded jar where the rule puts it, with the same bytes, and
//! every file below `BOOT-INF/classes/` came from `target/classes`. Apps with snapshot
//! dependencies (which can change without the POM) get no template.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::explode::ensure_dir;
use crate::layers_idx::LayersIdx;

/// Where the template lives in the scratch copy.
const DIR: &str = "target/kiln-incremental";
/// Its description, beside the layer directories.
const STATE: &str = "template.json";
/// Changes whenever the template's format or meaning does.
const FORMAT: u32 = 1;
/// The layer Spring Boot puts the app's own classes and resources in.
pub(crate) const APPLICATION: &str = "application";
/// The layer of dependencies that may change without the POM.
const SNAPSHOTS: &str = "snapshot-dependencies";

/// A Spring Boot app's exploded jar, ready to take new classes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Template {
    format: u32,
    /// The image's workspace the layers were laid out for.
    workspace: String,
    /// The launcher class from the jar's manifest.
    pub(crate) launcher: String,
    /// The layers, in the jar's index order.
    pub(crate) layers: Vec<String>,
    /// Paths in the application layer (below the workspace) that came from
    /// `target/classes`.
    classes: BTreeSet<String>,
    /// `(group, artifact, version, location)` of each Maven package in the image.
    pub(crate) packages: Vec<(String, String, String, String)>,
}

/// Returns the directory the jar of a build that may record a template is exploded into;
/// it is emptied first.
pub(crate) fn fresh_root(app_dir: &Path) -> io::Result<PathBuf> {
    let root = app_dir.join(DIR);
    match fs::remove_dir_all(&root) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(root)
}

/// Returns the directory of layer `name` of the template in `app_dir` (its files below the
/// workspace).
pub(crate) fn layer_dir(app_dir: &Path, name: &str) -> PathBuf {
    app_dir.join(DIR).join(name)
}

/// Returns where Spring Boot's repackaging puts the file `path` of `target/classes` in the
/// jar: below `BOOT-INF/classes/`, except `META-INF/` (but its services, `aop.xml` and
/// Kotlin module files) and `module-info.class`, which stay at the root.
fn jar_path(path: &str) -> String {
    let stays = match path.strip_prefix("META-INF/") {
        Some(rest) => {
            !(rest.starts_with("services/")
                || rest == "aop.xml"
                || rest.ends_with(".kotlin_module"))
        }
        None => path == "module-info.class",
    };
    if stays {
        path.to_owned()
    } else {
        format!("BOOT-INF/classes/{path}")
    }
}

/// Returns where the repackaging puts the directory `path` of `target/classes`.
fn dir_path(path: &str) -> String {
    jar_path(&format!("{path}/"))
        .trim_end_matches('/')
        .to_owned()
}

/// Returns every file and directory below `root`, relative to it, with whether it is a
/// directory, parents first.
fn walk(root: &Path) -> io::Result<Vec<(String, bool)>> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry.path().strip_prefix(root).expect("below the root");
        let Some(relative) = relative.to_str() else {
            return Err(io::Error::other("a file name that is not UTF-8"));
        };
        found.push((relative.to_owned(), entry.file_type().is_dir()));
    }
    Ok(found)
}

/// Records the template of a full build whose jar was exploded into [`layer_dir`]s, if its
/// `target/classes` can stand in for the jar (see the module docs). Returns whether it did.
pub(crate) fn record(
    app_dir: &Path,
    workspace: &str,
    launcher: &str,
    layers: &[String],
    packages: Vec<(String, String, String, String)>,
) -> io::Result<bool> {
    if layers.iter().any(|l| l == SNAPSHOTS) || !layers.iter().any(|l| l == APPLICATION) {
        return Ok(false);
    }
    let ws = workspace.trim_start_matches('/');
    let application = layer_dir(app_dir, APPLICATION).join(ws);
    let mut classes = BTreeSet::new();
    for (path, is_dir) in walk(&app_dir.join("target/classes"))? {
        if is_dir {
            if !application.join(dir_path(&path)).is_dir() {
                return Ok(false);
            }
            continue;
        }
        let placed = jar_path(&path);
        let in_jar = fs::read(application.join(&placed)).ok();
        if path == "META-INF/MANIFEST.MF"
            || in_jar != Some(fs::read(app_dir.join("target/classes").join(&path))?)
        {
            return Ok(false);
        }
        classes.insert(placed);
    }
    let stray = walk(&application.join("BOOT-INF/classes"))
        .unwrap_or_default()
        .into_iter()
        .any(|(p, is_dir)| !is_dir && !classes.contains(&format!("BOOT-INF/classes/{p}")));
    if stray {
        return Ok(false);
    }
    let template = Template {
        format: FORMAT,
        workspace: workspace.to_owned(),
        launcher: launcher.to_owned(),
        layers: layers.to_vec(),
        classes,
        packages,
    };
    let json = serde_json::to_vec(&template).map_err(io::Error::other)?;
    fs::write(app_dir.join(DIR).join(STATE), json)?;
    Ok(true)
}

/// Returns the template in `app_dir` if one was recorded for `workspace`.
pub(crate) fn load(app_dir: &Path, workspace: &str) -> Option<Template> {
    let bytes = fs::read(app_dir.join(DIR).join(STATE)).ok()?;
    let template: Template = serde_json::from_slice(&bytes).ok()?;
    let whole = template
        .layers
        .iter()
        .all(|l| layer_dir(app_dir, l).is_dir());
    (template.format == FORMAT && template.workspace == workspace && whole).then_some(template)
}

/// Lays out the application layer in `dest` (a new directory): the template's, with the
/// files of `target/classes` in place of those it had from there. Returns `Ok(false)`, with
/// nothing to use in `dest`, when a file of `target/classes` would go to another layer.
pub(crate) fn application_layer(
    app_dir: &Path,
    template: &Template,
    dest: &Path,
) -> io::Result<bool> {
    let ws = template.workspace.trim_start_matches('/');
    let from = layer_dir(app_dir, APPLICATION).join(ws);
    let index = fs::read_to_string(from.join("BOOT-INF/layers.idx"))
        .ok()
        .and_then(|text| LayersIdx::parse(&text).ok());
    let to = dest.join(ws);
    fs::create_dir_all(&to)?;
    for (path, is_dir) in walk(&from)? {
        if is_dir {
            ensure_dir(&to.join(&path))?;
        } else if !template.classes.contains(&path) {
            fs::copy(from.join(&path), to.join(&path))?;
        }
    }
    let classes = app_dir.join("target/classes");
    for (path, is_dir) in walk(&classes)? {
        let placed = if is_dir {
            dir_path(&path)
        } else {
            jar_path(&path)
        };
        let layer = index
            .as_ref()
            .map_or(Some(APPLICATION), |i| i.layer_for(&placed));
        if layer.is_some_and(|l| l != APPLICATION) || path == "META-INF/MANIFEST.MF" {
            return Ok(false);
        }
        let target = to.join(&placed);
        if is_dir {
            for parent in placed.split('/').scan(PathBuf::new(), |p, c| {
                p.push(c);
                Some(p.clone())
            }) {
                ensure_dir(&to.join(parent))?;
            }
            continue;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&target)?;
        io::copy(&mut fs::File::open(classes.join(&path))?, &mut out)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_go_where_spring_boot_repackages_them() {
        for (path, placed) in [
            ("dev/App.class", "BOOT-INF/classes/dev/App.class"),
            (
                "application.properties",
                "BOOT-INF/classes/application.properties",
            ),
            ("META-INF/spring/x.imports", "META-INF/spring/x.imports"),
            (
                "META-INF/services/a.B",
                "BOOT-INF/classes/META-INF/services/a.B",
            ),
            ("META-INF/aop.xml", "BOOT-INF/classes/META-INF/aop.xml"),
            (
                "META-INF/app.kotlin_module",
                "BOOT-INF/classes/META-INF/app.kotlin_module",
            ),
            ("module-info.class", "module-info.class"),
        ] {
            assert_eq!(jar_path(path), placed, "{path}");
        }
        assert_eq!(dir_path("META-INF"), "META-INF");
        assert_eq!(
            dir_path("META-INF/services"),
            "BOOT-INF/classes/META-INF/services"
        );
        assert_eq!(dir_path("dev/kiln"), "BOOT-INF/classes/dev/kiln");
    }
}
