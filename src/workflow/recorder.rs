//! Journal first, then tell: every event is appended durably and only then
//! broadcast, in seq order, to the run's participants.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::journal::{Entry, Journal, JournalError};
use crate::protocol::{Delta, Event, Notice, Recorded, RunId, RunStatus, Seq};

/// Where notices go: every participant's channel.
pub type NoticeSender = mpsc::UnboundedSender<Notice>;

/// Appends a run's events and broadcasts them once durable. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    journal: Journal,
    run: RunId,
    subscribers: Arc<Vec<NoticeSender>>,
    /// Events acknowledged out of order wait here so notices go out by seq.
    reorder: Arc<Mutex<Reorder>>,
}

struct Reorder {
    next: u64,
    waiting: BTreeMap<u64, Recorded>,
}

impl Recorder {
    /// `last_seq` is the highest seq already in the journal for this run.
    pub fn new(
        journal: Journal,
        run: RunId,
        last_seq: u64,
        subscribers: Vec<NoticeSender>,
    ) -> Self {
        Recorder {
            journal,
            run,
            subscribers: Arc::new(subscribers),
            reorder: Arc::new(Mutex::new(Reorder {
                next: last_seq + 1,
                waiting: BTreeMap::new(),
            })),
        }
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Durably appends `event` and broadcasts it. Returns its seq.
    pub async fn record(&self, event: Event) -> Result<Seq, JournalError> {
        self.record_with_status(event, None).await
    }

    /// Appends `event` without a durability point of its own (an agent
    /// step's start) and broadcasts it: the next durable commit makes it
    /// durable; a crash before that loses it, and with it nothing that
    /// depends on it (the step then starts again).
    pub async fn record_unsynced(&self, event: Event) -> Result<Seq, JournalError> {
        let entry = to_entry(&event)?;
        let this = self.clone();
        detached(async move {
            let seqs = this.journal.append_unsynced(&this.run, vec![entry]).await;
            this.published(event, seqs)
        })
        .await
    }

    /// Makes everything appended so far durable (a durable commit with no
    /// event of its own).
    pub async fn sync(&self) -> Result<(), JournalError> {
        self.journal
            .append(&self.run, Vec::new(), None)
            .await
            .map(|_| ())
    }

    /// Like `record`, also setting the run's status in the same commit.
    pub async fn record_with_status(
        &self,
        event: Event,
        status: Option<RunStatus>,
    ) -> Result<Seq, JournalError> {
        let entry = to_entry(&event)?;
        let this = self.clone();
        detached(async move {
            let seqs = this.journal.append(&this.run, vec![entry], status).await;
            this.published(event, seqs)
        })
        .await
    }

    /// Broadcasts `event` once its append returned its seq.
    fn published(
        &self,
        event: Event,
        seqs: Result<Vec<Seq>, JournalError>,
    ) -> Result<Seq, JournalError> {
        let seq = seqs?
            .first()
            .copied()
            .ok_or(JournalError::Storage("append returned no seq".into()))?;
        self.publish(Recorded {
            run: self.run.clone(),
            seq,
            event,
        });
        Ok(seq)
    }

    /// Durably appends `events` in one commit, in order, and broadcasts
    /// them. Returns their seqs.
    pub async fn record_all(&self, events: Vec<Event>) -> Result<Vec<Seq>, JournalError> {
        self.record_all_with_blobs(events, Vec::new()).await
    }

    /// Like `record_all`, storing `blobs` (which the events refer to) in
    /// the same commit.
    pub async fn record_all_with_blobs(
        &self,
        events: Vec<Event>,
        blobs: Vec<Vec<u8>>,
    ) -> Result<Vec<Seq>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let entries = events.iter().map(to_entry).collect::<Result<Vec<_>, _>>()?;
        let this = self.clone();
        detached(async move {
            let seqs = this
                .journal
                .append_with_blobs(&this.run, entries, blobs)
                .await?;
            if seqs.len() != events.len() {
                return Err(JournalError::Storage("append returned short seqs".into()));
            }
            for (seq, event) in seqs.iter().zip(events) {
                this.publish(Recorded {
                    run: this.run.clone(),
                    seq: *seq,
                    event,
                });
            }
            Ok(seqs)
        })
        .await
    }

    /// Sends a live delta (not journaled).
    pub fn delta(&self, delta: Delta) {
        for s in self.subscribers.iter() {
            let _ = s.send(Notice::Delta(self.run.clone(), delta.clone()));
        }
    }

    /// Says back why an op changed nothing (not journaled).
    pub fn refuse(&self, text: String) {
        tracing::info!(run = %self.run, "{text}");
        for s in self.subscribers.iter() {
            let _ = s.send(Notice::Refused(self.run.clone(), text.clone()));
        }
    }

    /// Re-announces a recorded event that still waits for an answer (after resume).
    pub fn announce_pending(&self, recorded: Recorded) {
        for s in self.subscribers.iter() {
            let _ = s.send(Notice::Pending(recorded.clone()));
        }
    }

    fn publish(&self, recorded: Recorded) {
        // Send while holding the lock: two tasks that each release a run of
        // events must not interleave their sends out of seq order.
        let Ok(mut q) = self.reorder.lock() else {
            return;
        };
        q.waiting.insert(recorded.seq.0, recorded);
        loop {
            let next = q.next;
            let Some(r) = q.waiting.remove(&next) else {
                break;
            };
            q.next += 1;
            for s in self.subscribers.iter() {
                let _ = s.send(Notice::Event(r.clone()));
            }
        }
    }
}

