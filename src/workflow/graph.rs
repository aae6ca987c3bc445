//! What a step graph's runner and the swarm driver share: how a graph
//! ended, and how a settled step looks to the expressions of the steps
//! after it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::RunOutcome;
use super::history::Settled;
use crate::protocol::RunStatus;
use crate::spec::Step;
use crate::spec::expr::StepView;

/// How one graph (the root workflow or a child) ended.
pub struct GraphEnd {
    pub status: RunStatus,
    pub outputs: BTreeMap<String, Value>,
    pub error: Option<String>,
}

impl GraphEnd {
    pub fn into_outcome(self) -> RunOutcome {
        RunOutcome {
            status: self.status,
            outputs: self.outputs,
            error: self.error,
        }
    }
}

/// A settled step as `steps.<id>` shows it to later steps.
pub(super) fn view_of(settled: &Settled, continue_on_error: bool) -> StepView {
    match settled {
        Settled::Succeeded { outputs } => StepView {
            succeeded: true,
            outputs: outputs.clone(),
        },
        // A failure that may continue still counts as success downstream.
        Settled::Failed { .. } => StepView {
            succeeded: continue_on_error,
            outputs: Default::default(),
        },
        Settled::Skipped | Settled::Cancelled => StepView::default(),
    }
}

/// A declared step's view: as [`view_of`], and a failure that may continue
/// offers its declared outputs' defaults (`must_fix: { from: …, default:
/// [] }` reads `[]` after a failed review, not an error).
pub(super) fn view_of_step(settled: &Settled, step: &Step) -> StepView {
    let mut view = view_of(settled, step.continue_on_error);
    if step.continue_on_error && matches!(settled, Settled::Failed { .. }) {
        let defaults: BTreeMap<String, Value> = step
            .outputs
            .iter()
            .filter_map(|(name, spec)| Some((name.clone(), spec.default.clone()?)))
            .collect();
        view.outputs = defaults.into();
    }
    view
}
