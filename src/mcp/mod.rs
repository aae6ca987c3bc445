//! The MCP client: lev's agents use the tools of configured MCP servers
//! (`config::mcp_servers`) through one [`Pool`] per run.
//!
//! The pool keeps one connection per server, made at the server's first use
//! (two concurrent first uses make one), and makes it again when the server
//! went away: a stdio server whose process exited, an HTTP server that
//! stopped answering. A call is never sent twice: a connection that breaks
//! while a call is out fails that call (it may have had its effect), and the
//! next use reconnects. What happens to servers is reported as
//! [`PoolNotice`]s for the engine to journal and show; nothing here prints
//! (lev has a TUI) — a server's stderr is kept for error messages and
//! `tracing::debug!` only.
//!
//! Files: `slot` (one server: start once, restart with backoff), `connect`
//! (spawning and HTTP sessions, the handshake), `connection` (a live
//! connection and how it ends), `requests` (calls, lists, reads), `handler`
//! (what lev answers when a server talks first), `tap` (what arrives, read
//! before rmcp: progress, a refused session), `stderr` (a stdio server's
//! last lines), `content` (results as text).

mod connect;
mod connection;
mod content;
mod handler;
mod requests;
mod slot;
mod stderr;
mod tap;

use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedSender;

pub use crate::config::mcp_servers::{McpServer, McpTransport};

use slot::Slot;

/// One tool a server offers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct McpTool {
    pub server: String,
    /// The server's own name for it.
    pub name: String,
    /// `""` when the server gives none.
    pub description: String,
    /// The tool's `inputSchema`, a JSON object.
    pub input_schema: serde_json::Value,
    /// The server says it changes nothing (`readOnlyHint`).
    pub read_only: bool,
    /// The server says calling it twice does what calling it once does
    /// (`idempotentHint`, or read-only).
    pub idempotent: bool,
}

/// What a call returned, as text for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    pub content: String,
    /// The tool failed (its result said so, or the server refused the call):
    /// `content` says why, for the model to read.
    pub is_error: bool,
}

/// A progress notification of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// A server's request for the user's input (MCP elicitation), made
/// during one of its tool calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Elicitation {
    pub server: String,
    pub message: String,
    /// What to ask for: the `requestedSchema` (an object schema of flat
    /// fields), or `None` when the server asks the user to open `url`.
    pub schema: Option<serde_json::Value>,
    pub url: Option<String>,
}

/// The user's reply to an [`Elicitation`].
#[derive(Debug, Clone, PartialEq)]
pub enum Elicited {
    /// The fields given (empty for a URL the user opened).
    Accept(serde_json::Map<String, serde_json::Value>),
    Decline,
    Cancel,
}

/// Who puts a server's [`Elicitation`] to the user (the engine: a question
/// in the sidebar). Without one, the pool declines every elicitation.
pub trait Elicitor: Send + Sync + 'static {
    fn elicit(&self, request: Elicitation) -> futures::future::BoxFuture<'static, Elicited>;
}

/// What the pool reports as it goes (the engine journals and shows these).
#[derive(Debug, Clone, PartialEq)]
pub enum PoolNotice {
    /// A server connected (first start or a restart: `restart` counts
    /// restarts, 0 for the first).
    Started {
        server: String,
        restart: u32,
        tools: usize,
    },
    /// A server stopped unexpectedly (its process exited, its connection
    /// dropped) or failed to start.
    Down { server: String, error: String },
    /// The server said its tool list changed; the pool already refreshed its
    /// cache.
    ToolsChanged { server: String },
    /// The server asked the user something (MCP elicitation) and no
    /// [`Elicitor`] was given: the pool declined it.
    Elicitation { server: String, message: String },
}

/// The connections to a run's MCP servers, shared by its agents (`&self`
/// everywhere).
pub struct Pool {
    /// In config order.
    slots: Vec<Slot>,
}