/// Carries out an append and the broadcast of what it appended to the
/// end, even when the caller stops waiting (its task cancelled or aborted,
/// as a run's op dispatcher is when the run ends): a fact appended and
/// never broadcast would hold back every notice after it, for notices go
/// out in seq order — the run's end among them, so a workbench or a
/// headless printer would wait for it forever.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, JournalError>> + Send + 'static,
) -> Result<T, JournalError> {
    tokio::spawn(work)
        .await
        .map_err(|e| JournalError::Storage(format!("journal task stopped: {e}")))?
}

/// The stored form of an event.
pub fn to_entry(event: &Event) -> Result<Entry, JournalError> {
    let payload = serde_json::to_vec(event)
        .map_err(|e| JournalError::Storage(format!("encode event: {e}")))?;
    let (attempt, fingerprint) = match event {
        Event::StepStarted {
            attempt,
            fingerprint,
            ..
        } => (attempt.0, Some(fingerprint.clone())),
        Event::LlmReplied {
            attempt,
            fingerprint,
            ..
        } => (attempt.0, Some(fingerprint.clone())),
        Event::ToolStarted {
            attempt,
            fingerprint,
            ..
        } => (attempt.0, Some(fingerprint.clone())),
        Event::StepSucceeded { attempt, .. } | Event::StepFailed { attempt, .. } => {
            (attempt.0, None)
        }
        _ => (0, None),
    };
    Ok(Entry {
        kind: event.kind().to_string(),
        step: event.step().map(|s| s.0.clone()),
        fingerprint,
        attempt,
        at_ms: event.at().0,
        payload,
    })
}

/// Decodes a stored entry back into an event.
pub fn from_entry(run: &RunId, seq: Seq, entry: &Entry) -> Result<Recorded, JournalError> {
    let event: Event = super::decode::decode_event(&entry.payload).map_err(|e| {
        JournalError::Storage(format!(
            "run {run} entry {seq}: cannot decode `{}`: {e}",
            entry.kind
        ))
    })?;
    Ok(Recorded {
        run: run.clone(),
        seq,
        event,
    })
}

/// Reads a whole run's events in seq order, decoding each entry as it is
/// read (off the async threads): the raw entries of a long run are never
/// all in memory next to their events.
/// What resuming a run needs of its past: its history, its first event
/// (`run_started`) and how it ended, if it did.
#[derive(Default)]
pub struct Past {
    pub history: super::history::History,
    pub first: Option<Recorded>,
    /// The run's last event when it is `run_finished` (merges and
    /// discards of its worktrees may follow it and are passed over).
    pub finished: Option<Event>,
}

/// Folds the run's events into its `Past` as they are read and decoded:
/// a run of 10,000 steps never has its 40,000 events in memory at once.
pub async fn fold_past(journal: &Journal, run: &RunId) -> Result<Past, JournalError> {
    let id = run.clone();
    journal
        .fold_run(run, Seq(1), Past::default(), move |past, seq, entry| {
            let r = from_entry(&id, seq, &entry)?;
            past.history.apply(&r);
            match &r.event {
                Event::Worktree { .. } => {}
                Event::RunFinished { .. } => past.finished = Some(r.event.clone()),
                _ => past.finished = None,
            }
            if past.first.is_none() {
                past.first = Some(r);
            }
            Ok(())
        })
        .await
}

pub async fn read_run(journal: &Journal, run: &RunId) -> Result<Vec<Recorded>, JournalError> {
    let id = run.clone();
    journal
        .read_as(run, Seq(1), move |seq, entry| from_entry(&id, seq, &entry))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RunMeta;
    use crate::protocol::{Millis, RunStatus};

    /// A recorder of a new run in a new journal, and its one subscriber.
    async fn recorder() -> (tempfile::TempDir, Recorder, mpsc::UnboundedReceiver<Notice>) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("lev.redb")).unwrap();
        let run = RunId::new();
        let meta = RunMeta {
            id: run.clone(),
            workflow_id: "w".into(),
            name: "w".into(),
            source: "w.yaml".into(),
            definition_blob: String::new(),
            status: RunStatus::Running,
            created_ms: 0,
            updated_ms: 0,
            last_seq: 0,
            parent: None,
        };
        journal.create_run(meta).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        (dir, Recorder::new(journal, run, 0, vec![tx]), rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn notices_go_out_in_seq_order_whatever_the_ack_order() {
        let (_dir, rec, mut rx) = recorder().await;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let rec = rec.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    rec.record(Event::RunResumed { at: Millis(1) })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop(rec);
        let mut seqs = Vec::new();
        while let Some(Notice::Event(r)) = rx.recv().await {
            seqs.push(r.seq.0);
        }
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    }

    /// A task stopped while its fact is being appended (a run's op
    /// dispatcher is aborted as the run ends) still broadcasts that fact,
    /// so the notices after it — the run's end — are not held back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_whose_caller_is_aborted_still_lets_later_notices_out() {
        let (_dir, rec, mut rx) = recorder().await;
        for round in 0..100u64 {
            let aborted = {
                let rec = rec.clone();
                tokio::spawn(async move { rec.record(Event::RunResumed { at: Millis(1) }).await })
            };
            // Stop it somewhere between not started and done: most often
            // while its commit is under way.
            tokio::time::sleep(std::time::Duration::from_micros(round * 7)).await;
            aborted.abort();
            let seq = rec
                .record(Event::RunResumed { at: Millis(2) })
                .await
                .unwrap();
            let notice = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                loop {
                    match rx.recv().await {
                        Some(Notice::Event(r)) if r.seq == seq => return r,
                        Some(_) => {}
                        None => panic!("the notices ended"),
                    }
                }
            })
            .await;
            assert!(
                notice.is_ok(),
                "round {round}: the notice of seq {seq:?} never came"
            );
        }
    }
}
