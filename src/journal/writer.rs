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
use super::db::Shared;
use super::guard;
use super::memory::{self, MemoryRecord, MemoryTerms};
use super::prune::{self, Removed};
use super::store::{BLOBS, ENTRIES, META, RUNS, storage};
use super::whispers;
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
        /// False for a fact that needs no durability point of its own (an
        /// idempotent step's start): committed without an fsync, made
        /// durable by the next durable commit, lost to a crash before it
        /// (then the step simply runs again).
        durable: bool,
        /// Blobs the entries refer to (what an agent's request held),
        /// stored in the same commit: never without them, never after them.
        /// Only durable appends carry any.
        blobs: Vec<(String, Vec<u8>)>,
        /// The seq its first entry must get (`Append::at_seq`).
        at_seq: Option<Seq>,
        reply: Reply<Vec<Seq>>,
    },
    PutBlob {
        hash: String,
        bytes: Vec<u8>,
        /// Worth keeping only while the disk has room (a shell step's whole
        /// output; its tails are recorded anyway): written in a commit of
        /// its own that never spends the space reserve.
        expendable: bool,
        /// False for a blob only the facts after it need (what an agent's
        /// request held): made durable by the next durable commit.
        durable: bool,
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
    WhisperScore {
        category: String,
        outcome: crate::protocol::WhisperOutcome,
        reply: Reply<crate::protocol::WhisperScore>,
    },
    WhisperReset {
        category: Option<String>,
        reply: Reply<u64>,
    },
    MemoryDelete {
        namespace: String,
        key: String,
        reply: Reply<Option<MemoryRecord>>,
    },
    /// Delete runs and the blobs nothing else refers to (its own commit).
    DeleteRuns {
        runs: Vec<RunId>,
        reply: Reply<Removed>,
    },
    /// Compact the file (alone: no transaction may be open meanwhile).
    Compact { reply: Reply<bool> },
}

impl Request {
    /// Carried out on its own, outside the group-committed batch.
    fn alone(&self) -> bool {
        matches!(self, Request::DeleteRuns { .. } | Request::Compact { .. })
    }

    /// Needs the commit that holds it to be durable (everything but an
    /// unsynced append).
    fn durable(&self) -> bool {
        !matches!(
            self,
            Request::Append { durable: false, .. } | Request::PutBlob { durable: false, .. }
        )
    }

    /// Written apart from facts, so a full disk refuses it alone and the
    /// space reserve stays for the step outcome that follows.
    fn expendable(&self) -> bool {
        matches!(
            self,
            Request::PutBlob {
                expendable: true,
                ..
            }
        )
    }
}

/// What a request produced inside the batch's transaction; sent to its
/// caller only once the commit returned.
enum Done {
    Seqs(Result<Vec<Seq>, JournalError>),
    Blob(String),
    Imported(Result<RunId, JournalError>),
    MemoryPut((MemoryRecord, bool)),
    MemoryDeleted(Option<MemoryRecord>),
    WhisperScore(crate::protocol::WhisperScore),
    WhisperReset(u64),
}

