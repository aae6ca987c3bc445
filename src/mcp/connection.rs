//! One live connection to a server and how it ends: stopped by lev, or lost
//! (the process exited, the transport broke). A watcher task holds rmcp's
//! running service and reports a loss that no request noticed first; each
//! loss is reported once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::Peer;
use rmcp::service::{RoleClient, RunningService};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::PoolNotice;
use super::handler::{Handler, Shared};
use super::stderr::{StderrTail, as_suffix};

/// How long a lost server's stderr may take to say its last words.
const LAST_WORDS: Duration = Duration::from_millis(500);

pub(crate) struct Connection {
    pub(crate) peer: Peer<RoleClient>,
    pub(crate) shared: Arc<Shared>,
    /// The process of a stdio server.
    pub(crate) pid: Option<u32>,
    /// The command or URL, for messages.
    pub(crate) shown: String,
    life: Arc<Life>,
    stderr: Option<StderrTail>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

struct Life {
    /// Ends rmcp's service (which closes the transport: a child's stdin is
    /// closed, then it is signalled; an HTTP session is deleted).
    stop: CancellationToken,
    /// lev stopped it: its end is no loss.
    stopping: AtomicBool,
    /// Its loss was reported.
    down: AtomicBool,
    /// rmcp's service ended.
    ended: CancellationToken,
}

/// What the connection is made of, from `connect`.
pub(crate) struct Parts {
    pub(crate) running: RunningService<RoleClient, Handler>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: CancellationToken,
    pub(crate) pid: Option<u32>,
    pub(crate) stderr: Option<StderrTail>,
    pub(crate) shown: String,
}

impl Connection {
    pub(crate) fn start(parts: Parts) -> Connection {
        let life = Arc::new(Life {
            stop: parts.stop,
            stopping: AtomicBool::new(false),
            down: AtomicBool::new(false),
            ended: CancellationToken::new(),
        });
        let peer = parts.running.peer().clone();
        let watcher = tokio::spawn(watch(
            parts.running,
            life.clone(),
            parts.shared.clone(),
            parts.stderr.clone(),
            parts.pid,
        ));
        Connection {
            peer,
            shared: parts.shared,
            pid: parts.pid,
            shown: parts.shown,
            life,
            stderr: parts.stderr,
            watcher: Mutex::new(Some(watcher)),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        !self.life.down.load(Ordering::SeqCst)
            && !self.life.ended.is_cancelled()
            && !self.peer.is_transport_closed()
    }

    /// Marks the connection lost (`error` says how) so the next use
    /// reconnects; reports it unless that was done or lev is stopping it.
    /// The error, with the server's last stderr lines, for the caller.
    pub(crate) async fn lost(&self, error: String) -> String {
        let error = format!("{error}{}", self.last_lines().await);
        let stopping = self.life.stopping.load(Ordering::SeqCst);
        if !self.life.down.swap(true, Ordering::SeqCst) && !stopping {
            self.shared.notify(PoolNotice::Down {
                server: self.shared.server.clone(),
                error: error.clone(),
            });
        }
        self.life.stop.cancel();
        error
    }

    async fn last_lines(&self) -> String {
        match &self.stderr {
            Some(tail) => as_suffix(&tail.last_lines(LAST_WORDS).await),
            None => String::new(),
        }
    }

    /// Ends the connection without waiting.
    pub(crate) fn stop(&self) {
        self.life.stopping.store(true, Ordering::SeqCst);
        self.life.stop.cancel();
    }

    /// Ends the connection and waits up to `limit` for it to be gone.
    pub(crate) async fn stop_and_wait(&self, limit: Duration) {
        self.stop();
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(watcher) = watcher
            && tokio::time::timeout(limit, watcher).await.is_err()
        {
            tracing::debug!(server = %self.shared.server, "MCP server did not stop in time");
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for rmcp's service to end, reports the end if it was a loss no one
/// noticed, and kills what the server left in its process group.
async fn watch(
    running: RunningService<RoleClient, Handler>,
    life: Arc<Life>,
    shared: Arc<Shared>,
    stderr: Option<StderrTail>,
    pid: Option<u32>,
) {
    let reason = running.waiting().await;
    life.ended.cancel();
    tracing::debug!(server = %shared.server, ?reason, "MCP connection ended");
    if !life.stopping.load(Ordering::SeqCst) && !life.down.swap(true, Ordering::SeqCst) {
        let server = &shared.server;
        let error = match (shared.refusal(), &stderr) {
            (Some(refusal), _) => {
                format!("MCP server `{server}` no longer knows lev's session ({refusal})")
            }
            (None, Some(tail)) => format!(
                "MCP server `{server}` stopped{}",
                as_suffix(&tail.last_lines(LAST_WORDS).await)
            ),
            (None, None) => format!("the connection to MCP server `{server}` closed"),
        };
        shared.notify(PoolNotice::Down {
            server: server.clone(),
            error,
        });
    }
    if let Some(pid) = pid {
        kill_group(pid);
    }
}

/// A stdio server leads its own process group; once it is gone, anything
/// it started and left behind (`npx` runs the server as its child) goes too.
#[cfg(unix)]
pub(crate) fn kill_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
pub(crate) fn kill_group(_pid: u32) {}
