//! Journal first, then tell: every event is appended durably and only then
//! broadcast, in seq order, to the run's participants.
//!
//! The recorder numbers a run's facts as it hands them to the journal's
//! writer (it is the run's only writer while it lives), so a caller may go
//! on before a fact is on disk — an idempotent step's start, or a step's
//! success while the next step begins (`record_ahead`) — and still know its
//! seq. What it broadcasts waits until durable all the same, deltas
//! included: participants see facts and live output in the order the
//! engine made them, never a fact a crash could still take back. The
//! writer writes in submission order and refuses a fact whose seq is not
//! the run's next (`JournalError::Gap`): when one fails, everything
//! submitted after it fails too, and the recorder is fenced — like a crash
//! at that point, which `lev resume` takes up from the last durable fact.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::journal::{Append, Entry, Journal, JournalError, Submitted};
use crate::protocol::{Delta, Event, Notice, Recorded, RunId, RunStatus, Seq};

/// Where notices go: every participant's channel.
pub type NoticeSender = mpsc::UnboundedSender<Notice>;

/// Appends a run's events and broadcasts them once durable. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    journal: Journal,
    run: RunId,
    subscribers: Arc<Vec<NoticeSender>>,
    /// The seq the next submitted fact gets; held while submitting, so
    /// facts reach the writer in the order they are numbered.
    next_seq: Arc<tokio::sync::Mutex<u64>>,
    /// Notices waiting for the facts before them to be durable.
    outbox: Arc<Mutex<Outbox>>,
    /// The failure that stopped this run's recording, if one did.
    fenced: Arc<OnceLock<JournalError>>,
    /// The seq of the next fact to broadcast, for `caught_up`.
    broadcast: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Notices not sent yet, so they go out in order.
