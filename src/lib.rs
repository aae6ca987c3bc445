//! lev: a terminal workbench for durable multi-agent AI work.
//! Domains as modules. Imports point down: `cli` → participants (`tui`,
//! `headless`, `host`) → the engine (`workflow`, `swarm`) → `spec` → effects
//! (`journal`, `llm`, `tools`, `commands`, `memory`, `isolation`) →
//! foundations (`protocol`, `paths`, `text`, `config`, `secrets`). The map
//! and the layer table are in docs/ARCHITECTURE.md; tests/layers.rs holds
//! the code to them.

// A panic is never how lev reports a problem (tests may: see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod headless;
pub mod host;
pub mod intelligence;
pub mod isolation;
pub mod journal;
pub mod llm;
pub mod mcp;
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
