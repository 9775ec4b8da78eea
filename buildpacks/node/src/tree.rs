//! File tree chores on installed dependency trees: find every `node_modules` of a project,
//! move them in one rename each, copy them as hardlinks, and strip what only the build
//! machine needs (so the layer is the same on every machine).

use std::io;
use std::path::{Path, PathBuf};

/// Returns the directories of `root` (relative, `/`-separated, `""` for the root itself)
/// that hold a `node_modules`: the root, and workspace members with their own. Nothing
/// inside a `node_modules`, `.git` or `.yarn` is searched.
pub fn module_dirs(root: &Path) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(&rel))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            match name.to_str() {
                Some("node_modules") => found.push(slash(&rel)),
                Some(".git" | ".yarn") => {}
                _ => stack.push(rel.join(&name)),
            }
        }
    }
    found.sort();
    Ok(found)
}

fn slash(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Moves `<from>/<dir>/node_modules` to `<to>/<dir>/node_modules` for each of `dirs`.
pub fn move_modules(from: &Path, to: &Path, dirs: &[String]) -> io::Result<()> {
    for dir in dirs {
        let (src, dst) = (
            from.join(dir).join("node_modules"),
            to.join(dir).join("node_modules"),
        );
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&src, &dst)?;
    }
    Ok(())
}

/// Copies the tree `from` to `to` (which must not exist) with every regular file
/// hardlinked, or copied where links cannot be made; symlinks are recreated as they are.
pub fn link_copy(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type()?;
        if ty.is_dir() {
            link_copy(&src, &dst)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ty.is_file() && std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Removes from a production `node_modules` tree what only served the build machine:
/// `.bin` directories (shims, some with the build's absolute paths; the image runs `node`
/// directly and has no shell), tool caches (`.cache`), pnpm's `.modules.yaml` (it names the
/// store's absolute path), and node-gyp's build intermediates (Makefiles and `config.gypi`
/// hold absolute paths; object files are dead weight), keeping the built `.node` files.
pub fn strip_for_image(node_modules: &Path) -> io::Result<()> {
    for name in [".bin", ".cache"] {
        remove_dir(&node_modules.join(name))?;
    }
    remove_file(&node_modules.join(".modules.yaml"))?;
    let mut stack = vec![node_modules.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("binding.gyp").is_file() && dir.join("build").is_dir() {
            strip_gyp_build(&dir.join("build"))?;
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if entry.file_name() == ".bin" {
                remove_dir(&entry.path())?;
            } else {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Keeps what node-gyp's `build/` ships (`Release/`, `Debug/` files) and drops the rest.
fn strip_gyp_build(build: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(build)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let name = entry.file_name();
        if ty.is_file() {
            std::fs::remove_file(entry.path())?;
        } else if ty.is_dir() && (name == "Release" || name == "Debug") {
            for inner in ["obj.target", ".deps", "obj"] {
                remove_dir(&entry.path().join(inner))?;
            }
        }
    }
    Ok(())
}

fn remove_dir(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes `path` whether it is a file, a symlink or a directory; a missing path is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn write(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.as_bytes()).unwrap();
        }
    }

    fn files(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(slash(e.path().strip_prefix(root).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn finds_every_node_modules_outside_node_modules() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            &[
                "node_modules/a/node_modules/b/index.js",
                "packages/api/node_modules/x/index.js",
                "packages/web/src/index.js",
                ".yarn/cache/node_modules/y",
            ],
        );
        assert_eq!(module_dirs(tmp.path()).unwrap(), ["", "packages/api"]);
    }

    #[test]
    fn moves_and_link_copies_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        write(
            &a,
            &["node_modules/x/index.js", "pkg/node_modules/y/index.js"],
        );
        std::os::unix::fs::symlink("../x", a.join("node_modules/link")).unwrap();
        let dirs = vec![String::new(), "pkg".to_owned()];
        move_modules(&a, &b, &dirs).unwrap();
        assert!(!a.join("node_modules").exists());
        assert_eq!(
            files(&b),
            [
                "node_modules/link",
                "node_modules/x/index.js",
                "pkg/node_modules/y/index.js"
            ]
        );
        link_copy(&b, &c).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&b.join("node_modules/x/index.js")),
            ino(&c.join("node_modules/x/index.js"))
        );
        assert_eq!(
            std::fs::read_link(c.join("node_modules/link")).unwrap(),
            Path::new("../x")
        );
    }

    #[test]
    fn strips_build_machine_files_but_keeps_addons() {
        let tmp = tempfile::tempdir().unwrap();
        let nm = tmp.path().join("node_modules");
        write(
            &nm,
            &[
                ".bin/tsc",
                ".cache/babel/x",
                ".modules.yaml",
                ".package-lock.json",
                "a/index.js",
                "a/node_modules/.bin/z",
                "addon/binding.gyp",
                "addon/build/Makefile",
                "addon/build/config.gypi",
                "addon/build/hello.target.mk",
                "addon/build/Release/hello.node",
                "addon/build/Release/obj.target/hello/hello.o",
                "addon/build/Release/.deps/Release/hello.node.d",
                "other/build/Makefile",
            ],
        );
        strip_for_image(&nm).unwrap();
        assert_eq!(
            files(&nm),
            [
                ".package-lock.json",
                "a/index.js",
                "addon/binding.gyp",
                "addon/build/Release/hello.node",
                "other/build/Makefile",
            ]
        );
    }
}
