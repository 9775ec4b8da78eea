//! [`BaseLinks`]: the symlinks of the image a layer goes on top of, and placing a layer's
//! paths through them (RELIABILITY.md W08).
//!
//! A runtime applies a layer entry by entry: a directory entry at `lib` where the base has
//! `lib -> usr/lib` replaces the link by an empty directory, and every library behind it
//! disappears from the image (rules_oci#857, distroless#1393). So before a layer is
//! written, each of its paths is resolved through the base's links the way the container
//! will resolve it (absolute targets from the image root, `..` stopping at the root): app
//! files meant for `/lib/…` are written to `usr/lib/…`, and no directory entry ever lands
//! on a base symlink. Non-directories at a link's own path still replace the link, as
//! they would on any file system.
//!
//! Layer semantics: image-spec `layer.md`, "Applying Changesets" and "Whiteouts".

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use kiln_oci::Digest;

use crate::contents::{DIR_MODE, Entry, EntryKind, is_whiteout};
use crate::source::Source;
use crate::{LayerContents, LayerError};

/// The first line of a saved [`BaseLinks`] file.
const SAVED_FORMAT: &str = "kiln base links v1";

/// How many links a path may go through before it counts as a loop (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Top-level paths that are symlinks in most current bases (merged `/usr`, `/var/run`):
/// when some of the base's layers cannot be read, a directory there is refused rather than
/// guessed at.
pub const USUAL_BASE_LINKS: &[&str] = &[
    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "var/run", "var/lock",
];

/// The symlinks of a base image's file system, by path (no leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseLinks {
    links: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Whether some of the base's layers could not be read, so links may be missing.
    incomplete: bool,
}

