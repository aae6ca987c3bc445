//! External processes: shell steps, and programs in a pseudo-terminal
//! (`pty`, for PTY steps and agent CLIs). A shell command
//! runs in its own process group, inherits lev's environment (without its
//! provider keys) plus the step's `env`, and is stopped with TERM then KILL
//! on timeout or cancel. Every command dies with lev (`lifeline`), and
//! `process` tells whether a group lev started is still alive, across lev
//! restarts and PID reuse.
//!
//! Must not depend on `journal`, `workflow` or any participant.

pub mod lifeline;
pub mod offline;
pub mod process;
pub mod pty;
mod shell;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
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
    /// When set, the command is *gated*: once its process group exists it
    /// is told here, and the script starts only when the receiver answers
    /// `true` (after journaling the group durably, so resume can find the
    /// command, and with it the step's start). A `false` or a dropped
    /// answer means the command never runs.
    pub started: Option<StartedSender>,
    /// Start it without a network (only its own loopback) where the
    /// platform allows ([`offline::available`]); elsewhere it runs as usual
    /// and callers say the setting is advisory.
    pub offline: bool,
}

/// A gated command's process group exists (`None` if it could not be
/// identified); `go` lets it start.
#[derive(Debug)]
pub struct Started {
    pub group: Option<crate::protocol::ProcessGroup>,
    pub go: oneshot::Sender<bool>,
}

pub type StartedSender = mpsc::UnboundedSender<Started>;

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
    #[error("the command's start could not be journaled, so it did not run")]
    NotRecorded,
}

/// How long a stopped command gets between TERM and KILL.
pub const GRACE_PERIOD: Duration = Duration::from_secs(2);

/// How long the output pipes may stay open after the main process ended
/// (a background grandchild holding them) before the group is killed.
pub const PIPE_DRAIN: Duration = Duration::from_secs(2);

/// Bytes kept per stream; the rest is counted and replaced by a marker.
pub const MAX_CAPTURE_BYTES: usize = 64 * 1024 * 1024;

/// A chunk of live output: (is_stderr, text).
pub type OutputSender = mpsc::UnboundedSender<(bool, String)>;

/// Runs the command to completion, timeout or cancellation. On timeout or
/// cancel the whole process group gets TERM, then KILL after
/// [`GRACE_PERIOD`]; dropping the returned future kills the group too.
/// Processes of the group still alive when the main process has ended are
/// killed as well: a step owns everything it started.
pub async fn run_shell(
    cmd: &ShellCommand,
    cancel: CancellationToken,
    live: Option<OutputSender>,
) -> Result<ShellResult, ShellError> {
    shell::run(cmd, cancel, live).await
}
