//! lev: a terminal workbench for durable multi-agent AI work.
//! Domains as modules; see `../shared/DESIGN.md` for the layering.

pub mod cli;
pub mod commands;
pub mod config;
pub mod headless;
pub mod host;
pub mod isolation;
pub mod journal;
pub mod llm;
pub mod memory;
pub mod paths;
pub mod protocol;
pub mod secrets;
pub mod spec;
pub mod swarm;
pub mod text;
pub mod tools;
pub mod tui;
pub mod workflow;
