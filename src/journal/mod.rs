//! Durable store on redb: runs, entries keyed (run, seq), content-addressed
//! blobs, the memory bank's entries and term index, schema version. One writer thread owns write transactions and
//! group-commits appends from all callers; a caller is acknowledged only
//! after the commit that holds its entries returned.
//!
//! A `Journal` may instead live in a PostgreSQL database
//! (`Journal::open_url`, `pg`): the same records and the same order of
//! appends, through a writer task, and the same memory bank, whisper
//! scores, run deletion and doctor's checks, with the same answers.
//! Compacting is the server's there (`compact` does nothing), and
//! salvaging a damaged file is redb's alone (`JournalError::NotOnPostgres`).
//!
//! Knows nothing of `Event`: payloads are opaque bytes (JSON of an event).
//! Must not depend on `workflow`, `llm`, `tools` or any participant.

mod codec;
#[cfg(test)]
mod crash_tests;
pub(crate) mod db;
mod doctor;
mod export;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
pub(crate) mod faults;
mod guard;
mod lease;
mod memory;
pub mod pg;
mod prune;
mod reserve;
mod salvage;
mod store;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod whispers;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::ReadTransaction;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use doctor::RunCheck;
pub use lease::Lease;
pub use memory::{MemoryAuthor, MemoryPosting, MemoryPostings, MemoryRecord, MemoryTerms};
pub use prune::Removed;
pub use salvage::{Salvage, SalvagedRun, salvage};
pub use store::SCHEMA_VERSION;
use writer::Request;

use crate::protocol::{RunId, RunStatus, Seq};

/// One journal entry as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Event kind name (`step_started`, ...).
    pub kind: String,
    /// Step key (`StepKey` text) the entry belongs to, if any.
    pub step: Option<String>,
    /// Fingerprint of the step's inputs, used to detect divergence on replay.
    pub fingerprint: Option<String>,
    /// Attempt number of the step this entry records.
    pub attempt: u32,
    /// Journaled clock reading, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The event, JSON-encoded. Large payloads are stored as blobs transparently.
    pub payload: Vec<u8>,
}

/// What a run is to the `lev worker`s that choose their work
/// (`--modes`); kept beside the run on PostgreSQL (`lev_runs.work`).
pub mod work {
    /// A whole run, executed by one process.
    pub const RUN: &str = "run";
    /// A spread run: its process schedules, its agent and shell steps are
    /// step runs.
    pub const SPREAD: &str = "spread";

    /// A step run of an agent step of `mode` (`shell` for a shell step).
    pub fn step(mode: &str) -> String {
        format!("step:{mode}")
    }
}

/// Which runs a worker claims (`Journal::claim_next_of`).
#[derive(Debug, Clone)]
pub struct Accept {
    /// Spread runs, to schedule.
    pub spread: bool,
    /// Whole runs.
    pub runs: bool,
    /// Step runs: of any mode (`None`), or of these (`shell` for shell steps).
    pub step_modes: Option<Vec<String>>,
}

impl Accept {
    /// Every run.
    pub fn all() -> Accept {
        Accept {
            spread: true,
            runs: true,
            step_modes: None,
        }
    }
}

/// A run's row in the `runs` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The run's id (a ULID; key order is creation order).
    pub id: RunId,
    /// Id of the workflow definition the run executes.
    pub workflow_id: String,
    /// Human-readable name shown in run lists.
    pub name: String,
    /// Path the definition was loaded from.
    pub source: String,
    /// Blob hash of the pinned definition text.
    pub definition_blob: String,
    /// Current lifecycle state; updated by `Journal::append`.
    pub status: RunStatus,
    /// When the run was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Newest `at_ms` among the run's entries (never moves back).
    pub updated_ms: u64,
    /// Highest seq written (0 when none).
    pub last_seq: u64,
    /// Parent run for child workflows / forks.
    pub parent: Option<RunId>,
    /// A step run of `parent` (one step of a spread run), not a fork.
    #[serde(default)]
    pub step_run: bool,
}

