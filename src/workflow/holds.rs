//! The steering state of one run (what is paused, the messages waiting
//! for each running agent), kept apart from the code that changes it
//! (`steer.rs`) so the run's context can hold it without importing the
//! engine's steps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::protocol::StepKey;

/// What is paused right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holds {
    /// The whole run: no new step starts, every agent holds.
    pub run: bool,
    /// Agents paused alone.
    pub steps: BTreeSet<StepKey>,
}

/// Steering state shared by the dispatcher, the graph and the agents of one run.
pub struct Steer {
    /// Watched, so waiters wake when a pause lifts (or a halt is nudged).
    pub(super) holds: watch::Sender<Holds>,
    /// Running agents, each with the messages waiting for its next turn.
    pub(super) inboxes: Mutex<BTreeMap<StepKey, Vec<String>>>,
}

impl Default for Steer {
    fn default() -> Self {
        Steer {
            holds: watch::Sender::new(Holds::default()),
            inboxes: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Steer {
    /// Wakes everything waiting on a pause so it re-checks the run's state
    /// (called when the run halts).
    pub fn nudge(&self) {
        self.holds.send_modify(|_| {});
    }

    pub(super) fn holds(&self) -> Holds {
        self.holds.borrow().clone()
    }

    pub(super) fn is_agent(&self, step: &StepKey) -> bool {
        self.inboxes
            .lock()
            .map(|m| m.contains_key(step))
            .unwrap_or(false)
    }
}
