//! A `Journal` on PostgreSQL (`Journal::open_url`): a writer task applies
//! the journal's appends in the order they were submitted, as redb's writer
//! thread does (`journal::writer`), so a caller may go on before its append
//! is committed ("Going ahead of the disk" in docs/ARCHITECTURE.md). Reads
//! go to a connection of their own, so they never wait behind a commit.
//!
//! Group commit: appends that are queued together are written in one
//! transaction (one commit, one fsync on the server), whichever runs they
//! are for (a worker's slots write several runs at once), a run's own in
//! the order they came; their callers learn their own seqs. Appends that
//! need no durability point of their own (`durable: false`) are simply
//! written durably.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::lease::{self, Leases};
use super::{PgStore, store};
use crate::journal::codec::EncodedEntry;
use crate::journal::{JournalError, RunMeta};
use crate::protocol::{RunId, RunStatus, Seq};

/// Queue depth; a full queue makes callers wait (backpressure).
const QUEUE_DEPTH: usize = 4096;
/// Most appends one transaction takes.
const MAX_BATCH: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

/// One unit of work for the writer task.
pub(crate) enum Request {
    /// A new run with its first entries and the blobs they refer to (an
    /// import's), in one transaction.
    CreateRun {
        meta: RunMeta,
        first: Vec<EncodedEntry>,
        blobs: Vec<(String, Vec<u8>)>,
        /// Made leased to this process (it is about to execute the run),
        /// else claimable (an import).
        leased: bool,
        /// What workers see it as (`lev_runs.work`).
        work: String,
        reply: Reply<Vec<Seq>>,
    },
    Append(Append),
    /// Lets go of a lease, after every append queued before it.
    Release {
        run: RunId,
        generation: i64,
        hold_back_ms: Option<i64>,
        reply: Option<Reply<()>>,
    },
}

/// An append as the writer task takes it (see `journal::Append`).
pub(crate) struct Append {
    pub(crate) run: RunId,
    pub(crate) entries: Vec<EncodedEntry>,
    pub(crate) status: Option<RunStatus>,
    pub(crate) blobs: Vec<(String, Vec<u8>)>,
    pub(crate) at_seq: Option<Seq>,
    /// The generation of the run's lease this process held when the
    /// append was submitted (checked in its transaction).
    pub(crate) lease: Option<i64>,
    pub(crate) reply: Reply<Vec<Seq>>,
}

/// A journal's PostgreSQL side: the store reads use, and the writer task's
/// queue. The task ends when the last handle is dropped.
pub(crate) struct PgJournal {
    reads: PgStore,
    tx: mpsc::Sender<Request>,
    commits: Arc<AtomicU64>,
    leases: Arc<Leases>,
}

impl PgJournal {
    /// Connects three times (the writer task's connection, the one reads
    /// and claims use, and the leases' heartbeat's) and starts the writer
    /// task and the heartbeat on the current runtime. Leases this process
    /// takes last `lease` unless renewed.
    pub(crate) async fn open(
        url: &str,
        lease: std::time::Duration,
    ) -> Result<PgJournal, JournalError> {
        let writes = PgStore::connect(url).await?;
        let reads = PgStore::connect(url).await?;
        let beats = PgStore::connect(url).await?;
        let leases = lease::start(beats, lease);
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_loop(writes, rx, commits.clone(), leases.clone()));
        Ok(PgJournal {
            reads,
            tx,
            commits,
            leases,
        })
    }

    /// The store reads go to.
    pub(crate) fn store(&self) -> &PgStore {
        &self.reads
    }

    /// The leases this process holds.
    pub(crate) fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Queues a request without waiting (from a `Drop`): false when the
    /// queue is full or gone.
    pub(crate) fn try_send(&self, request: Request) -> bool {
        self.tx.try_send(request).is_ok()
    }

    /// Queues a request for the writer task, in order.
    pub(crate) async fn send(&self, request: Request) -> Result<(), JournalError> {
        self.tx
            .send(request)
            .await
            .map_err(|_| JournalError::Closed)
    }

    /// Transactions the writer task committed.
    pub(crate) fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// The writer task: one request (or one group of appends) at a time, in
