//! The swarm: many agents working one objective side by side.
//!
//! `plan` is what the orchestrator agent proposes for an objective (a graph
//! of tasks, each for one mode): how it is checked, shown for review and
//! turned into workflow steps; `template` saves it as a reusable workflow,
//! and `saved` makes the text `lev template save` writes for any run.
//! `scheduler` is the pure core that decides which agent slot runs which
//! task (local queues, work stealing, per-slot circuit breakers);
//! `simulate` runs task sets through it in simulated time, for tests and
//! benchmarks.
//!
//! Pure data and decisions: no journal, network, clock or engine here. The
//! swarm driver (`workflow::swarm`) asks the orchestrator, journals every
//! decision, and runs the tasks through the ordinary step runner.

pub mod plan;
pub mod saved;
pub mod scheduler;
pub mod simulate;
pub mod template;
mod yaml_out;
