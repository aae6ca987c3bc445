//! The durable engine: executor, DAG scheduling, durable step semantics,
//! resume and divergence detection. Knows nothing above it (no TUI, no
//! headless printer): participants send `Op`s and receive `Notice`s.

pub mod history;
pub mod recorder;
