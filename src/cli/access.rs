//! Reaching the engine from a command: a handle on the journal when this
//! process can open it, otherwise the engine of the lev process that holds
//! it, through its control socket. Either way the command sends the same
//! `Query`s and `Op`s.

use crate::engine::{Done, Engine, Query, Reply};
use crate::host::{CallError, Client};
use crate::journal::{Journal, JournalError, MemoryRecord, RunMeta};
use crate::memory;
use crate::paths::Paths;
use crate::protocol::{Op, Recorded, RunId, StepKey};

use super::context::error;
use super::exit;

pub struct Access {
    paths: Paths,
    conn: Conn,
}

enum Conn {
    /// This process opened the journal; its engine executes nothing.
    Local(Journal, Engine),
    /// Another lev process holds the journal and is executing runs.
    Remote(Client),
}

/// Expects one kind of reply.
macro_rules! expect {
    ($reply:expr, $kind:path) => {
        match $reply? {
            $kind(v) => Ok(v),
            other => Err(other.unexpected()),
        }
    };
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
            match super::context::open_once(paths).await {
                Ok(j) => {
                    let engine = Engine::open(
                        j.clone(),
                        Err("a command that only reads and records executes no run".into()),
                    );
                    return Ok(Conn::Local(j, engine));
                }
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
            Conn::Local(j, _) => Some(j.clone()),
            Conn::Remote(_) => None,
        }
    }

    /// True when runs marked running are being executed right now by the host.
    pub fn is_remote(&self) -> bool {
        matches!(self.conn, Conn::Remote(_))
    }

    /// Reconnects once when the host went away mid-request (its run
    /// finished): the journal may be free now, or another host up.
    async fn reconnect(&mut self, e: CallError, reopened: &mut bool) -> Result<(), String> {
        match e {
            CallError::Gone(_) if !*reopened => {
                *reopened = true;
                self.conn = Access::connect(&self.paths)
                    .await
                    .map_err(|_| e.to_string())?;
                Ok(())
            }
            e => Err(e.to_string()),
        }
    }

    pub async fn query(&mut self, query: Query) -> Result<Reply, String> {
        let mut reopened = false;
        loop {
            let result = match &mut self.conn {
                Conn::Local(_, engine) => engine
                    .query(query.clone())
                    .await
                    .map_err(|e| CallError::Answer(e.to_string())),
                Conn::Remote(c) => c.query(query.clone()).await,
            };
            match result {
                Err(e) => self.reconnect(e, &mut reopened).await?,
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Submits an op; returns what it did. (On a shared journal, the
    /// handle sends an op for a run another process executes to it.)
    pub async fn submit(&mut self, op: Op) -> Result<Done, String> {
        let mut reopened = false;
        loop {
            let result = match &mut self.conn {
                Conn::Local(_, engine) => engine
                    .submit(op.clone())
                    .await
                    .map(|done| done.done())
                    .map_err(|e| CallError::Answer(e.to_string())),
                Conn::Remote(c) => c.submit(op.clone()).await,
            };
            match result {
                Err(e) => self.reconnect(e, &mut reopened).await?,
                Ok(v) => return Ok(v),
            }
        }
    }

    pub async fn runs(&mut self) -> Result<Vec<RunMeta>, String> {
        expect!(self.query(Query::Runs).await, Reply::Runs)
    }

    pub async fn run(&mut self, id: &RunId) -> Result<Option<RunMeta>, String> {
        expect!(self.query(Query::Run { id: id.clone() }).await, Reply::Run)
    }

    pub async fn events(&mut self, id: &RunId) -> Result<Vec<Recorded>, String> {
        expect!(
            self.query(Query::Events { id: id.clone() }).await,
            Reply::Events
        )
    }

    pub async fn export(&mut self, id: &RunId) -> Result<Vec<u8>, String> {
        expect!(
            self.query(Query::Export { id: id.clone() }).await,
            Reply::Export
        )
        .map(String::into_bytes)
    }

    /// The root workflow text `id` is pinned to, and its path.
    pub async fn definition(&mut self, id: &RunId) -> Result<(std::path::PathBuf, String), String> {
        match self.query(Query::Definition { id: id.clone() }).await? {
            Reply::Definition { path, text } => Ok((path, text)),
            other => Err(other.unexpected()),
        }
    }

    /// What the `runs` newest runs suggest, newest first.
    pub async fn suggestions(
        &mut self,
        runs: usize,
    ) -> Result<Vec<crate::engine::Suggestion>, String> {
        expect!(
            self.query(Query::Suggestions { runs }).await,
            Reply::Suggestions
        )
    }

    pub async fn whisper_scores(&mut self) -> Result<Vec<crate::protocol::WhisperScore>, String> {
        expect!(self.query(Query::WhisperScores).await, Reply::WhisperScores)
    }

    pub async fn memory_list(
        &mut self,
        namespaces: Option<Vec<String>>,
    ) -> Result<Vec<MemoryRecord>, String> {
        expect!(
            self.query(Query::Memory { namespaces }).await,
            Reply::Memory
        )
    }

    pub async fn memory_search(
        &mut self,
        query: &memory::Query,
    ) -> Result<Vec<memory::Hit>, String> {
        let query = Query::MemorySearch {
            query: query.clone(),
        };
        expect!(self.query(query).await, Reply::Hits)
    }

    pub async fn context(
        &mut self,
        run: &RunId,
        step: &StepKey,
        turn: Option<u32>,
    ) -> Result<crate::engine::ContextShown, String> {
        let query = Query::Context {
            run: run.clone(),
            step: step.clone(),
            turn,
        };
        expect!(self.query(query).await, Reply::Context).map(|c| *c)
    }

    pub async fn worktree_diff(&mut self, run: &RunId, step: &StepKey) -> Result<String, String> {
        let query = Query::WorktreeDiff {
            run: run.clone(),
            step: step.clone(),
        };
        expect!(self.query(query).await, Reply::Diff)
    }
}