impl BaseLinks {
    /// Returns an empty set: a base without symlinks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one uncompressed layer tar of the base, bottom layer first: its symlinks
    /// are added, and whatever it puts at or whiteouts over a path removes the links
    /// there (and below, for whiteouts and for links replaced by links).
    pub fn add_layer(&mut self, tar: impl Read) -> Result<(), LayerError> {
        let unreadable = |source| LayerError::Unreadable { source };
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let raw = entry.path_bytes();
            let path = clean(&raw);
            if path.is_empty() {
                continue;
            }
            let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], &path[..]),
            };
            if name == b".wh..wh..opq" {
                self.remove_below(dir);
                continue;
            }
            if is_whiteout(name) {
                let gone = [dir, if dir.is_empty() { b"" } else { b"/" }, &name[4..]].concat();
                self.links.remove(&gone);
                self.remove_below(&gone);
                continue;
            }
            if entry.header().entry_type() == tar::EntryType::Symlink {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.remove_below(&path);
                self.links.insert(path, target);
            } else {
                self.links.remove(&path);
            }
        }
        Ok(())
    }

    /// Records that one of the base's layers could not be read: directories at
    /// [`USUAL_BASE_LINKS`] are then refused by [`LayerContents::place_on`].
    pub fn mark_incomplete(&mut self) {
        self.incomplete = true;
    }

    /// Returns whether a layer of the base could not be read.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete
    }

    /// Adds the link `path` → `target` (for bases known without reading their layers).
    pub fn insert(&mut self, path: &str, target: &str) {
        let path = clean(path.as_bytes());
        self.remove_below(&path);
        self.links.insert(path, target.as_bytes().to_vec());
    }

    /// Returns the links, path and target, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.links.iter().map(|(p, t)| (p.as_slice(), t.as_slice()))
    }

    /// Returns a digest of the links (and of whether the set is incomplete): equal digests,
    /// equal placement of any layer.
    pub fn digest(&self) -> Digest {
        let mut body = self.body();
        body.push(u8::from(self.incomplete));
        Digest::of(&body)
    }

    /// Writes the links to `path` (a complete set only: an incomplete one is not worth
    /// keeping), atomically: a temporary file renamed into place.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if self.incomplete {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let body = self.body();
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        writeln!(temp, "{SAVED_FORMAT}\n{}", Digest::of(&body))?;
        temp.write_all(&body)?;
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Reads links saved by [`save`](Self::save), or `None` when `path` is missing,
    /// from another format, or does not match the checksum it carries.
    pub fn load(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let rest = bytes.strip_prefix(format!("{SAVED_FORMAT}\n").as_bytes())?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        let (sum, body) = (std::str::from_utf8(&rest[..end]).ok()?, &rest[end + 1..]);
        if sum != Digest::of(body).to_string() {
            return None;
        }
        let mut fields = body.split(|&b| b == 0);
        let mut links = BTreeMap::new();
        while let (Some(p), Some(t)) = (fields.next(), fields.next()) {
            links.insert(p.to_vec(), t.to_vec());
        }
        Some(Self {
            links,
            incomplete: false,
        })
    }

    /// Returns the links as `path NUL target NUL …` (neither contains NUL).
    fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (p, t) in &self.links {
            body.extend_from_slice(p);
            body.push(0);
            body.extend_from_slice(t);
            body.push(0);
        }
        body
    }

    fn remove_below(&mut self, dir: &[u8]) {
        if dir.is_empty() {
            self.links.clear();
            return;
        }
        let prefix = [dir, b"/"].concat();
        let below: Vec<Vec<u8>> = self
            .links
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in below {
            self.links.remove(&k);
        }
    }

    /// Returns whether any strict ancestor of `path`, or `path` itself when `itself`, is a
    /// link.
    fn touches(&self, path: &[u8], itself: bool) -> bool {
        path.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .any(|(i, _)| self.links.contains_key(&path[..i]))
            || (itself && self.links.contains_key(path))
    }

    /// Returns `path` with every link among its components followed (the last one too
    /// when `follow_last`), chroot-style, or `None` on a loop.
    fn resolve(&self, path: &[u8], follow_last: bool) -> Option<Vec<u8>> {
        let mut todo: Vec<Vec<u8>> = path
            .split(|&b| b == b'/')
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    out.pop();
                    continue;
                }
                _ => {}
            }
            out.push(part);
            if todo.is_empty() && !follow_last {
                break;
            }
            let Some(target) = self.links.get(&out.join(&b'/')) else {
                continue;
            };
            hops += 1;
            if hops > MAX_LINKS {
                return None;
            }
            out.pop();
            if target.starts_with(b"/") {
                out.clear();
            }
            todo.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
        }
        Some(out.join(&b'/'))
    }
}

/// Returns a tar or caller path without leading `/` and `./`, `.` components and trailing
/// `/`.
fn clean(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    parts.join(&b'/')
}

