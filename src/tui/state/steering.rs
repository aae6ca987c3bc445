//! Steering in the workbench: the fold of messages sent to agents, live
//! pauses and the emergency stop (`RunView`), and the keys that ask for
//! them (`State`): message the focused agent, pause the run or one agent,
//! stop everything. The keys only send ops; what shows comes from events.

use crate::protocol::{Event, Millis, Op, StepStatus};
use crate::text::one_line;

use super::pane::{LineKind, Pane};
use super::run_view::RunView;
pub use super::run_view::SentMessage;
use super::{Confirm, Effect, State, Typing};

impl RunView {
    /// Folds a steering event (message delivered, pause, unpause, stop).
    pub(super) fn apply_steering(&mut self, event: &Event, at: Millis) {
        match event {
            Event::AgentMessaged {
                step, turn, text, ..
            } => {
                let mut lines = text.lines();
                let first = lines.next().unwrap_or("");
                let mut shown = format!("» you: {first}");
                for l in lines {
                    shown.push('\n');
                    shown.push_str("  ");
                    shown.push_str(l);
                }
                self.pane_mut(step).note(shown, LineKind::Note);
                self.messages.push(SentMessage {
                    step: step.clone(),
                    turn: *turn,
                    text: text.clone(),
                    at,
                });
            }
            Event::PauseRequested { step: None, .. } => {
                self.paused = true;
                self.notes.push(
                    "paused: no new step starts, agents hold before their next request; running shell steps go on"
                        .into(),
                );
            }
            Event::PauseRequested { step: Some(s), .. } => {
                let p = self.pane_mut(s);
                p.paused = true;
                p.note("◇ paused by you".into(), LineKind::Note);
            }
            Event::PauseLifted { step: None, .. } => {
                self.clear_pauses();
                self.notes.push("unpaused".into());
            }
            Event::PauseLifted { step: Some(s), .. } => {
                let p = self.pane_mut(s);
                p.paused = false;
                p.note("▶ unpaused".into(), LineKind::Note);
            }
            Event::EmergencyStopped { .. } => {
                self.clear_pauses();
                self.halt_running(at);
                self.notes
                    .push(crate::protocol::describe::EMERGENCY_STOP.into());
            }
            _ => {}
        }
    }

    /// The steps that were running when the run stopped executing: their
    /// spinners and clocks stop (they start again on a resume).
    pub(super) fn halt_running(&mut self, at: Millis) {
        for p in &mut self.panes {
            if matches!(
                p.status,
                StepStatus::Running | StepStatus::Retrying | StepStatus::Waiting
            ) {
                p.halted = true;
                p.finished_at = Some(at);
            }
        }
    }

    /// No live pause holds any more (unpaused, resumed, or the run ended).
    pub(super) fn clear_pauses(&mut self) {
        self.paused = false;
        for p in &mut self.panes {
            p.paused = false;
        }
    }

    /// The pane's agent holds at its turn boundary (paused alone, or the
    /// whole run is paused). Shell steps never hold: they run on.
    pub fn holds(&self, p: &Pane) -> bool {
        !p.status.is_terminal() && (p.paused || (self.paused && p.kind == "agent"))
    }

    /// A shell step that keeps running while the run is paused.
    pub fn runs_on_while_paused(&self, p: &Pane) -> bool {
        self.paused && p.kind != "agent" && p.status == StepStatus::Running
    }
}

impl State {
    /// The focused pane's index when it is a running agent.
    pub(super) fn focused_agent(&self) -> Option<usize> {
        self.focused_pane()
            .filter(|p| p.kind == "agent" && !p.status.is_terminal())
            .map(|_| self.focus_pane)
    }

    fn live(&mut self) -> bool {
        if self.run.active()
            && self.replay.is_none()
            && self
                .run
                .status
                .is_some_and(|s| s == crate::protocol::RunStatus::Running)
        {
            return true;
        }
        self.say("no running run to steer");
        false
    }

    /// `m`: type a message for the focused agent.
    pub(super) fn start_message(&mut self) {
        if !self.live() {
            return;
        }
        match self.focused_agent() {
            Some(i) => {
                self.sidebar = true;
                self.focus = super::Focus::Panes;
                self.start_typing(Typing::Message(i), "message for the agent, Enter sends");
            }
            None => self.say("focus a running agent's pane to message it"),
        }
    }

    /// Enter in the message box.
    pub(super) fn send_message(&mut self, i: usize, text: String) -> Vec<Effect> {
        if text.trim().is_empty() {
            self.say("empty message not sent");
            return Vec::new();
        }
        let (Some(run), Some(p)) = (self.run.run.clone(), self.run.panes.get(i)) else {
            return Vec::new();
        };
        let step = p.step.clone();
        self.say(format!(
            "message for {step} queued: it reads it before its next request"
        ));
        vec![Effect::Op(Op::Message { run, step, text })]
    }

