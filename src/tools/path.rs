//! Confinement of file-tool paths to the workspace root.
//!
//! A path is resolved relative to the root, `..` is applied lexically and may
//! not climb above the root, and the deepest existing ancestor is
//! canonicalized (following symlinks) and must still lie under the canonical
//! root. This also covers files that do not exist yet. The check is not
//! atomic with the later file operation: an agent racing its own tool calls
//! is not the threat; a symlink planted in the tree is.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The workspace root, canonicalized, or an error a model can read.
pub(crate) fn canonical_root(root: &Path) -> Result<PathBuf, String> {
    root.canonicalize()
        .map_err(|e| format!("the workspace root {} is unusable: {e}", root.display()))
}

/// Resolves a model-supplied path to an absolute path inside `root`.
pub(crate) fn resolve(root: &Path, user: &str) -> Result<PathBuf, String> {
    if user.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    let canon_root = canonical_root(root)?;
    let requested = Path::new(user);
    let relative = if requested.is_absolute() {
        requested
            .strip_prefix(&canon_root)
            .or_else(|_| requested.strip_prefix(root))
            .map_err(|_| {
                format!(
                    "`{user}` is outside the workspace; use a path relative to the workspace root"
                )
            })?
    } else {
        requested
    };

    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => parts.push(name),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!("`{user}` escapes the workspace through `..`"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("`{user}` is outside the workspace"));
            }
        }
    }

    // Find the deepest ancestor that exists and see where it really is.
    for depth in (0..=parts.len()).rev() {
        let candidate: PathBuf = parts[..depth]
            .iter()
            .fold(canon_root.clone(), |p, part| p.join(part));
        let Ok(meta) = std::fs::symlink_metadata(&candidate) else {
            continue;
        };
        let real = match candidate.canonicalize() {
            Ok(real) => real,
            Err(e) if meta.file_type().is_symlink() && e.kind() == ErrorKind::NotFound => {
                return Err(format!(
                    "`{user}` goes through a dangling symlink; refusing to follow it"
                ));
            }
            Err(e) => return Err(format!("cannot resolve `{user}`: {e}")),
        };
        if !real.starts_with(&canon_root) {
            return Err(format!(
                "`{user}` leads outside the workspace through a symlink"
            ));
        }
        return Ok(parts[depth..].iter().fold(real, |p, part| p.join(part)));
    }
    // Unreachable in practice: depth 0 is the root itself, which exists.
    Err(format!("cannot resolve `{user}`"))
}

/// How a resolved path is shown to the model: relative to the root.
pub(crate) fn display(root: &Path, path: &Path) -> String {
    let shown = canonical_root(root)
        .ok()
        .and_then(|r| path.strip_prefix(r).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let text = shown.display().to_string();
    if text.is_empty() { ".".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn escapes_are_refused_and_inside_paths_resolve() {
        let outside = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.rs"), "x").unwrap();
        symlink(outside.path(), root.join("out_dir")).unwrap();
        symlink(outside.path().join("f.txt"), root.join("out_file")).unwrap();
        symlink(root.join("src"), root.join("in_dir")).unwrap();
        symlink("/nonexistent/lev/target", root.join("dangling")).unwrap();

        assert_eq!(resolve(&root, "src/a.rs").unwrap(), root.join("src/a.rs"));
        assert_eq!(
            resolve(&root, "./src/../src/a.rs").unwrap(),
            root.join("src/a.rs")
        );
        assert_eq!(resolve(&root, "").unwrap(), root);
        assert_eq!(
            resolve(&root, "new/deep/file").unwrap(),
            root.join("new/deep/file")
        );
        assert_eq!(
            resolve(&root, root.join("src/a.rs").to_str().unwrap()).unwrap(),
            root.join("src/a.rs")
        );
        assert_eq!(
            resolve(&root, "in_dir/a.rs").unwrap(),
            root.join("src/a.rs")
        );

        for bad in [
            "..",
            "../x",
            "src/../../x",
            "/etc/passwd",
            "out_dir",
            "out_dir/new.txt",
            "out_file",
            "dangling",
            "dangling/x",
            "a\0b",
        ] {
            assert!(resolve(&root, bad).is_err(), "{bad} should be refused");
        }
    }
}
