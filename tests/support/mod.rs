//! Helpers shared by the integration tests. Each test file that needs them
//! says `mod support;`.

#![allow(dead_code)]

pub mod git;
pub mod journal;
pub mod kill;
pub mod lev;
pub mod llm_server;
pub mod pg;
pub mod swarm_plan;
pub mod tmux;
pub mod workers;
