//! The swarm: many agents working one objective side by side.
//!
//! `scheduler` is the pure core that decides which agent slot runs which
//! task (local queues, work stealing, per-slot circuit breakers);
//! `simulate` runs task sets through it in simulated time, for tests and
//! benchmarks. Neither does I/O or reads a clock: the driver feeds them
//! journaled times so every decision replays on resume.

pub mod scheduler;
pub mod simulate;
