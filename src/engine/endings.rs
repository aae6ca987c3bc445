//! How the newest runs ended, step by step, read cheaply from the journal
//! (`Query::RunEndings`): what a participant needs to notice patterns
//! across runs (the same step failing, a timeout hit often, an objective
//! run again) without holding any run's events.

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::journal::RunMeta;
use crate::protocol::{Event, Seq};
use crate::workflow;

/// One run, as far as patterns across runs go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnding {
    pub run: RunMeta,
    /// A swarm run's objective, once its plan was accepted.
    #[serde(default)]
    pub objective: Option<String>,
    /// Steps whose last attempt failed, in the order they failed.
    #[serde(default)]
    pub failed: Vec<StepFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    pub step: String,
    pub error: String,
    /// It ran out of its `timeout`.
    pub timed_out: bool,
}

/// The entry kinds an outcome is made of; the others are not decoded.
const WANTED: [&str; 2] = ["step_failed", "plan_accepted"];
/// Most entries read for one answer: `lev runs` and the workbench ask at
/// their start, so a journal of huge runs must not slow them; a run that
/// does not fit in what is left is left out.
const MOST_ENTRIES: u64 = 20_000;

impl Engine {
    /// The `limit` newest runs (creation order, oldest first) with how they
    /// ended, as many as `MOST_ENTRIES` entries hold.
    pub(super) async fn run_endings(&self, limit: usize) -> Result<Vec<RunEnding>, EngineError> {
        let journal = self.journal();
        let mut runs = journal.runs().await?;
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut newest = runs.split_off(runs.len().saturating_sub(limit));
        let mut left = MOST_ENTRIES;
        // Newest first, so the budget goes to the runs that matter most.
        newest.reverse();
        newest.retain(|r| {
            let fits = r.last_seq <= left;
            if fits {
                left -= r.last_seq;
            }
            fits
        });
        newest.reverse();
        let mut out = Vec::with_capacity(newest.len());
        for run in newest {
            let id = run.id.clone();
            let start = RunEnding {
                run,
                objective: None,
                failed: Vec::new(),
            };
            let outcome = journal
                .fold_run(&id.clone(), Seq(1), start, move |o, seq, entry| {
                    if !WANTED.contains(&entry.kind.as_str()) {
                        return Ok(());
                    }
                    // A damaged entry does not hide the others.
                    let Ok(r) = workflow::from_entry(&id, seq, &entry) else {
                        return Ok(());
                    };
                    o.add(r.event);
                    Ok(())
                })
                .await?;
            out.push(outcome);
        }
        Ok(out)
    }
}

impl RunEnding {
    fn add(&mut self, event: Event) {
        match event {
            // An attempt that is retried is not how the step ended.
            Event::StepFailed {
                step,
                error,
                retry_in_ms: None,
                ..
            } => {
                let timed_out = timed_out(&error);
                self.failed.retain(|f| f.step != step.as_str());
                self.failed.push(StepFailure {
                    step: step.as_str().to_string(),
                    error,
                    timed_out,
                });
            }
            Event::PlanAccepted { objective, .. } => self.objective = Some(objective),
            _ => {}
        }
    }
}

/// Whether a step's error says its time ran out: lev words every timeout
/// so ("timed out after 30s", "`make` timed out after 30s").
fn timed_out(error: &str) -> bool {
    error.contains("timed out after")
}
