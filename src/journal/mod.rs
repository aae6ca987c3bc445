//! Durable store on redb: runs, entries keyed (run, seq), content-addressed
//! blobs, schema version. One writer thread owns write transactions and
//! group-commits appends from all callers; a caller is acknowledged only
//! after the commit that holds its entries returned.
//!
//! Knows nothing of `Event`: payloads are opaque bytes (JSON of an event).
//! Must not depend on `workflow`, `llm`, `tools` or any participant.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::protocol::{RunId, RunStatus, Seq};

/// One journal entry as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Event kind name (`step_started`, ...).
    pub kind: String,
    pub step: Option<String>,
    pub fingerprint: Option<String>,
    pub attempt: u32,
    pub at_ms: u64,
    /// The event, JSON-encoded. Large payloads are stored as blobs transparently.
    pub payload: Vec<u8>,
}

/// A run's row in the `runs` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: RunId,
    pub workflow_id: String,
    pub name: String,
    /// Path the definition was loaded from.
    pub source: String,
    /// Blob hash of the pinned definition text.
    pub definition_blob: String,
    pub status: RunStatus,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Highest seq written (0 when none).
    pub last_seq: u64,
    /// Parent run for child workflows / forks.
    pub parent: Option<RunId>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path} is in use by another lev process")]
    Locked { path: String },
    #[error("journal {path}: {message}")]
    Open { path: String, message: String },
    #[error("journal schema version {found} is newer than this lev understands ({supported})")]
    Schema { found: u64, supported: u64 },
    #[error("run {0} not found")]
    RunNotFound(RunId),
    #[error("run {0} already exists")]
    RunExists(RunId),
    #[error("journal storage: {0}")]
    Storage(String),
    #[error("journal writer stopped")]
    Closed,
    #[error("import {file}:{line}: {message}")]
    Import {
        file: String,
        line: usize,
        message: String,
    },
}

/// Handle to the journal; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Journal {}

impl Journal {
    /// Opens (or creates) the database and starts the writer thread.
    pub fn open(_path: &Path) -> Result<Journal, JournalError> {
        Err(JournalError::Closed)
    }
    /// Records a new run.
    pub async fn create_run(&self, _meta: RunMeta) -> Result<(), JournalError> {
        Err(JournalError::Closed)
    }
    /// Appends entries to a run, optionally updating its status in the same
    /// commit. Returns their seqs once the commit is durable.
    pub async fn append(
        &self,
        _run: &RunId,
        _entries: Vec<Entry>,
        _status: Option<RunStatus>,
    ) -> Result<Vec<Seq>, JournalError> {
        Err(JournalError::Closed)
    }
    /// Entries of a run with seq ≥ `from`, in order.
    pub async fn read(&self, _run: &RunId, _from: Seq) -> Result<Vec<(Seq, Entry)>, JournalError> {
        Err(JournalError::Closed)
    }
    pub async fn run(&self, _run: &RunId) -> Result<Option<RunMeta>, JournalError> {
        Err(JournalError::Closed)
    }
    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunMeta>, JournalError> {
        Err(JournalError::Closed)
    }
    /// Stores bytes under their blake3 hash (hex), durably.
    pub async fn put_blob(&self, _bytes: Vec<u8>) -> Result<String, JournalError> {
        Err(JournalError::Closed)
    }
    pub async fn blob(&self, _hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Err(JournalError::Closed)
    }
    /// Writes a run (meta, entries, the blobs they reference) as JSONL.
    pub async fn export(
        &self,
        _run: &RunId,
        _out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), JournalError> {
        Err(JournalError::Closed)
    }
    /// Reads a JSONL export; returns the imported run's id.
    pub async fn import(&self, _file: &Path) -> Result<RunId, JournalError> {
        Err(JournalError::Closed)
    }
}
