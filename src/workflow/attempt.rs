//! One attempt of a step as the code that does the work sees it: who it
//! is (`AttemptCtx`), how it can fail (`StepError`). The step types
//! (`kinds`), the agent loop, shell and human gates take these; the
//! durable life of a step (`step.rs`) makes them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::RunCtx;
use crate::protocol::{Attempt, Event, PauseReason, StepKey, Usage};
use crate::spec::Step;

/// Why an attempt did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    Failed(String),
    Timeout(String),
    /// Not worth retrying (bad template, refused approval, missing provider).
    Fatal(String),
    Cancelled,
    Paused(PauseReason),
    /// A run-wide limit fired (the message names it).
    Limit(String),
    /// The step ends skipped (e.g. an approval's `on_timeout: skip`).
    Skipped(String),
}

/// Identity of one attempt, passed to the kind runners.
pub struct AttemptCtx {
    pub ctx: Arc<RunCtx>,
    /// Cancelled when the run or this step is cancelled.
    pub cancel: tokio_util::sync::CancellationToken,
    pub key: StepKey,
    pub attempt: Attempt,
    pub step: Step,
    /// `<run>:<seq of the intent>:<attempt>`.
    pub idempotency_key: String,
    pub usage: Arc<Mutex<Usage>>,
    /// Where the step's file tools and `run_shell` work: its own worktree
    /// (`workspace: { worktree: true }`), else the run's workspace.
    pub root: PathBuf,
    /// Facts that need no durability point of their own (an agent's final
    /// reply), journaled in the same commit as the next fact of the attempt
    /// (usually the step's success). Nothing acts on them before that.
    pub deferred: Mutex<Deferred>,
    /// Questions its agent asked the user (`ask_user`) in this process and
    /// not before it (those are in the history): against the mode's
    /// `limits.max_questions`.
    pub questions_asked: Mutex<u32>,
}

/// Facts waiting for the next fact of an attempt, and the blobs they
/// refer to (stored in the same commit).
#[derive(Default)]
pub struct Deferred {
    events: Vec<Event>,
    blobs: Vec<Vec<u8>>,
}

impl AttemptCtx {
    /// Journals `event` for this attempt; a journal that fails stops the
    /// step (nothing may act on a fact that is not on disk).
    /// Facts deferred before it go first, in the same commit.
    pub async fn record(&self, event: Event) -> Result<crate::protocol::Seq, StepError> {
        self.record_as(event, false).await
    }

    /// Like `record`, returning before the commit is durable
    /// (`Recorder::record_ahead`): for the attempt's last fact, its success,
    /// so the steps that need it start while the disk syncs.
    pub async fn record_ahead(&self, event: Event) -> Result<crate::protocol::Seq, StepError> {
        self.record_as(event, true).await
    }

    async fn record_as(
        &self,
        event: Event,
        ahead: bool,
    ) -> Result<crate::protocol::Seq, StepError> {
        let Deferred { mut events, blobs } = self.take_deferred();
        events.push(event);
        let rec = &self.ctx.rec;
        let seqs = match ahead {
            true => rec.record_ahead(events, blobs).await,
            false => rec.record_all_with_blobs(events, blobs).await,
        }
        .map_err(journal)?;
        seqs.last()
            .copied()
            .ok_or_else(|| StepError::Fatal("journal: no seq".into()))
    }

    /// Journals `event` with the next fact of this attempt (see `deferred`).
    pub fn defer(&self, event: Event) {
        self.defer_with_blobs(event, Vec::new());
    }

    /// Like `defer`, with the blobs `event` refers to (stored in the same
    /// commit as it).
    pub fn defer_with_blobs(&self, event: Event, blobs: Vec<Vec<u8>>) {
        if let Ok(mut d) = self.deferred.lock() {
            d.events.push(event);
            d.blobs.extend(blobs);
        }
    }

    /// What was deferred and not journaled yet, taken.
    fn take_deferred(&self) -> Deferred {
        self.deferred
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }

    /// Journals what was deferred, now.
    pub async fn flush(&self) -> Result<(), StepError> {
        let Deferred { events, blobs } = self.take_deferred();
        self.ctx
            .rec
            .record_all_with_blobs(events, blobs)
            .await
            .map_err(journal)?;
        Ok(())
    }

    pub fn add_usage(&self, u: &Usage) {
        if let Ok(mut mine) = self.usage.lock() {
            mine.add(u);
        }
    }
}

fn journal(e: crate::journal::JournalError) -> StepError {
    StepError::Fatal(format!("journal: {e}"))
}

/// `1h2m`, `30s`, `250ms`.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}
