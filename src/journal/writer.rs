//! The writer thread: the only owner of write transactions.
//!
//! Callers send a `Request` with a oneshot for the reply. The thread blocks
//! for the first request, drains whatever else is already queued (up to
//! `MAX_BATCH`), applies the whole batch in ONE write transaction with
//! immediate (fsync) durability, and answers the callers only after
//! `commit()` returned. So many concurrent appenders share one fsync (group
//! commit), and an acknowledgement always means "on disk".
//!
//! Each request is validated before it writes anything, so a bad request
//! (unknown run, existing run id) fails alone; a storage error fails the
//! whole batch because the transaction is dropped uncommitted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::{RunId, RunStatus, Seq};

use super::codec::{self, EncodedEntry};
use super::memory::{self, MemoryRecord, MemoryTerms};
use super::store::{BLOBS, ENTRIES, RUNS, storage};
use super::{JournalError, RunMeta};

/// Most requests one commit takes; bounds commit latency under load.
pub(crate) const MAX_BATCH: usize = 1024;
/// Queue depth; a full queue makes callers wait (backpressure).
pub(crate) const QUEUE_DEPTH: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

/// A run to write whole (import): meta, entries in seq order from 1, blobs.
pub(crate) struct ImportBundle {
    pub(crate) meta: RunMeta,
    pub(crate) entries: Vec<EncodedEntry>,
    pub(crate) blobs: Vec<(String, Vec<u8>)>,
}

/// One unit of work for the writer.
pub(crate) enum Request {
    CreateRun {
        meta: RunMeta,
        /// Entries written with the run, in the same transaction.
        first: Vec<EncodedEntry>,
        reply: Reply<Vec<Seq>>,
    },
    Append {
        run: RunId,
        entries: Vec<EncodedEntry>,
        status: Option<RunStatus>,
        reply: Reply<Vec<Seq>>,
    },
    PutBlob {
        hash: String,
        bytes: Vec<u8>,
        reply: Reply<String>,
    },
    Import {
        bundle: Box<ImportBundle>,
        reply: Reply<RunId>,
    },
    /// Upsert a memory entry with its index terms.
    MemoryPut {
        record: Box<MemoryRecord>,
        terms: MemoryTerms,
        reply: Reply<(MemoryRecord, bool)>,
    },
    MemoryDelete {
        namespace: String,
        key: String,
        reply: Reply<Option<MemoryRecord>>,
    },
}

/// A request's outcome, held until the batch's commit returns.
enum Outcome {
    Created(Reply<Vec<Seq>>, Result<Vec<Seq>, JournalError>),
    Appended(Reply<Vec<Seq>>, Result<Vec<Seq>, JournalError>),
    Blob(Reply<String>, Result<String, JournalError>),
    Imported(Reply<RunId>, Result<RunId, JournalError>),
    MemoryPut(
        Reply<(MemoryRecord, bool)>,
        Result<(MemoryRecord, bool), JournalError>,
    ),
    MemoryDeleted(
        Reply<Option<MemoryRecord>>,
        Result<Option<MemoryRecord>, JournalError>,
    ),
}

impl Outcome {
    /// Replaces a success with `err` (the commit failed), keeping per-request errors.
    fn fail(self, err: &str) -> Outcome {
        let e = || JournalError::Storage(err.to_owned());
        match self {
            Outcome::Created(r, Ok(_)) => Outcome::Created(r, Err(e())),
            Outcome::Appended(r, Ok(_)) => Outcome::Appended(r, Err(e())),
            Outcome::Blob(r, Ok(_)) => Outcome::Blob(r, Err(e())),
            Outcome::Imported(r, Ok(_)) => Outcome::Imported(r, Err(e())),
            Outcome::MemoryPut(r, Ok(_)) => Outcome::MemoryPut(r, Err(e())),
            Outcome::MemoryDeleted(r, Ok(_)) => Outcome::MemoryDeleted(r, Err(e())),
            other => other,
        }
    }

    fn send(self) {
        // A caller that gave up (dropped its future) no longer wants the
        // reply; its writes are durable regardless.
        match self {
            Outcome::Created(r, v) => drop(r.send(v)),
            Outcome::Appended(r, v) => drop(r.send(v)),
            Outcome::Blob(r, v) => drop(r.send(v)),
            Outcome::Imported(r, v) => drop(r.send(v)),
            Outcome::MemoryPut(r, v) => drop(r.send(v)),
            Outcome::MemoryDeleted(r, v) => drop(r.send(v)),
        }
    }
}

