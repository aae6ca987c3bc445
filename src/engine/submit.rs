//! Carrying out an op: a run this handle executes takes it on its ops
//! channel (checked against the journal first, so the sender hears at once
//! when it cannot apply); the rest is done here, recorded before it acts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Driving, Engine, EngineError, Held};
use crate::journal::{Lease, MemoryRecord};
use crate::memory;
use crate::protocol::{Op, RunId, Seq, StepKey};
use crate::workflow::{self, EngineDeps, Settled, Start};

/// What an op did.
#[derive(Debug)]
pub enum Submitted {
    /// Handed to the run this handle executes; its effects arrive as notices.
    Delivered(RunId),
    /// A run no process executes was cancelled in the journal (the text says so).
    Cancelled(String),
    /// A fact about a run no process executes was journaled (the text says which).
    Recorded(String),
    /// This handle now executes a run: started, resumed, retried or forked.
    Driving(Driving),
    /// A worktree was merged or discarded and that was journaled.
    Settled(Settled),
    /// A memory entry was deleted (`None`: there was none).
    Forgot(Option<MemoryRecord>),
    /// A run was deleted from the journal.
    Deleted(RunId),
    /// Carried out by the process that executes the run (on a shared
    /// journal, through it): what that process said it did.
    Elsewhere(Done),
}

/// What an op did, as plain data: what the control socket sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "done", rename_all = "snake_case")]
pub enum Done {
    Delivered { run: RunId },
    Cancelled { text: String },
    Recorded { text: String },
    Driving { run: RunId },
    Settled { text: String },
    Forgot { entry: Option<MemoryRecord> },
    Deleted { run: RunId },
}

impl Submitted {
    pub fn done(&self) -> Done {
        match self {
            Submitted::Delivered(run) => Done::Delivered { run: run.clone() },
            Submitted::Cancelled(text) => Done::Cancelled { text: text.clone() },
            Submitted::Recorded(text) => Done::Recorded { text: text.clone() },
            Submitted::Driving(d) => Done::Driving { run: d.run.clone() },
            Submitted::Settled(s) => Done::Settled {
                text: s.text.clone(),
            },
            Submitted::Forgot(entry) => Done::Forgot {
                entry: entry.clone(),
            },
            Submitted::Deleted(run) => Done::Deleted { run: run.clone() },
            Submitted::Elsewhere(done) => done.clone(),
        }
    }
}

impl Done {
    /// One line for a user.
    pub fn describe(&self) -> String {
        match self {
            Done::Delivered { run } => format!("sent to active run {run}"),
            Done::Cancelled { text } | Done::Recorded { text } | Done::Settled { text } => {
                text.clone()
            }
            Done::Driving { run } => format!("run {run} is executing"),
            Done::Forgot { entry: Some(r) } => format!("forgot {}/{}", r.namespace, r.key),
            Done::Forgot { entry: None } => "no such memory entry".to_string(),
            Done::Deleted { run } => format!("run {run} deleted"),
        }
    }
}