impl LayerContents {
    /// Moves every entry to where the container will see it once this layer is applied
    /// on a base with the symlinks `base`: paths through a base link are rewritten to the
    /// link's target (`lib/x.so` → `usr/lib/x.so` when the base has `lib -> usr/lib`), and
    /// directories at a link's path become the link's target (never a directory entry
    /// over a base symlink). Missing parents are added as usual.
    ///
    /// Fails, leaving the contents as they were, when a path goes through a loop of
    /// links, when two entries land on the same path, or when the base is incomplete and
    /// a directory is at one of [`USUAL_BASE_LINKS`].
    pub fn place_on(&mut self, base: &BaseLinks) -> Result<(), LayerError> {
        let refuse = |path: &[u8], reason| LayerError::OnBase {
            path: String::from_utf8_lossy(path).into_owned(),
            reason,
        };
        if base.incomplete {
            for (path, entry) in &self.entries {
                let is_dir = matches!(entry.kind, EntryKind::Dir);
                let usual = USUAL_BASE_LINKS
                    .iter()
                    .any(|l| l.as_bytes() == path.as_slice());
                if is_dir && usual && !base.links.contains_key(path) {
                    return Err(refuse(
                        path,
                        "the run image usually has a symlink there, and some of its layers \
                         are not in kiln's store to check: put the files under `usr/` (or the \
                         link's target), or use a run image from kiln's store or an OCI layout",
                    ));
                }
            }
        }
        let moves = self
            .entries
            .iter()
            .any(|(p, e)| base.touches(p, matches!(e.kind, EntryKind::Dir)));
        if !moves {
            return Ok(());
        }
        let mut placed = LayerContents {
            entries: BTreeMap::new(),
            warnings: self.warnings.clone(),
            invalid: self.invalid.clone(),
        };
        for (path, entry) in &self.entries {
            let is_dir = matches!(entry.kind, EntryKind::Dir);
            if !base.touches(path, is_dir) {
                placed.ensure_parents(path);
                insert(&mut placed, path.clone(), entry.clone(), path)?;
                continue;
            }
            let loop_error = || refuse(path, "it goes through a loop of the run image's symlinks");
            let target = if is_dir {
                base.resolve(path, true).ok_or_else(loop_error)?
            } else {
                let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&path[..i], &path[i + 1..]),
                    None => (&path[..0], &path[..]),
                };
                let dir = base.resolve(dir, true).ok_or_else(loop_error)?;
                if dir.is_empty() {
                    name.to_vec()
                } else {
                    [&dir[..], b"/", name].concat()
                }
            };
            if target.is_empty() {
                // A directory that resolves to the image root: nothing to write.
                continue;
            }
            let mut entry = entry.clone();
            if let EntryKind::File(Source::Host(host)) = &mut entry.kind {
                host.moved_from(path);
            }
            placed.ensure_parents(&target);
            insert(&mut placed, target, entry, path)?;
        }
        *self = placed;
        Ok(())
    }
}

