//! `lev retry RUN STEP` and `lev fork RUN --from STEP`. A retry of a run
//! another lev process executes goes to it as an op; otherwise the retry
//! is recorded here and the run driven like `lev resume`. A fork is a new
//! run in this process's journal, driven the same way.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use super::access::Access;
use super::args::DriveArgs;
use super::context::{
    engine_deps, error, load_config, load_modes, modes_config_journal, wants_tui,
};
use super::drive::{drive_run, headless_note};
use super::exit;
use crate::headless::{self, Printer};
use crate::journal::Journal;
use crate::paths::Paths;
use crate::protocol::{Op, Recorded, RunId, StepKey};
use crate::workflow::{self, EngineError, Start};

/// The run's definition source, or an exit code after saying why not.
async fn source_of(paths: &Paths, journal: &Journal, run: &RunId) -> Result<PathBuf, u8> {
    match journal.run(run).await {
        Ok(Some(meta)) => Ok(PathBuf::from(meta.source)),
        Ok(None) => {
            error(&format!("no run {run} in {}", paths.journal().display()));
            Err(exit::USAGE)
        }
        Err(e) => {
            error(&e.to_string());
            Err(exit::FAILED)
        }
    }
}

/// A refusal is the user's to fix (exit 2); anything else is a failure.
fn engine_error(e: EngineError) -> u8 {
    error(&e.to_string());
    match e {
        EngineError::Refused(_) | EngineError::RunNotFound(_) => exit::USAGE,
        _ => exit::FAILED,
    }
}

/// Prints the recorded request the way the transcript will show it.
fn announce(recorded: &Recorded, drive: &DriveArgs) {
    if !wants_tui(drive) {
        println!(
            "{}",
            headless::format_event(&mut Printer::default(), recorded, drive.json)
        );
    }
}

pub async fn retry(paths: &Paths, run: &str, step: &str, drive: &DriveArgs) -> u8 {
    let run = RunId(run.to_string());
    let step = StepKey::new(step);
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let Some(journal) = access.local() else {
        // Another lev process holds the journal; if it executes the run,
        // it takes the retry as an op.
        return match access
            .live_op(Op::RetryStep {
                run: run.clone(),
                step: step.clone(),
            })
            .await
        {
            Ok(_) => {
                println!(
                    "retry of {step} sent to run {run}: it runs again, then the steps that did not succeed because of it"
                );
                exit::OK
            }
            Err(e) => {
                error(&e);
                exit::FAILED
            }
        };
    };
    drop(access);
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let config = match load_config(paths) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let source = match source_of(paths, &journal, &run).await {
        Ok(s) => s,
        Err(c) => return c,
    };
    headless_note(drive);
    // Dependencies first: a retry is recorded only when it can be driven.
    let deps = match engine_deps(Some(&source), journal, modes, drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let recorded = match workflow::request_retry(&deps.journal, &deps.modes, &run, &step).await {
        Ok(r) => r,
        Err(e) => return engine_error(e),
    };
    announce(&recorded, drive);
    drive_run(paths, deps, run, Start::Resume, drive).await
}

pub async fn fork(paths: &Paths, run: &str, from: &str, drive: &DriveArgs) -> u8 {
    let run = RunId(run.to_string());
    let from = StepKey::new(from);
    // The fork is driven here, so this process must hold the journal.
    let (modes, config, journal) = match modes_config_journal(paths) {
        Ok(loaded) => loaded,
        Err(c) => return c,
    };
    let source = match source_of(paths, &journal, &run).await {
        Ok(s) => s,
        Err(c) => return c,
    };
    headless_note(drive);
    let deps = match engine_deps(Some(&source), journal, modes, drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let (fork, recorded) = match workflow::fork_run(&deps.journal, &deps.modes, &run, &from).await {
        Ok(f) => f,
        Err(e) => return engine_error(e),
    };
    announce(&recorded, drive);
    drive_run(paths, deps, fork, Start::Resume, drive).await
}
