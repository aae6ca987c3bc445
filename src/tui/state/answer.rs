//! Answering prompts from the sidebar: focusing them, picking options,
//! free-text answers, approve/deny. The guards live here: an answer or a
//! decision is sent only for the focused prompt, after its grace period,
//! never empty and never twice.

use crate::protocol::{AnswerSource, Op};

use super::{Confirm, Effect, Focus, PromptKind, State, Typing};

/// What a key that would answer says during a replay.
pub(super) const REPLAY_READ_ONLY: &str =
    "a replay is read-only: it shows what was answered, and sends nothing";

impl State {
    /// True (and says so) when prompts take no input: during a replay.
    fn read_only(&mut self) -> bool {
        if self.replay.is_some() {
            self.say(REPLAY_READ_ONLY);
            return true;
        }
        false
    }

    pub(super) fn next_prompt(&mut self) {
        let after = if self.focus == Focus::Prompt {
            Some(self.prompt_cursor)
        } else {
            None
        };
        self.focus_prompt(after);
    }

    /// Focuses the first pending prompt after `after` (wrapping).
    /// The pending prompt of the focused pane's step, if it waits on one.
    pub(super) fn pane_prompt(&self) -> Option<usize> {
        let step = &self.focused_pane()?.step;
        self.run
            .pending()
            .find(|(_, p)| p.step.as_ref() == Some(step))
            .map(|(i, _)| i)
    }

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
        if self.read_only() {
            return Vec::new();
        }
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
            PromptKind::Escalation => {
                let step = p.step.clone();
                self.message_stuck(step);
                Vec::new()
            }
        }
    }

    /// Enter on FlowMind's escalation: a message for the stuck agent.
    fn message_stuck(&mut self, step: Option<crate::protocol::StepKey>) {
        match step.and_then(|s| self.run.pane_index(&s)) {
            Some(i) => {
                self.focus_pane = i;
                self.start_message();
            }
            None => self.say("its agent has no pane to message"),
        }
    }

    /// `d` on FlowMind's escalation: the whisper goes, the agent runs on.
    fn dismiss_escalation(&mut self, i: usize) -> Vec<Effect> {
        let step = self.run.prompts.get(i).and_then(|p| p.step.clone());
        let (Some(run), Some(step)) = (self.run.run.clone(), step) else {
            return Vec::new();
        };
        if self.sent.contains(&i) {
            return Vec::new();
        }
        self.sent.insert(i);
        self.focus = Focus::Panes;
        self.say(format!("dismissed FlowMind's escalation about {step}"));
        vec![Effect::Op(Op::DismissEscalation { run, step })]
    }

    pub(super) fn start_answer(&mut self) {
        if self.read_only() {
            return;
        }
        if self.focused_prompt().is_none() {
            self.focus_prompt(None);
        }
        match self.focused_prompt() {
            Some((i, p)) if matches!(p.kind, PromptKind::Question { .. }) => {
                // FlowMind's proposal typed in already: Enter accepts it.
                let proposed = p.proposal.as_ref().map(|(a, _)| a.clone());
                self.start_typing(Typing::Answer(i), "type an answer, Enter sends");
                if let Some(answer) = proposed {
                    self.textarea.insert_str(answer);
                }
            }
            Some((_, p)) if p.kind == PromptKind::Escalation => {
                let step = p.step.clone();
                self.message_stuck(step);
            }
            Some(_) => self.say("an approval takes approve or deny"),
            None => {}
        }
    }

    pub(super) fn send_answer(&mut self, i: usize, answer: String) -> Vec<Effect> {
        if self.read_only() {
            return Vec::new();
        }
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
        let title = p.title();
        self.sent.insert(i);
        self.focus = Focus::Panes;
        self.say(format!("answer sent: {title}"));
        vec![Effect::Op(Op::Answer {
            run,
            question,
            answer,
            source: AnswerSource::User,
        })]
    }

    /// With no prompt focused (`Esc` let go of it, or a pane has focus),
    /// focuses the approval `a`/`d` mean: the focused pane's own, else the
    /// only one waiting. Several and none of them the pane's: focuses the
    /// first and says so, deciding nothing yet. False when none waits.
    fn reach_approval(&mut self) -> bool {
        let pane_step = self.focused_pane().map(|p| p.step.clone());
        let approvals: Vec<usize> = self
            .run
            .pending()
            .filter(|(_, p)| p.kind == PromptKind::Approval)
            .map(|(i, _)| i)
            .collect();
        let own = approvals
            .iter()
            .copied()
            .find(|&i| self.run.prompts[i].step == pane_step && pane_step.is_some());
        let (target, decide_now) = match (own, approvals.as_slice()) {
            (Some(i), _) => (i, true),
            (None, [only]) => (*only, true),
            (None, [first, ..]) => (*first, false),
            (None, []) => {
                self.say("no approval waits");
                return false;
            }
        };
        self.prompt_cursor = target;
        self.option_cursor = 0;
        self.focus = Focus::Prompt;
        self.sidebar = true;
        if !decide_now {
            let title = self.run.prompts[target].title();
            self.say(format!(
                "{} approvals wait: {title} is focused; press again to decide it",
                approvals.len()
            ));
        }
        decide_now
    }

    /// Approve/deny: only the focused approval, and only after its grace period.
    pub(super) fn decide(&mut self, approved: bool) -> Vec<Effect> {
        if self.read_only() {
            return Vec::new();
        }
        if self.focused_prompt().is_none() && !self.reach_approval() {
            return Vec::new();
        }
        let Some((i, p)) = self.focused_prompt() else {
            return Vec::new();
        };
        if p.kind == PromptKind::Escalation {
            if approved {
                self.say("Enter messages the stuck agent; p pauses it, x cancels it, d dismisses");
                return Vec::new();
            }
            if !self.prompt_ready(i) {
                self.say("just arrived: read it first");
                return Vec::new();
            }
            return self.dismiss_escalation(i);
        }
        if p.kind != PromptKind::Approval {
            self.say("this prompt is a question: answer it");
            return Vec::new();
        }
        if !self.prompt_ready(i) {
            self.say("just arrived: read it first");
            return Vec::new();
        }
        if self.sent.contains(&i) {
            self.say("already sent: waiting for the engine to record it");
            return Vec::new();
        }
        if !approved {
            // Denying fails the step: asked first, naming what is denied.
            self.ask(Confirm::Deny(i));
            return Vec::new();
        }
        self.send_decision(i, approved)
    }

    /// Sends the decision on approval prompt `i`, once.
    pub(super) fn send_decision(&mut self, i: usize, approved: bool) -> Vec<Effect> {
        let step = self.run.prompts.get(i).and_then(|p| p.step.clone());
        let (Some(run), Some(step)) = (self.run.run.clone(), step) else {
            return Vec::new();
        };
        if self.sent.contains(&i) {
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

#[cfg(test)]
mod tests {
    use crate::tui::keymap::Action;
    use crate::tui::state::sample::sample_events;
    use crate::tui::state::{Effect, State};

    /// A replay is read-only: a question or approval on screen takes no
    /// answer, and the keys say why instead of "answer sent".
    #[test]
    fn a_replay_sends_no_answer() {
        let mut s = State::new();
        s.load_replay(sample_events());
        let end = s.replay.as_ref().map_or(0, |r| r.events.len());
        s.replay_jump(end);
        assert!(
            s.run.pending().next().is_some(),
            "the sample has a waiting prompt"
        );
        let mut effects = Vec::new();
        for action in [
            Action::NextPrompt,
            Action::Answer,
            Action::Approve,
            Action::Deny,
        ] {
            effects.extend(s.handle_action(action));
        }
        effects.extend(s.submit_option());
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Op(_))),
            "a replay sent {effects:?}"
        );
        assert_eq!(s.message.as_deref(), Some(super::REPLAY_READ_ONLY));
    }

    /// Prompts are named as people read them, never by internal ids.
    #[test]
    fn prompt_titles_hide_internal_ids() {
        use crate::protocol::{Millis, StepKey};
        use crate::tui::state::{Prompt, PromptKind};
        let prompt = |kind, step: Option<&str>| Prompt {
            kind,
            step: step.map(StepKey::new),
            text: String::new(),
            asked_at: Millis(0),
            deadline: None,
            answered: None,
            review: None,
            proposal: None,
        };
        let question = |header: Option<&str>| PromptKind::Question {
            id: "api#1.call_1".into(),
            header: header.map(str::to_string),
            options: Vec::new(),
            default: None,
        };
        assert_eq!(prompt(question(None), Some("api")).title(), "api asks");
        assert_eq!(
            prompt(question(Some("Test style")), Some("api")).title(),
            "Test style"
        );
        assert_eq!(
            prompt(PromptKind::Approval, Some("coder")).title(),
            "approve coder"
        );
        assert_eq!(
            prompt(PromptKind::Approval, Some("approve")).title(),
            "approve"
        );
    }

    /// `a` reaches the waiting approval with no prompt focused (after `Esc`,
    /// or with the approval's own pane focused) instead of "focus an
    /// approval first".
    #[test]
    fn approve_reaches_the_waiting_approval_without_focus() {
        use crate::protocol::{Millis, Op, RunStatus};
        use crate::tui::state::sample::{T0, sample_state};
        use crate::tui::state::{Focus, Input};
        let mut s = sample_state();
        s.run.status = Some(RunStatus::Running);
        s.handle(Input::Resize(120, 36));
        s.handle(Input::Tick(Millis(T0 + 31_000)));
        s.handle(Input::Tick(Millis(T0 + 32_000)));
        s.focus = Focus::Panes;
        let approvals = s
            .run
            .pending()
            .filter(|(_, p)| p.kind == crate::tui::state::PromptKind::Approval)
            .count();
        assert_eq!(approvals, 1, "the sample has one approval waiting");
        let effects = s.handle_action(Action::Approve);
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Op(Op::Decide { approved: true, .. }))),
            "{effects:?} {:?}",
            s.message
        );
    }

    /// A prompt's own pane says what it waits for, and then how it was
    /// answered (it used to stay empty in the grid).
    #[test]
    fn a_prompt_shows_in_its_own_pane() {
        use crate::protocol::{AnswerSource, Event, Millis, Notice, Recorded, Seq, StepKey};
        use crate::tui::state::sample::sample_state;
        let mut s = sample_state();
        let text = |s: &State, step: &str| -> String {
            let p = s
                .run
                .panes
                .iter()
                .find(|p| p.step == StepKey::new(step))
                .unwrap();
            p.lines
                .iter()
                .map(|l| l.text.clone())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let coder = text(&s, "coder");
        assert!(coder.contains("⚠ run `cargo test --all`"), "{coder}");
        assert!(coder.contains("waits for your approval"), "{coder}");
        let run = s.run.run.clone().unwrap();
        s.apply(&Notice::Event(Recorded {
            run,
            seq: Seq(990),
            event: Event::ApprovalDecided {
                step: StepKey::new("coder"),
                approved: true,
                comment: String::new(),
                source: AnswerSource::User,
                at: Millis(crate::tui::state::sample::T0 + 50_000),
            },
        }));
        assert!(text(&s, "coder").contains("✓ approved"));
    }
}
