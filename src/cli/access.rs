//! Reading the journal from a command: directly when this process can open
//! it, otherwise through the host process's control socket.

use crate::host::Client;
use crate::journal::{Journal, JournalError, MemoryRecord, RunMeta};
use crate::memory;
use crate::paths::Paths;
use crate::protocol::{Op, Recorded, RunId};
use crate::workflow;

use super::context::error;
use super::exit;

pub struct Access {
    paths: Paths,
    conn: Conn,
}

enum Conn {
    Local(Journal),
    /// Another lev process holds the journal and is executing runs.
    Remote(Client),
}

/// The host went away mid-request (its run finished): open again, once.
fn host_gone(e: &str) -> bool {
    e.starts_with("control socket:") || e.contains("closed the connection")
}

/// Runs `$body` (which matches on `$self.conn`), and once more after
/// reopening when the host vanished in between.
macro_rules! retrying {
    ($self:ident, $body:expr) => {{
        let mut reopened = false;
        loop {
            let result = $body;
            match result {
                Err(e) if !reopened && $self.is_remote() && host_gone(&e) => {
                    reopened = true;
                    $self.conn = Access::connect(&$self.paths).await.map_err(|_| e)?;
                }
                other => break other,
            }
        }
    }};
}

impl Access {
    pub async fn open(paths: &Paths) -> Result<Access, u8> {
        let conn = Access::connect(paths).await?;
        Ok(Access {
            paths: paths.clone(),
            conn,
        })
    }

    async fn connect(paths: &Paths) -> Result<Conn, u8> {
        if let Err(e) = crate::paths::private_dir(&paths.data_dir) {
            error(&format!(
                "cannot create the data directory {}: {e}",
                paths.data_dir.display()
            ));
            return Err(exit::FAILED);
        }
        // A lev that executes runs answers on its socket; a short-lived
        // command (another `lev runs`) has none but lets go in a moment.
        let deadline = std::time::Instant::now() + super::context::LOCK_PATIENCE;
        loop {
            match Journal::open(&paths.journal()) {
                Ok(j) => return Ok(Conn::Local(j)),
                Err(JournalError::Locked { path }) => {
                    match Client::connect(&paths.socket()).await {
                        Ok(c) => return Ok(Conn::Remote(c)),
                        Err(_) if std::time::Instant::now() < deadline => {
                            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                        }
                        Err(e) => {
                            error(&format!(
                                "journal {path} is in use by another lev process, and its control socket {} does not answer ({e})",
                                paths.socket().display()
                            ));
                            return Err(exit::FAILED);
                        }
                    }
                }
                Err(e) => {
                    error(&e.to_string());
                    return Err(exit::FAILED);
                }
            }
        }
    }

    /// The journal, when this process opened it itself (no other lev
    /// process is executing runs).
    pub fn local(&self) -> Option<Journal> {
        match &self.conn {
            Conn::Local(j) => Some(j.clone()),
            Conn::Remote(_) => None,
        }
    }

    /// True when runs marked running are being executed right now by the host.
    pub fn is_remote(&self) -> bool {
        matches!(self.conn, Conn::Remote(_))
    }

    pub async fn runs(&mut self) -> Result<Vec<RunMeta>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => j.runs().await.map_err(|e| e.to_string()),
                Conn::Remote(c) => c.runs().await,
            }
        )
    }

    pub async fn run(&mut self, id: &RunId) -> Result<Option<RunMeta>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => j.run(id).await.map_err(|e| e.to_string()),
                Conn::Remote(c) => c.run(id).await,
            }
        )
    }

    pub async fn events(&mut self, id: &RunId) -> Result<Vec<Recorded>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => workflow::read_run(j, id).await.map_err(|e| e.to_string()),
                Conn::Remote(c) => c.events(id).await,
            }
        )
    }

    pub async fn export(&mut self, id: &RunId) -> Result<Vec<u8>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => {
                    let mut buf = Vec::new();
                    j.export(id, &mut buf).await.map_err(|e| e.to_string())?;
                    Ok(buf)
                }
                Conn::Remote(c) => c.export(id).await.map(String::into_bytes),
            }
        )
    }

    pub async fn memory_list(
        &mut self,
        namespaces: Option<Vec<String>>,
    ) -> Result<Vec<MemoryRecord>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => memory::list(j, namespaces.clone())
                    .await
                    .map_err(|e| e.to_string()),
                Conn::Remote(c) => c.memory_list(namespaces.clone()).await,
            }
        )
    }

    pub async fn memory_search(
        &mut self,
        query: &memory::Query,
    ) -> Result<Vec<memory::Hit>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => memory::search(j, query).await.map_err(|e| e.to_string()),
                Conn::Remote(c) => c.memory_search(query.clone()).await,
            }
        )
    }

    /// Deletes a memory entry; while a run executes, the host's writer does it.
    pub async fn memory_remove(
        &mut self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => memory::remove(j, namespace, key)
                    .await
                    .map_err(|e| e.to_string()),
                Conn::Remote(c) => c.memory_remove(namespace, key).await,
            }
        )
    }

    /// Cancels one running step; only the process executing the run can.
    pub async fn cancel_step(&mut self, id: &RunId, step: &str) -> Result<String, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(_) => Err(format!(
                    "run {id} is not being executed by any lev process, so step `{step}` is not running"
                )),
                Conn::Remote(c) => {
                    c.op(Op::CancelStep {
                        run: id.clone(),
                        step: crate::protocol::StepKey::new(step),
                    })
                    .await
                }
            }
        )
    }

    /// Sends a steering op to the process executing the run.
    pub async fn live_op(&mut self, op: Op) -> Result<String, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(_) => Err(format!(
                    "run {} is not being executed by any lev process: there is nothing live to steer (`lev resume` continues a stopped run)",
                    op.run()
                )),
                Conn::Remote(c) => c.op(op.clone()).await,
            }
        )
    }

    pub async fn cancel(&mut self, id: &RunId) -> Result<String, String> {
        retrying!(
            self,
            match &mut self.conn {
                Conn::Local(j) => workflow::cancel_idle_run(j, id).await,
                Conn::Remote(c) => c.op(Op::Cancel { run: id.clone() }).await,
            }
        )
    }
}
