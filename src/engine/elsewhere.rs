//! Runs another lev process executes, on a shared (PostgreSQL) journal:
//! an op for one goes to that process (the holder of the run's lease)
//! through the journal, and the handle can follow one live (`watch`),
//! its facts arriving as notices as they are committed — announced by
//! `LISTEN lev_entries`, read from the journal, never polled for.
//!
//! The wire format is the control socket's (`host`): a request
//! `{"request":"submit","op":…}`, a reply `{"ok":<Done>}` or
//! `{"err":"…"}`; the executing process carries it out as the socket
//! would (`host::serve_inbox`).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{Driving, Engine, EngineError, Submitted, lock};
use crate::protocol::{Event, Notice, Op, RunId, RunStatus, Seq};
use crate::workflow::{self, RunOutcome};

/// How long an op waits for the process executing its run to answer.
const PATIENCE: Duration = Duration::from_secs(10);
/// How often a followed run is looked at without an announcement (one
/// lost with a listening connection that dropped).
const LOOK_AGAIN: Duration = Duration::from_secs(5);

impl Engine {
    /// The process that executes `run`, when the journal is shared and a
    /// process other than this one holds the run's live lease.
    pub(super) async fn executor_elsewhere(
        &self,
        run: &RunId,
    ) -> Result<Option<String>, EngineError> {
        let journal = self.journal();
        if !journal.is_shared() {
            return Ok(None);
        }
        let lease = journal.lease_of(run).await?;
        Ok(lease
            .map(|(holder, _)| holder)
            .filter(|h| Some(h.as_str()) != journal.holder()))
    }

    /// Sends `op` to `holder`, which executes `run`, and says what it did.
    pub(super) async fn ask_elsewhere(
        &self,
        run: &RunId,
        holder: &str,
        op: Op,
    ) -> Result<Submitted, EngineError> {
        let request = json!({"request": "submit", "op": op}).to_string();
        let reply = self
            .journal()
            .ask_executor(run, holder, &request, PATIENCE)
            .await?
            .ok_or_else(|| {
                EngineError::Failed(format!(
                    "lev process {holder}, which executes run {run}, did not answer within {}s",
                    PATIENCE.as_secs()
                ))
            })?;
        let unreadable = |e: serde_json::Error| {
            EngineError::Failed(format!("unreadable reply from {holder}: {e}"))
        };
        let reply: Value = serde_json::from_str(&reply).map_err(unreadable)?;
        if let Some(err) = reply.get("err") {
            return Err(EngineError::Refused(
                err.as_str().unwrap_or("refused").to_owned(),
            ));
        }
        let done = reply.get("ok").cloned().unwrap_or(Value::Null);
        serde_json::from_value(done)
            .map(Submitted::Elsewhere)
            .map_err(unreadable)
    }

    /// Follows `run`, which another process executes, live: its facts
    /// after its last seq now arrive as notices (`Notice::Event`), then
    /// `Notice::Ended` once it ends or pauses, or its process lets go of
    /// it. Refused when no other process executes it (or the journal is
    /// not shared). The returned `Driving` says where the history stood
    /// (`resumed_after`) and ends with the run's status as recorded.
    pub async fn watch(&self, run: &RunId) -> Result<Driving, EngineError> {
        let Some(holder) = self.executor_elsewhere(run).await? else {
            return Err(EngineError::Refused(format!(
                "run {run} is not executed by another lev process"
            )));
        };
        let Some(mut appends) = self.journal().follow_appends().await? else {
            return Err(EngineError::Refused("this journal is not shared".into()));
        };
        // Listening first, then reading where the run stands: no fact
        // committed in between goes unseen.
        let meta = self
            .journal()
            .run(run)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
        lock(&self.inner.watched).insert(run.clone());
        tracing::info!(%run, %holder, "following a run another process executes");
        let (done_tx, done) = oneshot::channel();
        let engine = self.clone();
        let id = run.clone();
        let last = meta.last_seq;
        tokio::spawn(async move {
            let mut seen = last;
            let outcome = loop {
                let announced = tokio::time::timeout(LOOK_AGAIN, async {
                    loop {
                        match appends.recv().await {
                            Some((r, s)) if r == id && s > seen => return true,
                            Some(_) => {}
                            None => return false,
                        }
                    }
                })
                .await;
                if matches!(announced, Ok(false)) {
                    // The listening connection is gone: look by the clock.
                    tokio::time::sleep(LOOK_AGAIN).await;
                }
                match engine.catch_up(&id, &mut seen).await {
                    Ok(Some(outcome)) => break Ok(outcome),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            };
            lock(&engine.inner.watched).remove(&id);
            engine.inner.publish(Notice::Ended(id));
            let _ = done_tx.send(outcome);
        });
        Ok(Driving {
            run: run.clone(),
            request: None,
            resumed_after: Some(Seq(last)),
            done,
        })
    }

    /// Publishes `run`'s facts after `seen` (moving it on); the run's
    /// outcome once it ended or paused, or nobody executes it any more.
    async fn catch_up(
        &self,
        run: &RunId,
        seen: &mut u64,
    ) -> Result<Option<RunOutcome>, EngineError> {
        if let Some(finished) = self.publish_after(run, seen).await? {
            return Ok(Some(finished));
        }
        // Paused: nothing more is coming until someone resumes it. A run
        // whose process died is followed on: a worker takes it over.
        let meta = self.journal().run(run).await?;
        Ok(match meta {
            Some(m) if m.status != RunStatus::Running => {
                // Its status and its last facts commit together: those
                // written since the read above are published first.
                if let Some(finished) = self.publish_after(run, seen).await? {
                    return Ok(Some(finished));
                }
                Some(RunOutcome {
                    status: m.status,
                    outputs: Default::default(),
                    error: None,
                })
            }
            Some(_) => None,
            None => Some(RunOutcome {
                status: RunStatus::Cancelled,
                outputs: Default::default(),
                error: Some(format!("run {run} was deleted")),
            }),
        })
    }

    /// Publishes `run`'s facts after `seen`, moving it on; the outcome its
    /// `run_finished` says, when one is among them.
    async fn publish_after(
        &self,
        run: &RunId,
        seen: &mut u64,
    ) -> Result<Option<RunOutcome>, EngineError> {
        let id = run.clone();
        let new = self
            .journal()
            .read_as(run, Seq(*seen + 1), move |seq, entry| {
                workflow::from_entry(&id, seq, &entry)
            })
            .await?;
        let mut finished = None;
        for r in new {
            *seen = (*seen).max(r.seq.0);
            if let Event::RunFinished {
                status,
                outputs,
                error,
                ..
            } = &r.event
            {
                finished = Some(RunOutcome {
                    status: *status,
                    outputs: outputs.clone(),
                    error: error.clone(),
                });
            }
            self.inner.publish(Notice::Event(r));
        }
        Ok(finished)
    }
}
