//! One line per durable event. The live run and `lev replay` format the same
//! recorded events with this code, so their transcripts are identical. The
//! words are `protocol::describe`'s, shared with the workbench and the
//! markdown transcript; the printer adds only the clock (how long a step or
//! the run took).

use std::collections::BTreeMap;

pub use crate::protocol::describe::value_text;
use crate::protocol::{Event, Recorded, StepKey, describe};

/// What the printer remembers between events (for durations).
#[derive(Debug, Default)]
pub struct Printer {
    run_started_ms: Option<u64>,
    step_started_ms: BTreeMap<StepKey, u64>,
    /// Open questions FlowMind's conductor has spoken of: whether its
    /// answer stands on its own (after the grace period).
    proposed: BTreeMap<String, bool>,
    /// The run's workflow's `flowmind: { mode }`, when it sets one.
    flowmind_mode: Option<String>,
}

impl Printer {
    /// What FlowMind's conductor said of open question `id`: `Some(true)`
    /// when its answer stands after the grace period, `Some(false)` when it
    /// only offered one (or had none), `None` when it said nothing yet.
    pub fn proposed(&self, id: &str) -> Option<bool> {
        self.proposed.get(id).copied()
    }

    /// The FlowMind mode the run's workflow sets, if it sets one.
    pub fn flowmind_mode(&self) -> Option<&str> {
        self.flowmind_mode.as_deref()
    }

    /// Learns from an event without printing it (events before a resume).
    pub fn observe(&mut self, r: &Recorded) {
        let _ = self.took(r);
    }

    /// The transcript line for an event, terminal-safe: names, replies and
    /// outputs in it come from workflow files, models and commands.
    pub fn line(&mut self, r: &Recorded) -> String {
        let line = describe::line(r, self.took(r));
        match crate::text::sanitize(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(safe) => safe,
        }
    }

    /// How long the step or the run an ending event ends had run; starts
    /// are remembered.
    fn took(&mut self, r: &Recorded) -> Option<u64> {
        let at = r.event.at().0;
        match &r.event {
            Event::RunStarted { flowmind, .. } => {
                self.run_started_ms = Some(at);
                self.flowmind_mode = flowmind.as_ref().and_then(|f| f.mode.clone());
                None
            }
            Event::StepStarted { step, .. } => {
                self.step_started_ms.insert(step.clone(), at);
                None
            }
            // Forgotten at its end (a retry starts again): a long run's
            // printer holds only the steps that run.
            Event::StepSucceeded { step, .. } | Event::StepFailed { step, .. } => self
                .step_started_ms
                .remove(step)
                .map(|s| at.saturating_sub(s)),
            Event::RunFinished { .. } => self.run_started_ms.map(|s| at.saturating_sub(s)),
            Event::AnswerProposed {
                id, answer, auto, ..
            } => {
                self.proposed.insert(id.clone(), *auto && answer.is_some());
                None
            }
            Event::QuestionAnswered { id, .. } => {
                self.proposed.remove(id);
                None
            }
            _ => None,
        }
    }
}
