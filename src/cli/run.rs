//! `lev run FILE` and `lev resume RUN`.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use super::args::{DriveArgs, InFlightArg};
use super::context::{
    engine_deps, error, load_config, load_modes, modes_config_journal, open_journal, parse_pairs,
};
use super::drive::{drive_run, headless_note};
use super::exit;
use crate::paths::Paths;
use crate::protocol::{InFlightDecision, RunId, RunStatus};
use crate::spec;
use crate::workflow::{self, Start};

pub(super) async fn run(paths: &Paths, file: &Path, inputs: &[String], drive: &DriveArgs) -> u8 {
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let wf = match spec::load_workflow(file, &modes) {
        Ok(wf) => wf,
        Err(d) => {
            eprint!("{d}");
            return exit::USAGE;
        }
    };
    let given = match parse_pairs(inputs, "--input") {
        Ok(g) => g,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    let inputs = match workflow::resolve_inputs(&wf, &given) {
        Ok(i) => i,
        Err(e) => {
            error(&e.to_string());
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
    let deps = match engine_deps(Some(file), journal, modes, drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let Err(e) = crate::engine::provider_for(&wf, &deps) {
        error(&e.to_string());
        return exit::USAGE;
    }
    headless_note(drive);
    let run = match workflow::start_run(&deps.journal, &wf, inputs, Some(&deps.workspace)).await {
        Ok(r) => r,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    drive_run(paths, deps, run, Start::Fresh, drive).await
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
