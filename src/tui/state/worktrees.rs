//! Steps' git worktrees in the workbench: the fold of `worktree` events
//! (`RunView::worktrees`, listed by the overview), and the keys that read
//! a selected step's diff (`D`, a scrollable overlay), merge its branch
//! into its base (`alt-m`) or discard it (`X`), each behind a
//! confirmation. Merging and
//! discarding are effects the app carries out with
//! `workflow::settle_worktree` (what `lev worktrees` runs), and only for a
//! run no engine in this workbench is driving; the events it records come
//! back through `worktree_settled` and are folded like any other.

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::Query;
use crate::isolation::{self, Fate, StepWorktree};
use crate::protocol::{Notice, Op, Recorded, RunId, RunStatus, StepKey};
use crate::tui::keymap::Action;
use crate::workflow::{Settle, Settled};

use super::run_view::RunView;
use super::{Confirm, Effect, Overlay, State};

/// A step's diff in the diff overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffView {
    pub step: StepKey,
    pub branch: String,
    pub lines: Vec<String>,
    /// First line shown.
    pub scroll: usize,
    /// Set when it shows an agent's request (the context inspector): the
    /// turn shown and the turns there are.
    pub context: Option<(u32, Vec<u32>)>,
}

impl RunView {
    /// Folds a `worktree` event: the worktrees are the fold of all of them.
    pub(super) fn apply_worktree(&mut self, r: &Recorded) {
        self.worktree_events.push(r.clone());
        self.worktrees = isolation::fold(&self.worktree_events);
    }

    /// The worktree of `step`, if it has one.
    pub fn worktree_of(&self, step: &StepKey) -> Option<&StepWorktree> {
        self.worktrees.iter().find(|w| &w.step == step)
    }
}

/// How a worktree's state reads in the overview: `open`, `merged into
/// main`, `discarded`.
pub fn fate_text(fate: &Fate) -> String {
    match fate {
        Fate::Open => "open".to_string(),
        Fate::Merged { into, .. } => format!("merged into {into}"),
        Fate::Discarded => "discarded".to_string(),
    }
}

impl State {
    /// The selected step's worktree (run, step), or why there is none.
    fn selected_worktree(&self) -> Result<(RunId, &StepWorktree), String> {
        let run = self.run.run.clone().ok_or("no run on screen")?;
        let (step, _) = self
            .selected_step()
            .ok_or("select a step with a worktree (pick it in the overview, or focus its pane)")?;
        let w = self.run.worktree_of(&step).ok_or_else(|| {
            match self.run.delegated.get(&step) {
                // Its worktree's facts are the step run's.
                Some(child) => format!(
                    "step {step} ran as step run {child}: its worktree is there (open that run from the runs list, or `lev worktrees {run}`)"
                ),
                None => format!(
                    "step {step} has no worktree (it did not ask for `workspace: {{ worktree: true }}`)"
                ),
            }
        })?;
        Ok((run, w))
    }

    /// `D`, `alt-m`, `X` on the selected step.
    pub(super) fn worktree_action(&mut self, a: Action) -> Vec<Effect> {
        let (run, w) = match self.selected_worktree() {
            Ok(found) => found,
            Err(e) => {
                self.say(e);
                return Vec::new();
            }
        };
        let step = w.step.clone();
        let how = match a {
            Action::WorktreeDiff => {
                if w.fate == Fate::Discarded {
                    self.say(format!(
                        "step {step}'s worktree was discarded: no diff left"
                    ));
                    return Vec::new();
                }
                return vec![Effect::Query(Query::WorktreeDiff { run, step })];
            }
            Action::WorktreeMerge => Settle::Merge,
            _ => Settle::Discard,
        };
        let refused = match (&w.fate, how) {
            (Fate::Merged { into, .. }, Settle::Merge) => Some(format!(
                "step {step}'s branch is already merged into {into}"
            )),
            (Fate::Discarded, _) => Some(format!("step {step}'s worktree is already discarded")),
            _ => None,
        };
        if let Some(text) = refused {
            self.say(text);
            return Vec::new();
        }
        // A running run's steps may still work in it. A paused one may have
        // no engine left (an emergency stop ends it paused): the app knows.
        if self.replay.is_none() && self.run.status == Some(RunStatus::Running) {
            self.say(format!(
                "run {run} is executing in this workbench; merge or discard its worktrees once it has ended"
            ));
            return Vec::new();
        }
        let Some(i) = self.run.worktrees.iter().position(|w| w.step == step) else {
            return Vec::new();
        };
        self.ask(Confirm::Worktree(how, i));
        Vec::new()
    }