/// Everything that can go wrong in the journal, with the context a user needs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// Another process holds the database (redb allows one).
    #[error("journal {path} is in use by another lev process")]
    Locked { path: String },
    /// The file could not be opened or created.
    #[error("journal {path}: {message}")]
    Open { path: String, message: String },
    /// The file was written by a newer lev with a newer schema.
    #[error("journal schema version {found} is newer than this lev understands ({supported})")]
    Schema { found: u64, supported: u64 },
    /// No run with this id.
    #[error("run {0} not found")]
    RunNotFound(RunId),
    /// A run with this id is already recorded.
    #[error("run {0} already exists")]
    RunExists(RunId),
    /// redb failed, or a stored record is corrupt; the message says which.
    #[error("journal storage: {0}")]
    Storage(String),
    /// The disk failed a write or read of the journal file (full, I/O
    /// error); nothing of the failed commit was acknowledged.
    #[error("journal {path}: {cause} ({during} failed)")]
    Io {
        path: String,
        /// The OS's words, e.g. "no space left on device (os error 28)".
        cause: String,
        during: String,
        /// ENOSPC or an exhausted quota: freeing space lets lev go on.
        disk_full: bool,
    },
    /// The file is damaged where a command needed it: the storage layer
    /// panicked or found a corrupt page. `lev doctor` says which runs are intact.
    #[error("journal {path} is damaged: {message} (`lev doctor` lists the intact runs)")]
    Damaged { path: String, message: String },
    /// An append counted on a seq the run is not at: an earlier append of
    /// the run, submitted before it, was not written.
    #[error(
        "run {run}: a fact meant for seq {expected} was not written, for the run is at seq {last}: an earlier fact of the run failed to be written, and nothing after it is"
    )]
    Gap {
        run: RunId,
        expected: u64,
        last: u64,
    },
    /// Another lev process executes the run (it holds a live lease on it,
    /// PostgreSQL only): what it writes goes through that process.
    #[error(
        "run {run} is being executed by lev process {holder} (it holds the run's lease); steer it there, or wait for it to end or let go"
    )]
    Leased { run: RunId, holder: String },
    /// This process's lease on the run lapsed and another process claimed
    /// it (PostgreSQL only): nothing more of the run is written here.
    #[error("{}", lease_lost(run, holder.as_deref()))]
    LeaseLost { run: RunId, holder: Option<String> },
    /// The writer thread is gone; the journal is shutting down.
    #[error("journal writer stopped")]
    Closed,
    /// What a journal on PostgreSQL cannot do: what works on a redb file
    /// only (salvaging a damaged one, `lev doctor --repair`).
    #[error("{0} is not available on a PostgreSQL journal yet")]
    NotOnPostgres(&'static str),
    /// A line of an export file is invalid.
    #[error("import {file}:{line}: {message}")]
    Import {
        file: String,
        line: usize,
        message: String,
    },
}

/// Words of `JournalError::LeaseLost`.
fn lease_lost(run: &RunId, holder: Option<&str>) -> String {
    let by = holder.map_or_else(
        || "another lev process".to_owned(),
        |h| format!("lev process {h}"),
    );
    format!(
        "run {run} was claimed by {by} after this process's lease on it lapsed (it was stopped or cut off from the database too long); this process writes nothing more of it"
    )
}

impl JournalError {
    /// The error with the journal's file filled in where the storage layer
    /// could not know it.
    pub(crate) fn at(self, path: &str) -> JournalError {
        match self {
            JournalError::Io {
                path: p,
                cause,
                during,
                disk_full,
            } if p.is_empty() => JournalError::Io {
                path: path.to_owned(),
                cause,
                during,
                disk_full,
            },
            JournalError::Damaged { path: p, message } if p.is_empty() => JournalError::Damaged {
                path: path.to_owned(),
                message,
            },
            other => other,
        }
    }

    /// True when the disk is full: the write may succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            JournalError::Io {
                disk_full: true,
                ..
            }
        )
    }
}

/// Handle to the journal; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Journal {
    backend: Backend,
}

/// Where a journal keeps its records.
#[derive(Clone)]
enum Backend {
    /// A redb file, written by this process's writer thread.
    Redb(Arc<Inner>),
    /// A PostgreSQL database (`pg`), written by a writer task.
    Pg(Arc<pg::PgJournal>),
}

/// Shared state behind every clone of a `Journal`.
struct Inner {
    /// The database, its file and the disk-full state; readers open their
    /// own read transactions on it, the writer thread its write transactions.
    shared: Arc<db::Shared>,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<AtomicU64>,
    /// Memory entries this handle's writer stored so far (every memory
    /// write goes through it: one process holds the file).
    memory_writes: AtomicU64,
    /// Namespaces found without memory entries, with `memory_writes` when
    /// they were: still empty while it has not moved.
    memory_empty: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop after its current
        // batch; joining makes sure the database is released when the last
        // handle is gone, so the file can be reopened at once.
        drop(self.tx.take());
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("journal writer thread panicked");
        }
        self.shared.close();
    }
}