/// Inserts `entry` at `path`; two directories merge (a default one, like an implicit
/// parent, gives way to one with a mode or owner of its own), anything else twice is an
/// error naming the second entry's original path `from`.
fn insert(
    placed: &mut LayerContents,
    path: Vec<u8>,
    entry: Entry,
    from: &[u8],
) -> Result<(), LayerError> {
    let is_dir = matches!(entry.kind, EntryKind::Dir);
    match placed.entries.get_mut(&path) {
        Some(e) if matches!(e.kind, EntryKind::Dir) && is_dir => {
            if e.mode == DIR_MODE && e.owner.is_none() {
                *e = entry;
            }
            Ok(())
        }
        None => {
            placed.entries.insert(path, entry);
            Ok(())
        }
        Some(_) => Err(LayerError::OnBase {
            path: String::from_utf8_lossy(from).into_owned(),
            reason: "through the run image's symlinks it lands on another entry of the layer",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            match link {
                Some(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, path, t).unwrap();
                }
                None if path.ends_with('/') => {
                    h.set_entry_type(tar::EntryType::Directory);
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
                None => b.append_data(&mut h, path, std::io::empty()).unwrap(),
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn layers_add_replace_and_white_out_links() {
        let mut base = BaseLinks::new();
        base.add_layer(
            tar(&[
                ("./bin", Some("usr/bin")),
                ("lib", Some("usr/lib")),
                ("var/", None),
                ("var/run", Some("/run")),
                ("etc/alternatives/java", Some("/usr/lib/jvm/bin/java")),
                ("opt/x", Some("y")),
            ])
            .as_slice(),
        )
        .unwrap();
        base.add_layer(
            tar(&[
                ("bin/", None),
                ("etc/alternatives/.wh..wh..opq", None),
                ("opt/.wh.x", None),
                ("sbin", Some("usr/sbin")),
            ])
            .as_slice(),
        )
        .unwrap();
        let links: Vec<(String, String)> = base
            .iter()
            .map(|(p, t)| {
                (
                    String::from_utf8_lossy(p).into_owned(),
                    String::from_utf8_lossy(t).into_owned(),
                )
            })
            .collect();
        let expected = [
            ("lib", "usr/lib"),
            ("sbin", "usr/sbin"),
            ("var/run", "/run"),
        ];
        assert_eq!(links, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    #[test]
    fn saved_links_load_back_and_damaged_ones_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("links/x");
        let mut base = BaseLinks::new();
        base.insert("lib", "usr/lib");
        base.insert("var/run", "/run");
        base.save(&path).unwrap();
        assert_eq!(BaseLinks::load(&path), Some(base.clone()));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(BaseLinks::load(&path), None);
        assert_ne!(base.digest(), BaseLinks::new().digest());
    }

    #[test]
    fn resolves_like_a_container_does() {
        let mut base = BaseLinks::new();
        base.insert("lib", "usr/lib");
        base.insert("var/run", "/run");
        base.insert("usr/lib/jvm/default", "java-17");
        base.insert("up", "../../../../usr");
        base.insert("a", "b");
        base.insert("b", "a");
        let r = |p: &str| {
            base.resolve(p.as_bytes(), true)
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(r("lib/x.so").as_deref(), Some("usr/lib/x.so"));
        assert_eq!(r("var/run/app.pid").as_deref(), Some("run/app.pid"));
        assert_eq!(
            r("lib/jvm/default/bin").as_deref(),
            Some("usr/lib/jvm/java-17/bin")
        );
        assert_eq!(
            r("up/share").as_deref(),
            Some("usr/share"),
            "`..` stops at the root"
        );
        assert_eq!(r("a/x"), None, "a loop");
        assert_eq!(r("workspace/app").as_deref(), Some("workspace/app"));
    }

    /// W08: entries move behind the links, directories at a link become its target, and
    /// loops, collisions and guesses on an incomplete base are errors naming the entry.
    #[test]
    fn w08_place_on_moves_entries_and_refuses_what_it_cannot_place() {
        let mut base = BaseLinks::new();
        base.insert("lib", "usr/lib");
        base.insert("var/run", "/run");
        base.insert("loop", "loop");
        let mut c = LayerContents::new();
        c.add_dir("lib", 0o750, Some(crate::Ownership::new(0, 7)));
        c.add_file("lib/app.so", b"so".to_vec(), 0o755, None);
        c.add_file("var/run/pid", b"1".to_vec(), 0o644, None);
        c.add_symlink("lib/libapp.so", "app.so");
        c.add_file("workspace/x", b"x".to_vec(), 0o644, None);
        c.place_on(&base).unwrap();
        let paths: Vec<String> = c.paths().map(|p| p.into_owned()).collect();
        let expected = [
            "run",
            "run/pid",
            "usr",
            "usr/lib",
            "usr/lib/app.so",
            "usr/lib/libapp.so",
            "var",
            "workspace",
            "workspace/x",
        ];
        assert_eq!(paths, expected);
        let lib = &c.entries[&b"usr/lib"[..]];
        assert_eq!(
            (lib.mode, lib.owner),
            (0o750, Some(crate::Ownership::new(0, 7)))
        );

        let mut looped = LayerContents::new();
        looped.add_file("loop/x", Vec::new(), 0o644, None);
        let err = looped.place_on(&base).unwrap_err().to_string();
        assert!(err.contains("`loop`") && err.contains("a loop of"), "{err}");
        assert_eq!(looped.len(), 2, "left as it was");

        let mut twice = LayerContents::new();
        twice.add_file("lib/a", b"1".to_vec(), 0o644, None);
        twice.add_file("usr/lib/a", b"2".to_vec(), 0o644, None);
        let err = twice.place_on(&base).unwrap_err().to_string();
        assert!(
            err.contains("`usr/lib/a`") && err.contains("another entry"),
            "{err}"
        );

        let mut unknown = BaseLinks::new();
        unknown.mark_incomplete();
        let mut guess = LayerContents::new();
        guess.add_file("bin/tool", Vec::new(), 0o755, None);
        let err = guess.place_on(&unknown).unwrap_err().to_string();
        assert!(err.contains("`bin`"), "{err}");
        let mut fine = LayerContents::new();
        fine.add_file("workspace/bin/tool", Vec::new(), 0o755, None);
        fine.place_on(&unknown).unwrap();
    }
}
