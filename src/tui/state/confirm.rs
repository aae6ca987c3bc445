//! Confirmations: what a key that cannot be taken back (quit with a live
//! run, cancel, deny, retry, fork, emergency stop, merge or discard a
//! worktree) asks before it acts. Each names its target and is answered
//! with the same keys (`y`/`Enter` yes, `n`/`Esc` no); one whose target has
//! ended while it was on screen goes away and says why, instead of
//! swallowing the next key.

use crossterm::event::{KeyCode, KeyEvent};

use crate::isolation::Fate;
use crate::protocol::{Op, StepStatus};
use crate::workflow::Settle;

use super::{Effect, Overlay, State};

/// What a confirm overlay confirms. Steps are named by their row in
/// `RunView::steps` (rows are never removed or moved), prompts by their
/// index in `RunView::prompts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Quit,
    CancelRun,
    /// Cancel the running step of this row.
    CancelStep(usize),
    /// Stop every running step now (the run ends paused, resumable).
    EmergencyStop,
    /// No new follow-up or system question in the run.
    StopCallbacks,
    /// Merge or discard worktree `n` of `RunView::worktrees`.
    Worktree(Settle, usize),
    /// Deny the approval of prompt `n` (its step fails).
    Deny(usize),
    /// Retry the failed step of this row.
    Retry(usize),
    /// Fork the run from the step of this row.
    Fork(usize),
    /// Delete the runs browser's run `State::deleting`.
    DeleteRun,
}

impl Confirm {
    /// What `y` does, in a word or two, for the key line.
    pub fn verb(self) -> &'static str {
        match self {
            Confirm::Quit => "quit",
            Confirm::CancelRun => "cancel the run",
            Confirm::CancelStep(_) => "cancel the step",
            Confirm::EmergencyStop => "stop everything",
            Confirm::StopCallbacks => "stop callbacks",
            Confirm::Worktree(Settle::Merge, _) => "merge",
            Confirm::Worktree(Settle::Discard, _) => "discard",
            Confirm::Deny(_) => "deny",
            Confirm::Retry(_) => "retry",
            Confirm::Fork(_) => "fork",
            Confirm::DeleteRun => "delete",
        }
    }
}

impl State {
    /// Shows `what` until it is answered or its target ends.
    pub(super) fn ask(&mut self, what: Confirm) {
        self.overlay = Some(Overlay::Confirm(what));
    }

    /// The row of `step` in the overview, for a confirmation to name it.
    pub(super) fn step_row_of(&self, step: &crate::protocol::StepKey) -> Option<usize> {
        self.run.step_rows.get(step).copied()
    }

    pub(super) fn confirm_key(&mut self, what: Confirm, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                self.overlay = None;
                self.confirmed(what)
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                self.overlay = None;
                self.deleting = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn confirmed(&mut self, what: Confirm) -> Vec<Effect> {
        if what == Confirm::DeleteRun {
            return match self.deleting.take() {
                Some(run) => vec![Effect::Op(Op::DeleteRun { run })],
                None => Vec::new(),
            };
        }
        let Some(run) = self.run.run.clone() else {
            return match what {
                Confirm::Quit => vec![Effect::Quit],
                _ => Vec::new(),
            };
        };
        let step = |row: usize| self.run.steps.get(row).map(|r| r.key.clone());
        match what {
            Confirm::Quit => vec![Effect::Quit],
            Confirm::CancelRun => vec![Effect::Op(Op::Cancel { run })],
            Confirm::CancelStep(row) => match step(row) {
                Some(step) => vec![Effect::Op(Op::CancelStep { run, step })],
                None => Vec::new(),
            },
            Confirm::EmergencyStop => vec![Effect::Op(Op::EmergencyStop { run })],
            Confirm::StopCallbacks => {
                self.say("stopping callbacks: no new follow-up or system question");
                vec![Effect::Op(Op::StopCallbacks { run })]
            }
            Confirm::Worktree(how, i) => self.confirm_worktree(how, i),
            Confirm::Deny(i) => self.send_decision(i, false),
            Confirm::Retry(row) => match step(row) {
                Some(step) => {
                    let live = self.replay.is_none()
                        && self.run.status == Some(crate::protocol::RunStatus::Running);
                    let then = if live { "" } else { ": the run resumes" };
                    self.say(format!("retrying {step}{then}"));
                    vec![Effect::Op(Op::RetryStep { run, step })]
                }
                None => Vec::new(),
            },
            Confirm::Fork(row) => match step(row) {
                Some(step) => {
                    self.say(format!("forking run {run} from {step}"));
                    vec![Effect::Op(Op::Fork { run, from: step })]
                }
                None => Vec::new(),
            },
            Confirm::DeleteRun => Vec::new(),
        }
    }

    /// Why the confirmation on screen no longer applies, when it does not.
    fn confirm_gone(&self, what: Confirm) -> Option<String> {
        let row = |r: usize| self.run.steps.get(r);
        match what {
            Confirm::Quit
            | Confirm::CancelRun
            | Confirm::EmergencyStop
            | Confirm::StopCallbacks => {
                (!self.run.active()).then(|| "the run has ended".to_string())
            }
            Confirm::CancelStep(r) => match row(r) {
                Some(s) if !s.status.is_terminal() => None,
                Some(s) => Some(format!("{} has ended ({})", s.key, s.status.as_str())),
                None => Some("that step is gone".into()),
            },
            Confirm::Deny(i) => match self.run.prompts.get(i) {
                Some(p) if p.is_pending() => None,
                Some(p) => Some(format!("{} was already decided", p.title())),
                None => Some("that approval is gone".into()),
            },
            Confirm::Retry(r) => match row(r) {
                Some(s) if matches!(s.status, StepStatus::Failed | StepStatus::Cancelled) => None,
                Some(s) => Some(format!("{} is {} now", s.key, s.status.as_str())),
                None => Some("that step is gone".into()),
            },
            Confirm::Fork(r) => row(r).is_none().then(|| "that step is gone".into()),
            Confirm::DeleteRun => match &self.deleting {
                Some(id) if self.runs.iter().any(|r| &r.id == id) => None,
                _ => Some("that run is gone".into()),
            },
            Confirm::Worktree(how, i) => match self.run.worktrees.get(i).map(|w| &w.fate) {
                None => Some("that worktree is gone".into()),
                Some(Fate::Discarded) => Some("that worktree was discarded".into()),
                Some(Fate::Merged { .. }) if how == Settle::Merge => {
                    Some("that branch was merged".into())
                }
                Some(_) => None,
            },
        }
    }

    /// After a fold: a confirmation whose target ended goes away, said.
    pub(super) fn drop_stale_confirm(&mut self) {
        if let Some(Overlay::Confirm(what)) = self.overlay
            && let Some(why) = self.confirm_gone(what)
        {
            self.overlay = None;
            self.say(match what {
                Confirm::Quit => format!("{why}: q quits without asking"),
                _ => format!("nothing to {}: {why}", what.verb()),
            });
        }
    }
}
