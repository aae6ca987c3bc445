//! Follow-up callback chains: a step that succeeds may spawn new steps at
//! run time — the items of its `followups:`, and what its agent proposed
//! with `propose_followup` — each a real step with its own pane, retries,
//! timeout and resume, which may spawn follow-ups of its own. Every spawn
//! and every refusal is journaled with the guard that decided it
//! (`guards.rs`); `book.rs` is what the journal says so far.

pub mod book;
pub mod guards;
mod running;
mod spawn;

pub use book::Book;
pub use running::{decide_guarded, run_in_box, settled};
pub use spawn::{Child, PROPOSALS, Parent, decide};

/// Why callbacks stop when the user stops them (`lev stop-callbacks`, `C`).
pub const STOPPED_BY_USER: &str =
    "`lev stop-callbacks`: follow-ups and system questions are off for this run";