    /// `y` on a worktree confirmation.
    pub(super) fn confirm_worktree(&mut self, how: Settle, i: usize) -> Vec<Effect> {
        let found = self
            .run
            .worktrees
            .get(i)
            .map(|w| (w.step.clone(), w.worktree.branch.clone()));
        let (Some(run), Some((step, branch))) = (self.run.run.clone(), found) else {
            return Vec::new();
        };
        let verb = match how {
            Settle::Merge => "merging",
            Settle::Discard => "discarding",
        };
        self.say(format!("{verb} {branch}"));
        vec![Effect::Op(Op::SettleWorktree { run, step, how })]
    }

    /// The diff read for `Effect::WorktreeDiff`: opens the diff overlay.
    pub fn show_diff(&mut self, step: StepKey, diff: Result<String, String>) {
        match diff {
            Ok(text) => {
                let branch = self
                    .run
                    .worktree_of(&step)
                    .map(|w| w.worktree.branch.clone())
                    .unwrap_or_default();
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                if lines.is_empty() {
                    lines.push(format!("no changes on {branch} against its merge-base"));
                }
                self.diff = Some(DiffView {
                    step,
                    branch,
                    lines,
                    scroll: 0,
                    context: None,
                });
                self.overlay = Some(Overlay::Diff);
            }
            Err(e) => self.say(format!("diff of {step}: {e}")),
        }
    }

    /// The outcome of `Effect::SettleWorktree`: the recorded events are
    /// folded (the overview shows "merged into …" or "discarded").
    pub fn worktree_settled(&mut self, step: &StepKey, result: Result<Settled, String>) {
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                let first = e.lines().next().unwrap_or("").to_string();
                self.say(format!("{step}: {first}"));
                return;
            }
        };
        if let Some(replay) = self.replay.as_mut() {
            // Replay folds its own events: these join them, at the end.
            let at_end = replay.pos == replay.events.len();
            replay.events.extend(done.recorded.iter().cloned());
            if at_end {
                let pos = replay.events.len();
                self.rebuild_replay(pos);
            }
        } else {
            for r in &done.recorded {
                let _ = self.run.apply(&Notice::Event(r.clone()));
            }
        }
        self.say(done.text);
    }

    /// Keys while the diff overlay is open: scroll, close.
    pub(super) fn diff_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(effects) = self.context_turn_key(key) {
            return effects;
        }
        let page = usize::from(self.size.1.saturating_sub(6)).max(1);
        let Some(d) = self.diff.as_mut() else {
            self.overlay = None;
            return Vec::new();
        };
        let last = d.lines.len().saturating_sub(1);
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => d.scroll = d.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => d.scroll = (d.scroll + 1).min(last),
            KeyCode::PageUp => d.scroll = d.scroll.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => d.scroll = (d.scroll + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => d.scroll = 0,
            KeyCode::End | KeyCode::Char('G') => d.scroll = last,
            _ => {
                let a = self.keymap.action(&key);
                if matches!(a, Some(Action::WorktreeDiff | Action::Back | Action::Quit))
                    || key.code == KeyCode::Esc
                {
                    self.overlay = None;
                }
            }
        }
        Vec::new()
    }
}
