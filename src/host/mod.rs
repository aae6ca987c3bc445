//! One process hosts the journal: redb lets one process open a database, so
//! the `lev` that executes runs listens on a Unix socket (mode 0600) in the
//! data directory, and other invocations (`lev runs`, `show`, `cancel`, …)
//! talk to it there when the database is locked.
//!
//! Wire format: one JSON request per line, one JSON response per line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::journal::{Journal, MemoryRecord, RunMeta};
use crate::memory;
use crate::protocol::{Op, Recorded, RunId};
use crate::workflow;

/// Runs this process is executing, with the channel that takes their ops.
pub type ActiveRuns = Arc<Mutex<BTreeMap<RunId, mpsc::UnboundedSender<Op>>>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Runs,
    Run {
        id: RunId,
    },
    Events {
        id: RunId,
    },
    Export {
        id: RunId,
    },
    /// Deliver an op to an active run, or cancel an idle one in the journal.
    Op {
        op: Op,
    },
    /// Memory entries of some namespaces (all when `None`).
    MemoryList {
        namespaces: Option<Vec<String>>,
    },
    MemorySearch {
        query: memory::Query,
    },
    /// Delete one memory entry (written through the host's journal writer).
    MemoryRemove {
        namespace: String,
        key: String,
    },
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
pub fn serve(path: &Path, journal: Journal, active: ActiveRuns) -> std::io::Result<Host> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    set_private(path)?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (journal, active) = (journal.clone(), active.clone());
            tokio::spawn(async move {
                if let Err(e) = handle(stream, journal, active).await {
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

async fn handle(stream: UnixStream, journal: Journal, active: ActiveRuns) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => answer(req, &journal, &active).await,
            Err(e) => Response::Err(format!("bad request: {e}")),
        };
        let mut text =
            serde_json::to_string(&response).unwrap_or_else(|_| "{\"err\":\"encode\"}".into());
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

async fn answer(req: Request, journal: &Journal, active: &ActiveRuns) -> Response {
    let result: Result<Value, String> = async {
        match req {
            Request::Runs => to_value(&journal.runs().await.map_err(|e| e.to_string())?),
            Request::Run { id } => to_value(&journal.run(&id).await.map_err(|e| e.to_string())?),
            Request::Events { id } => to_value(
                &workflow::read_run(journal, &id)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Request::Export { id } => {
                let mut buf = Vec::new();
                journal
                    .export(&id, &mut buf)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Value::String(String::from_utf8_lossy(&buf).into_owned()))
            }
            Request::MemoryList { namespaces } => to_value(
                &memory::list(journal, namespaces)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Request::MemorySearch { query } => to_value(
                &memory::search(journal, &query)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Request::MemoryRemove { namespace, key } => to_value(
                &memory::remove(journal, &namespace, &key)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Request::Op { op } => {
                let run = op.run().clone();
                let sender = active.lock().ok().and_then(|a| a.get(&run).cloned());
                match sender {
                    Some(tx) => {
                        check_target(&op, journal).await?;
                        tx.send(op).map_err(|_| format!("run {run} is finishing"))?;
                        Ok(Value::String(format!("sent to active run {run}")))
                    }
                    None => match op {
                        Op::Cancel { run } => workflow::cancel_idle_run(journal, &run)
                            .await
                            .map(Value::String),
                        _ => Err(format!(
                            "run {run} is not active in the lev process that holds the journal"
                        )),
                    },
                }
            }
        }
    }
    .await;
    match result {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Err(e),
    }
}

/// Ops aimed at one agent are checked against the journal first, so the
/// caller hears at once when the step is not a running agent (the engine
/// would only say so to its own participants).
async fn check_target(op: &Op, journal: &Journal) -> Result<(), String> {
    let (run, step) = match op {
        Op::Message { run, step, .. }
        | Op::Pause {
            run,
            step: Some(step),
        }
        | Op::RetryStep { run, step } => (run, step),
        _ => return Ok(()),
    };
    let events = workflow::read_run(journal, run)
        .await
        .map_err(|e| e.to_string())?;
    let checked = match op {
        Op::RetryStep { .. } => workflow::retryable(&events, step),
        _ => workflow::running_agent(&events, step),
    };
    checked.map_err(|e| format!("run {run}: {e}"))
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
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

    async fn call(&mut self, req: &Request) -> Result<Value, String> {
        let mut text = serde_json::to_string(req).map_err(|e| e.to_string())?;
        text.push('\n');
        self.write
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("control socket: {e}"))?;
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("control socket: {e}"))?
            .ok_or("the lev host closed the connection")?;
        match serde_json::from_str::<Response>(&line).map_err(|e| format!("control socket: {e}"))? {
            Response::Ok(v) => Ok(v),
            Response::Err(e) => Err(e),
        }
    }

    pub async fn runs(&mut self) -> Result<Vec<RunMeta>, String> {
        let v = self.call(&Request::Runs).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn run(&mut self, id: &RunId) -> Result<Option<RunMeta>, String> {
        let v = self.call(&Request::Run { id: id.clone() }).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn events(&mut self, id: &RunId) -> Result<Vec<Recorded>, String> {
        let v = self.call(&Request::Events { id: id.clone() }).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn export(&mut self, id: &RunId) -> Result<String, String> {
        match self.call(&Request::Export { id: id.clone() }).await? {
            Value::String(s) => Ok(s),
            _ => Err("unexpected export reply".into()),
        }
    }

    pub async fn memory_list(
        &mut self,
        namespaces: Option<Vec<String>>,
    ) -> Result<Vec<MemoryRecord>, String> {
        let v = self.call(&Request::MemoryList { namespaces }).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn memory_search(
        &mut self,
        query: memory::Query,
    ) -> Result<Vec<memory::Hit>, String> {
        let v = self.call(&Request::MemorySearch { query }).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn memory_remove(
        &mut self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, String> {
        let req = Request::MemoryRemove {
            namespace: namespace.to_string(),
            key: key.to_string(),
        };
        let v = self.call(&req).await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    pub async fn op(&mut self, op: Op) -> Result<String, String> {
        match self.call(&Request::Op { op }).await? {
            Value::String(s) => Ok(s),
            v => Ok(v.to_string()),
        }
    }
}