/// Starts the writer thread; it stops when every sender is dropped.
pub(crate) fn spawn(
    db: Arc<Database>,
    commits: Arc<AtomicU64>,
) -> Result<(mpsc::Sender<Request>, std::thread::JoinHandle<()>), JournalError> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let handle = std::thread::Builder::new()
        .name("lev-journal-writer".into())
        .spawn(move || run(db, rx, commits))
        .map_err(|e| JournalError::Storage(format!("cannot start journal writer thread: {e}")))?;
    Ok((tx, handle))
}

fn run(db: Arc<Database>, mut rx: mpsc::Receiver<Request>, commits: Arc<AtomicU64>) {
    // Size of the previous batch: how many callers are appending at once.
    let mut concurrency = 1;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::with_capacity(concurrency.max(16));
        batch.push(first);
        gather(&mut rx, &mut batch, concurrency);
        concurrency = batch.len();
        let outcomes = write_batch(&db, batch, &commits);
        for outcome in outcomes {
            outcome.send();
        }
    }
    tracing::debug!("journal writer stopped");
}

/// Longest the writer waits for the rest of a batch it expects.
const GATHER_WAIT: Duration = Duration::from_micros(200);

/// Drains queued requests into `batch`. When the previous batch showed
/// several concurrent callers, waits briefly (at most `GATHER_WAIT`) for as
/// many to arrive: callers answered by the last commit are still submitting
/// their next request, and one more fsync costs far more than the wait. A
/// lone caller (previous batch of one) never waits.
fn gather(rx: &mut mpsc::Receiver<Request>, batch: &mut Vec<Request>, expected: usize) {
    let target = expected.clamp(1, MAX_BATCH);
    let deadline = Instant::now() + GATHER_WAIT;
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(req) => batch.push(req),
            Err(mpsc::error::TryRecvError::Empty)
                if batch.len() < target && Instant::now() < deadline =>
            {
                std::thread::yield_now();
            }
            Err(_) => break,
        }
    }
}

/// Writes a batch in one transaction; returns the replies to send.
fn write_batch(db: &Database, batch: Vec<Request>, commits: &AtomicU64) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let result = (|| -> Result<(), JournalError> {
        let mut txn = db
            .begin_write()
            .map_err(storage("begin write transaction"))?;
        // Immediate is redb's default; set it so the guarantee does not
        // silently depend on a default.
        txn.set_durability(Durability::Immediate)
            .map_err(storage("set durability"))?;
        apply_all(&txn, batch, &mut outcomes)?;
        txn.commit().map_err(storage("commit"))?;
        commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })();
    match result {
        Ok(()) => outcomes,
        Err(e) => {
            tracing::error!(error = %e, "journal batch failed");
            let msg = e.to_string();
            outcomes.into_iter().map(|o| o.fail(&msg)).collect()
        }
    }
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'t> {
    runs: Table<'t, &'static str, &'static [u8]>,
    entries: Table<'t, (&'static str, u64), &'static [u8]>,
    blobs: Table<'t, &'static str, &'static [u8]>,
}

fn apply_all(
    txn: &WriteTransaction,
    batch: Vec<Request>,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), JournalError> {
    let mut t = Tables {
        runs: txn.open_table(RUNS).map_err(storage("open runs"))?,
        entries: txn.open_table(ENTRIES).map_err(storage("open entries"))?,
        blobs: txn.open_table(BLOBS).map_err(storage("open blobs"))?,
    };
    for req in batch {
        match req {
            Request::CreateRun { meta, first, reply } => {
                let r = create_run(&mut t, meta, first)?;
                outcomes.push(Outcome::Created(reply, r));
            }
            Request::Append {
                run,
                entries,
                status,
                reply,
            } => {
                let r = append(&mut t, &run, entries, status)?;
                outcomes.push(Outcome::Appended(reply, r));
            }
            Request::PutBlob { hash, bytes, reply } => {
                put_blob(&mut t, &hash, &bytes)?;
                outcomes.push(Outcome::Blob(reply, Ok(hash)));
            }
            Request::Import { bundle, reply } => {
                let r = import(&mut t, *bundle)?;
                outcomes.push(Outcome::Imported(reply, r));
            }
            // Memory writes open their own tables: most batches carry none.
            Request::MemoryPut {
                record,
                terms,
                reply,
            } => {
                let r = memory::put(txn, *record, terms)?;
                outcomes.push(Outcome::MemoryPut(reply, Ok(r)));
            }
            Request::MemoryDelete {
                namespace,
                key,
                reply,
            } => {
                let r = memory::delete(txn, &namespace, &key)?;
                outcomes.push(Outcome::MemoryDeleted(reply, Ok(r)));
            }
        }
    }
    Ok(())
}