impl Engine {
    pub async fn submit(&self, op: Op) -> Result<Submitted, EngineError> {
        match op {
            Op::ForgetMemory { namespace, key } => memory::remove(self.journal(), &namespace, &key)
                .await
                .map(Submitted::Forgot)
                .map_err(|e| EngineError::Failed(e.to_string())),
            Op::WhisperFeedback { category, outcome } => self
                .journal()
                .whisper_record(&category, outcome)
                .await
                .map(|s| {
                    Submitted::Recorded(format!(
                        "{category}: {} accepted, {} edited, {} dismissed",
                        s.accepted, s.edited, s.dismissed
                    ))
                })
                .map_err(|e| EngineError::Failed(e.to_string())),
            Op::ResetWhispers { category } => {
                let what = category.clone();
                self.journal()
                    .whisper_reset(category)
                    .await
                    .map(|n| {
                        Submitted::Recorded(match what {
                            Some(c) if n == 0 => format!("no whisper score for `{c}`"),
                            Some(c) => format!("whisper score of `{c}` forgotten"),
                            None => format!("{n} whisper score(s) forgotten"),
                        })
                    })
                    .map_err(|e| EngineError::Failed(e.to_string()))
            }
            Op::Resume { run } => self.resume(run).await,
            Op::StartWorkflow { file, inputs } => self.start_workflow(&file, &inputs).await,
            Op::StartObjective { objective, agents } => {
                self.start_objective(&objective, agents).await
            }
            Op::DeleteRun { run } => self.delete(run).await,
            Op::Fork { run, from } => self.fork(&run, &from).await,
            Op::SettleWorktree { run, step, how } => {
                if self.is_active(&run) {
                    // Its steps may still be working in those worktrees.
                    return Err(EngineError::Refused(format!(
                        "run {run} is executing; merge or discard its worktrees once it has ended"
                    )));
                }
                self.while_taken(&run, async {
                    let found = self.step_worktree(&run, &step).await?;
                    workflow::settle_worktree(self.journal(), &run, &found, how)
                        .await
                        .map(Submitted::Settled)
                        .map_err(EngineError::Failed)
                })
                .await
            }
            op => self.to_run(op).await,
        }
    }

    /// An op for one run: delivered when it executes here, else done in
    /// the journal where that means something (cancel, retry).
    async fn to_run(&self, op: Op) -> Result<Submitted, EngineError> {
        let Some(run) = op.run().cloned() else {
            return Err(EngineError::Refused("the op names no run".into()));
        };
        if let Some(ops) = self.live(&run) {
            // What the run cannot apply it says back as a notice
            // (`Notice::Refused`); the control socket checks first
            // (`check_target`), since its caller sees no notices.
            ops.send(op)
                .map_err(|_| EngineError::Refused(format!("run {run} is finishing")))?;
            return Ok(Submitted::Delivered(run));
        }
        if let Some(holder) = self.executor_elsewhere(&run).await? {
            return self.ask_elsewhere(&run, &holder, op).await;
        }
        match op {
            Op::Cancel { run } => {
                self.while_taken(&run, async {
                    workflow::cancel_idle_run(self.journal(), &run)
                        .await
                        .map(Submitted::Cancelled)
                        .map_err(EngineError::Failed)
                })
                .await
            }
            Op::RetryStep { run, step } => self.retry(&run, &step).await,
            Op::StopCallbacks { run } => {
                self.while_taken(&run, async {
                    workflow::stop_callbacks_idle(self.journal(), &run)
                        .await
                        .map(Submitted::Recorded)
                        .map_err(EngineError::Failed)
                })
                .await
            }
            Op::CancelStep { run, step } => Err(EngineError::Refused(format!(
                "run {run} is not being executed by any lev process, so step `{step}` is not running"
            ))),
            _ => Err(EngineError::Refused(format!(
                "run {run} is not being executed by any lev process: there is nothing live to steer (`lev resume` continues a stopped run)",
            ))),
        }
    }

    /// `submit`, and for an answer to a question of a run this handle
    /// executes, the run's word on it: when another answer was taken
    /// first (two people, two machines), this one is refused saying so —
    /// the first answer wins. For a sender that sees no notices (the
    /// control socket's caller, a request from another machine).
    pub async fn submit_confirmed(&self, op: Op) -> Result<Submitted, EngineError> {
        let (run, question, answer) = match &op {
            Op::Answer {
                run,
                question,
                answer,
                ..
            } if self.is_active(run) => (run.clone(), question.clone(), answer.clone()),
            _ => return self.submit(op).await,
        };
        // Subscribed before it is delivered: the run's record of the
        // question's answer cannot pass unseen.
        let mut notices = self.subscribe();
        let done = self.submit(op).await?;
        let taken = async {
            while let Some(notice) = notices.recv().await {
                match notice {
                    crate::protocol::Notice::Event(r) if r.run == run => {
                        if let crate::protocol::Event::QuestionAnswered { id, answer, .. } = r.event
                            && id == question
                        {
                            return Some(answer);
                        }
                    }
                    crate::protocol::Notice::Ended(r) if r == run => return None,
                    _ => {}
                }
            }
            None
        };
        match tokio::time::timeout(CONFIRM_PATIENCE, taken).await {
            Ok(Some(taken)) if taken != answer => Err(EngineError::Refused(format!(
                "question {question} of run {run} was answered first, by another answer: {}",
                crate::text::one_line(&taken, 200)
            ))),
            // Ours, or not seen in time (delivered all the same).
            _ => Ok(done),
        }
    }