    /// `p`: pause the whole run, or unpause it when it is paused.
    pub(super) fn toggle_run_pause(&mut self) -> Vec<Effect> {
        // A run that stopped executing (paused by the engine, an emergency
        // stop, a crash) goes on from here.
        if self.replay.is_none()
            && self.run.status == Some(crate::protocol::RunStatus::Paused)
            && let Some(run) = self.run.run.clone()
        {
            self.say("resuming the run");
            return vec![Effect::Op(Op::Resume { run })];
        }
        if !self.live() {
            return Vec::new();
        }
        let Some(run) = self.run.run.clone() else {
            return Vec::new();
        };
        // The run's own pause decides: agents paused alone (`P`) do not
        // turn `p` into an unpause.
        if self.run.paused {
            self.say("unpausing");
            vec![Effect::Op(Op::Unpause { run, step: None })]
        } else {
            self.say("pausing: agents stop before their next request, shell steps run on");
            vec![Effect::Op(Op::Pause { run, step: None })]
        }
    }

    /// `P`: pause or unpause only the focused agent.
    pub(super) fn toggle_agent_pause(&mut self) -> Vec<Effect> {
        if !self.live() {
            return Vec::new();
        }
        let (Some(run), Some(i)) = (self.run.run.clone(), self.focused_agent()) else {
            self.say("focus a running agent's pane to pause it alone");
            return Vec::new();
        };
        let p = &self.run.panes[i];
        let step = p.step.clone();
        if p.paused {
            self.say(format!("unpausing {step}"));
            vec![Effect::Op(Op::Unpause {
                run,
                step: Some(step),
            })]
        } else {
            self.say(format!("pausing {step} before its next request"));
            vec![Effect::Op(Op::Pause {
                run,
                step: Some(step),
            })]
        }
    }

    /// `ctrl-x`: asks first, like quitting.
    pub(super) fn ask_emergency_stop(&mut self) {
        if self.live() {
            self.ask(Confirm::EmergencyStop);
        }
    }

    /// `C`: asks first; no new follow-up or system question from then on.
    pub(super) fn ask_stop_callbacks(&mut self) {
        if self.live() {
            self.ask(Confirm::StopCallbacks);
        }
    }

    /// A refusal from the engine (not a fact; shown in the status bar).
    pub(super) fn refused(&mut self, text: &str) {
        self.say(one_line(text, 200));
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::Op;
    use crate::tui::keymap::Action;
    use crate::tui::state::sample::sample_state;
    use crate::tui::state::{Effect, State};

    fn op(effects: Vec<Effect>) -> Option<Op> {
        effects.into_iter().find_map(|e| match e {
            Effect::Op(op) => Some(op),
            _ => None,
        })
    }

    fn running() -> State {
        let mut s = sample_state();
        s.run.status = Some(crate::protocol::RunStatus::Running);
        s
    }

    /// `p` after `P`: one agent paused alone, the run not — `p` pauses the
    /// run (it used to unpause it).
    #[test]
    fn p_pauses_the_run_when_only_an_agent_is_paused() {
        let mut s = running();
        let i = s
            .run
            .panes
            .iter()
            .position(|p| p.kind == "agent" && !p.status.is_terminal())
            .unwrap();
        s.run.panes[i].paused = true;
        assert!(matches!(
            op(s.handle_action(Action::PauseRun)),
            Some(Op::Pause { step: None, .. })
        ));
        s.run.paused = true;
        assert!(matches!(
            op(s.handle_action(Action::PauseRun)),
            Some(Op::Unpause { step: None, .. })
        ));
    }

    /// After an emergency stop the steps that were running show stopped
    /// (no spinner, a still clock), and `p` resumes the run.
    #[test]
    fn an_emergency_stop_shows_steps_stopped_and_p_resumes() {
        use crate::protocol::{Event, Millis, Notice, PauseReason, Recorded, RunStatus, Seq};
        let mut s = running();
        let running_before: Vec<usize> = (0..s.run.panes.len())
            .filter(|&i| s.run.panes[i].status == crate::protocol::StepStatus::Running)
            .collect();
        assert!(!running_before.is_empty());
        let run = s.run.run.clone().unwrap();
        let at = Millis(crate::tui::state::sample::T0 + 40_000);
        for (seq, event) in [
            (900, Event::EmergencyStopped { at }),
            (
                901,
                Event::RunPaused {
                    reason: PauseReason::EmergencyStop,
                    at,
                },
            ),
        ] {
            s.apply(&Notice::Event(Recorded {
                run: run.clone(),
                seq: Seq(seq),
                event,
            }));
        }
        assert_eq!(s.run.status, Some(RunStatus::Paused));
        for i in running_before {
            let p = &s.run.panes[i];
            assert!(p.halted, "{} still runs", p.step);
            assert_eq!(p.finished_at, Some(at), "{}'s clock runs on", p.step);
        }
        assert!(matches!(
            op(s.handle_action(Action::PauseRun)),
            Some(Op::Resume { .. })
        ));
    }

    /// "pausing…" goes once the pause is a fact (it used to stay on the
    /// status line beside the paused state, and "unpausing" beside it).
    #[test]
    fn a_message_goes_when_its_fact_arrives() {
        use crate::protocol::{Event, Millis, Notice, Recorded, Seq};
        let mut s = running();
        s.handle_action(Action::PauseRun);
        assert!(
            s.message
                .as_deref()
                .is_some_and(|m| m.starts_with("pausing"))
        );
        let run = s.run.run.clone().unwrap();
        s.apply(&Notice::Event(Recorded {
            run,
            seq: Seq(900),
            event: Event::PauseRequested {
                step: None,
                at: Millis(crate::tui::state::sample::T0 + 40_000),
            },
        }));
        assert_eq!(s.message, None);
        assert!(s.run.paused);
    }
}
