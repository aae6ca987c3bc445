//! `lev workflow "objective"`: start a swarm run (the orchestrator plans, the
//! user reviews, agents execute) and drive it like any run.

use super::args::DriveArgs;
use super::context::{engine_deps, error, load_config, load_modes, open_journal};
use super::drive::{drive_run, headless_note};
use super::exit;
use crate::paths::Paths;
use crate::workflow::{self, Placement, Start, SwarmSpec};

/// Swarm settings from the command line.
pub struct SwarmArgs<'a> {
    pub objective: &'a str,
    pub agents: u32,
    pub max_tasks: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub worktrees: bool,
    pub base: Option<String>,
    /// Hand the run to `lev worker`s and return (`--detach`).
    pub detach: bool,
    /// `--spread` (its tasks are step runs the workers share) and `--push-to`.
    pub placement: Placement,
}

pub async fn start(paths: &Paths, args: SwarmArgs<'_>, drive: &DriveArgs) -> u8 {
    if (args.detach || args.placement.spread)
        && let Err(c) = super::run::shared_journal(paths, args.detach)
    {
        return c;
    }
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if args.agents == 0 || args.agents > 64 {
        error("--agents must be between 1 and 64");
        return exit::USAGE;
    }
    let mut spec = SwarmSpec::new(args.objective, args.agents);
    spec.worktrees = args.worktrees;
    spec.base = args.base.clone();
    if let Some(n) = args.max_tasks {
        if n == 0 || n > 200 {
            error("--max-tasks must be between 1 and 200");
            return exit::USAGE;
        }
        spec.max_tasks = n;
    }
    let wf = match workflow::swarm_workflow(&spec, &modes, args.max_tokens, args.max_cost_usd) {
        Ok(wf) => wf,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    let config = match load_config(paths) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let journal = match open_journal(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let deps = match engine_deps(None, journal, modes, drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let Err(why) = &deps.provider {
        error(&format!(
            "a swarm needs an LLM provider, and none can be used: {why}"
        ));
        return exit::USAGE;
    }
    if !args.detach {
        headless_note(drive);
    }
    if let Err(c) = super::run::check_push_to(&deps.workspace, &args.placement) {
        return c;
    }
    let run = match workflow::start_swarm_placed(
        &deps.journal,
        &wf,
        &spec,
        Some(&deps.workspace),
        &args.placement,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    if args.detach {
        return super::run::hand_over(&deps.journal, &run).await;
    }
    if args.placement.spread {
        super::run::spread_note(&run);
    }
    drive_run(paths, deps, run, Start::Fresh, drive).await
}