/// the order they were queued.
async fn write_loop(
    store: PgStore,
    mut rx: mpsc::Receiver<Request>,
    commits: Arc<AtomicU64>,
    leases: Arc<Leases>,
) {
    let mut held: Option<Request> = None;
    loop {
        let request = match held.take() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        match request {
            Request::CreateRun {
                meta,
                first,
                blobs,
                leased,
                work,
                reply,
            } => {
                let lease = leased.then(|| (leases.holder(), leases.millis()));
                let done = store
                    .create_run_encoded(&meta, first, &blobs, lease, &work)
                    .await;
                if done.is_ok() {
                    commits.fetch_add(1, Ordering::Relaxed);
                    if leased {
                        // Noted before the caller hears of the run, so
                        // its first append carries the lease.
                        drop(leases.hold(&meta.id, 1));
                    }
                }
                let _ = reply.send(done.map(|seqs| seqs.into_iter().map(Seq).collect()));
            }
            Request::Release {
                run,
                generation,
                hold_back_ms,
                reply,
            } => {
                let done = store
                    .release(&run, leases.holder(), generation, hold_back_ms)
                    .await;
                // Forgotten either way: a failed release lapses by itself.
                leases.forget(&run, generation);
                if let Err(e) = &done {
                    tracing::warn!(run = %run, error = %e, "could not release the run's lease; it lapses by itself");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(done);
                }
            }
            Request::Append(first) => {
                let (groups, next) = gather(first, &mut rx);
                held = next;
                write_groups(&store, groups, &commits).await;
            }
        }
    }
}

/// Whether `next` may share the transaction of `group`: same run, and
/// either no seq counted on or exactly the one after the group's.
fn continues(group: &[Append], next: &Append) -> bool {
    let Some(first) = group.first() else {
        return false;
    };
    if next.run != first.run || next.lease != first.lease {
        return false;
    }
    let Some(at) = next.at_seq else {
        return true;
    };
    let written: usize = group.iter().map(|a| a.entries.len()).sum();
    first
        .at_seq
        .is_some_and(|start| Some(at.0) == start.0.checked_add(written as u64))
}

/// The appends queued after `first` that may share its transaction, as
/// groups of one run each (consecutive appends of that run, see
/// `continues`), and the request that ended the gathering, held for after
/// this commit: one that is no append (a release comes after the appends
/// before it), or an append of a run here that cannot join its group
/// (a run's appends stay in order).
fn gather(first: Append, rx: &mut mpsc::Receiver<Request>) -> (Vec<Vec<Append>>, Option<Request>) {
    let mut groups = vec![vec![first]];
    let mut count = 1;
    while count < MAX_BATCH {
        let next = match rx.try_recv() {
            Ok(Request::Append(next)) => next,
            Ok(other) => return (groups, Some(other)),
            Err(_) => break,
        };
        match groups.iter_mut().find(|g| g[0].run == next.run) {
            Some(group) if continues(group, &next) => group.push(next),
            Some(_) => return (groups, Some(Request::Append(next))),
            None => groups.push(vec![next]),
        }
        count += 1;
    }
    (groups, None)
}

/// One run's group merged into one append: where it goes (`Target`), its
/// entries, and each caller's reply with how many entries were its own.
struct Merged {
    target: Target,
    entries: Vec<EncodedEntry>,
    replies: Vec<(usize, Reply<Vec<Seq>>)>,
}

struct Target {
    run: RunId,
    at_seq: Option<u64>,
    status: Option<RunStatus>,
    blobs: Vec<(String, Vec<u8>)>,
    lease: Option<i64>,
}

fn merge(group: Vec<Append>) -> Option<Merged> {
    let first = group.first()?;
    let mut target = Target {
        run: first.run.clone(),
        at_seq: first.at_seq.map(|s| s.0),
        status: None,
        blobs: Vec::new(),
        lease: first.lease,
    };
    let mut entries = Vec::new();
    let mut replies = Vec::with_capacity(group.len());
    for append in group {
        replies.push((append.entries.len(), append.reply));
        entries.extend(append.entries);
        target.blobs.extend(append.blobs);
        target.status = append.status.or(target.status);
    }
    Some(Merged {
        target,
        entries,
        replies,
    })
}

/// Writes the groups in one transaction and answers each caller with its
/// own seqs, or its group's callers with the group's refusal, or everyone
/// with the transaction's failure (nothing was written then).
async fn write_groups(store: &PgStore, groups: Vec<Vec<Append>>, commits: &AtomicU64) {
    let mut merged: Vec<Merged> = groups.into_iter().filter_map(merge).collect();
    let appends: Vec<store::Append<'_>> = merged
        .iter_mut()
        .map(|m| store::Append {
            run: &m.target.run,
            at_seq: m.target.at_seq,
            entries: std::mem::take(&mut m.entries),
            status: m.target.status,
            blobs: &m.target.blobs,
            lease: m.target.lease,
        })
        .collect();
    let done = store.append_batch(appends).await;
    let answers: Vec<Result<Vec<u64>, JournalError>> = match done {
        Ok(answers) => {
            if answers.iter().any(Result::is_ok) {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            answers
        }
        Err(e) => merged.iter().map(|_| Err(e.clone())).collect(),
    };
    for (m, answer) in merged.into_iter().zip(answers) {
        match answer {
            Ok(seqs) => {
                let mut seqs = seqs.into_iter().map(Seq);
                for (count, reply) in m.replies {
                    let _ = reply.send(Ok(seqs.by_ref().take(count).collect()));
                }
            }
            Err(e) => {
                for (_, reply) in m.replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
