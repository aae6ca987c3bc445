//! `lev run FILE` (`--detach`: for `lev worker`s) and `lev resume RUN`.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use super::args::{DriveArgs, InFlightArg};
use super::context::{
    engine_deps, error, load_config, load_modes, modes_config_journal, open_journal, parse_pairs,
};
use super::drive::{drive_run, headless_note};
use super::exit;
use crate::journal::Journal;
use crate::paths::Paths;
use crate::protocol::{InFlightDecision, RunId, RunStatus};
use crate::spec;
use crate::workflow::{self, Placement, Start};

pub(super) async fn run(
    paths: &Paths,
    file: &Path,
    inputs: &[String],
    placement: Placement,
    drive: &DriveArgs,
) -> u8 {
    if placement.spread
        && let Err(c) = shared_journal(paths, false)
    {
        return c;
    }
    let (deps, run) = match create(paths, file, inputs, &placement, drive).await {
        Ok(made) => made,
        Err(c) => return c,
    };
    headless_note(drive);
    if placement.spread {
        spread_note(&run);
    }
    drive_run(paths, deps, run, Start::Fresh, drive).await
}

/// `lev run --detach`: the run is made as `lev run` makes it, then let go
/// for the `lev worker`s of its PostgreSQL journal; its id is printed.
pub(super) async fn detach(
    paths: &Paths,
    file: &Path,
    inputs: &[String],
    placement: Placement,
    drive: &DriveArgs,
) -> u8 {
    if let Err(c) = shared_journal(paths, true) {
        return c;
    }
    match create(paths, file, inputs, &placement, drive).await {
        Ok((deps, run)) => hand_over(&deps.journal, &run).await,
        Err(c) => c,
    }
}

/// What `--spread` without `--detach` means for the one who typed it.
pub(super) fn spread_note(run: &RunId) {
    eprintln!(
        "note: this process schedules run {run}; its agent and shell steps are executed by the `lev worker`s of this journal (none running: they wait for one)"
    );
}

/// `--detach` and `--spread` need a journal `lev worker`s share: an error
/// saying so before anything is made, otherwise.
pub(super) fn shared_journal(paths: &Paths, detach: bool) -> Result<(), u8> {
    if paths.journal_url.as_deref().is_some_and(Journal::is_url) {
        return Ok(());
    }
    let what = if detach {
        "--detach hands the run to `lev worker`s"
    } else {
        "--spread shares the run's steps among `lev worker`s"
    };
    error(&format!(
        "{what}, which share a PostgreSQL journal: give it with --journal postgres://… (or LEV_JOURNAL, or `journal: {{ url }}` in the config)"
    ));
    Err(exit::USAGE)
}

/// `--push-to REMOTE` names a remote the workspace's repository can push
/// to: an error saying what is wrong before anything is made, otherwise.
pub(super) fn check_push_to(workspace: &Path, placement: &Placement) -> Result<(), u8> {
    let Some(remote) = &placement.push_to else {
        return Ok(());
    };
    crate::isolation::check_remote(workspace, remote).map_err(|e| {
        error(&e.to_string());
        exit::USAGE
    })
}

/// Whether a step of `wf` (or of a child workflow) works in its own worktree.
fn has_worktree_steps(wf: &spec::Workflow) -> bool {
    wf.steps.iter().any(|s| {
        s.workspace.as_ref().is_some_and(|w| w.worktree)
            || matches!(&s.kind, spec::StepKind::Workflow { child, .. } if has_worktree_steps(child))
    })
}

/// Lets go of a run this process made (and holds the lease of), so a
/// worker claims it, and prints its id.
pub(super) async fn hand_over(journal: &Journal, run: &RunId) -> u8 {
    if let Err(e) = journal.let_go(run).await {
        // Its lease lapses by itself, and then a worker claims it anyway.
        error(&format!(
            "run {run} was made, but handing it to the workers failed: {e} (a worker takes it once its lease lapses)"
        ));
        return exit::FAILED;
    }
    println!("{run}");
    exit::OK
}

/// Loads the workflow and what executing it needs, checks its inputs and
/// provider, and records the run (leased to this process on PostgreSQL).
async fn create(
    paths: &Paths,
    file: &Path,
    inputs: &[String],
    placement: &Placement,
    drive: &DriveArgs,
) -> Result<(std::sync::Arc<workflow::EngineDeps>, RunId), u8> {
    let modes = load_modes(paths)?;
    let wf = match spec::load_workflow(file, &modes) {
        Ok(wf) => wf,
        Err(d) => {
            eprint!("{d}");
            return Err(exit::USAGE);
        }
    };
    let given = parse_pairs(inputs, "--input").map_err(|e| {
        error(&e);
        exit::USAGE
    })?;
    let inputs = workflow::resolve_inputs(&wf, &given).map_err(|e| {
        error(&e.to_string());
        exit::USAGE
    })?;
    let config = load_config(paths)?;
    let journal = open_journal(paths).await?;
    let deps = engine_deps(Some(file), journal, modes, drive, None, config)?;
    if let Err(e) = crate::engine::provider_for(&wf, &deps) {
        error(&e.to_string());
        return Err(exit::USAGE);
    }
    if placement.push_to.is_some() && !has_worktree_steps(&wf) {
        error(&format!(
            "--push-to pushes the branches of steps that work in their own worktree, and no step of {} does (`workspace: {{ worktree: true }}`)",
            file.display()
        ));
        return Err(exit::USAGE);
    }
    check_push_to(&deps.workspace, placement)?;
    match workflow::start_run_placed(&deps.journal, &wf, inputs, Some(&deps.workspace), placement)
        .await
    {
        Ok(run) => Ok((deps, run)),
        Err(e) => {
            error(&e.to_string());
            Err(exit::FAILED)
        }
    }
}

pub(super) async fn resume(
    paths: &Paths,
    run: &str,
    in_flight: Option<InFlightArg>,
    drive: &DriveArgs,
) -> u8 {
    let (modes, config, journal) = match modes_config_journal(paths).await {
        Ok(loaded) => loaded,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let source = match journal.run(&run).await {
        Ok(Some(meta)) if meta.status.is_terminal() => {
            eprintln!(
                "run {run} already {}; nothing to resume (see `lev show {run}`)",
                meta.status.as_str()
            );
            return if meta.status == RunStatus::Succeeded {
                exit::OK
            } else {
                exit::FAILED
            };
        }
        Ok(Some(meta)) => PathBuf::from(meta.source),
        Ok(None) => {
            error(&format!("no run {run} in {}", paths.journal_name()));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    headless_note(drive);
    let decision = in_flight.map(|d| match d {
        InFlightArg::Rerun => InFlightDecision::Rerun,
        InFlightArg::Skip => InFlightDecision::Skip,
        InFlightArg::Done => InFlightDecision::MarkDone,
    });
    let deps = match engine_deps(Some(&source), journal, modes, drive, decision, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    drive_run(paths, deps, run, Start::Resume, drive).await
}