/// Answers every request of the batch: with what it produced when the
/// batch committed, else with the batch's error.
fn respond(batch: Vec<Request>, result: Result<Vec<Done>, JournalError>) {
    let (mut done, failed) = match result {
        Ok(done) => (done.into_iter(), None),
        Err(e) => (Vec::new().into_iter(), Some(e)),
    };
    // A request-level refusal stays itself; a batch failure reaches every
    // caller as the error it was (the file, the cause, disk full or not).
    let fail = || {
        failed
            .clone()
            .unwrap_or_else(|| JournalError::Storage("journal batch answered short".to_owned()))
    };
    // A caller that gave up (dropped its future) no longer wants the reply;
    // its writes are durable regardless.
    for req in batch {
        let outcome = done.next();
        match req {
            Request::CreateRun { reply, .. } | Request::Append { reply, .. } => {
                let v = match outcome {
                    Some(Done::Seqs(r)) => r,
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::PutBlob { reply, .. } => {
                let v = match outcome {
                    Some(Done::Blob(h)) => Ok(h),
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::Import { reply, .. } => {
                let v = match outcome {
                    Some(Done::Imported(r)) => r,
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::MemoryPut { reply, .. } => {
                let v = match outcome {
                    Some(Done::MemoryPut(r)) => Ok(r),
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::MemoryDelete { reply, .. } => {
                let v = match outcome {
                    Some(Done::MemoryDeleted(r)) => Ok(r),
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::WhisperScore { reply, .. } => {
                let v = match outcome {
                    Some(Done::WhisperScore(r)) => Ok(r),
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::WhisperReset { reply, .. } => {
                let v = match outcome {
                    Some(Done::WhisperReset(r)) => Ok(r),
                    _ => Err(fail()),
                };
                drop(reply.send(v));
            }
            Request::DeleteRuns { reply, .. } => drop(reply.send(Err(fail()))),
            Request::Compact { reply } => drop(reply.send(Err(fail()))),
        }
    }
}

/// Starts the writer thread; it stops when every sender is dropped.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    commits: Arc<AtomicU64>,
) -> Result<(mpsc::Sender<Request>, std::thread::JoinHandle<()>), JournalError> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let handle = std::thread::Builder::new()
        .name("lev-journal-writer".into())
        .spawn(move || run(shared, rx, commits))
        .map_err(|e| JournalError::Storage(format!("cannot start journal writer thread: {e}")))?;
    Ok((tx, handle))
}

fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>, commits: Arc<AtomicU64>) {
    // Size of the previous batch: how many callers are appending at once.
    let mut concurrency = 1;
    let mut writer = Writer::new(&shared, &commits);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::with_capacity(concurrency.max(16));
        batch.push(first);
        gather(&mut rx, &mut batch, concurrency);
        concurrency = batch.len();
        // Maintenance is rare: split the batch only when it holds some.
        let (alone, batch): (Vec<Request>, Vec<Request>) = if batch.iter().any(Request::alone) {
            batch.into_iter().partition(Request::alone)
        } else {
            (Vec::new(), batch)
        };
        let (expendable, batch): (Vec<Request>, Vec<Request>) =
            if batch.iter().any(Request::expendable) {
                batch.into_iter().partition(Request::expendable)
            } else {
                (Vec::new(), batch)
            };
        for (batch, on_full) in [(batch, OnFull::UseReserve), (expendable, OnFull::Refuse)] {
            if !batch.is_empty() {
                writer.commit_and_answer(batch, on_full);
            }
        }
        for req in alone {
            maintain(&shared, req, &commits);
            // Deleting runs is a durable commit (everything before it is
            // durable too); compacting keeps every commit.
            writer.unsynced.appends.clear();
        }
    }
    tracing::debug!("journal writer stopped");
}

/// What the writer thread keeps between batches.
pub(crate) struct Writer<'a> {
    shared: &'a Shared,
    commits: &'a AtomicU64,
    /// Number of the next commit, stored with it in `meta`: after a failed
    /// commit, the reopened file says whether it landed anyway.
    batch_no: u64,
    unsynced: Unsynced,
}

/// Appends committed without an fsync since the last durable commit. A
/// reopen (after a failed write) rolls the file back past them although
/// their callers were answered, so the writer applies them again, first,
/// in the next commit: the same seqs come back, as nothing else was
/// appended to those runs since.
#[derive(Default)]
struct Unsynced {
    appends: Vec<(RunId, Vec<EncodedEntry>)>,
    /// `Shared::generation` when they were last applied.
    generation: u64,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(shared: &'a Shared, commits: &'a AtomicU64) -> Writer<'a> {
        let batch_no = shared
            .database()
            .and_then(|db| guard::shielded(&shared.path, || last_batch(&db)))
            .unwrap_or(0)
            + 1;
        Writer {
            shared,
            commits,
            batch_no,
            unsynced: Unsynced {
                appends: Vec::new(),
                generation: shared.generation(),
            },
        }
    }

    /// Commits a batch and answers its callers. A batch the full disk
    /// cannot hold even in the released reserve is committed one request
    /// at a time: the small facts still fit, and only what is too big fails.
    pub(crate) fn commit_and_answer(&mut self, batch: Vec<Request>, on_full: OnFull) {
        let result = self.write(&batch, on_full);
        if batch.len() > 1 && result.as_ref().is_err_and(JournalError::is_disk_full) {
            for req in batch {
                let one = vec![req];
                let result = self.write(&one, on_full);
                respond(one, result);
            }
        } else {
            respond(batch, result);
        }
    }

    fn write(&mut self, batch: &[Request], on_full: OnFull) -> Result<Vec<Done>, JournalError> {
        let shared = self.shared;
        let lost = self.unsynced.generation != shared.generation();
        let replay: &[(RunId, Vec<EncodedEntry>)] = if lost { &self.unsynced.appends } else { &[] };
        let result = write_batch(
            shared,
            Commit {
                batch,
                replay,
                batch_no: self.batch_no,
            },
            self.commits,
            on_full,
        );
        self.batch_no += 1;
        if result.is_ok() {
            if batch.iter().any(Request::durable) {
                self.unsynced.appends.clear();
            } else {
                for req in batch {
                    if let Request::Append { run, entries, .. } = req {
                        self.unsynced.appends.push((run.clone(), entries.clone()));
                    }
                }
            }
            self.unsynced.generation = shared.generation();
        }
        result
    }
}

/// One commit's content: the batch, after the unsynced appends a reopen
/// lost.
#[derive(Clone, Copy)]
struct Commit<'b> {
    batch: &'b [Request],
    replay: &'b [(RunId, Vec<EncodedEntry>)],
    batch_no: u64,
}

/// Deletes runs in a commit of its own, or compacts the file.
fn maintain(shared: &Shared, req: Request, commits: &AtomicU64) {
    let path = shared.path.as_str();
    match req {
        Request::DeleteRuns { runs, reply } => {
            let result = shared.database_or_reopen().and_then(|db| {
                guard::shielded(path, || {
                    let mut txn = db
                        .begin_write()
                        .map_err(storage("begin write transaction"))?;
                    txn.set_durability(Durability::Immediate)
                        .map_err(|e| JournalError::Storage(format!("set durability: {e}")))?;
                    let removed = prune::delete_runs(&txn, &runs)?;
                    txn.commit().map_err(storage("commit"))?;
                    Ok(removed)
                })
                .map_err(|e| e.at(path))
            });
            if result.is_ok() {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            drop(reply.send(result));
        }
        Request::Compact { reply } => drop(reply.send(shared.compact())),
        other => respond(
            vec![other],
            Err(JournalError::Storage("not a maintenance request".into())),
        ),
    }
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

/// Key in `meta` of the number of the last committed batch.
const LAST_BATCH_KEY: &str = "last_batch";

fn last_batch(db: &Database) -> Result<u64, JournalError> {
    use redb::ReadableDatabase;
    let txn = db.begin_read().map_err(storage("begin read transaction"))?;
    let meta = txn.open_table(META).map_err(storage("open meta"))?;
    Ok(meta
        .get(LAST_BATCH_KEY)
        .map_err(storage("read last batch"))?
        .map_or(0, |v| v.value()))
}

/// A batch's transaction failed somewhere; `done` is set when everything
/// was applied and only `commit()` failed (the commit may still have landed).
struct Failed {
    error: JournalError,
    done: Option<Vec<Done>>,
}

/// What a batch does when the disk is full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFull {
    /// Release the space reserve and commit again: facts must land.
    UseReserve,
    /// Fail, keeping the reserve for the facts that follow.
    Refuse,
}

/// Writes a batch in one transaction and returns what each request
/// produced. A failed write is not the end: the database is reopened (redb
/// refuses all work after one), and when the disk was full the space
/// reserve is released and the batch committed once more, so the step that
/// was running still gets its outcome recorded.
fn write_batch(
    shared: &Shared,
    commit: Commit,
    commits: &AtomicU64,
    on_full: OnFull,
) -> Result<Vec<Done>, JournalError> {
    let path = shared.path.as_str();
    let Commit {
        batch, batch_no, ..
    } = commit;
    let attempt = |db: &Database| {
        guard::shielded(path, || Ok(commit_batch(db, commit)))
            .unwrap_or_else(|error| Err(Failed { error, done: None }))
            .map_err(|mut f| {
                f.error = f.error.at(path);
                f
            })
    };
    // The handle is a temporary: it is gone before a reopen below, which
    // waits until no one holds it.
    let first = attempt(&*handle(shared, on_full)?);
    let failed = match first {
        Ok(done) => {
            count_commit(commits, batch);
            return Ok(done);
        }
        Err(f) => f,
    };
    let storage_failed = matches!(
        failed.error,
        JournalError::Io { .. } | JournalError::Damaged { .. }
    );
    tracing::error!(journal = path, error = %failed.error, "journal commit failed");
    if !storage_failed {
        return Err(failed.error);
    }
    let disk_full = failed.error.is_disk_full();
    if disk_full {
        shared.set_disk_full(&failed.error);
    }
    let freed = match shared.reopen(disk_full && on_full == OnFull::UseReserve) {
        Ok(freed) => freed,
        Err(e) => {
            tracing::error!(journal = path, error = %e, "journal could not be reopened");
            return Err(failed.error);
        }
    };
    let db = shared.database()?;
    // An error at commit() may come after the commit reached the disk
    // (a failed fsync of the header): then it is acknowledged, not redone.
    if let Some(done) = failed.done
        && guard::shielded(path, || last_batch(&db)).is_ok_and(|n| n == batch_no)
    {
        count_commit(commits, batch);
        return Ok(done);
    }
    if !freed {
        return Err(failed.error);
    }
    let again = attempt(&db);
    // A reopen below waits until no one holds the handle.
    drop(db);
    match again {
        Ok(done) => {
            // Logged again now that there is room for the log line too
            // (the log often shares the journal's disk).
            tracing::error!(
                journal = path,
                error = %failed.error,
                "disk full: the batch was committed into the released space reserve; runs pause"
            );
            count_commit(commits, batch);
            Ok(done)
        }
        Err(again) => {
            tracing::error!(journal = path, error = %again.error, "journal commit failed again");
            // Leave a usable handle behind for the next batch.
            if let Err(e) = shared.reopen(false) {
                tracing::error!(journal = path, error = %e, "journal could not be reopened");
            }
            Err(again.error)
        }
    }
}

/// The database to commit into. When the file would not even open again
/// on the full disk (an earlier refused write closed it), facts may use
/// the reserve for that too.
fn handle(shared: &Shared, on_full: OnFull) -> Result<std::sync::Arc<Database>, JournalError> {
    match shared.database_or_reopen() {
        Err(e) if e.is_disk_full() && on_full == OnFull::UseReserve => {
            shared.set_disk_full(&e);
            if !shared.reopen(true)? {
                return Err(e);
            }
            shared.database()
        }
        other => other,
    }
}

/// Counts a durable commit (the figure benches and tests read: each one
/// is an fsync).
fn count_commit(commits: &AtomicU64, batch: &[Request]) {
    if batch.iter().any(Request::durable) {
        commits.fetch_add(1, Ordering::Relaxed);
    }
}

/// One write transaction, with immediate (fsync) durability unless every
/// request in it is an unsynced append.
fn commit_batch(db: &Database, commit: Commit) -> Result<Vec<Done>, Failed> {
    let Commit {
        batch,
        replay,
        batch_no,
    } = commit;
    let early = |error: JournalError| Failed { error, done: None };
    let mut txn = db
        .begin_write()
        .map_err(storage("begin write transaction"))
        .map_err(early)?;
    // Immediate is redb's default; set it so the guarantee does not
    // silently depend on a default.
    let durability = if batch.iter().any(Request::durable) {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(durability)
        .map_err(|e| JournalError::Storage(format!("set durability: {e}")))
        .map_err(early)?;
    let done = apply_all(&txn, replay, batch).map_err(early)?;
    {
        let mut meta = txn
            .open_table(META)
            .map_err(storage("open meta"))
            .map_err(early)?;
        meta.insert(LAST_BATCH_KEY, batch_no)
            .map_err(storage("write batch number"))
            .map_err(early)?;
    }
    match txn.commit() {
        Ok(()) => Ok(done),
        Err(e) => Err(Failed {
            error: storage("commit")(e),
            done: Some(done),
        }),
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
    replay: &[(RunId, Vec<EncodedEntry>)],
    batch: &[Request],
) -> Result<Vec<Done>, JournalError> {
    let mut done = Vec::with_capacity(batch.len());
    let mut t = Tables {
        runs: txn.open_table(RUNS).map_err(storage("open runs"))?,
        entries: txn.open_table(ENTRIES).map_err(storage("open entries"))?,
        blobs: txn.open_table(BLOBS).map_err(storage("open blobs"))?,
    };
    for (run, entries) in replay {
        if let Err(e) = append(&mut t, run, entries, None, None, &[])? {
            tracing::warn!(run = %run, error = %e, "an unsynced append could not be applied again");
        }
    }
    for req in batch {
        done.push(match req {
            Request::CreateRun { meta, first, .. } => {
                Done::Seqs(create_run(&mut t, meta.clone(), first)?)
            }
            Request::Append {
                run,
                entries,
                status,
                blobs,
                at_seq,
                ..
            } => Done::Seqs(append(&mut t, run, entries, *status, *at_seq, blobs)?),
            Request::PutBlob { hash, bytes, .. } => {
                put_blob(&mut t, hash, bytes)?;
                Done::Blob(hash.clone())
            }
            Request::Import { bundle, .. } => Done::Imported(import(&mut t, bundle)?),
            // Memory writes open their own tables: most batches carry none.
            Request::MemoryPut { record, terms, .. } => {
                Done::MemoryPut(memory::put(txn, (**record).clone(), terms.clone())?)
            }
            Request::MemoryDelete { namespace, key, .. } => {
                Done::MemoryDeleted(memory::delete(txn, namespace, key)?)
            }
            Request::WhisperScore {
                category, outcome, ..
            } => Done::WhisperScore(whispers::record(txn, category, *outcome)?),
            Request::WhisperReset { category, .. } => {
                Done::WhisperReset(whispers::reset(txn, category.as_deref())?)
            }
            // Never batched (`Request::alone`).
            Request::DeleteRuns { .. } | Request::Compact { .. } => {
                return Err(JournalError::Storage(
                    "a maintenance request reached a batch".into(),
                ));
            }
        });
    }
    Ok(done)
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

fn create_run(t: &mut Tables<'_>, mut meta: RunMeta, first: &[EncodedEntry]) -> Applied<Vec<Seq>> {
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
    entries: &[EncodedEntry],
    status: Option<RunStatus>,
    at_seq: Option<Seq>,
    blobs: &[(String, Vec<u8>)],
) -> Applied<Vec<Seq>> {
    let Some(mut meta) = load_run(t, run)? else {
        return Ok(Err(JournalError::RunNotFound(run.clone())));
    };
    if let Some(expected) = at_seq
        && expected.0 != meta.last_seq + 1
    {
        return Ok(Err(JournalError::Gap {
            run: run.clone(),
            expected: expected.0,
            last: meta.last_seq,
        }));
    }
    for (hash, bytes) in blobs {
        put_blob(t, hash, bytes)?;
    }
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
    entries: &[EncodedEntry],
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

fn import(t: &mut Tables<'_>, bundle: &ImportBundle) -> Applied<RunId> {
    let ImportBundle {
        meta,
        entries,
        blobs,
    } = bundle;
    let mut meta = meta.clone();
    if load_run(t, &meta.id)?.is_some() {
        return Ok(Err(JournalError::RunExists(meta.id)));
    }
    for (hash, bytes) in blobs {
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
