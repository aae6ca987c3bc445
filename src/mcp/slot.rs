//! One configured server in the pool: its current connection, made at first
//! use by one caller while the others wait, and made again (with backoff)
//! when it was lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::connect::connect;
use super::connection::Connection;
use super::requests::CallError;
use super::{CallOutput, McpServer, McpTool, PoolNotice, Progress};

/// A lost server is tried this often per use before the use fails.
const RESTART_TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A stopping stdio server gets its stdin closed, then SIGTERM, then
/// SIGKILL, 3 s apart (rmcp's sequence): this covers it.
const STOP_LIMIT: Duration = Duration::from_secs(10);

pub(crate) struct Slot {
    config: McpServer,
    workspace: PathBuf,
    notices: UnboundedSender<PoolNotice>,
    elicitor: Option<Arc<dyn super::Elicitor>>,
    /// Held while connecting, so concurrent first uses connect once.
    gate: tokio::sync::Mutex<()>,
    current: Mutex<Option<Arc<Connection>>>,
    /// Successful connections so far: the next one's restart number.
    starts: AtomicU32,
    /// Bumped after each failed attempt to connect, whose error is kept: a
    /// caller that waited for that attempt fails with it rather than trying
    /// all over again.
    failures: AtomicU64,
    last_failure: Mutex<String>,
    closed: AtomicBool,
}

impl Slot {
    pub(crate) fn new(
        config: McpServer,
        workspace: PathBuf,
        notices: UnboundedSender<PoolNotice>,
        elicitor: Option<Arc<dyn super::Elicitor>>,
    ) -> Slot {
        Slot {
            config,
            workspace,
            notices,
            elicitor,
            gate: tokio::sync::Mutex::new(()),
            current: Mutex::new(None),
            starts: AtomicU32::new(0),
            failures: AtomicU64::new(0),
            last_failure: Mutex::new(String::new()),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.live()?.pid
    }

    pub(crate) async fn tools(&self) -> Result<Vec<McpTool>, String> {
        let mut again = true;
        loop {
            let connection = self.ready().await?;
            if let Some(tools) = connection.shared.cached_tools() {
                return Ok(tools);
            }
            match connection.list_tools(self.config.call_timeout).await {
                // Listing changes nothing: on a lost connection, list anew.
                Err(_) if again && !connection.is_up() => again = false,
                done => return done,
            }
        }
    }

    pub(crate) async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        progress: Option<UnboundedSender<Progress>>,
    ) -> Result<CallOutput, String> {
        // A call the server never took is sent once more, on a new
        // connection.
        let mut again = true;
        loop {
            let connection = self.ready().await?;
            match connection
                .call(
                    tool,
                    arguments.clone(),
                    progress.clone(),
                    self.config.call_timeout,
                )
                .await
            {
                Ok(output) => return Ok(output),
                Err(CallError::NotSent(_)) if again => again = false,
                Err(CallError::NotSent(why)) => {
                    return Err(format!("the call to `{tool}` was not sent: {why}"));
                }
                Err(CallError::Failed(error)) => return Err(error),
            }
        }
    }

    pub(crate) async fn read_resource(&self, uri: &str) -> Result<String, String> {
        let mut again = true;
        loop {
            let connection = self.ready().await?;
            match connection
                .read_resource(uri, self.config.call_timeout)
                .await
            {
                Err(_) if again && !connection.is_up() => again = false,
                done => return done,
            }
        }
    }

    pub(crate) async fn prompt(&self, name: &str) -> Result<String, String> {
        let mut again = true;
        loop {
            let connection = self.ready().await?;
            match connection.prompt(name, self.config.call_timeout).await {
                Err(_) if again && !connection.is_up() => again = false,
                done => return done,
            }
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let connection = self.current().take();
        if let Some(connection) = connection {
            connection.stop_and_wait(STOP_LIMIT).await;
        }
    }

    /// Stops the connection without waiting (the pool is dropped).
    pub(crate) fn abandon(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(connection) = self.current().take() {
            connection.stop();
        }
    }

    fn current(&self) -> MutexGuard<'_, Option<Arc<Connection>>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> Option<Arc<Connection>> {
        self.current().as_ref().filter(|c| c.is_up()).cloned()
    }

    /// The live connection, made first if there is none: once for a first
    /// start, up to [`RESTART_TRIES`] times with backoff for a restart.
    async fn ready(&self) -> Result<Arc<Connection>, String> {
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        let failures = self.failures.load(Ordering::SeqCst);
        let _gate = self.gate.lock().await;
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        self.refuse_if_closed()?;
        if self.failures.load(Ordering::SeqCst) != failures {
            return Err(self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone());
        }
        let lost = self.current().take();
        if let Some(lost) = lost {
            lost.stop();
        }
        let restart = self.starts.load(Ordering::SeqCst);
        let tries = if restart == 0 { 1 } else { RESTART_TRIES };
        let mut backoff = FIRST_BACKOFF;
        let mut error = String::new();
        let mut tried = 0;
        for attempt in 1..=tries {
            tried = attempt;
            if restart > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                self.refuse_if_closed()?;
            }
            match connect(
                &self.config,
                &self.workspace,
                &self.notices,
                self.elicitor.clone(),
            )
            .await
            {
                Ok((connection, tools)) => {
                    let connection = Arc::new(connection);
                    if let Err(closed) = self.refuse_if_closed() {
                        connection.stop_and_wait(STOP_LIMIT).await;
                        return Err(closed);
                    }
                    self.starts.fetch_add(1, Ordering::SeqCst);
                    *self.current() = Some(connection.clone());
                    let _ = self.notices.send(PoolNotice::Started {
                        server: self.name().to_string(),
                        restart,
                        tools,
                    });
                    return Ok(connection);
                }
                Err(e) => {
                    tracing::debug!(server = %self.name(), error = %e.text, "MCP server did not start");
                    error = e.text;
                    if e.lasting {
                        break;
                    }
                }
            }
        }
        if tried > 1 {
            error = format!("{error} (tried {tried} times)");
        }
        let _ = self.notices.send(PoolNotice::Down {
            server: self.name().to_string(),
            error: error.clone(),
        });
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error.clone();
        self.failures.fetch_add(1, Ordering::SeqCst);
        Err(error)
    }

    fn refuse_if_closed(&self) -> Result<(), String> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(format!(
                "MCP server `{}` is not available: lev stopped its MCP servers",
                self.name()
            ));
        }
        Ok(())
    }
}
