//! The swarm's plan review in the workbench: on the focused review prompt
//! `a` accepts, `r` asks for another plan and `e` opens the plan in a
//! multi-line editor whose text is sent as the answer (an edited plan).
//! The rules of the other prompts hold: only the focused prompt, only after
//! its grace period, never empty, never twice (`send_answer`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use crate::tui::keymap::Action;

use super::{Effect, State, Typing};

/// The review question's answers besides an edited plan (its options).
pub const ACCEPT: &str = "accept";
pub const REGENERATE: &str = "regenerate";

enum ReviewKey {
    Accept,
    Regenerate,
    Edit,
}

impl State {
    /// A key on a focused plan review: what it did, or `None` when the key
    /// is not one of the review's (it then goes on as usual).
    pub(super) fn review_key(&mut self, key: &KeyEvent) -> Option<Vec<Effect>> {
        let (i, p) = self.focused_prompt()?;
        p.review.as_ref()?;
        if key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return None;
        }
        let what = match key.code {
            KeyCode::Char('a') => ReviewKey::Accept,
            KeyCode::Char('r') => ReviewKey::Regenerate,
            KeyCode::Char('e') => ReviewKey::Edit,
            // Explicit keys only: Enter does not pick an answer here.
            KeyCode::Enter => {
                self.say("a accepts · r regenerates · e edits the plan");
                return Some(Vec::new());
            }
            // A remapped approve/answer key means the same here.
            _ => match self.keymap.action(key) {
                Some(Action::Approve) => ReviewKey::Accept,
                Some(Action::Answer) => ReviewKey::Edit,
                _ => return None,
            },
        };
        if !self.prompt_ready(i) {
            self.say("just arrived: read it first");
            return Some(Vec::new());
        }
        Some(match what {
            ReviewKey::Accept => self.send_answer(i, ACCEPT.to_string()),
            ReviewKey::Regenerate => self.send_answer(i, REGENERATE.to_string()),
            ReviewKey::Edit => {
                self.start_plan_edit(i, None);
                Vec::new()
            }
        })
    }

    /// Opens the editor on review prompt `i`: with `text`, else the draft
    /// kept from the last edit, else the plan as the question shows it.
    pub(super) fn start_plan_edit(&mut self, i: usize, text: Option<String>) {
        let Some(review) = self.run.prompts.get(i).and_then(|p| p.review.as_ref()) else {
            return;
        };
        if text.is_none() && self.plan_draft == Some(i) {
            self.typing = Some(Typing::EditPlan(i));
            return;
        }
        let text = text.unwrap_or_else(|| review.edit_text.clone());
        let mut ta = TextArea::new(text.lines().map(str::to_string).collect());
        ta.set_placeholder_text("the plan as YAML");
        self.textarea = ta;
        self.plan_draft = Some(i);
        self.typing = Some(Typing::EditPlan(i));
    }

    /// Keys in the plan editor: Ctrl+S (or Ctrl/Alt+Enter) sends, Esc
    /// closes it keeping the draft, everything else edits (Enter is a new
    /// line).
    pub(super) fn plan_edit_key(&mut self, i: usize, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let send = (ctrl && key.code == KeyCode::Char('s'))
            || ((ctrl || alt) && key.code == KeyCode::Enter);
        if key.code == KeyCode::Esc {
            self.typing = None;
            self.say("edit kept: e edits it again");
            return Vec::new();
        }
        if !send {
            self.textarea.input(key);
            return Vec::new();
        }
        let text = self.textarea.lines().join("\n");
        let text = text.trim_end().to_string();
        if text.trim().is_empty() {
            self.say("empty plan not sent");
            return Vec::new();
        }
        self.typing = None;
        let out = self.send_answer(i, text);
        if !out.is_empty() {
            self.plan_draft = None;
        }
        out
    }
}
