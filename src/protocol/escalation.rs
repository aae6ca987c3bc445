//! How FlowMind's escalation about an agent ends, read from the events that
//! follow it: the one reading FlowMind's whisper scores count and the
//! workbench's sidebar show, so the two never disagree.

use super::{Event, StepKey, WhisperOutcome};

/// How FlowMind's instructions begin, so the agent (and the user reading
/// what agents were told) knows who speaks.
pub const FLOWMIND_PREFIX: &str = "FlowMind (lev's controller): ";

/// What settled an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationEnd {
    /// The user let it go (`flowmind_dismissed`).
    Dismissed,
    /// The user messaged, paused or cancelled the agent.
    Messaged,
    Paused,
    Cancelled,
    /// The step ended with none of that.
    StepEnded,
}

impl EscalationEnd {
    /// The step an event settles an open escalation of, and how.
    pub fn of(event: &Event) -> Option<(&StepKey, EscalationEnd)> {
        Some(match event {
            Event::FlowmindDismissed { step, .. } => (step, EscalationEnd::Dismissed),
            Event::AgentMessaged { step, text, .. } if !text.starts_with(FLOWMIND_PREFIX) => {
                (step, EscalationEnd::Messaged)
            }
            Event::PauseRequested {
                step: Some(step), ..
            } => (step, EscalationEnd::Paused),
            Event::StepCancelled { step, .. } => (step, EscalationEnd::Cancelled),
            Event::StepSucceeded { step, .. } | Event::StepFailed { step, .. } => {
                (step, EscalationEnd::StepEnded)
            }
            _ => return None,
        })
    }

    /// What it counts as in the whisper's score: acting on the agent takes
    /// the whisper; dismissing it, or letting the step end, does not.
    pub fn outcome(self) -> WhisperOutcome {
        match self {
            EscalationEnd::Messaged | EscalationEnd::Paused | EscalationEnd::Cancelled => {
                WhisperOutcome::Accepted
            }
            EscalationEnd::Dismissed | EscalationEnd::StepEnded => WhisperOutcome::Dismissed,
        }
    }

    /// In a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationEnd::Dismissed => "dismissed",
            EscalationEnd::Messaged => "messaged",
            EscalationEnd::Paused => "paused",
            EscalationEnd::Cancelled => "cancelled",
            EscalationEnd::StepEnded => "the step ended",
        }
    }
}
