//! The context inspector (`I` on an agent's pane): what the agent's
//! request at a turn was made of — each part with its tokens, what was cut
//! or left out to fit the mode's budget, then each part's text — read from
//! the journal through the engine (`Query::Context`), live or replayed.
//! `←`/`→` (`h`/`l`) go to the turn before or after.

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::{ContextShown, Query};
use crate::protocol::{RunId, StepKey};

use super::worktrees::DiffView;
use super::{Effect, Overlay, State};
use crate::tui::keymap::Action;

impl State {
    /// `I`: the focused (or selected) agent step's last request.
    pub(super) fn inspect_context(&mut self) -> Vec<Effect> {
        let Some(run) = self.run.run.clone() else {
            self.say("no run on screen");
            return Vec::new();
        };
        let Some((step, _)) = self.selected_step() else {
            self.say("focus an agent's pane (or pick it in the overview) to inspect its context");
            return Vec::new();
        };
        let sent = self
            .run
            .panes
            .iter()
            .find(|p| p.step == step)
            .is_some_and(|p| !p.contexts.is_empty());
        if !sent {
            self.say(format!(
                "{step} has sent no agent request yet (only agent steps have a context)"
            ));
            return Vec::new();
        }
        vec![context_query(run, step, None)]
    }

    /// The engine's answer: the overlay shows it.
    pub fn show_context(&mut self, step: &StepKey, shown: Result<ContextShown, String>) {
        match shown {
            Ok(c) => {
                let lines = c.text(true).lines().map(str::to_string).collect();
                self.diff = Some(DiffView {
                    step: step.clone(),
                    branch: String::new(),
                    lines,
                    scroll: 0,
                    context: Some((c.turn, c.turns.clone())),
                });
                self.overlay = Some(Overlay::Diff);
            }
            Err(e) => self.say(format!("context of {step}: {e}")),
        }
    }

    /// `←`/`→` in the inspector: the turn before or after, if there is one.
    pub(super) fn context_turn_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        let d = self.diff.as_ref()?;
        let (turn, turns) = d.context.as_ref()?;
        let pos = turns.iter().position(|t| t == turn)?;
        let next = match key.code {
            KeyCode::Left | KeyCode::Char('h') => pos.checked_sub(1)?,
            KeyCode::Right | KeyCode::Char('l') => pos + 1,
            _ => {
                let a = self.keymap.action(&key);
                return (a == Some(Action::InspectContext)).then(|| {
                    self.overlay = None;
                    Vec::new()
                });
            }
        };
        let Some(&turn) = turns.get(next) else {
            return Some(Vec::new());
        };
        let run = self.run.run.clone()?;
        Some(vec![context_query(run, d.step.clone(), Some(turn))])
    }
}

fn context_query(run: RunId, step: StepKey, turn: Option<u32>) -> Effect {
    Effect::Query(Query::Context { run, step, turn })
}
