//! Carrying out an op: a run this handle executes takes it on its ops
//! channel (checked against the journal first, so the sender hears at once
//! when it cannot apply); the rest is done here, recorded before it acts.

use serde::{Deserialize, Serialize};

use super::{Driving, Engine, EngineError};
use crate::journal::MemoryRecord;
use crate::memory;
use crate::protocol::{Op, RunId, Seq, StepKey};
use crate::workflow::{self, Settled, Start};

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
                let found = self.step_worktree(&run, &step).await?;
                workflow::settle_worktree(self.journal(), &run, &found, how)
                    .await
                    .map(Submitted::Settled)
                    .map_err(EngineError::Failed)
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
        match op {
            Op::Cancel { run } => workflow::cancel_idle_run(self.journal(), &run)
                .await
                .map(Submitted::Cancelled)
                .map_err(EngineError::Failed),
            Op::RetryStep { run, step } => self.retry(&run, &step).await,
            Op::StopCallbacks { run } => workflow::stop_callbacks_idle(self.journal(), &run)
                .await
                .map(Submitted::Recorded)
                .map_err(EngineError::Failed),
            Op::CancelStep { run, step } => Err(EngineError::Refused(format!(
                "run {run} is not being executed by any lev process, so step `{step}` is not running"
            ))),
            _ => Err(EngineError::Refused(format!(
                "run {run} is not being executed by any lev process: there is nothing live to steer (`lev resume` continues a stopped run)",
            ))),
        }
    }

    /// Checks an op aimed at one agent of a live run against the journal,
    /// for a sender that sees no notices (the control socket's caller): it
    /// hears at once when the step is not a running agent. A participant
    /// that folds notices is told by the run itself, without this read of
    /// the whole run.
    pub async fn check_target(&self, op: &Op) -> Result<(), EngineError> {
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
        let _held = self.hold(&run).ok_or_else(|| {
            EngineError::Refused(format!(
                "run {run} is executing here; stop it (or let it end) before deleting it"
            ))
        })?;
        if self.journal().run(&run).await?.is_none() {
            return Err(EngineError::RunNotFound(run));
        }
        self.journal().delete_runs(vec![run.clone()]).await?;
        Ok(Submitted::Deleted(run))
    }

    async fn resume(&self, run: RunId) -> Result<Submitted, EngineError> {
        // A run this handle executes already is refused by `drive`.
        let meta = self
            .journal()
            .run(&run)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
        if meta.status.is_terminal() {
            return Err(EngineError::Refused(format!(
                "run {run} already {}: retry a step or fork it to run it again",
                meta.status.as_str()
            )));
        }
        let deps = self.deps_for(&meta.source)?;
        let last = Some(Seq(meta.last_seq));
        self.drive(deps, run, Start::Resume, None, last)
            .map(Submitted::Driving)
    }

    /// Records the retry in the ended run, then executes it again.
    async fn retry(&self, run: &RunId, step: &StepKey) -> Result<Submitted, EngineError> {
        // Dependencies first: a retry is recorded only when it can be driven.
        let deps = self.deps_for(&self.source_of(run).await?)?;
        let recorded = workflow::request_retry(self.journal(), &deps.modes, run, step).await?;
        let last = Some(recorded.seq);
        self.drive(deps, run.clone(), Start::Resume, Some(recorded), last)
            .map(Submitted::Driving)
    }

    /// Creates the fork (recorded in its own journal), then executes it.
    async fn fork(&self, run: &RunId, from: &StepKey) -> Result<Submitted, EngineError> {
        let deps = self.deps_for(&self.source_of(run).await?)?;
        let (fork, recorded) = workflow::fork_run(self.journal(), &deps.modes, run, from).await?;
        let last = Some(recorded.seq);
        self.drive(deps, fork, Start::Resume, Some(recorded), last)
            .map(Submitted::Driving)
    }
}
