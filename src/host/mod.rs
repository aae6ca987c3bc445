//! The control socket: a transport of the engine handle for other `lev`
//! processes. redb lets one process open a database, so the `lev` that
//! executes runs listens on a Unix socket (mode 0600) in the data
//! directory, and other invocations (`lev runs`, `show`, `cancel`, `pause`,
//! `memory rm`, …) reach its engine there when the database is locked.
//!
//! Wire format: one JSON request per line (`{"request":"submit","op":…}` or
//! `{"request":"query","query":…}`), one JSON response per line. Requests
//! are the engine's own `Op`s and `Query`s; the socket adds one rule: it
//! never makes this process start executing another run (resume, fork, or
//! a retry of a run it does not execute): that belongs to the asking
//! process once the journal is free.

mod inbox;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::engine::{Done, Engine, Query, Reply};
use crate::protocol::Op;

pub use inbox::{Inbox, serve_inbox};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Submit { op: Op },
    Query { query: Query },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(Value),
    Err(String),
}

/// The host's listening side; removes its socket file when dropped.
pub struct Host {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts listening at `path`. Call only while holding the journal: a
/// socket file left by a killed host is then stale and is replaced.
pub fn serve(path: &Path, engine: Engine) -> std::io::Result<Host> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    set_private(path)?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let engine = engine.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, engine).await {
                    tracing::warn!(error = %e, "control socket client");
                }
            });
        }
    });
    Ok(Host {
        path: path.to_path_buf(),
        task,
    })
}

fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

async fn handle(stream: UnixStream, engine: Engine) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => match answer(req, &engine).await {
                Ok(v) => Response::Ok(v),
                Err(e) => Response::Err(e),
            },
            Err(e) => Response::Err(format!("bad request: {e}")),
        };
        let mut text =
            serde_json::to_string(&response).unwrap_or_else(|_| "{\"err\":\"encode\"}".into());
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

/// Carries out one request on `engine`, as the socket and the inbox do.
async fn answer(req: Request, engine: &Engine) -> Result<Value, String> {
    match req {
        Request::Query { query } => {
            let reply = engine.query(query).await.map_err(|e| e.to_string())?;
            serde_json::to_value(&reply).map_err(|e| e.to_string())
        }
        Request::Submit { op } => {
            if let Some(why) = would_start_a_run(&op, engine) {
                return Err(why);
            }
            if op.run().is_some_and(|run| engine.is_active(run)) {
                engine.check_target(&op).await.map_err(|e| e.to_string())?;
            }
            let done = engine
                .submit_confirmed(op)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(done.done()).map_err(|e| e.to_string())
        }
    }
}

/// Why the socket refuses an op that would make this process execute a
/// run it does not execute now.
fn would_start_a_run(op: &Op, engine: &Engine) -> Option<String> {
    match op {
        Op::Resume { run } | Op::Fork { run, .. } => Some(format!(
            "another lev process holds the journal; run this once it has finished (run {run})"
        )),
        Op::StartWorkflow { .. } | Op::StartObjective { .. } => {
            Some("another lev process holds the journal; start the run once it has finished".into())
        }
        Op::RetryStep { run, .. } if !engine.is_active(run) => Some(format!(
            "run {run} is not active in the lev process that holds the journal"
        )),
        _ => None,
    }
}

/// Why a call to the host gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The connection failed or closed (the host may have just ended: its
    /// run finished). Opening the journal again may succeed.
    #[error("control socket: {0}")]
    Gone(String),
    /// The host answered with an error, or with something unreadable.
    #[error("{0}")]
    Answer(String),
}

/// A connection to the host.
pub struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    pub async fn connect(path: &Path) -> std::io::Result<Client> {
        let stream = UnixStream::connect(path).await?;
        let (read, write) = stream.into_split();
        Ok(Client {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn call(&mut self, req: &Request) -> Result<Value, CallError> {
        let mut text = serde_json::to_string(req).map_err(|e| CallError::Answer(e.to_string()))?;
        text.push('\n');
        let gone = |e: std::io::Error| CallError::Gone(e.to_string());
        self.write.write_all(text.as_bytes()).await.map_err(gone)?;
        let line = self
            .lines
            .next_line()
            .await
            .map_err(gone)?
            .ok_or_else(|| CallError::Gone("the lev host closed the connection".into()))?;
        match serde_json::from_str::<Response>(&line).map_err(unreadable)? {
            Response::Ok(v) => Ok(v),
            Response::Err(e) => Err(CallError::Answer(e)),
        }
    }

    /// Submits an op to the host's engine; returns what it did.
    pub async fn submit(&mut self, op: Op) -> Result<Done, CallError> {
        let v = self.call(&Request::Submit { op }).await?;
        serde_json::from_value(v).map_err(unreadable)
    }

    pub async fn query(&mut self, query: Query) -> Result<Reply, CallError> {
        let v = self.call(&Request::Query { query }).await?;
        serde_json::from_value(v).map_err(unreadable)
    }
}

fn unreadable(e: serde_json::Error) -> CallError {
    CallError::Answer(format!("unreadable reply from the lev host: {e}"))
}
