//! `lev retry RUN STEP` and `lev fork RUN --from STEP`. Both are ops of the
//! engine handle. A retry of a run another lev process executes goes to it
//! through its control socket; otherwise this process's engine records the
//! retry and executes the run, like `lev resume`. A fork is a new run in
//! this process's journal, executed the same way.
#![allow(clippy::print_stdout)]

use super::access::Access;
use super::args::DriveArgs;
use super::context::{error, load_config, load_modes, modes_config_journal, run_settings};
use super::drive::{Begin, drive_on, headless_note};
use super::exit;
use crate::engine::Engine;
use crate::paths::Paths;
use crate::protocol::{Op, RunId, StepKey};

pub async fn retry(paths: &Paths, run: &str, step: &str, drive: &DriveArgs) -> u8 {
    let run = RunId(run.to_string());
    let step = StepKey::new(step);
    let op = Op::RetryStep {
        run: run.clone(),
        step: step.clone(),
    };
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let Some(journal) = access.local() else {
        // Another lev process holds the journal; if it executes the run,
        // it takes the retry as an op.
        return match access.submit(op).await {
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
    headless_note(drive);
    let engine = Engine::open(journal, Ok(run_settings(modes, drive, None, config)));
    drive_on(paths, engine, Begin::Submit(op), drive).await
}

pub async fn fork(paths: &Paths, run: &str, from: &str, drive: &DriveArgs) -> u8 {
    let op = Op::Fork {
        run: RunId(run.to_string()),
        from: StepKey::new(from),
    };
    // The fork is executed here, so this process must hold the journal.
    let (modes, config, journal) = match modes_config_journal(paths).await {
        Ok(loaded) => loaded,
        Err(c) => return c,
    };
    headless_note(drive);
    let engine = Engine::open(journal, Ok(run_settings(modes, drive, None, config)));
    drive_on(paths, engine, Begin::Submit(op), drive).await
}
