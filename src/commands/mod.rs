//! External processes: shell steps (and later PTY agents). A shell command
//! runs in its own process group, inherits lev's environment plus the step's
//! `env`, and is stopped with TERM then KILL on timeout or cancel.
//!
//! Must not depend on `journal`, `workflow` or any participant.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ShellCommand {
    /// Run by `sh -c`.
    pub script: String,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// Exported as `LEV_IDEMPOTENCY_KEY`.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShellResult {
    /// `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("cannot start `sh` in {cwd}: {message}")]
    Spawn { cwd: String, message: String },
}

/// A chunk of live output: (is_stderr, text).
pub type OutputSender = mpsc::UnboundedSender<(bool, String)>;

/// Runs the command to completion, timeout or cancellation.
pub async fn run_shell(
    cmd: &ShellCommand,
    _cancel: CancellationToken,
    _live: Option<OutputSender>,
) -> Result<ShellResult, ShellError> {
    Err(ShellError::Spawn {
        cwd: cmd.cwd.display().to_string(),
        message: "not implemented".into(),
    })
}
