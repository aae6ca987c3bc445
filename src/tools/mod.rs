//! Agent tools: `read_file`, `list_dir`, `grep`, `write_file`, `edit_file`,
//! `run_shell` (behind a policy). File tools are confined to the workspace
//! root: no `..`, absolute path or symlink escapes it. `ask_user` is declared
//! here but answered by the engine (it needs the question flow).
//!
//! Must not depend on `journal`, `workflow` or any participant.

use std::path::PathBuf;
use std::time::Duration;

use crate::llm::ToolSpec;

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
}

/// A tool's answer, fed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

/// The tool specs offered to a mode, filtered by its allow/deny lists.
pub fn specs(_allow: &[String], _deny: &[String]) -> Vec<ToolSpec> {
    Vec::new()
}

/// True for tools whose effect outlives the call (journaled as intents).
pub fn has_side_effects(name: &str) -> bool {
    matches!(name, "write_file" | "edit_file" | "run_shell")
}

/// Decides whether `command` may run under `policy`.
pub fn shell_decision(_policy: &ShellPolicy, _command: &str) -> ShellDecision {
    ShellDecision::Deny("not implemented".into())
}

/// Runs one tool call. `run_shell` must already have been allowed by the caller.
pub async fn call(_env: &ToolEnv, name: &str, _arguments: &str) -> ToolOutput {
    ToolOutput {
        content: format!("unknown tool `{name}`"),
        is_error: true,
    }
}
