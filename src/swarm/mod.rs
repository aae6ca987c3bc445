//! Swarm plans: what the orchestrator agent proposes for an objective (a
//! graph of tasks, each for one mode), how it is checked, shown for review,
//! turned into workflow steps, and saved as a reusable workflow template.
//!
//! Pure data and text: no journal, network or engine here. The swarm driver
//! asks the orchestrator, journals `PlanProposed`/`PlanAccepted`, and runs
//! the steps `plan::to_steps` builds through the ordinary workflow engine.

pub mod plan;
pub mod template;
mod yaml_out;
