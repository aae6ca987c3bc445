//! Agent tools: `read_file`, `list_dir`, `grep`, `write_file`, `edit_file`,
//! `run_shell` (behind a policy). File tools are confined to the workspace
//! root: no `..`, absolute path or symlink escapes it. `ask_user`,
//! `memory_store`, `memory_search` and `propose_followup` are declared here
//! but answered by the engine (they need the question flow, the journal,
//! or the graph).
//!
//! Must not depend on `journal`, `workflow` or any participant.

mod ask;
mod edit;
mod followup;
mod fs;
mod glob;
mod grep;
pub mod mcp;
mod memory;
mod open;
mod path;
mod policy;
mod shell;
mod specs;
mod text;

/// File writes the workbench and commands share with the file tools.
pub(crate) use fs::{atomic_write, write_synced};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::llm::ToolSpec;

pub use fs::{LIST_MAX_ENTRIES, READ_MAX_BYTES, READ_MAX_LINES};
pub use grep::{GREP_MAX_FILES, GREP_MAX_MATCHES};
pub use policy::has_control_operators;
pub use shell::SHELL_TAIL_BYTES;
pub use specs::{is_offered, shell_prefixes};

/// A tool agents can call, declared in the file that runs it: what a model
/// is told (name, description, JSON Schema of the arguments), whether its
/// effect outlives the call, and who runs it. A new tool is a new file with
/// one of these, listed in [`TOOLS`].
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: fn() -> serde_json::Value,
    /// Its effect outlives the call: the engine journals an intent first.
    pub side_effects: bool,
    pub run: Run,
}

/// Who runs a tool call.
pub enum Run {
    /// A file tool: parses its arguments and works inside the workspace
    /// root, on the blocking pool.
    Files(fn(&Path, &str) -> Result<String, String>),
    /// `run_shell`, once the engine has allowed the command.
    Shell,
    /// Answered by the engine itself (a question to the user, the memory
    /// bank), not by the tool runner.
    Engine,
}

/// Every built-in tool, in the order offered to a model (the order is part
/// of every request's fingerprint: append, never reorder).
pub static TOOLS: [&Tool; 10] = [
    &fs::READ_FILE,
    &fs::LIST_DIR,
    &grep::GREP,
    &fs::WRITE_FILE,
    &edit::EDIT_FILE,
    &shell::RUN_SHELL,
    &ask::ASK_USER,
    &memory::MEMORY_STORE,
    &memory::MEMORY_SEARCH,
    &followup::PROPOSE_FOLLOWUP,
];

/// The built-in tools' names, in offer order.
pub fn tool_names() -> Vec<&'static str> {
    TOOLS.iter().map(|t| t.name).collect()
}

fn tool(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().copied().find(|t| t.name == name)
}

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
    /// Told each `run_shell` command's process group before it may run
    /// (see `ShellCommand::started`).
    pub process_started: Option<crate::commands::StartedSender>,
    /// The mode's `permissions.ask_before` patterns (see [`asks_before`]).
    pub ask_before: Vec<String>,
    /// `run_shell` commands start without a network (the mode's
    /// `permissions.network: false`; see `commands::offline`).
    pub offline: bool,
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
    specs::specs(allow, deny, false)
}

/// [`specs`], with `propose_followup` offered to every mode that does not
/// deny it when `propose` is set (the workflow's `followups.propose`).
pub fn specs_with(allow: &[String], deny: &[String], propose: bool) -> Vec<ToolSpec> {
    specs::specs(allow, deny, propose)
}

/// True for tools whose effect outlives the call (journaled as intents).
pub fn has_side_effects(name: &str) -> bool {
    tool(name).is_some_and(|t| t.side_effects)
}

/// Decides whether `command` may run under `policy`.
/// Prefixes match whole words and only for commands without control
/// operators (`;`, `&&`, `|`, redirections, substitutions, newlines).
pub fn shell_decision(policy: &ShellPolicy, command: &str) -> ShellDecision {
    policy::shell_decision(policy, command)
}

pub use policy::asks_before;

/// Runs one tool call. `run_shell` must already have been allowed by the caller.
/// Never panics: bad arguments, escapes and I/O failures come back as an
/// output with `is_error` set, for the model to read and retry.
pub async fn call(env: &ToolEnv, name: &str, arguments: &str) -> ToolOutput {
    let Some(tool) = tool(name) else {
        return ToolOutput::error(format!(
            "unknown tool `{name}`; the tools are: {}",
            tool_names().join(", ")
        ));
    };
    match tool.run {
        Run::Files(run) => blocking(&env.root, name, arguments, run).await,
        Run::Shell => match parse(name, arguments) {
            Ok(args) => shell::run(env, args).await,
            Err(e) => ToolOutput::error(e),
        },
        Run::Engine => ToolOutput::error(format!(
            "{name} is answered by the workflow engine, not by the tool runner"
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
async fn blocking(
    root: &Path,
    tool: &str,
    arguments: &str,
    run: fn(&Path, &str) -> Result<String, String>,
) -> ToolOutput {
    let root = root.to_path_buf();
    let arguments = arguments.to_string();
    match tokio::task::spawn_blocking(move || run(&root, &arguments)).await {
        Ok(Ok(content)) => ToolOutput::ok(content),
        Ok(Err(message)) => ToolOutput::error(message),
        Err(e) => ToolOutput::error(format!("{tool} failed: {e}")),
    }
}
