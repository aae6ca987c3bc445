//! `edit_file`: exact search and replace, written atomically.

use std::path::Path;

use serde::Deserialize;

use super::fs::atomic_write;
use super::open::read_regular_capped;

/// Largest file `edit_file` edits: it holds the file (and the result) in
/// memory.
pub const EDIT_MAX_BYTES: u64 = 16 * 1024 * 1024;
use super::path::{display, resolve};
use super::{Run, Tool};

#[derive(Debug, Deserialize)]
pub(crate) struct EditArgs {
    path: String,
    old: String,
    new: String,
    #[serde(default)]
    replace_all: bool,
}

pub(crate) fn edit_file(root: &Path, args: EditArgs) -> Result<String, String> {
    let path = resolve(root, &args.path)?;
    let shown = display(root, &path);
    if args.old.is_empty() {
        return Err(
            "`old` is empty; give the exact text to replace (use write_file to create a file)"
                .into(),
        );
    }
    if args.old == args.new {
        return Err("`old` and `new` are identical; nothing to change".into());
    }
    let bytes = read_regular_capped(&path, &shown, EDIT_MAX_BYTES)?;
    let content = String::from_utf8(bytes)
        .map_err(|_| format!("`{shown}` is not UTF-8 text; edit_file only edits text files"))?;
    let count = content.matches(args.old.as_str()).count();
    let updated = match count {
        0 => {
            return Err(format!(
                "`old` was not found in `{shown}` (0 matches). It must match exactly, \
                 including whitespace and indentation and without read_file's line-number \
                 prefixes; read the file again and copy the text."
            ));
        }
        1 => content.replacen(args.old.as_str(), &args.new, 1),
        _ if args.replace_all => content.replace(args.old.as_str(), &args.new),
        n => {
            return Err(format!(
                "`old` occurs {n} times in `{shown}`; include more surrounding text to make it \
                 unique, or set replace_all to replace all {n}"
            ));
        }
    };
    atomic_write(&path, updated.as_bytes()).map_err(|e| format!("cannot write `{shown}`: {e}"))?;
    let noun = if count == 1 {
        "occurrence"
    } else {
        "occurrences"
    };
    Ok(format!("replaced {count} {noun} in `{shown}`"))
}

/// `edit_file`: offered to models, run on the blocking pool.
pub(super) const EDIT_FILE: Tool = Tool {
    name: "edit_file",
    description: "Replace exact text in a file. `old` must match the file byte for byte (including \
     whitespace and indentation; do not include read_file's line-number prefixes) and \
     must occur exactly once, unless `replace_all` is true. Include enough surrounding \
     lines in `old` to make it unique.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root."},
                "old": {"type": "string", "description": "Exact text to replace."},
                "new": {"type": "string", "description": "Replacement text."},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of requiring exactly one. Default false."}
            },
            "required": ["path", "old", "new"],
            "additionalProperties": false
        })
    },
    side_effects: true,
    run: Run::Files(|root, args| edit_file(root, super::parse("edit_file", args)?)),
};
