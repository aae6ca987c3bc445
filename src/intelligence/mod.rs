//! The system's own initiative, as a participant on the engine handle:
//! the FlowMind controller watches every agent a run executes and, when
//! one looks stuck, decides what to do through ops like any participant
//! (journaled by the engine before they act).

pub mod flowmind;