impl Journal {
    /// Opens (or creates) the database and starts the writer thread. A
    /// journal that is too damaged to open is an error naming the file,
    /// never a panic.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = path.to_path_buf();
        let opener: db::Opener = Box::new(move || store::open_database(&file));
        let shared = db::Shared::open(
            path.display().to_string(),
            opener,
            Some(db::Reserve::File(reserve::reserve_path(path))),
        )?;
        Journal::start(shared)
    }

    /// Opens a journal in a PostgreSQL database (`url`: a postgres:// URL
    /// or key-value string), bringing its schema up to date, and starts its
    /// writer task on the current runtime.
    pub async fn open_url(url: &str) -> Result<Journal, JournalError> {
        Journal::open_url_leasing(url, pg::DEFAULT_LEASE).await
    }

    /// `open_url`, the leases this process takes lasting `lease` unless
    /// renewed (`lev worker --lease`).
    pub async fn open_url_leasing(
        url: &str,
        lease: std::time::Duration,
    ) -> Result<Journal, JournalError> {
        let pg = pg::PgJournal::open(url, lease).await?;
        Ok(Journal {
            backend: Backend::Pg(Arc::new(pg)),
        })
    }

    /// True when other lev processes (on other machines too) may share
    /// this journal and execute its runs: a PostgreSQL journal.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// Takes the right to execute `run` in this process (see `Lease`):
    /// on PostgreSQL, the run's lease, refused (`Leased`) while another
    /// process holds a live one; a lease this process holds already (it
    /// made the run) is handed out as it is.
    pub async fn claim(&self, run: &RunId) -> Result<Lease, JournalError> {
        let Backend::Pg(pg) = &self.backend else {
            return Ok(Lease::local(run.clone()));
        };
        let leases = pg.leases();
        if let Some((generation, lost)) = leases.held(run) {
            return Ok(Lease::on_pg(run.clone(), pg.clone(), generation, lost));
        }
        match pg
            .store()
            .claim(run, leases.holder(), leases.millis())
            .await?
        {
            pg::Claimed::Won(generation) => {
                let lost = leases.hold(run, generation);
                Ok(Lease::on_pg(run.clone(), pg.clone(), generation, lost))
            }
            pg::Claimed::Held(holder) => Err(JournalError::Leased {
                run: run.clone(),
                holder,
            }),
            pg::Claimed::Missing => Err(JournalError::RunNotFound(run.clone())),
        }
    }

    /// Lets go of `run`, which this process made (and so holds), for the
    /// workers to claim (`claim` then `Lease::release`).
    pub async fn let_go(&self, run: &RunId) -> Result<(), JournalError> {
        self.claim(run).await?.release().await
    }

    /// Claims the running run that has waited longest for a process to
    /// execute it (none: `None`); PostgreSQL only — on redb the process
    /// that opened the file is the only one.
    pub async fn claim_next(&self) -> Result<Option<Lease>, JournalError> {
        self.claim_next_of(&Accept::all()).await
    }

    /// `claim_next`, of the runs `accept` takes.
    pub async fn claim_next_of(&self, accept: &Accept) -> Result<Option<Lease>, JournalError> {
        let Backend::Pg(pg) = &self.backend else {
            return Ok(None);
        };
        let leases = pg.leases();
        let Some((run, generation)) = pg
            .store()
            .claim_next(leases.holder(), leases.millis(), accept)
            .await?
        else {
            return Ok(None);
        };
        let lost = leases.hold(&run, generation);
        Ok(Some(Lease::on_pg(run, pg.clone(), generation, lost)))
    }

    /// `(run, last seq)` each time a commit that wrote entries lands, from
    /// any process (PostgreSQL's `lev_entries`); `None` on redb, which
    /// one process writes.
    pub async fn follow_appends(
        &self,
    ) -> Result<Option<mpsc::UnboundedReceiver<(RunId, u64)>>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().listen().await.map(Some),
            Backend::Redb(_) => Ok(None),
        }
    }

    /// The ids of runs announced claimable from now on; `None` on redb,
    /// where no other process executes runs.
    pub async fn ready(&self) -> Result<Option<mpsc::UnboundedReceiver<String>>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().listen_ready().await.map(Some),
            Backend::Redb(_) => Ok(None),
        }
    }

    /// This process as leases name it (PostgreSQL), e.g. `host:pid:nonce`.
    pub fn holder(&self) -> Option<&str> {
        match &self.backend {
            Backend::Pg(pg) => Some(pg.leases().holder()),
            Backend::Redb(_) => None,
        }
    }

    /// Every run some process holds a live lease on, with the holder
    /// (PostgreSQL; none on redb, whose runs execute in the one process
    /// that opened the file).
    pub async fn live_leases(
        &self,
    ) -> Result<std::collections::HashMap<RunId, String>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => Ok(pg.store().live_leases().await?.into_iter().collect()),
            Backend::Redb(_) => Ok(Default::default()),
        }
    }

    /// Sends `text` (a request, as the control socket carries them) to
    /// `holder`, the process that executes `run` on a shared journal, and
    /// waits up to `patience` for its reply; `None` when it did not answer
    /// (an untaken request is withdrawn, never carried out late). Always
    /// `None` on redb, where the control socket does this.
    pub async fn ask_executor(
        &self,
        run: &RunId,
        holder: &str,
        text: &str,
        patience: std::time::Duration,
    ) -> Result<Option<String>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().ask_holder(run, holder, text, patience).await,
            Backend::Redb(_) => Ok(None),
        }
    }

    /// A wake-up each time a request is sent to this process (`None` on
    /// redb: nothing is ever sent there).
    pub async fn inbox(&self) -> Result<Option<mpsc::UnboundedReceiver<()>>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().inbox_bell(pg.leases().holder()).await.map(Some),
            Backend::Redb(_) => Ok(None),
        }
    }

    /// The requests waiting for this process, each taken once.
    pub async fn take_requests(&self) -> Result<Vec<pg::InboxRequest>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().take_requests(pg.leases().holder()).await,
            Backend::Redb(_) => Ok(Vec::new()),
        }
    }

    /// Answers request `id` (taken with `take_requests`).
    pub async fn reply(&self, id: i64, text: &str) -> Result<(), JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().reply(id, text).await,
            Backend::Redb(_) => Ok(()),
        }
    }

    /// Who holds a live lease on `run`, and for how many more milliseconds
    /// unless renewed (PostgreSQL; always `None` on redb).
    pub async fn lease_of(&self, run: &RunId) -> Result<Option<(String, u64)>, JournalError> {
        match &self.backend {
            Backend::Pg(pg) => pg.store().lease_of(run).await,
            Backend::Redb(_) => Ok(None),
        }
    }

    /// True for a journal a URL names (PostgreSQL) rather than a file:
    /// `postgres://…`, `postgresql://…`, or a key-value string with
    /// `host=` or `dbname=`.
    pub fn is_url(journal: &str) -> bool {
        let j = journal.trim_start();
        j.starts_with("postgres://")
            || j.starts_with("postgresql://")
            || j.split_whitespace()
                .any(|kv| kv.starts_with("host=") || kv.starts_with("dbname="))
    }

    /// The redb side, or the error saying `what` is redb's alone.
    fn redb(&self, what: &'static str) -> Result<&Arc<Inner>, JournalError> {
        match &self.backend {
            Backend::Redb(inner) => Ok(inner),
            Backend::Pg(_) => Err(JournalError::NotOnPostgres(what)),
        }
    }

    /// A journal on another storage backend (the fault-injecting one of the
    /// tests); `make` builds a fresh backend over the same bytes for every
    /// (re)open.
    #[cfg(test)]
    pub(crate) fn open_backend<B: redb::StorageBackend>(
        name: &str,
        make: impl Fn() -> B + Send + Sync + 'static,
        reserve: Option<db::Reserve>,
    ) -> Result<Journal, JournalError> {
        let opener: db::Opener = Box::new(move || store::open_backend(make()));
        Journal::start(db::Shared::open(name.to_owned(), opener, reserve)?)
    }

    fn start(shared: db::Shared) -> Result<Journal, JournalError> {
        let shared = Arc::new(shared);
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, handle) = writer::spawn(shared.clone(), commits.clone())?;
        Ok(Journal {
            backend: Backend::Redb(Arc::new(Inner {
                shared,
                tx: Some(tx),
                writer: Some(handle),
                commits,
                memory_writes: AtomicU64::new(0),
                memory_empty: Default::default(),
            })),
        })
    }

    /// The journal's file, as error messages name it (for PostgreSQL the
    /// server and database, never a password).
    pub fn path(&self) -> &str {
        match &self.backend {
            Backend::Redb(inner) => &inner.shared.path,
            Backend::Pg(pg) => pg.store().server(),
        }
    }

    /// Why the disk is full, when a commit found it so: the engine starts no
    /// new work and pauses its runs while this is set. Never on PostgreSQL
    /// (its server's disk is its own).
    pub fn disk_full(&self) -> Option<String> {
        match &self.backend {
            Backend::Redb(inner) => inner.shared.disk_full(),
            Backend::Pg(_) => None,
        }
    }

    /// Checks for space again (recreating the reserve); clears the disk-full
    /// state when there is room. True when there is (always on PostgreSQL).
    pub async fn check_space(&self) -> bool {
        let Backend::Redb(inner) = &self.backend else {
            return true;
        };
        let shared = inner.shared.clone();
        tokio::task::spawn_blocking(move || {
            shared.make_reserve();
            shared.disk_full().is_none()
        })
        .await
        .unwrap_or(false)
    }

    /// Records a new run (its `last_seq` is reset to 0: no entries yet).
    pub async fn create_run(&self, meta: RunMeta) -> Result<(), JournalError> {
        self.create_run_with(meta, Vec::new()).await.map(|_| ())
    }

    /// Records a new run together with its first entries, in one commit, so
    /// no crash can leave a run without them. Returns their seqs.
    pub async fn create_run_with(
        &self,
        meta: RunMeta,
        first: Vec<Entry>,
    ) -> Result<Vec<Seq>, JournalError> {
        self.create_run_as(meta, first, work::RUN).await
    }

    /// `create_run_with`, of a run workers see as `work` (see [`work`];
    /// redb has no workers and ignores it).
    pub async fn create_run_as(
        &self,
        meta: RunMeta,
        first: Vec<Entry>,
        work: &str,
    ) -> Result<Vec<Seq>, JournalError> {
        let first = first.into_iter().map(codec::encode_entry).collect();
        if let Backend::Pg(pg) = &self.backend {
            let (reply, answer) = oneshot::channel();
            pg.send(pg::Request::CreateRun {
                meta,
                first,
                blobs: Vec::new(),
                leased: true,
                work: work.to_owned(),
                reply,
            })
            .await?;
            return answer.await.map_err(|_| JournalError::Closed)?;
        }
        self.request("creating a run", |reply| Request::CreateRun {
            meta,
            first,
            reply,
        })
        .await
    }

    /// Appends entries to a run, optionally updating its status in the same
    /// commit. Returns their seqs once the commit is durable.
    pub async fn append(
        &self,
        run: &RunId,
        entries: Vec<Entry>,
        status: Option<RunStatus>,
    ) -> Result<Vec<Seq>, JournalError> {
        let append = Append {
            status,
            ..Append::durable(entries)
        };
        self.submit(run, append).await?.committed().await
    }

    /// Durably appends entries with the blobs they refer to, in one commit
    /// (an agent's request record with the texts it sent).
    pub async fn append_with_blobs(
        &self,
        run: &RunId,
        entries: Vec<Entry>,
        blobs: Vec<Vec<u8>>,
    ) -> Result<Vec<Seq>, JournalError> {
        let append = Append {
            blobs,
            ..Append::durable(entries)
        };
        self.submit(run, append).await?.committed().await
    }

    /// Appends entries that need no durability point of their own (an
    /// idempotent step's start): committed without an fsync and visible at
    /// once; the next durable commit makes them durable, and a crash before
    /// it loses them (and nothing after them, for there is nothing durable
    /// after them yet).
    pub async fn append_unsynced(
        &self,
        run: &RunId,
        entries: Vec<Entry>,
    ) -> Result<Vec<Seq>, JournalError> {
        let append = Append {
            durable: false,
            ..Append::durable(entries)
        };
        self.submit(run, append).await?.committed().await
    }

    /// Hands an append to the writer and returns once it is queued: appends
    /// are written in the order they were submitted, so a caller may go on
    /// (submit the next one) before this one is committed, and learn how it
    /// went from `Submitted::committed`. Encoding and hashing happen here,
    /// on the caller's task, so the one writer thread only inserts.
    pub async fn submit(&self, run: &RunId, append: Append) -> Result<Submitted, JournalError> {
        let Append {
            entries,
            status,
            durable,
            blobs,
            at_seq,
        } = append;
        let entries = entries.into_iter().map(codec::encode_entry).collect();
        let blobs = blobs
            .into_iter()
            .map(|bytes| (blob_hash(&bytes), bytes))
            .collect();
        let run = run.clone();
        let (reply, answer) = oneshot::channel();
        if let Backend::Pg(pg) = &self.backend {
            let lease = pg.leases().generation(&run);
            pg.send(pg::Request::Append(pg::PgAppend {
                run,
                entries,
                status,
                blobs,
                at_seq,
                lease,
                reply,
            }))
            .await?;
            return Ok(Submitted(answer));
        }
        let inner = self.redb("appending")?;
        let tx = inner.tx.as_ref().ok_or(JournalError::Closed)?;
        tx.send(Request::Append {
            run,
            entries,
            status,
            durable,
            blobs,
            at_seq,
            reply,
        })
        .await
        .map_err(|_| JournalError::Closed)?;
        Ok(Submitted(answer))
    }

    /// Deletes `runs` (rows and entries) and every blob no remaining run
    /// refers to, in one durable commit. The caller makes sure no engine
    /// executes them.
    pub async fn delete_runs(&self, runs: Vec<RunId>) -> Result<Removed, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().delete_runs(&runs).await;
        }
        self.request("deleting runs", |reply| Request::DeleteRuns { runs, reply })
            .await
    }

    /// Compacts the file so freed space goes back to the disk; true when
    /// redb compacted it. False on PostgreSQL: the server reclaims deleted
    /// rows' space itself (autovacuum), and `VACUUM FULL` is its
    /// administrator's to run, not a client's.
    pub async fn compact(&self) -> Result<bool, JournalError> {
        if let Backend::Pg(_) = &self.backend {
            return Ok(false);
        }
        self.request("compacting", |reply| Request::Compact { reply })
            .await
    }

    /// Entries of a run with seq ≥ `from`, in order.
    pub async fn read(&self, run: &RunId, from: Seq) -> Result<Vec<(Seq, Entry)>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            let entries = pg.store().read(run, from.0).await?;
            return Ok(entries.into_iter().map(|(s, e)| (Seq(s), e)).collect());
        }
        let run = run.clone();
        self.with_read("reading", move |txn| store::read_entries(txn, &run, from))
            .await
    }

    /// A run's entries from `from` on, each turned into what `each` makes of
    /// it while they are read: the raw entries of a long run are never all
    /// in memory at once.
    pub async fn read_as<T: Send + 'static>(
        &self,
        run: &RunId,
        from: Seq,
        mut each: impl FnMut(Seq, Entry) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<Vec<T>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            let entries = pg.store().read(run, from.0).await?;
            return entries.into_iter().map(|(s, e)| each(Seq(s), e)).collect();
        }
        let run = run.clone();
        self.with_read("reading", move |txn| {
            store::read_entries_as(txn, &run, from, each)
        })
        .await
    }

    /// Folds a run's entries from `from` on into `state`, one at a time
    /// as they are read: what resuming a long run needs of its past,
    /// without its entries or events all in memory at once.
    pub async fn fold_run<S: Send + 'static>(
        &self,
        run: &RunId,
        from: Seq,
        mut state: S,
        mut each: impl FnMut(&mut S, Seq, Entry) -> Result<(), JournalError> + Send + 'static,
    ) -> Result<S, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            for (seq, entry) in pg.store().read(run, from.0).await? {
                each(&mut state, Seq(seq), entry)?;
            }
            return Ok(state);
        }
        let run = run.clone();
        self.with_read("reading", move |txn| {
            store::visit_entries(txn, &run, from, |seq, entry| each(&mut state, seq, entry))?;
            Ok(state)
        })
        .await
    }

    /// A run's metadata, or `None` when no such run exists.
    pub async fn run(&self, run: &RunId) -> Result<Option<RunMeta>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().run(run).await;
        }
        let run = run.clone();
        self.with_read("reading", move |txn| store::read_run(txn, &run))
            .await
    }

    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunMeta>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().runs().await;
        }
        self.with_read("reading", store::read_runs).await
    }

    /// Stores bytes under their blake3 hash (hex), durably.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<String, JournalError> {
        self.put(bytes, false, true).await
    }

    /// Stores bytes under their hash without a durability point of their
    /// own: the next durable commit (the fact that refers to them) makes
    /// them durable, and a crash before it loses both.
    pub async fn put_blob_unsynced(&self, bytes: Vec<u8>) -> Result<String, JournalError> {
        self.put(bytes, false, false).await
    }

    /// Stores bytes worth keeping only while the disk has room (a shell
    /// step's whole output, whose tails are recorded anyway): on a full
    /// disk it fails without spending the space reserve, which stays for
    /// the step's outcome.
    pub async fn put_blob_if_room(&self, bytes: Vec<u8>) -> Result<String, JournalError> {
        self.put(bytes, true, true).await
    }

    async fn put(
        &self,
        bytes: Vec<u8>,
        expendable: bool,
        durable: bool,
    ) -> Result<String, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            // Blobs are idempotent by content: written at once, durably.
            return pg.store().put_blob(bytes).await;
        }
        let hash = blob_hash(&bytes);
        self.request("storing a blob", |reply| Request::PutBlob {
            hash,
            bytes,
            expendable,
            durable,
            reply,
        })
        .await
    }

    /// The bytes stored under a blob hash, or `None`.
    pub async fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().blob(hash).await;
        }
        let hash = hash.to_owned();
        self.with_read("reading", move |txn| store::read_blob(txn, &hash))
            .await
    }

    /// Writes a run (meta, entries, the blobs they reference) as JSONL.
    pub async fn export(
        &self,
        run: &RunId,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), JournalError> {
        let snapshot = match &self.backend {
            Backend::Pg(pg) => export::pg_snapshot(pg.store(), run).await?,
            Backend::Redb(_) => {
                let id = run.clone();
                self.with_read("exporting", move |txn| export::snapshot(txn, &id))
                    .await?
            }
        };
        export::write_jsonl(&snapshot, out)
    }

    /// Reads a JSONL export; returns the imported run's id.
    pub async fn import(&self, file: &Path) -> Result<RunId, JournalError> {
        let file = file.to_path_buf();
        let bundle = tokio::task::spawn_blocking(move || export::parse_file(&file))
            .await
            .map_err(|e| JournalError::Storage(format!("import task failed: {e}")))??;
        self.import_bundle(bundle).await
    }

    /// Writes a whole run (an import) in one commit; returns its id.
    async fn import_bundle(&self, bundle: writer::ImportBundle) -> Result<RunId, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            let writer::ImportBundle {
                meta,
                entries,
                blobs,
            } = bundle;
            let id = meta.id.clone();
            let (reply, answer) = oneshot::channel();
            pg.send(pg::Request::CreateRun {
                meta,
                first: entries,
                blobs,
                leased: false,
                work: work::RUN.to_owned(),
                reply,
            })
            .await?;
            answer.await.map_err(|_| JournalError::Closed)??;
            return Ok(id);
        }
        self.request("importing", |reply| Request::Import {
            bundle: Box::new(bundle),
            reply,
        })
        .await
    }

    /// Takes in a run a scan of a damaged journal recovered whole.
    pub async fn import_salvaged(&self, run: &SalvagedRun) -> Result<RunId, JournalError> {
        let Some(bundle) = run.bundle() else {
            return Err(JournalError::Storage(format!(
                "run {} was not recovered whole",
                run.id
            )));
        };
        self.import_bundle(bundle).await
    }

    /// Upserts a memory entry by (namespace, key) with its index terms,
    /// durably; an existing entry keeps its `created_ms`. Returns the entry
    /// as stored and whether the key is new.
    pub async fn memory_put(
        &self,
        record: MemoryRecord,
        terms: MemoryTerms,
    ) -> Result<(MemoryRecord, bool), JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_put(record, terms).await;
        }
        let inner = self.redb("the memory bank")?;
        let stored = self
            .request("the memory bank", |reply| Request::MemoryPut {
                record: Box::new(record),
                terms,
                reply,
            })
            .await;
        // Counted once the write is visible (or failed): a namespace found
        // empty before this count must be looked at again.
        inner.memory_writes.fetch_add(1, Ordering::AcqRel);
        stored
    }

    /// Whether `namespace` holds no memory entry. Answered without a read
    /// when it was found empty and nothing was stored since (an agent's
    /// memory include, at every request of a run that stores no notes);
    /// on PostgreSQL, where other processes store notes too, always asked.
    pub async fn memory_is_empty(&self, namespace: &str) -> Result<bool, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_is_empty(namespace).await;
        }
        let inner = self.redb("the memory bank")?;
        let writes = inner.memory_writes.load(Ordering::Acquire);
        let known = |m: &std::collections::HashMap<String, u64>| m.get(namespace) == Some(&writes);
        if inner.memory_empty.lock().is_ok_and(|m| known(&m)) {
            return Ok(true);
        }
        let ns = namespace.to_owned();
        let empty = self
            .with_read("the memory bank", move |txn| {
                memory::list(txn, Some(&[ns])).map(|l| l.is_empty())
            })
            .await?;
        if empty && let Ok(mut m) = inner.memory_empty.lock() {
            m.insert(namespace.to_owned(), writes);
        }
        Ok(empty)
    }

    /// Deletes a memory entry durably; returns it, or `None` if absent.
    pub async fn memory_delete(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_delete(namespace, key).await;
        }
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.request("the memory bank", |reply| Request::MemoryDelete {
            namespace,
            key,
            reply,
        })
        .await
    }

    /// One memory entry, or `None`.
    pub async fn memory_get(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_get(namespace, key).await;
        }
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.with_read("the memory bank", move |txn| {
            memory::get(txn, &namespace, &key)
        })
        .await
    }

    /// The memory entries at these (namespace, key) pairs, in order, each
    /// `None` when absent; one read transaction for all.
    pub async fn memory_get_many(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Option<MemoryRecord>>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_get_many(&keys).await;
        }
        self.with_read("the memory bank", move |txn| {
            keys.iter()
                .map(|(ns, key)| memory::get(txn, ns, key))
                .collect()
        })
        .await
    }

    /// Memory entries of `namespaces` (every namespace when `None`),
    /// ordered by namespace, then key.
    pub async fn memory_list(
        &self,
        namespaces: Option<Vec<String>>,
    ) -> Result<Vec<MemoryRecord>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_list(namespaces.as_deref()).await;
        }
        self.with_read("the memory bank", move |txn| {
            memory::list(txn, namespaces.as_deref())
        })
        .await
    }

    /// Counts one outcome of a FlowMind whisper of `category`, durably;
    /// returns the category's score.
    pub async fn whisper_record(
        &self,
        category: &str,
        outcome: crate::protocol::WhisperOutcome,
    ) -> Result<crate::protocol::WhisperScore, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().whisper_record(category, outcome).await;
        }
        let category = category.to_owned();
        self.request("whisper scores", |reply| Request::WhisperScore {
            category,
            outcome,
            reply,
        })
        .await
    }

    /// Forgets `category`'s whisper score (every one when `None`).
    pub async fn whisper_reset(&self, category: Option<String>) -> Result<u64, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().whisper_reset(category.as_deref()).await;
        }
        self.request("whisper scores", |reply| Request::WhisperReset {
            category,
            reply,
        })
        .await
    }

    /// Every category's whisper score.
    pub async fn whisper_scores(&self) -> Result<Vec<crate::protocol::WhisperScore>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().whisper_scores().await;
        }
        self.with_read("whisper scores", whispers::list).await
    }

    /// Namespaces holding memory entries, with their entry counts.
    pub async fn memory_namespaces(&self) -> Result<Vec<(String, u64)>, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg.store().memory_namespaces().await;
        }
        self.with_read("the memory bank", memory::namespaces).await
    }

    /// The index's postings for `terms` and the entry counts ranking needs,
    /// over `namespaces` (every namespace when `None`).
    pub async fn memory_postings(
        &self,
        terms: Vec<String>,
        namespaces: Option<Vec<String>>,
    ) -> Result<MemoryPostings, JournalError> {
        if let Backend::Pg(pg) = &self.backend {
            return pg
                .store()
                .memory_postings(&terms, namespaces.as_deref())
                .await;
        }
        self.with_read("the memory bank", move |txn| {
            memory::postings(txn, &terms, namespaces.as_deref())
        })
        .await
    }

    /// Number of write transactions committed since open; lets tests and
    /// metrics see how many appends each commit carried.
    pub fn commit_count(&self) -> u64 {
        match &self.backend {
            Backend::Redb(inner) => inner.commits.load(Ordering::Relaxed),
            Backend::Pg(pg) => pg.commit_count(),
        }
    }

    /// Sends a request to the writer and waits for its post-commit reply;
    /// on PostgreSQL (whose methods do not come here), the error saying
    /// `what` is redb's.
    async fn request<T>(
        &self,
        what: &'static str,
        make: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Request,
    ) -> Result<T, JournalError> {
        let inner = self.redb(what)?;
        let tx = inner.tx.as_ref().ok_or(JournalError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs `f` on a fresh read transaction on the blocking pool, at the
    /// storage boundary (a panic in redb becomes `JournalError::Damaged`);
    /// on PostgreSQL (whose methods do not come here), the error saying
    /// `what` is redb's.
    async fn with_read<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&ReadTransaction) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let shared = self.redb(what)?.shared.clone();
        tokio::task::spawn_blocking(move || {
            let db = shared.database()?;
            guard::shielded(&shared.path, || {
                let txn = store::begin_read(&db)?;
                f(&txn)
            })
            .map_err(|e| e.at(&shared.path))
        })
        .await
        .map_err(|e| JournalError::Storage(format!("journal read task failed: {e}")))?
    }
}

