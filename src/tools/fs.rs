//! `read_file`, `list_dir` and `write_file`, plus the atomic write that
//! `edit_file` shares. Blocking std I/O; the dispatcher runs these on
//! tokio's blocking pool.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::Deserialize;

use super::open::open_regular;
use super::path::{display, resolve};
use super::text::{looks_binary, read_line_capped};
use super::{Run, Tool};

/// Lines returned by one `read_file` call at most.
pub const READ_MAX_LINES: usize = 2000;
/// Bytes of output one `read_file` call returns at most.
pub const READ_MAX_BYTES: usize = 256 * 1024;
/// A single line longer than this is cut.
const READ_MAX_LINE_BYTES: usize = 4000;
/// Bytes of a file `read_file` reads through at most (to reach `offset`):
/// the cost of one call stays bounded whatever the file is.
pub const READ_MAX_SCAN_BYTES: u64 = 64 * 1024 * 1024;
/// Entries `list_dir` shows at most.
pub const LIST_MAX_ENTRIES: usize = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct ReadArgs {
    path: String,
    offset: Option<u64>,
    limit: Option<u64>,
}

pub(crate) fn read_file(root: &Path, args: ReadArgs) -> Result<String, String> {
    let path = resolve(root, &args.path)?;
    let shown = display(root, &path);
    let meta = fs::metadata(&path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if meta.is_dir() {
        return Err(format!("`{shown}` is a directory; use list_dir"));
    }
    let (file, meta) = open_regular(&path, &shown)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(READ_MAX_SCAN_BYTES));
    let head = reader
        .fill_buf()
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if looks_binary(head) {
        return Ok(format!(
            "`{shown}` is a binary file ({} bytes); not shown",
            meta.len()
        ));
    }
    if meta.len() == 0 {
        return Ok(format!("`{shown}` is empty"));
    }

    let offset = args.offset.unwrap_or(1).max(1);
    let limit = args
        .limit
        .unwrap_or(READ_MAX_LINES as u64)
        .clamp(1, READ_MAX_LINES as u64);
    let mut out = String::new();
    let mut line_no: u64 = 0;
    let mut shown_lines: u64 = 0;
    let mut more = false;
    while let Some(line) = read_line_capped(&mut reader, READ_MAX_LINE_BYTES)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?
    {
        line_no += 1;
        if line_no < offset {
            continue;
        }
        let mut text = String::from_utf8_lossy(&line.bytes).into_owned();
        if line.truncated {
            text.push_str(" […line cut]");
        }
        let entry = format!("{line_no:>6}\t{text}\n");
        if shown_lines == limit || out.len() + entry.len() > READ_MAX_BYTES {
            more = true;
            break;
        }
        out.push_str(&entry);
        shown_lines += 1;
    }
    if shown_lines == 0 {
        if meta.len() > READ_MAX_SCAN_BYTES {
            return Err(format!(
                "offset {offset} is past the first {READ_MAX_SCAN_BYTES} bytes of `{shown}` \
                 ({line_no} lines), which is as far as read_file reads; use grep to find the part you need"
            ));
        }
        return Ok(format!(
            "`{shown}` has {line_no} lines; offset {offset} is past the end"
        ));
    }
    if more {
        let last = offset + shown_lines - 1;
        out.push_str(&format!(
            "[showing lines {offset}-{last} of `{shown}` ({} bytes); more follows: call read_file with offset={}]\n",
            meta.len(),
            last + 1
        ));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListArgs {
    path: Option<String>,
}

pub(crate) fn list_dir(root: &Path, args: ListArgs) -> Result<String, String> {
    let path = resolve(root, args.path.as_deref().unwrap_or("."))?;
    let shown = display(root, &path);
    let entries = fs::read_dir(&path).map_err(|e| format!("cannot list `{shown}`: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list `{shown}`: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let marker = match entry.file_type() {
            Ok(t) if t.is_dir() => "/",
            Ok(t) if t.is_symlink() => "@",
            _ => "",
        };
        names.push(format!("{name}{marker}"));
    }
    if names.is_empty() {
        return Ok(format!("`{shown}` is empty"));
    }
    names.sort();
    let total = names.len();
    names.truncate(LIST_MAX_ENTRIES);
    let mut out = names.join("\n");
    out.push('\n');
    if total > LIST_MAX_ENTRIES {
        out.push_str(&format!(
            "[... {} more entries not shown]\n",
            total - LIST_MAX_ENTRIES
        ));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct WriteArgs {
    path: String,
    content: String,
}

pub(crate) fn write_file(root: &Path, args: WriteArgs) -> Result<String, String> {
    let path = resolve(root, &args.path)?;
    let shown = display(root, &path);
    let existed = match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(format!("`{shown}` is a directory")),
        Ok(_) => true,
        Err(_) => false,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the directories for `{shown}`: {e}"))?;
    }
    atomic_write(&path, args.content.as_bytes())
        .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
    let verb = if existed { "overwrote" } else { "created" };
    Ok(format!(
        "{verb} `{shown}` ({} bytes written)",
        args.content.len()
    ))
}

/// Writes `bytes` to `path` and syncs it, creating its folders; without
/// `replace` a file already there is never touched, even one created since
/// the caller looked (the error's kind is then `AlreadyExists`). Errors say
/// which path failed.
pub(crate) fn write_synced(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    let context =
        |what: String, e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| context(format!("cannot create {}", dir.display()), e))?;
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    written.map_err(|e| context(format!("cannot write {}", path.display()), e))
}

/// Writes `bytes` to a temporary file beside `path` and renames it over
/// `path`, so readers never see a half-written file. An existing file's
/// permissions are kept.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.lev-tmp", ulid::Ulid::generate()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the temp file is ours and useless now.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `read_file`: offered to models, run on the blocking pool.
pub(super) const READ_FILE: Tool = Tool {
    name: "read_file",
    description: "Read a text file in the workspace. Each line is prefixed with its line number \
     and a tab (the prefix is not part of the file). At most 2000 lines or 256 KiB are \
     returned per call; when more follows, the output ends with a note giving the \
     `offset` to continue from. Binary files are reported, not shown. Paths are \
     relative to the workspace root.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to return (1-based). Default 1."},
                "limit": {"type": "integer", "minimum": 1, "description": "Maximum number of lines to return. Default and maximum 2000."}
            },
            "required": ["path"],
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Files(|root, args| read_file(root, super::parse("read_file", args)?)),
};

/// `list_dir`: offered to models, run on the blocking pool.
pub(super) const LIST_DIR: Tool = Tool {
    name: "list_dir",
    description: "List a directory in the workspace, sorted by name; directories end with `/`. \
     Hidden entries are included. Long listings are capped with a note.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Directory, relative to the workspace root. Default: the root."}
            },
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Files(|root, args| list_dir(root, super::parse("list_dir", args)?)),
};

/// `write_file`: offered to models, run on the blocking pool.
pub(super) const WRITE_FILE: Tool = Tool {
    name: "write_file",
    description: "Create or overwrite a file in the workspace with the given content. Parent \
     directories are created. The write is atomic. Prefer edit_file for changing part \
     of an existing file.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "content": {"type": "string", "description": "The complete new content of the file."}
            },
            "required": ["path", "content"],
            "additionalProperties": false
        })
    },
    side_effects: true,
    run: Run::Files(|root, args| write_file(root, super::parse("write_file", args)?)),
};
