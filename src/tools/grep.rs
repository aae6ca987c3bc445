//! `grep`: a regex search over the workspace tree, in a stable order, with
//! caps on matches shown and files scanned.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::glob::Glob;
use super::open::open_regular;
use super::path::{canonical_root, resolve};
use super::text::{clip_chars, looks_binary, read_line_capped};
use super::{Run, Tool};

/// Matching lines shown at most; the rest are counted.
pub const GREP_MAX_MATCHES: usize = 200;
/// Files scanned at most, so a huge tree cannot stall an agent.
pub const GREP_MAX_FILES: usize = 50_000;
/// Characters of a matching line shown.
const GREP_MAX_LINE_CHARS: usize = 300;
/// Bytes of a line looked at.
const GREP_MAX_LINE_BYTES: usize = 16 * 1024;

/// Bytes of one file searched at most (the rest of a huge file is skipped).
pub const GREP_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Directory names never descended into (besides hidden ones).
const SKIPPED_DIRS: [&str; 2] = ["target", "node_modules"];

#[derive(Debug, Deserialize)]
pub(crate) struct GrepArgs {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
}

struct Search {
    regex: Regex,
    glob: Option<Glob>,
    root: PathBuf,
    shown: Vec<String>,
    total: usize,
    files: usize,
}

pub(crate) fn grep(root: &Path, args: GrepArgs) -> Result<String, String> {
    let regex = RegexBuilder::new(&args.pattern)
        .size_limit(4 * 1024 * 1024)
        .build()
        .map_err(|e| format!("invalid regex `{}`: {e}", args.pattern))?;
    let glob = args.glob.as_deref().map(Glob::new).transpose()?;
    let start = resolve(root, args.path.as_deref().unwrap_or("."))?;
    let meta = fs::metadata(&start).map_err(|e| {
        format!(
            "cannot search `{}`: {e}",
            args.path.as_deref().unwrap_or(".")
        )
    })?;
    let mut search = Search {
        regex,
        glob,
        root: canonical_root(root)?,
        shown: Vec::new(),
        total: 0,
        files: 0,
    };
    if meta.is_dir() {
        search.walk(&start);
    } else {
        // A file named explicitly is searched whatever the glob says; one
        // that is not a regular file (a FIFO would never end) is refused.
        let shown = search.relative(&start);
        let (file, _) = open_regular(&start, &shown)?;
        search.file(&start, file);
    }

    if search.total == 0 {
        return Ok(format!("no matches for `{}`", args.pattern));
    }
    let mut out = search.shown.join("\n");
    out.push('\n');
    if search.total > search.shown.len() {
        out.push_str(&format!(
            "[... {} more matches not shown; narrow the pattern, path or glob]\n",
            search.total - search.shown.len()
        ));
    }
    if search.files >= GREP_MAX_FILES {
        out.push_str(&format!(
            "[search stopped after {GREP_MAX_FILES} files; give a narrower path]\n"
        ));
    }
    Ok(out)
}

impl Search {
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// Depth-first over sorted entries. Symlinks are never followed: they
    /// could lead out of the workspace or into a cycle.
    fn walk(&mut self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if self.files >= GREP_MAX_FILES {
                return;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                    self.walk(&entry.path());
                }
            } else if kind.is_file() {
                let path = entry.path();
                let wanted = match &self.glob {
                    Some(glob) => glob.matches(&self.relative(&path)),
                    None => true,
                };
                // Opened without waiting and checked again: the entry may
                // have been swapped for a FIFO since it was listed.
                if wanted && let Ok((file, _)) = open_regular(&path, "") {
                    self.file(&path, file);
                }
            }
        }
    }

    fn file(&mut self, path: &Path, file: fs::File) {
        self.files += 1;
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(GREP_MAX_FILE_BYTES));
        match reader.fill_buf() {
            Ok(head) if !looks_binary(head) => {}
            _ => return,
        }
        let relative = self.relative(path);
        let mut line_no = 0u64;
        while let Ok(Some(line)) = read_line_capped(&mut reader, GREP_MAX_LINE_BYTES) {
            line_no += 1;
            let text = String::from_utf8_lossy(&line.bytes);
            if !self.regex.is_match(&text) {
                continue;
            }
            self.total += 1;
            if self.shown.len() < GREP_MAX_MATCHES {
                let text = clip_chars(text.trim_end_matches('\r'), GREP_MAX_LINE_CHARS);
                self.shown.push(format!("{relative}:{line_no}: {text}"));
            }
        }
    }
}

/// `grep`: offered to models, run on the blocking pool.
pub(super) const GREP: Tool = Tool {
    name: "grep",
    description: "Search file contents with a regular expression (Rust regex syntax; use (?i) for \
     case-insensitive). Walks the directory tree, skipping hidden directories, .git, \
     target and node_modules, and binary files. Prints `path:line: text` per matching \
     line; results are capped with a note saying how many more matched.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Regular expression to search for."},
                "path": {"type": "string", "description": "File or directory to search, relative to the workspace root. Default: the root."},
                "glob": {"type": "string", "description": "Only search files matching this glob, e.g. `*.rs` (matched against the file name) or `src/**/*.rs` (matched against the path relative to the workspace root)."}
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Files(|root, args| grep(root, super::parse("grep", args)?)),
};
