//! `lev demo`: the demo workflow and its cassette are built into the binary,
//! written to `<data>/demo/`, and run with the scripted provider in a fresh
//! workspace, so it works on any machine with no key and no network.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use super::args::DriveArgs;
use super::context::{self, error};
use super::drive;
use super::exit;
use crate::config::{ProviderKind, ProviderSettings};
use crate::paths::Paths;
use crate::protocol::Millis;
use crate::spec;
use crate::workflow;

use crate::spec::demo::{CASSETTE as DEMO_CASSETTE, WORKFLOW as DEMO_WORKFLOW};
/// How much faster than written a headless demo streams: the workbench shows
/// the replies at a pace one can read, a script or a test needs none of it.
const HEADLESS_PACE: &str = "0.05";

pub async fn run(paths: &Paths, drive: &DriveArgs) -> u8 {
    let dir = paths.data_dir.join("demo");
    let workspace = dir.join(format!("workspace-{}", Millis::now().0));
    // The cassette beside the workflow is what `lev resume` of a demo run
    // replays; this run's own copy streams fast when no one watches.
    let headless_cassette = format!("pace: {HEADLESS_PACE}\n{DEMO_CASSETTE}");
    let files = [
        (dir.join("demo.yaml"), DEMO_WORKFLOW),
        (dir.join("demo.cassette.yaml"), DEMO_CASSETTE),
        (
            dir.join("demo.headless.cassette.yaml"),
            headless_cassette.as_str(),
        ),
    ];
    if let Err(e) = crate::paths::private_dir(&workspace) {
        error(&format!("cannot create {}: {e}", workspace.display()));
        return exit::FAILED;
    }
    for (path, text) in &files {
        if let Err(e) = crate::paths::write_private(path, text.as_bytes()) {
            error(&format!("cannot write {}: {e}", path.display()));
            return exit::FAILED;
        }
    }
    let modes = match context::load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let wf = match spec::load_workflow(&files[0].0, &modes) {
        Ok(wf) => wf,
        Err(d) => {
            eprint!("{d}");
            return exit::FAILED;
        }
    };
    let mut config = match context::load_config(paths) {
        Ok(c) => c,
        Err(c) => return c,
    };
    config.provider = ProviderSettings {
        // As a resume of the run builds it (`RunSettings::deps`): a model
        // named here would be part of every request's fingerprint.
        cassette: Some(if context::wants_tui(drive) {
            files[1].0.clone()
        } else {
            files[2].0.clone()
        }),
        ..ProviderSettings::of_kind(ProviderKind::Scripted)
    };
    let journal = match context::open_journal(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let inputs = match workflow::resolve_inputs(&wf, &Default::default()) {
        Ok(i) => i,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    let run = match workflow::start_run(&journal, &wf, inputs, Some(&workspace)).await {
        Ok(r) => r,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    // The demo approves its own gate and runs in its own workspace.
    let drive = DriveArgs {
        yes: true,
        workspace: Some(workspace.clone()),
        ..drive.clone()
    };
    let deps = match context::engine_deps(None, journal, modes, &drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let code = drive::drive_run(paths, deps, run.clone(), workflow::Start::Fresh, &drive).await;
    if !drive.json {
        // After the workbench's farewell too: where to look at what the agents wrote.
        println!(
            "the agents' files (greet.sh, test_greet.sh, README.md) are in {}",
            workspace.display()
        );
        if context::wants_tui(&drive) {
            // The farewell already named `lev show`.
            println!("watch it again, offline: lev replay {run}");
        } else {
            println!("see the timeline: lev show {run}    replay it offline: lev replay {run}");
        }
    }
    code
}
