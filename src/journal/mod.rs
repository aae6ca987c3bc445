//! Durable store on redb: runs, entries keyed (run, seq), content-addressed
//! blobs, the memory bank's entries and term index, schema version. One writer thread owns write transactions and
//! group-commits appends from all callers; a caller is acknowledged only
//! after the commit that holds its entries returned.
//!
//! Knows nothing of `Event`: payloads are opaque bytes (JSON of an event).
//! Must not depend on `workflow`, `llm`, `tools` or any participant.

mod codec;
#[cfg(test)]
mod crash_tests;
mod export;
mod memory;
mod store;
#[cfg(test)]
mod tests;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use memory::{MemoryAuthor, MemoryPosting, MemoryPostings, MemoryRecord, MemoryTerms};
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
}

/// Everything that can go wrong in the journal, with the context a user needs.
#[derive(Debug, thiserror::Error)]
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
    /// The writer thread is gone; the journal is shutting down.
    #[error("journal writer stopped")]
    Closed,
    /// A line of an export file is invalid.
    #[error("import {file}:{line}: {message}")]
    Import {
        file: String,
        line: usize,
        message: String,
    },
}

/// Handle to the journal; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

/// Shared state behind every clone of a `Journal`.
struct Inner {
    /// Readers open their own read transactions on it; the writer thread
    /// holds another clone for write transactions.
    db: Arc<Database>,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<AtomicU64>,
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
    }
}

impl Journal {
    /// Opens (or creates) the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let db = Arc::new(store::open_database(path)?);
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, handle) = writer::spawn(db.clone(), commits.clone())?;
        Ok(Journal {
            inner: Arc::new(Inner {
                db,
                tx: Some(tx),
                writer: Some(handle),
                commits,
            }),
        })
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
        let first = first.into_iter().map(codec::encode_entry).collect();
        self.request(|reply| Request::CreateRun { meta, first, reply })
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
        // Encoding (and hashing large payloads) happens on the caller's
        // task so the single writer thread only does tree inserts.
        let entries = entries.into_iter().map(codec::encode_entry).collect();
        let run = run.clone();
        self.request(|reply| Request::Append {
            run,
            entries,
            status,
            reply,
        })
        .await
    }

    /// Entries of a run with seq ≥ `from`, in order.
    pub async fn read(&self, run: &RunId, from: Seq) -> Result<Vec<(Seq, Entry)>, JournalError> {
        let run = run.clone();
        self.with_read(move |txn| store::read_entries(txn, &run, from))
            .await
    }

    /// A run's metadata, or `None` when no such run exists.
    pub async fn run(&self, run: &RunId) -> Result<Option<RunMeta>, JournalError> {
        let run = run.clone();
        self.with_read(move |txn| store::read_run(txn, &run)).await
    }

    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunMeta>, JournalError> {
        self.with_read(store::read_runs).await
    }

    /// Stores bytes under their blake3 hash (hex), durably.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<String, JournalError> {
        let hash = blake3::hash(&bytes).to_hex().to_string();
        self.request(|reply| Request::PutBlob { hash, bytes, reply })
            .await
    }

    /// The bytes stored under a blob hash, or `None`.
    pub async fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        let hash = hash.to_owned();
        self.with_read(move |txn| store::read_blob(txn, &hash))
            .await
    }

    /// Writes a run (meta, entries, the blobs they reference) as JSONL.
    pub async fn export(
        &self,
        run: &RunId,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), JournalError> {
        let id = run.clone();
        let snapshot = self
            .with_read(move |txn| export::snapshot(txn, &id))
            .await?;
        export::write_jsonl(&snapshot, out)
    }

    /// Reads a JSONL export; returns the imported run's id.
    pub async fn import(&self, file: &Path) -> Result<RunId, JournalError> {
        let file = file.to_path_buf();
        let bundle = tokio::task::spawn_blocking(move || export::parse_file(&file))
            .await
            .map_err(|e| JournalError::Storage(format!("import task failed: {e}")))??;
        self.request(|reply| Request::Import {
            bundle: Box::new(bundle),
            reply,
        })
        .await
    }

    /// Upserts a memory entry by (namespace, key) with its index terms,
    /// durably; an existing entry keeps its `created_ms`. Returns the entry
    /// as stored and whether the key is new.
    pub async fn memory_put(
        &self,
        record: MemoryRecord,
        terms: MemoryTerms,
    ) -> Result<(MemoryRecord, bool), JournalError> {
        self.request(|reply| Request::MemoryPut {
            record: Box::new(record),
            terms,
            reply,
        })
        .await
    }

    /// Deletes a memory entry durably; returns it, or `None` if absent.
    pub async fn memory_delete(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, JournalError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.request(|reply| Request::MemoryDelete {
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
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.with_read(move |txn| memory::get(txn, &namespace, &key))
            .await
    }

    /// The memory entries at these (namespace, key) pairs, in order, each
    /// `None` when absent; one read transaction for all.
    pub async fn memory_get_many(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Option<MemoryRecord>>, JournalError> {
        self.with_read(move |txn| {
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
        self.with_read(move |txn| memory::list(txn, namespaces.as_deref()))
            .await
    }

    /// Namespaces holding memory entries, with their entry counts.
    pub async fn memory_namespaces(&self) -> Result<Vec<(String, u64)>, JournalError> {
        self.with_read(memory::namespaces).await
    }

    /// The index's postings for `terms` and the entry counts ranking needs,
    /// over `namespaces` (every namespace when `None`).
    pub async fn memory_postings(
        &self,
        terms: Vec<String>,
        namespaces: Option<Vec<String>>,
    ) -> Result<MemoryPostings, JournalError> {
        self.with_read(move |txn| memory::postings(txn, &terms, namespaces.as_deref()))
            .await
    }

    /// Number of write transactions committed since open; lets tests and
    /// metrics see how many appends each commit carried.
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Sends a request to the writer and waits for its post-commit reply.
    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Request,
    ) -> Result<T, JournalError> {
        let tx = self.inner.tx.as_ref().ok_or(JournalError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs `f` on a fresh read transaction on the blocking pool.
    async fn with_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = store::begin_read(&db)?;
            f(&txn)
        })
        .await
        .map_err(|e| JournalError::Storage(format!("journal read task failed: {e}")))?
    }
}
