//! Answering prompts from the sidebar: focusing them, picking options,
//! free-text answers, approve/deny. The guards live here: an answer or a
//! decision is sent only for the focused prompt, after its grace period,
//! never empty and never twice.

use crate::protocol::{AnswerSource, Op};

use super::{Effect, Focus, PromptKind, State, Typing};

impl State {
    pub(super) fn next_prompt(&mut self) {
        let after = if self.focus == Focus::Prompt {
            Some(self.prompt_cursor)
        } else {
            None
        };
        self.focus_prompt(after);
    }

    /// Focuses the first pending prompt after `after` (wrapping).
    pub(super) fn focus_prompt(&mut self, after: Option<usize>) {
        let pending: Vec<usize> = self.run.pending().map(|(i, _)| i).collect();
        let next = match after {
            Some(a) => pending.iter().find(|i| **i > a).or(pending.first()),
            None => pending.first(),
        };
        match next {
            Some(i) => {
                self.prompt_cursor = *i;
                self.option_cursor = 0;
                self.focus = Focus::Prompt;
                self.sidebar = true;
                self.auto_focused.insert(*i);
            }
            None => self.say("nothing waits for you"),
        }
    }

    pub(super) fn move_option(&mut self, d: isize) -> Vec<Effect> {
        if let Some((_, p)) = self.focused_prompt()
            && let PromptKind::Question { options, .. } = &p.kind
            && !options.is_empty()
        {
            let n = options.len() as isize;
            self.option_cursor = (self.option_cursor as isize + d).clamp(0, n - 1) as usize;
        }
        Vec::new()
    }

    /// Enter on a focused question picks the highlighted option.
    pub(super) fn submit_option(&mut self) -> Vec<Effect> {
        let Some((i, p)) = self.focused_prompt() else {
            return Vec::new();
        };
        match &p.kind {
            PromptKind::Question { options, .. } => match options.get(self.option_cursor) {
                Some(o) => {
                    let v = o.value.clone();
                    self.send_answer(i, v)
                }
                None => {
                    self.start_answer();
                    Vec::new()
                }
            },
            PromptKind::Approval => {
                self.say("approve or deny with their keys");
                Vec::new()
            }
        }
    }

    pub(super) fn start_answer(&mut self) {
        if self.focused_prompt().is_none() {
            self.focus_prompt(None);
        }
        match self.focused_prompt() {
            Some((i, p)) if matches!(p.kind, PromptKind::Question { .. }) => {
                self.start_typing(Typing::Answer(i), "type an answer, Enter sends");
            }
            Some(_) => self.say("an approval takes approve or deny"),
            None => {}
        }
    }

    pub(super) fn send_answer(&mut self, i: usize, answer: String) -> Vec<Effect> {
        if answer.trim().is_empty() {
            self.say("empty answer not sent");
            return Vec::new();
        }
        let (Some(run), Some(p)) = (self.run.run.clone(), self.run.prompts.get(i)) else {
            return Vec::new();
        };
        if !self.prompt_ready(i) {
            self.say("just arrived: read it first");
            return Vec::new();
        }
        if self.sent.contains(&i) {
            self.say("already sent: waiting for the engine to record it");
            return Vec::new();
        }
        let question = p.key();
        self.sent.insert(i);
        self.focus = Focus::Panes;
        self.say(format!("answer sent to {question}"));
        vec![Effect::Op(Op::Answer {
            run,
            question,
            answer,
            source: AnswerSource::User,
        })]
    }

    /// Approve/deny: only the focused approval, and only after its grace period.
    pub(super) fn decide(&mut self, approved: bool) -> Vec<Effect> {
        let Some((i, p)) = self.focused_prompt() else {
            self.say("focus an approval first");
            return Vec::new();
        };
        if p.kind != PromptKind::Approval {
            self.say("this prompt is a question: answer it");
            return Vec::new();
        }
        if !self.prompt_ready(i) {
            self.say("just arrived: read it first");
            return Vec::new();
        }
        let (Some(run), Some(step)) = (self.run.run.clone(), p.step.clone()) else {
            return Vec::new();
        };
        if self.sent.contains(&i) {
            self.say("already sent: waiting for the engine to record it");
            return Vec::new();
        }
        self.sent.insert(i);
        self.focus = Focus::Panes;
        vec![Effect::Op(Op::Decide {
            run,
            step,
            approved,
            comment: String::new(),
            source: AnswerSource::User,
        })]
    }
}
