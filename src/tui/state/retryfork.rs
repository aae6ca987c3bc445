//! Retry and fork in the workbench: the fold of `StepRetryRequested` and
//! `RunForked` (`RunView`), and the keys that ask for them (`State`): `r`
//! retries the selected failed step (an op for the live run, an effect
//! that resumes an ended one), `f` forks the run from the selected step.
//! The selected step is the focused pane's, or the overview's row.

use crate::protocol::{Event, Millis, RunStatus, StepKey, StepStatus};

use super::pane::LineKind;
use super::run_view::RunView;
use super::{Confirm, Effect, Screen, State};

impl RunView {
    /// Folds a retry request or the fork marker.
    pub(super) fn apply_retry_fork(&mut self, event: &Event, at: Millis) {
        match event {
            Event::StepRetryRequested { step, also, .. } => {
                // The run goes on: it is no longer finished.
                self.status = Some(RunStatus::Running);
                self.finished_at = None;
                self.final_usage = None;
                self.reopen(step, "↻ retry requested".to_string(), at);
                for key in also {
                    self.reopen(key, format!("↻ runs again after {step}"), at);
                }
                let then = if also.is_empty() {
                    String::new()
                } else {
                    format!(" (then {} more)", also.len())
                };
                self.notes.push(format!("retry of {step} requested{then}"));
            }
            Event::RunForked {
                from_run,
                from_step,
                ..
            } => {
                self.forked_from = Some((from_run.clone(), from_step.clone()));
                self.notes
                    .push(crate::protocol::describe::forked(from_run, from_step));
            }
            _ => {}
        }
    }

    /// A step re-opened by a retry waits to run again.
    fn reopen(&mut self, step: &StepKey, note: String, at: Millis) {
        if let Some(i) = self.pane_index(step) {
            self.panes[i].note(note, LineKind::Note);
        }
        if self.pane_index(step).is_some() || self.steps.iter().any(|s| &s.key == step) {
            self.set_status(step, StepStatus::Pending, at);
        }
    }
}

impl State {
    /// The step a step-level key acts on: the overview's row, or the
    /// focused pane's step.
    pub(super) fn selected_step(&self) -> Option<(StepKey, StepStatus)> {
        if self.screen != Screen::Panes {
            let row = self.run.steps.get(self.overview_cursor)?;
            return Some((row.key.clone(), row.status));
        }
        self.focused_pane().map(|p| (p.step.clone(), p.status))
    }

    /// `r`: retry the selected failed step.
    pub(super) fn retry_selected(&mut self) -> Vec<Effect> {
        if self.run.run.is_none() {
            self.say("no run on screen");
            return Vec::new();
        }
        let Some((step, status)) = self.selected_step() else {
            self.say(
                "select a failed step to retry it (focus its pane, or pick it in the overview)",
            );
            return Vec::new();
        };
        if !matches!(status, StepStatus::Failed | StepStatus::Cancelled) {
            self.say(format!(
                "retry: {step} did not fail (it is {}); only a failed step is retried",
                status.as_str()
            ));
            return Vec::new();
        }
        self.confirm_step(&step, Confirm::Retry)
    }

    /// Asks `what` about `step`'s row.
    fn confirm_step(&mut self, step: &StepKey, what: fn(usize) -> Confirm) -> Vec<Effect> {
        match self.step_row_of(step) {
            Some(row) => self.ask(what(row)),
            None => self.say(format!("{step} is not a step of this run's outline")),
        }
        Vec::new()
    }

    /// `f`: fork the run from the selected step.
    pub(super) fn fork_selected(&mut self) -> Vec<Effect> {
        if self.run.run.is_none() {
            self.say("no run on screen");
            return Vec::new();
        }
        let Some((step, _)) = self.selected_step() else {
            self.say(
                "select a step to fork the run from (focus its pane, or pick it in the overview)",
            );
            return Vec::new();
        };
        self.confirm_step(&step, Confirm::Fork)
    }
}