    /// Checks an op aimed at one agent of a live run against the journal,
    /// for a sender that sees no notices (the control socket's caller): it
    /// hears at once when the step is not a running agent. A participant
    /// that folds notices is told by the run itself, without this read of
    /// the whole run.
    pub async fn check_target(&self, op: &Op) -> Result<(), EngineError> {
        if let Op::Answer { run, question, .. } = op {
            let events = workflow::read_run(self.journal(), run).await?;
            return open_question(&events, question)
                .map_err(|e| EngineError::Refused(format!("run {run}: {e}")));
        }
        let (run, step) = match op {
            Op::Message { run, step, .. }
            | Op::Pause {
                run,
                step: Some(step),
            }
            | Op::RetryStep { run, step } => (run, step),
            _ => return Ok(()),
        };
        let events = workflow::read_run(self.journal(), run).await?;
        let checked = match op {
            Op::RetryStep { .. } => workflow::retryable(&events, step),
            _ => workflow::running_agent(&events, step),
        };
        checked.map_err(|e| EngineError::Refused(format!("run {run}: {e}")))
    }

    /// Writes to a run no process executes (`write`, awaited only once
    /// the run is taken): held in the registry and by its lease while it
    /// is written — on a shared journal no other process executes it
    /// meanwhile — and let go after, however the write went.
    async fn while_taken<T>(
        &self,
        run: &RunId,
        write: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let (_held, lease) = self.take(run).await?;
        let done = write.await;
        let_go(lease).await;
        done
    }

    /// The run's definition source, when the run exists.
    async fn source_of(&self, run: &RunId) -> Result<String, EngineError> {
        match self.journal().run(run).await? {
            Some(meta) => Ok(meta.source),
            None => Err(EngineError::RunNotFound(run.clone())),
        }
    }

    /// Deletes a run this handle does not execute (a run another process
    /// executes cannot be here: that process holds the journal).
    async fn delete(&self, run: RunId) -> Result<Submitted, EngineError> {
        // The run is held in the registry while it is deleted, under the
        // lock `drive` checks: a resume submitted meanwhile is refused
        // instead of executing a run whose entries are going.
        // Its lease too: a run another process executes is not deleted.
        let (_held, lease) = self.take(&run).await.map_err(|e| match e {
            EngineError::Refused(why) if self.is_active(&run) => EngineError::Refused(format!(
                "run {run} is executing here; stop it (or let it end) before deleting it ({why})"
            )),
            e => e,
        })?;
        let deleted = match self.journal().run(&run).await {
            Ok(Some(_)) => self
                .journal()
                .delete_runs(vec![run.clone()])
                .await
                .map_err(EngineError::from),
            Ok(None) => Err(EngineError::RunNotFound(run.clone())),
            Err(e) => Err(e.into()),
        };
        let_go(lease).await;
        deleted?;
        Ok(Submitted::Deleted(run))
    }

    async fn resume(&self, run: RunId) -> Result<Submitted, EngineError> {
        let (held, lease) = self.take(&run).await?;
        self.execute(held, lease).await.map(Submitted::Driving)
    }

