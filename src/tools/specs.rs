//! Tool specs offered to a model, and the allow/deny filter of a mode.

use serde_json::{Value, json};

use crate::llm::ToolSpec;

/// Every built-in tool, in the order offered to a model.
pub const TOOL_NAMES: [&str; 9] = [
    "read_file",
    "list_dir",
    "grep",
    "write_file",
    "edit_file",
    "run_shell",
    "ask_user",
    "memory_store",
    "memory_search",
];

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

fn all_specs() -> Vec<ToolSpec> {
    vec![
        spec(
            "read_file",
            "Read a text file in the workspace. Each line is prefixed with its line number \
             and a tab (the prefix is not part of the file). At most 2000 lines or 256 KiB are \
             returned per call; when more follows, the output ends with a note giving the \
             `offset` to continue from. Binary files are reported, not shown. Paths are \
             relative to the workspace root.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace root."},
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to return (1-based). Default 1."},
                    "limit": {"type": "integer", "minimum": 1, "description": "Maximum number of lines to return. Default and maximum 2000."}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        ),
        spec(
            "list_dir",
            "List a directory in the workspace, sorted by name; directories end with `/`. \
             Hidden entries are included. Long listings are capped with a note.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory, relative to the workspace root. Default: the root."}
                },
                "additionalProperties": false
            }),
        ),
        spec(
            "grep",
            "Search file contents with a regular expression (Rust regex syntax; use (?i) for \
             case-insensitive). Walks the directory tree, skipping hidden directories, .git, \
             target and node_modules, and binary files. Prints `path:line: text` per matching \
             line; results are capped with a note saying how many more matched.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression to search for."},
                    "path": {"type": "string", "description": "File or directory to search, relative to the workspace root. Default: the root."},
                    "glob": {"type": "string", "description": "Only search files matching this glob, e.g. `*.rs` (matched against the file name) or `src/**/*.rs` (matched against the path relative to the workspace root)."}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        ),
        spec(
            "write_file",
            "Create or overwrite a file in the workspace with the given content. Parent \
             directories are created. The write is atomic. Prefer edit_file for changing part \
             of an existing file.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace root."},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        ),
        spec(
            "edit_file",
            "Replace exact text in a file. `old` must match the file byte for byte (including \
             whitespace and indentation; do not include read_file's line-number prefixes) and \
             must occur exactly once, unless `replace_all` is true. Include enough surrounding \
             lines in `old` to make it unique.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace root."},
                    "old": {"type": "string", "description": "Exact text to replace."},
                    "new": {"type": "string", "description": "Replacement text."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of requiring exactly one. Default false."}
                },
                "required": ["path", "old", "new"],
                "additionalProperties": false
            }),
        ),
        spec(
            "run_shell",
            "Run a command with `sh -c` in the workspace root; stdin is empty. Returns the exit \
             code and the ends of stdout and stderr. Commands may need the user's approval; \
             chaining operators (`;`, `&&`, `|`, redirections) make approval more likely to be \
             required. Long-running commands are stopped at the timeout.",
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command line."},
                    "timeout_secs": {"type": "integer", "minimum": 1, "description": "Stop the command after this many seconds (capped by the configured maximum)."}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        ),
        spec(
            "ask_user",
            "Ask the user a question and wait for the answer. Use it only when you cannot \
             proceed without a decision or information only the user has; offer `options` \
             when the answer is a choice.",
            json!({
                "type": "object",
                "properties": {
                    "question": {"type": "string", "description": "The question, self-contained."},
                    "options": {"type": "array", "items": {"type": "string"}, "description": "Suggested answers to choose from."}
                },
                "required": ["question"],
                "additionalProperties": false
            }),
        ),
        spec(
            "memory_store",
            "Remember a fact, decision or lesson for later agents and later runs (the memory \
             bank). Store one self-contained statement per call, written so it makes sense \
             without this conversation. Storing again under the same key (in the same \
             namespace) replaces the entry. Namespaces: `project` (default: this workspace, \
             every run), `run` (only this run), `global` (every project).",
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to remember, self-contained."},
                    "key": {"type": "string", "description": "A short stable name, e.g. `auth-token-store`; storing under an existing key updates it. Default: derived from the text."},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Topics for filtering, e.g. [\"auth\", \"db\"]."},
                    "namespace": {"type": "string", "enum": ["project", "run", "global"], "description": "Where to keep it. Default project."}
                },
                "required": ["text"],
                "additionalProperties": false
            }),
        ),
        spec(
            "memory_search",
            "Search the memory bank for what earlier agents and runs stored (ranked text search \
             over text and tags, best match first). Without a namespace it searches this run, \
             this project and global, and says where each hit is from. Search before deciding \
             something an earlier agent may already have settled.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for. Empty: the newest entries (with the given tags)."},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Only entries carrying all of these tags."},
                    "namespace": {"type": "string", "enum": ["project", "run", "global"], "description": "Search only this namespace."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "Most results. Default 5."}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        ),
    ]
}

