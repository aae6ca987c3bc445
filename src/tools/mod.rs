//! Agent tools: `read_file`, `list_dir`, `grep`, `write_file`, `edit_file`,
//! `run_shell` (behind a policy). File tools are confined to the workspace
//! root: no `..`, absolute path or symlink escapes it. `ask_user`,
//! `memory_store` and `memory_search` are declared here but answered by the
//! engine (they need the question flow, or the journal).
//!
//! Must not depend on `journal`, `workflow` or any participant.

mod edit;
mod fs;
mod glob;
mod grep;
mod open;
mod path;
mod policy;
mod shell;
mod specs;
mod text;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::llm::ToolSpec;

pub use fs::{LIST_MAX_ENTRIES, READ_MAX_BYTES, READ_MAX_LINES};
pub use grep::{GREP_MAX_FILES, GREP_MAX_MATCHES};
pub use policy::has_control_operators;
pub use shell::SHELL_TAIL_BYTES;
pub use specs::{TOOL_NAMES, is_offered, shell_prefixes};

/// What an agent may run through `run_shell`.
#[derive(Debug, Clone, Default)]
pub struct ShellPolicy {
    /// Command prefixes allowed without asking (`cargo test`, `ls`).
    pub allowed: Vec<String>,
    /// `--allow-shell`: everything allowed.
    pub allow_all: bool,
    /// The mode denies shell entirely.
    pub denied: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellDecision {
    Allow,
    /// Needs the user's approval (headless: refused).
    Ask,
    Deny(String),
}

/// Everything a tool call can touch.
#[derive(Debug, Clone)]
pub struct ToolEnv {
    /// Canonical workspace root; file tools never leave it.
    pub root: PathBuf,
    pub shell: ShellPolicy,
    pub shell_timeout: Duration,
    pub idempotency_key: String,
    /// Told each `run_shell` command's process group once it runs.
    pub process_started: Option<tokio::sync::mpsc::UnboundedSender<crate::protocol::ProcessGroup>>,
}

/// A tool's answer, fed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    fn ok(content: String) -> ToolOutput {
        ToolOutput {
            content,
            is_error: false,
        }
    }

    fn error(content: String) -> ToolOutput {
        ToolOutput {
            content,
            is_error: true,
        }
    }
}

/// The tool specs offered to a mode, filtered by its allow/deny lists.
/// Entries are tool names, the groups `read` (read_file, list_dir, grep),
/// `write`, `edit`, `shell`, `ask`, `*`, or `shell:<prefix>` (offers
/// run_shell). An empty allow list allows all; deny wins; `ask_user` is
/// offered unless denied.
pub fn specs(allow: &[String], deny: &[String]) -> Vec<ToolSpec> {
    specs::specs(allow, deny)
}

/// True for tools whose effect outlives the call (journaled as intents).
pub fn has_side_effects(name: &str) -> bool {
    matches!(
        name,
        "write_file" | "edit_file" | "run_shell" | "memory_store"
    )
}

/// Decides whether `command` may run under `policy`.
/// Prefixes match whole words and only for commands without control
/// operators (`;`, `&&`, `|`, redirections, substitutions, newlines).
pub fn shell_decision(policy: &ShellPolicy, command: &str) -> ShellDecision {
    policy::shell_decision(policy, command)
}

/// Runs one tool call. `run_shell` must already have been allowed by the caller.
/// Never panics: bad arguments, escapes and I/O failures come back as an
/// output with `is_error` set, for the model to read and retry.
pub async fn call(env: &ToolEnv, name: &str, arguments: &str) -> ToolOutput {
    match name {
        "read_file" => blocking(&env.root, name, arguments, fs::read_file).await,
        "list_dir" => blocking(&env.root, name, arguments, fs::list_dir).await,
        "grep" => blocking(&env.root, name, arguments, grep::grep).await,
        "write_file" => blocking(&env.root, name, arguments, fs::write_file).await,
        "edit_file" => blocking(&env.root, name, arguments, edit::edit_file).await,
        "run_shell" => match parse(name, arguments) {
            Ok(args) => shell::run(env, args).await,
            Err(e) => ToolOutput::error(e),
        },
        "ask_user" | "memory_store" | "memory_search" => ToolOutput::error(format!(
            "{name} is answered by the workflow engine, not by the tool runner"
        )),
        _ => ToolOutput::error(format!(
            "unknown tool `{name}`; the tools are: {}",
            TOOL_NAMES.join(", ")
        )),
    }
}

/// Parses a model's JSON arguments; an empty string counts as `{}` (some
/// providers send that for a call without arguments).
fn parse<A: DeserializeOwned>(tool: &str, arguments: &str) -> Result<A, String> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(text).map_err(|e| {
        format!(
            "invalid arguments for {tool}: {e}; send one JSON object matching the tool's parameters"
        )
    })
}

/// Runs a file tool on the blocking pool: file I/O must not stall the
/// runtime that also streams LLM replies.
async fn blocking<A>(
    root: &Path,
    tool: &str,
    arguments: &str,
    run: fn(&Path, A) -> Result<String, String>,
) -> ToolOutput
where
    A: DeserializeOwned + Send + 'static,
{
    let args: A = match parse(tool, arguments) {
        Ok(args) => args,
        Err(e) => return ToolOutput::error(e),
    };
    let root = root.to_path_buf();
    match tokio::task::spawn_blocking(move || run(&root, args)).await {
        Ok(Ok(content)) => ToolOutput::ok(content),
        Ok(Err(message)) => ToolOutput::error(message),
        Err(e) => ToolOutput::error(format!("{tool} failed: {e}")),
    }
}