struct Outbox {
    /// The seq of the next fact to broadcast.
    next: u64,
    /// The last seq submitted to the writer: notices made after it wait
    /// until it is broadcast.
    submitted: u64,
    /// Facts durable out of order.
    waiting: BTreeMap<u64, Recorded>,
    /// Other notices (deltas, refusals) and the seq they wait for.
    held: VecDeque<(u64, Notice)>,
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
            next_seq: Arc::new(tokio::sync::Mutex::new(last_seq + 1)),
            outbox: Arc::new(Mutex::new(Outbox {
                next: last_seq + 1,
                submitted: last_seq,
                waiting: BTreeMap::new(),
                held: VecDeque::new(),
            })),
            fenced: Arc::new(OnceLock::new()),
            broadcast: Arc::new(tokio::sync::watch::Sender::new(last_seq + 1)),
        }
    }

    /// Waits until every fact submitted so far is committed and broadcast
    /// (or the recorder is fenced). Work whose effects cannot be taken back
    /// waits for this before it starts, so it starts only once what it
    /// follows is on disk and a full disk is known (`Journal::disk_full`).
    pub async fn caught_up(&self) {
        let target = match self.outbox.lock() {
            Ok(out) => out.submitted,
            Err(_) => return,
        };
        self.broadcast_past(target).await;
    }

    /// Waits until `seq` and every fact before it are broadcast (or the
    /// recorder is fenced).
    async fn broadcast_past(&self, seq: u64) {
        let mut seen = self.broadcast.subscribe();
        let _ = seen.wait_for(|next| *next > seq).await;
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

    /// Appends `event` without a durability point of its own (a step's
    /// start) and returns its seq at once, before it is written: the next
    /// durable commit makes it durable, and it is broadcast then; a crash
    /// before that loses it, and with it nothing that depends on it (the
    /// step then starts again).
    pub async fn record_unsynced(&self, event: Event) -> Result<Seq, JournalError> {
        let events = vec![event];
        let (first, submitted) = self.submit(&events, Vec::new(), None, false).await?;
        self.complete(events, first, submitted);
        Ok(first)
    }

    /// Durably appends `events` in one commit and returns their seqs at
    /// once, before the commit is durable, so the caller goes on while the
    /// disk syncs (a step's success: the steps that need it start at once).
    /// They are broadcast once durable. Safe because nothing outside the
    /// process acts on them before a durable fact of its own, which the
    /// writer commits after them: a step's command waits for its process
    /// group's commit, a question is seen once journaled, an agent's tool
    /// call waits for its start's commit; what runs before that (an
    /// agent's model request) runs again after a crash.
    pub async fn record_ahead(
        &self,
        events: Vec<Event>,
        blobs: Vec<Vec<u8>>,
    ) -> Result<Vec<Seq>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (first, submitted) = self.submit(&events, blobs, None, true).await?;
        let seqs = (0..events.len() as u64).map(|i| Seq(first.0 + i)).collect();
        self.complete(events, first, submitted);
        Ok(seqs)
    }

    /// Makes everything appended so far durable (a durable commit with no
    /// event of its own). Fails when an earlier fact was not written.
    pub async fn sync(&self) -> Result<(), JournalError> {
        let (first, submitted) = self.submit(&[], Vec::new(), None, true).await?;
        self.completed(Vec::new(), first, submitted)
            .await
            .map(|_| ())
    }

    /// Like `record`, also setting the run's status in the same commit.
    pub async fn record_with_status(
        &self,
        event: Event,
        status: Option<RunStatus>,
    ) -> Result<Seq, JournalError> {
        let events = vec![event];
        let (first, submitted) = self.submit(&events, Vec::new(), status, true).await?;
        self.completed(events, first, submitted).await?;
        Ok(first)
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
        let (first, submitted) = self.submit(&events, blobs, None, true).await?;
        self.completed(events, first, submitted).await
    }

    /// Numbers `events` and hands them to the writer: returns the first
    /// seq once they are queued (after every fact submitted before them).
    async fn submit(
        &self,
        events: &[Event],
        blobs: Vec<Vec<u8>>,
        status: Option<RunStatus>,
        durable: bool,
    ) -> Result<(Seq, Submitted), JournalError> {
        if let Some(e) = self.fenced.get() {
            return Err(e.clone());
        }
        let entries = events.iter().map(to_entry).collect::<Result<Vec<_>, _>>()?;
        let count = entries.len() as u64;
        let mut next = self.next_seq.lock().await;
        let first = *next;
        let append = Append {
            entries,
            status,
            durable,
            blobs,
            at_seq: Some(Seq(first)),
        };
        let submitted = self.journal.submit(&self.run, append).await?;
        // No await from here to the end: a caller stopped now has still
        // counted what it queued.
        *next += count;
        if count > 0
            && let Ok(mut out) = self.outbox.lock()
        {
            out.submitted = first + count - 1;
        }
        Ok((Seq(first), submitted))
    }

    /// Waits for a submitted append and broadcasts its events (see
    /// `detached`); fails as it did. Returns once they are broadcast, which
    /// may wait for facts before them recorded ahead: whoever waits for a
    /// fact (the run's end above all) may count on every notice before it
    /// having gone out.
    async fn completed(
        &self,
        events: Vec<Event>,
        first: Seq,
        submitted: Submitted,
    ) -> Result<Vec<Seq>, JournalError> {
        let this = self.clone();
        let seqs = detached(async move { this.settle(events, first, submitted).await }).await?;
        let last = seqs.last().map_or(first.0.saturating_sub(1), |s| s.0);
        self.broadcast_past(last).await;
        Ok(seqs)
    }

    /// Like `completed`, without waiting for it.
    fn complete(&self, events: Vec<Event>, first: Seq, submitted: Submitted) {
        let this = self.clone();
        tokio::spawn(async move { this.settle(events, first, submitted).await });
    }

    async fn settle(
        &self,
        events: Vec<Event>,
        first: Seq,
        submitted: Submitted,
    ) -> Result<Vec<Seq>, JournalError> {
        let seqs = match submitted.committed().await {
            Ok(seqs) if seqs.len() == events.len() && seqs.first().is_none_or(|s| *s == first) => {
                seqs
            }
            Ok(_) => {
                let e = JournalError::Storage(format!(
                    "run {}: the journal numbered facts other than the recorder did",
                    self.run
                ));
                self.fence(e.clone());
                return Err(e);
            }
            Err(e) => {
                self.fence(e.clone());
                return Err(e);
            }
        };
        for (seq, event) in seqs.iter().zip(events) {
            self.publish(Recorded {
                run: self.run.clone(),
                seq: *seq,
                event,
            });
        }
        Ok(seqs)
    }

    /// Stops recording after a fact could not be written: what was
    /// submitted after it is refused by the writer, and nothing more is
    /// submitted. Notices held for facts that will never be broadcast go
    /// out now.
    fn fence(&self, error: JournalError) {
        if self.fenced.set(error.clone()).is_ok() {
            tracing::error!(run = %self.run, "the run's journal stopped at a fact it could not write: {error}");
        }
        self.broadcast.send_replace(u64::MAX);
        let Ok(mut out) = self.outbox.lock() else {
            return;
        };
        for (_, notice) in std::mem::take(&mut out.held) {
            self.send(notice);
        }
    }

    /// Sends a live delta (not journaled).
    pub fn delta(&self, delta: Delta) {
        self.notify(Notice::Delta(self.run.clone(), delta));
    }

    /// Says back why an op changed nothing (not journaled).
    pub fn refuse(&self, text: String) {
        tracing::info!(run = %self.run, "{text}");
        self.notify(Notice::Refused(self.run.clone(), text));
    }

    /// Re-announces a recorded event that still waits for an answer (after resume).
    pub fn announce_pending(&self, recorded: Recorded) {
        self.notify(Notice::Pending(recorded));
    }

    /// Sends a notice that is not a fact: now, or after the facts submitted
    /// before it are broadcast.
    fn notify(&self, notice: Notice) {
        let Ok(mut out) = self.outbox.lock() else {
            return;
        };
        if out.next > out.submitted || self.fenced.get().is_some() {
            self.send(notice);
        } else {
            let after = out.submitted;
            out.held.push_back((after, notice));
        }
    }

    fn send(&self, notice: Notice) {
        if let Some((last, rest)) = self.subscribers.split_last() {
            for s in rest {
                let _ = s.send(notice.clone());
            }
            let _ = last.send(notice);
        }
    }

    fn publish(&self, recorded: Recorded) {
        // Send while holding the lock: two tasks that each release a run of
        // events must not interleave their sends out of seq order.
        let Ok(mut out) = self.outbox.lock() else {
            return;
        };
        out.waiting.insert(recorded.seq.0, recorded);
        loop {
            let next = out.next;
            let Some(r) = out.waiting.remove(&next) else {
                break;
            };
            out.next += 1;
            self.send(Notice::Event(r));
            if self.fenced.get().is_none() {
                self.broadcast.send_replace(out.next);
            }
            while out.held.front().is_some_and(|(after, _)| *after < out.next) {
                if let Some((_, notice)) = out.held.pop_front() {
                    self.send(notice);
                }
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

    fn meta(run: &RunId) -> RunMeta {
        RunMeta {
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
            step_run: false,
        }
    }

    /// What a test's journal needs kept until it ends.
    type Kept = (tempfile::TempDir, crate::journal::testing::TestJournal);

    /// A recorder of a new run in a new journal (on the suite's backend),
    /// and its one subscriber.
    async fn recorder() -> (Kept, Recorder, mpsc::UnboundedReceiver<Notice>) {
        let dir = tempfile::tempdir().unwrap();
        let journal = crate::journal::testing::open(dir.path()).await;
        let run = RunId::new();
        journal.create_run(meta(&run)).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let rec = Recorder::new(journal.journal.clone(), run, 0, vec![tx]);
        ((dir, journal), rec, rx)
    }

    /// Every notice the subscriber got, once the recorder is gone.
    async fn notices(rec: Recorder, mut rx: mpsc::UnboundedReceiver<Notice>) -> Vec<Notice> {
        drop(rec);
        let mut all = Vec::new();
        while let Ok(Some(n)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await
        {
            all.push(n);
        }
        all
    }

    fn resumed(at: u64) -> Event {
        Event::RunResumed { at: Millis(at) }
    }

    /// A fact recorded ahead has its seq at once, and its broadcast waits
    /// for the commit; a delta made after it waits for it too, so the
    /// participants never see live output before the fact it follows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fact_recorded_ahead_is_broadcast_once_durable_and_before_what_followed_it() {
        let (_dir, rec, rx) = recorder().await;
        let seqs = rec
            .record_ahead(vec![resumed(1), resumed(2)], Vec::new())
            .await
            .unwrap();
        assert_eq!(seqs, vec![Seq(1), Seq(2)]);
        let start = rec.record_unsynced(resumed(3)).await.unwrap();
        assert_eq!(start, Seq(3));
        rec.delta(Delta::Token {
            step: crate::protocol::StepKey::new("s"),
            text: "after".into(),
        });
        rec.record(resumed(4)).await.unwrap();
        let journal = rec.journal().clone();
        let run = rec.run().clone();
        let got = notices(rec, rx).await;
        let order: Vec<String> = got
            .iter()
            .map(|n| match n {
                Notice::Event(r) => format!("event {}", r.seq),
                Notice::Delta(..) => "delta".to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(order, ["event 1", "event 2", "event 3", "delta", "event 4"]);
        assert_eq!(read_run(&journal, &run).await.unwrap().len(), 4);
    }

    /// A fact waited for returns only once every fact before it, recorded
    /// ahead or not, has gone out: the run's end must not reach a
    /// participant that stops listening there before the facts it follows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_recorded_fact_returns_once_every_fact_before_it_is_broadcast() {
        let (_dir, rec, mut rx) = recorder().await;
        for round in 0..200u64 {
            let ahead = rec
                .record_ahead(vec![resumed(round)], Vec::new())
                .await
                .unwrap();
            let start = rec.record_unsynced(resumed(round)).await.unwrap();
            let end = rec.record(resumed(round)).await.unwrap();
            let mut got = Vec::new();
            while let Ok(Notice::Event(r)) = rx.try_recv() {
                got.push(r.seq);
            }
            assert_eq!(got, vec![ahead[0], start, end], "round {round}");
        }
    }

    /// A fact the run went ahead of that cannot be written fences the run:
    /// what was submitted after it is refused, nothing after the hole
    /// reaches the journal or the participants, even once the disk works
    /// again — as if lev had crashed there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fact_the_run_went_ahead_of_that_fails_fences_the_run() {
        use crate::journal::faults::{Fault, FaultyDisk};
        let disk = FaultyDisk::new();
        let d = disk.clone();
        let journal = Journal::open_backend("/faulty/lev.redb", move || d.backend(), None).unwrap();
        let run = RunId::new();
        journal.create_run(meta(&run)).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let rec = Recorder::new(journal.clone(), run.clone(), 0, vec![tx]);
        assert_eq!(rec.record(resumed(1)).await.unwrap(), Seq(1));

        disk.fail_after(0, Fault::Io);
        assert_eq!(
            rec.record_ahead(vec![resumed(2)], Vec::new())
                .await
                .unwrap(),
            vec![Seq(2)]
        );
        // Submitted before the failure is known: refused with it.
        let next = rec.record_unsynced(resumed(3)).await;
        let synced = rec.sync().await;
        assert!(synced.is_err(), "a sync after a lost fact succeeded");
        disk.heal();
        let after = rec.record(resumed(4)).await;
        assert!(after.is_err(), "recorded after a lost fact: {after:?}");
        if let Ok(seq) = next {
            assert_eq!(seq, Seq(3));
        }
        let got = notices(rec, rx).await;
        let seqs: Vec<u64> = got
            .iter()
            .filter_map(|n| match n {
                Notice::Event(r) => Some(r.seq.0),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [1]);
        // What the disk kept, as the next lev finds it.
        drop(journal);
        let after_crash = FaultyDisk::from_image(disk.crash_image());
        let reopened =
            Journal::open_backend("/faulty/lev.redb", move || after_crash.backend(), None).unwrap();
        let kept = read_run(&reopened, &run).await.unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
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