    /// Resumes a run a `lev worker` claimed (`Journal::claim_next`). When
    /// this process cannot execute it (its definition does not load here,
    /// no provider), the lease is let go with the run held back from
    /// claims for `hold_back`, so workers do not claim it again and again.
    pub async fn resume_claimed(
        &self,
        lease: Lease,
        hold_back: std::time::Duration,
    ) -> Result<Driving, EngineError> {
        let Some(held) = self.hold(lease.run()) else {
            return Err(EngineError::Refused(format!(
                "run {} is already executing",
                lease.run()
            )));
        };
        match self.prepare(lease.run()).await {
            Ok((deps, last)) => Ok(self.drive(held, lease, deps, Start::Resume, None, last)),
            Err(e) => {
                if let Err(r) = lease.release_for(hold_back).await {
                    tracing::warn!(error = %r, "lease not released; it lapses by itself");
                }
                Err(e)
            }
        }
    }

    /// Executes a recorded run this process has taken (see `take`).
    async fn execute(&self, held: Held, lease: Lease) -> Result<Driving, EngineError> {
        let (deps, last) = self.prepare(lease.run()).await?;
        Ok(self.drive(held, lease, deps, Start::Resume, None, last))
    }

    /// What resuming `run` needs: this process's dependencies for its
    /// definition, and its last seq; refused for a run that ended.
    async fn prepare(&self, run: &RunId) -> Result<(Arc<EngineDeps>, Option<Seq>), EngineError> {
        let meta = self
            .journal()
            .run(run)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
        if meta.status.is_terminal() {
            return Err(EngineError::Refused(format!(
                "run {run} already {}: retry a step or fork it to run it again",
                meta.status.as_str()
            )));
        }
        let deps = self.deps_for(&meta.source)?;
        Ok((deps, Some(Seq(meta.last_seq))))
    }

    /// Records the retry in the ended run, then executes it again.
    async fn retry(&self, run: &RunId, step: &StepKey) -> Result<Submitted, EngineError> {
        // Dependencies first: a retry is recorded only when it can be driven.
        let deps = self.deps_for(&self.source_of(run).await?)?;
        let (held, lease) = self.take(run).await?;
        let recorded = workflow::request_retry(self.journal(), &deps.modes, run, step).await?;
        let last = Some(recorded.seq);
        Ok(Submitted::Driving(self.drive(
            held,
            lease,
            deps,
            Start::Resume,
            Some(recorded),
            last,
        )))
    }

    /// Creates the fork (recorded in its own journal), then executes it.
    async fn fork(&self, run: &RunId, from: &StepKey) -> Result<Submitted, EngineError> {
        let deps = self.deps_for(&self.source_of(run).await?)?;
        let (fork, recorded) = workflow::fork_run(self.journal(), &deps.modes, run, from).await?;
        let (held, lease) = self.take(&fork).await?;
        let last = Some(recorded.seq);
        Ok(Submitted::Driving(self.drive(
            held,
            lease,
            deps,
            Start::Resume,
            Some(recorded),
            last,
        )))
    }
}

/// How long `submit_confirmed` waits for the run to record an answer.
const CONFIRM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether question `id` was asked and waits for its answer (else why not:
/// answered already, with what, or never asked).
fn open_question(events: &[crate::protocol::Recorded], id: &str) -> Result<(), String> {
    use crate::protocol::Event;
    let mut asked = false;
    for r in events {
        match &r.event {
            Event::QuestionAsked { id: q, .. } if q == id => asked = true,
            Event::QuestionAnswered {
                id: q,
                answer,
                source,
                ..
            } if q == id => {
                let by = serde_json::to_value(source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Err(format!(
                    "question {id} was answered already ({by}): {}",
                    crate::text::one_line(answer, 200)
                ));
            }
            _ => {}
        }
    }
    if asked {
        Ok(())
    } else {
        Err(format!("no question {id} was asked"))
    }
}

/// Lets go of a run taken only while something was written to it, and
/// waits until the database says so: the command may end right after, and
/// another process may claim the run at once.
async fn let_go(lease: Lease) {
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "lease not released; it lapses by itself");
    }
}
