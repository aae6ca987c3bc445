//! The workbench: a full-screen TUI whose state is a fold of engine events
//! (`state`), drawn by pure functions into a ratatui `Buffer` (`view`),
//! styled by YAML themes (`theme`), driven by a data keymap (`keymap`).
//! Keys become `Op`s sent to the engine; the TUI never reaches into engine
//! internals. Live runs, resumed runs and replays render through the same code.

pub mod app;
pub mod attention;
pub mod keymap;
pub mod new_run;
mod remedy;
pub mod state;
pub mod theme;
pub mod view;