impl Pool {
    /// A pool for these servers; nothing is started until first used.
    /// `workspace` is the working directory of stdio servers whose entry
    /// names none. `notices` receives [`PoolNotice`]s (never waited on).
    pub fn new(
        servers: Vec<McpServer>,
        workspace: PathBuf,
        notices: UnboundedSender<PoolNotice>,
    ) -> Pool {
        Pool::answering(servers, workspace, notices, None)
    }

    /// [`Pool::new`], with `elicitor` putting servers' elicitations to the
    /// user.
    pub fn answering(
        servers: Vec<McpServer>,
        workspace: PathBuf,
        notices: UnboundedSender<PoolNotice>,
        elicitor: Option<std::sync::Arc<dyn Elicitor>>,
    ) -> Pool {
        let slots = servers
            .into_iter()
            .map(|config| Slot::new(config, workspace.clone(), notices.clone(), elicitor.clone()))
            .collect();
        Pool { slots }
    }

    /// The configured servers' names, in config order.
    pub fn servers(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name().to_string()).collect()
    }

    /// The server's tools, connecting to it first if needed; cached until
    /// the server says they changed or it restarts. `Err` says in words what
    /// went wrong (the server, its command, the OS error, the last lines of
    /// its stderr).
    pub async fn tools(&self, server: &str) -> Result<Vec<McpTool>, String> {
        self.slot(server)?.tools().await
    }

    /// Calls one tool with JSON-object arguments, connecting first if
    /// needed. A server that is down is restarted before the call (with
    /// backoff: 200 ms doubling to 5 s, at most 5 tries); a connection that
    /// breaks during the call fails it — it is not sent again, as it may
    /// have had its effect — and the next use restarts the server. Progress
    /// notifications of this call go to `progress`.
    ///
    /// A failed tool (its result says `isError`, or the server refused the
    /// call: an unknown tool, invalid arguments) is `Ok` with
    /// `is_error: true`, for the model to read. `Err` is for a server that
    /// could not be reached, stopped during the call, or did not answer
    /// within its `call_timeout`.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        progress: Option<UnboundedSender<Progress>>,
    ) -> Result<CallOutput, String> {
        self.slot(server)?.call(tool, arguments, progress).await
    }

    /// Reads one resource (`resources/read`) as text: text contents joined,
    /// a blob as `[binary <mime>, N bytes]`.
    pub async fn read_resource(&self, server: &str, uri: &str) -> Result<String, String> {
        self.slot(server)?.read_resource(uri).await
    }

    /// One of the server's prompts (`prompts/get`, no arguments) as text:
    /// its description, then each message under its role.
    pub async fn prompt(&self, server: &str, name: &str) -> Result<String, String> {
        self.slot(server)?.prompt(name).await
    }

    /// The process id of a stdio server that is running, for tests and
    /// benchmarks.
    pub fn pid(&self, server: &str) -> Option<u32> {
        self.slot(server).ok()?.pid()
    }

    /// Stops every server and waits for them to end (a stdio server: its
    /// stdin closed, then SIGTERM, then SIGKILL; an HTTP server: its session
    /// deleted). Later uses fail.
    pub async fn shutdown(&self) {
        futures::future::join_all(self.slots.iter().map(Slot::shutdown)).await;
    }

    fn slot(&self, server: &str) -> Result<&Slot, String> {
        self.slots
            .iter()
            .find(|s| s.name() == server)
            .ok_or_else(|| {
                let names = self.servers();
                if names.is_empty() {
                    format!("no MCP server named `{server}`: none is configured")
                } else {
                    format!(
                        "no MCP server named `{server}` (configured: {})",
                        names.join(", ")
                    )
                }
            })
    }
}

/// Dropping the pool stops its servers in the background; a stdio server's
/// process is killed at the latest when the runtime drops its task.
impl Drop for Pool {
    fn drop(&mut self) {
        for slot in &self.slots {
            slot.abandon();
        }
    }
}

#[cfg(test)]
mod tests;
