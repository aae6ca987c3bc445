//! Finding theme files and following `extends`: a built-in name
//! (`dark`, `builtin:dark`), a theme id looked up in the given directories,
//! or a file path. Layers come back root first so the child wins the merge.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::spec::diagnostics::{Diagnostic, Severity};
use crate::spec::yaml::MAX_FILE_BYTES;

use super::builtin;
use super::file::{self, ThemeFile};

/// How deep `extends` may chain before we call it a mistake.
pub const MAX_EXTENDS_DEPTH: usize = 16;

/// Where a theme's text came from.
struct Source {
    /// Shown in diagnostics, and the identity used to detect cycles.
    file: String,
    /// The folder relative `extends:` paths start from.
    dir: Option<PathBuf>,
    text: Cow<'static, str>,
    /// The id it was looked up by, when it was found by id in a folder.
    by_id: Option<String>,
}

/// Where an `extends:` was written, to point errors at it.
#[derive(Clone)]
pub struct From {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub dir: Option<PathBuf>,
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.ends_with(".yaml") || s.ends_with(".yml")
}

fn locate(target: &str, dirs: &[PathBuf], base: Option<&Path>) -> Result<Source, (String, String)> {
    if let Some(name) = target.strip_prefix("builtin:") {
        return builtin::text(name)
            .map(|text| Source {
                file: format!("builtin:{name}"),
                dir: None,
                text: Cow::Borrowed(text),
                by_id: None,
            })
            .ok_or_else(|| {
                (
                    format!("there is no built-in theme `{name}`"),
                    format!("built-in themes: {}", builtin::NAMES.join(", ")),
                )
            });
    }
    if looks_like_path(target) {
        let mut path = PathBuf::from(target);
        if path.is_relative()
            && let Some(b) = base
        {
            path = b.join(path);
        }
        return read(&path, None);
    }
    for dir in dirs {
        for ext in ["yaml", "yml"] {
            let path = dir.join(format!("{target}.{ext}"));
            if path.is_file() {
                return read(&path, Some(target.to_string()));
            }
        }
    }
    if let Some(text) = builtin::text(target) {
        return Ok(Source {
            file: format!("builtin:{target}"),
            dir: None,
            text: Cow::Borrowed(text),
            by_id: None,
        });
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err((
        format!("no theme named `{target}`"),
        format!(
            "built-in themes: {}; searched {}; or give a path to a .yaml file",
            builtin::NAMES.join(", "),
            if searched.is_empty() {
                "no theme folders".to_string()
            } else {
                searched.join(", ")
            }
        ),
    ))
}

fn read(path: &Path, by_id: Option<String>) -> Result<Source, (String, String)> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        (
            format!("cannot read theme file {shown}: {e}"),
            "check the path (relative paths in `extends:` start from the theme's folder)"
                .to_string(),
        )
    })?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err((
            format!("theme file {shown} is too large ({} bytes)", meta.len()),
            "theme files are small; check it is the right file".to_string(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            format!("cannot read theme file {shown}: {e}"),
            "theme files must be UTF-8 text".to_string(),
        )
    })?;
    Ok(Source {
        file: shown,
        dir: path.parent().map(Path::to_path_buf),
        text: Cow::Owned(text),
        by_id,
    })
}

/// Loads `target` and everything it extends, root first. Diagnostics of every
/// layer (warnings too) go to `diags`; `None` when any layer failed.
pub fn layers(
    target: &str,
    dirs: &[PathBuf],
    from: Option<From>,
    chain: &mut Vec<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<ThemeFile>> {
    let (err_file, line, col, base) = match &from {
        Some(f) => (f.file.clone(), f.line, f.col, f.dir.clone()),
        None => (target.to_string(), 0, 0, None),
    };
    let src = match locate(target, dirs, base.as_deref()) {
        Ok(s) => s,
        Err((message, hint)) => {
            let path = if from.is_some() { "extends" } else { "" };
            diags.push(file::error(&err_file, line, col, path, message, Some(hint)));
            return None;
        }
    };
    if let Some(i) = chain.iter().position(|c| *c == src.file) {
        let mut cycle = chain[i..].to_vec();
        cycle.push(src.file.clone());
        diags.push(file::error(
            &err_file,
            line,
            col,
            "extends",
            format!("`extends` forms a cycle: {}", cycle.join(" → ")),
            Some(if builtin::text(target).is_some() {
                format!("to build on the built-in theme, write `extends: builtin:{target}`")
            } else {
                "a theme cannot extend itself, directly or through others".to_string()
            }),
        ));
        return None;
    }
    if chain.len() >= MAX_EXTENDS_DEPTH {
        diags.push(file::error(
            &err_file,
            line,
            col,
            "extends",
            format!("`extends` chains more than {MAX_EXTENDS_DEPTH} themes deep"),
            Some("flatten the chain".to_string()),
        ));
        return None;
    }
    let (parsed, own) = file::parse(&src.file, &src.text);
    // A file with errors still goes on to its parent and the merge, so one
    // load reports every problem (bad `$refs` are found only after the
    // merge); `Theme::load` fails on any error.
    diags.extend(own);
    if let Some(id) = &src.by_id
        && *id != parsed.id
    {
        diags.push(Diagnostic {
            severity: Severity::Warning,
            message: format!("theme file found as `{id}` declares `id: {}`", parsed.id),
            file: src.file.clone(),
            line: parsed.id_at.0,
            col: parsed.id_at.1,
            path: "id".to_string(),
            expected: None,
            found: None,
            hint: Some("name the file after its id so lookups find it".to_string()),
        });
    }
    let mut out = Vec::new();
    if let Some(ext) = &parsed.extends {
        chain.push(src.file.clone());
        let parent_from = From {
            file: src.file.clone(),
            line: ext.line,
            col: ext.col,
            dir: src.dir.clone(),
        };
        let parents = layers(&ext.target, dirs, Some(parent_from), chain, diags);
        chain.pop();
        out = parents?;
    }
    out.push(parsed);
    Some(out)
}