/// An append to a run: its entries, in one commit.
pub struct Append {
    pub entries: Vec<Entry>,
    /// The run's status, set in the same commit.
    pub status: Option<RunStatus>,
    /// False for facts that need no durability point of their own (see
    /// `Journal::append_unsynced`).
    pub durable: bool,
    /// Blobs the entries refer to, stored in the same commit (durable
    /// appends only).
    pub blobs: Vec<Vec<u8>>,
    /// The seq the first entry must get: a caller that numbers its facts
    /// before they are written (and goes on meanwhile) says which it
    /// counted on, and the append is refused (`JournalError::Gap`) when an
    /// earlier one of the run was not written, so no fact lands after a
    /// hole in what came before it.
    pub at_seq: Option<Seq>,
}

impl Append {
    /// A durable append of `entries`, nothing else.
    pub fn durable(entries: Vec<Entry>) -> Append {
        Append {
            entries,
            status: None,
            durable: true,
            blobs: Vec::new(),
            at_seq: None,
        }
    }
}

/// An append the writer has queued; `committed` waits for its commit.
pub struct Submitted(oneshot::Receiver<Result<Vec<Seq>, JournalError>>);

impl Submitted {
    /// The entries' seqs once their commit returned (durable unless the
    /// append was unsynced).
    pub async fn committed(self) -> Result<Vec<Seq>, JournalError> {
        self.0.await.map_err(|_| JournalError::Closed)?
    }
}

/// The key bytes are stored under: their blake3 hash, as hex.
pub fn blob_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