/// True when an allow/deny entry names `tool`: its name, a group alias
/// (`read`, `write`, `edit`, `shell`, `ask`), `*`, or (only where
/// `shell_prefixes_count` is set, i.e. in allow lists) `shell:<prefix>`.
fn entry_covers(entry: &str, tool: &str, shell_prefixes_count: bool) -> bool {
    let entry = entry.trim();
    if entry == "*" || entry == tool {
        return true;
    }
    let group: &[&str] = match entry {
        "read" => &["read_file", "list_dir", "grep"],
        "write" => &["write_file"],
        "edit" => &["edit_file"],
        "shell" | "shell:*" => &["run_shell"],
        "ask" => &["ask_user"],
        _ => &[],
    };
    if group.contains(&tool) {
        return true;
    }
    shell_prefixes_count && tool == "run_shell" && entry.starts_with("shell:")
}

/// Whether a mode with these lists may use `tool`. An empty allow list allows
/// every tool; deny wins. `ask_user` is offered unless denied: asking is the
/// question flow (bounded by the mode's `max_questions`), not a capability.
/// A denied `shell:<prefix>` does not remove `run_shell`; `shell` or
/// `shell:*` does.
pub fn is_offered(tool: &str, allow: &[String], deny: &[String]) -> bool {
    if deny.iter().any(|d| entry_covers(d, tool, false)) {
        return false;
    }
    allow.is_empty() || tool == "ask_user" || allow.iter().any(|a| entry_covers(a, tool, true))
}

/// Filters the built-in specs by a mode's lists (see [`is_offered`]).
pub fn specs(allow: &[String], deny: &[String]) -> Vec<ToolSpec> {
    all_specs()
        .into_iter()
        .filter(|s| is_offered(&s.name, allow, deny))
        .collect()
}

/// The `shell:<prefix>` entries of an allow list, for a [`super::ShellPolicy`].
pub fn shell_prefixes(allow: &[String]) -> Vec<String> {
    allow
        .iter()
        .filter_map(|a| a.trim().strip_prefix("shell:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(allow: &[&str], deny: &[&str]) -> Vec<String> {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        specs(&allow, &deny).into_iter().map(|s| s.name).collect()
    }

    #[test]
    fn empty_allow_offers_everything() {
        assert_eq!(names(&[], &[]), TOOL_NAMES.to_vec());
    }

    #[test]
    fn filter_table() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &["read"],
                &[],
                &["read_file", "list_dir", "grep", "ask_user"],
            ),
            (&["grep", "write"], &[], &["grep", "write_file", "ask_user"]),
            (
                &["edit", "shell"],
                &[],
                &["edit_file", "run_shell", "ask_user"],
            ),
            (&["shell:cargo test"], &[], &["run_shell", "ask_user"]),
            (
                &["read", "shell:cargo audit", "mcp:semgrep/*"],
                &["write", "edit"],
                &["read_file", "list_dir", "grep", "run_shell", "ask_user"],
            ),
            (
                &[],
                &["write", "edit", "shell"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "ask_user",
                    "memory_store",
                    "memory_search",
                ],
            ),
            (&["read"], &["grep"], &["read_file", "list_dir", "ask_user"]),
            (&["shell"], &["shell:*"], &["ask_user"]),
            (&["shell"], &["shell:rm"], &["run_shell", "ask_user"]),
            (
                &["*"],
                &["ask"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "write_file",
                    "edit_file",
                    "run_shell",
                    "memory_store",
                    "memory_search",
                ],
            ),
            (&["read"], &["ask_user"], &["read_file", "list_dir", "grep"]),
            (&["mcp:x/*"], &[], &["ask_user"]),
            (
                &["read_file", "memory_search"],
                &[],
                &["read_file", "ask_user", "memory_search"],
            ),
            (
                &["*"],
                &["memory_store", "ask"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "write_file",
                    "edit_file",
                    "run_shell",
                    "memory_search",
                ],
            ),
        ];
        for (allow, deny, want) in cases {
            assert_eq!(
                names(allow, deny),
                want.to_vec(),
                "allow {allow:?} deny {deny:?}"
            );
        }
    }

    /// The tools' part of every LLM request's fingerprint: a change here
    /// makes every recorded agent run diverge on resume. Change the tools
    /// on purpose, then update this hash.
    #[test]
    fn the_offered_tools_are_byte_for_byte_as_recorded() {
        let text = serde_json::to_value(specs(&[], &[])).unwrap().to_string();
        assert_eq!(
            blake3::hash(text.as_bytes()).to_hex().to_string(),
            "c34bf24d4c22109c4957df520438e403d480b823ffa5c590179d6d286817a6f6"
        );
    }

    #[test]
    fn specs_are_object_schemas() {
        for s in specs(&[], &[]) {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
            assert!(s.description.len() > 40, "{}", s.name);
        }
    }

    #[test]
    fn prefixes_are_extracted() {
        let allow = vec![
            "read".to_string(),
            "shell:cargo test".into(),
            "shell: ls ".into(),
            "shell:".into(),
        ];
        assert_eq!(
            shell_prefixes(&allow),
            vec!["cargo test".to_string(), "ls".into()]
        );
    }
}