// The helpers below return Err only for storage failures (abort the batch);
// a request-level refusal is the inner Result.
type Applied<T> = Result<Result<T, JournalError>, JournalError>;

fn load_run(t: &Tables<'_>, run: &RunId) -> Result<Option<RunMeta>, JournalError> {
    let Some(v) = t.runs.get(run.as_str()).map_err(storage("read run"))? else {
        return Ok(None);
    };
    codec::decode_run(v.value())
        .map(Some)
        .map_err(|e| JournalError::Storage(format!("run {run} record is corrupt: {}", e.0)))
}

fn save_run(t: &mut Tables<'_>, meta: &RunMeta) -> Result<(), JournalError> {
    t.runs
        .insert(meta.id.as_str(), codec::encode_run(meta).as_slice())
        .map_err(storage("write run"))?;
    Ok(())
}

fn create_run(
    t: &mut Tables<'_>,
    mut meta: RunMeta,
    first: Vec<EncodedEntry>,
) -> Applied<Vec<Seq>> {
    if load_run(t, &meta.id)?.is_some() {
        return Ok(Err(JournalError::RunExists(meta.id)));
    }
    // A new run's seqs start at 1 whatever the caller sent.
    let seqs = write_entries(t, &meta.id, 0, first, &mut meta.updated_ms)?;
    meta.last_seq = seqs.last().map(|s| s.0).unwrap_or(0);
    save_run(t, &meta)?;
    Ok(Ok(seqs))
}

fn append(
    t: &mut Tables<'_>,
    run: &RunId,
    entries: Vec<EncodedEntry>,
    status: Option<RunStatus>,
) -> Applied<Vec<Seq>> {
    let Some(mut meta) = load_run(t, run)? else {
        return Ok(Err(JournalError::RunNotFound(run.clone())));
    };
    let seqs = write_entries(t, run, meta.last_seq, entries, &mut meta.updated_ms)?;
    if let Some(last) = seqs.last() {
        meta.last_seq = last.0;
    }
    if let Some(status) = status {
        meta.status = status;
    }
    save_run(t, &meta)?;
    Ok(Ok(seqs))
}

/// Writes entries after `last_seq`, spilled payloads included; keeps
/// `updated_ms` at the newest entry time seen (derived from journaled
/// times rather than a fresh clock read, so replays stay deterministic).
fn write_entries(
    t: &mut Tables<'_>,
    run: &RunId,
    last_seq: u64,
    entries: Vec<EncodedEntry>,
    updated_ms: &mut u64,
) -> Result<Vec<Seq>, JournalError> {
    let mut seqs = Vec::with_capacity(entries.len());
    let mut seq = last_seq;
    for entry in entries {
        seq += 1;
        if let Some((hash, bytes)) = &entry.spilled {
            put_blob(t, hash, bytes)?;
        }
        t.entries
            .insert((run.as_str(), seq), entry.record.as_slice())
            .map_err(storage("write entry"))?;
        *updated_ms = (*updated_ms).max(entry.at_ms);
        seqs.push(Seq(seq));
    }
    Ok(seqs)
}

fn put_blob(t: &mut Tables<'_>, hash: &str, bytes: &[u8]) -> Result<(), JournalError> {
    // Content-addressed: an existing key already holds these bytes.
    if t.blobs.get(hash).map_err(storage("read blob"))?.is_none() {
        t.blobs.insert(hash, bytes).map_err(storage("write blob"))?;
    }
    Ok(())
}

fn import(t: &mut Tables<'_>, bundle: ImportBundle) -> Applied<RunId> {
    let ImportBundle {
        mut meta,
        entries,
        blobs,
    } = bundle;
    if load_run(t, &meta.id)?.is_some() {
        return Ok(Err(JournalError::RunExists(meta.id)));
    }
    for (hash, bytes) in &blobs {
        put_blob(t, hash, bytes)?;
    }
    let run = meta.id.clone();
    // The exported meta is kept as it was (updated_ms included), so an
    // import reproduces the run exactly.
    let mut updated = meta.updated_ms;
    let seqs = write_entries(t, &run, 0, entries, &mut updated)?;
    meta.last_seq = seqs.last().map_or(0, |s| s.0);
    save_run(t, &meta)?;
    Ok(Ok(run))
}
