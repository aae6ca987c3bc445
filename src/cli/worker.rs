//! `lev worker`: a process that executes the runs of a PostgreSQL journal
//! that need one. It claims a run no process holds a live lease on (one
//! `lev run --detach` submitted, or one whose process died or was cut off
//! and whose lease lapsed) and resumes it on its engine handle, as `lev
//! resume` would — recorded results reused, steps in flight at a crash
//! following the in-flight rules (idempotent ones rerun, others pause the
//! run for a decision). It holds the run's lease while it executes it
//! (renewed by heartbeat) and lets go when the run ends or pauses.
//!
//! It wakes when a run is announced claimable (`LISTEN lev_ready`) and,
//! since a lapsed lease announces nothing, also every third of a lease.
//!
//! Its slots count the runs that do work: whole runs and step runs (the
//! steps of spread runs, `lev run --spread`). The scheduling of a spread
//! run takes no slot — it only waits for its step runs, which may need
//! this worker's slots (a one-slot worker would otherwise wait for
//! itself). `--modes` limits it to the step runs of those modes and the
//! scheduling of spread runs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;

use super::args::DriveArgs;
use super::context::{error, load_config, load_modes, run_settings};
use super::drive::flowmind_on;
use super::exit;
use crate::engine::Engine;
use crate::headless::{self, HeadlessOptions};
use crate::journal::{Accept, Journal};
use crate::paths::Paths;
use crate::protocol::RunId;
use crate::spec::load::duration::parse_duration;
use crate::workflow::{EngineError, RunOutcome};

/// How long a run this worker cannot execute is kept from workers.
const HOLD_BACK: Duration = Duration::from_secs(60);
/// Shortest lease `--lease` takes: shorter would be renewed more often
/// than a database round trip may take.
const MIN_LEASE: Duration = Duration::from_secs(1);
/// Most spread runs one worker schedules at once.
const MAX_SCHEDULING: usize = 64;

pub(super) struct WorkerArgs<'a> {
    pub slots: u32,
    pub lease: &'a str,
    pub yes: bool,
    pub allow_shell: bool,
    pub wait_for_answers: bool,
    pub workspace: Option<PathBuf>,
    /// `--modes`: only step runs of these modes (`shell`: shell steps).
    pub modes: Option<Vec<String>>,
}

/// What a worker claims with each kind of place it has.
struct Takes {
    /// With a free slot: whole runs (unless `--modes`) and step runs.
    work: Accept,
    /// Always (up to `MAX_SCHEDULING`): spread runs, to schedule.
    scheduling: Accept,
}

/// `--modes`, checked against the modes this worker knows.
fn takes(modes: Option<Vec<String>>, known: &crate::spec::ModeRegistry) -> Result<Takes, String> {
    let modes = match modes {
        None => None,
        Some(list) => {
            let list: Vec<String> = list
                .into_iter()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            if list.is_empty() {
                return Err("--modes: name at least one mode (or `shell`)".into());
            }
            for mode in &list {
                if mode != "shell" && !known.contains(mode) {
                    let hint = known
                        .closest(mode)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "--modes: no mode `{mode}` here{hint}; `lev modes` lists them, and `shell` takes shell steps"
                    ));
                }
            }
            Some(list)
        }
    };
    Ok(Takes {
        work: Accept {
            spread: false,
            runs: modes.is_none(),
            step_modes: modes,
        },
        scheduling: Accept {
            spread: true,
            runs: false,
            step_modes: Some(Vec::new()),
        },
    })
}

pub(super) async fn work(paths: &Paths, args: WorkerArgs<'_>) -> u8 {
    let Some(url) = paths.journal_url.as_deref().filter(|u| Journal::is_url(u)) else {
        error(
            "lev worker executes the runs of a PostgreSQL journal: give it with --journal postgres://… (or LEV_JOURNAL, or `journal: { url }` in the config)",
        );
        return exit::USAGE;
    };
    let lease = match parse_duration(args.lease) {
        Ok(d) if d >= MIN_LEASE => d,
        Ok(_) => {
            error(&format!("--lease `{}`: at least 1s", args.lease));
            return exit::USAGE;
        }
        Err(e) => {
            error(&format!("--lease `{}`: {e}", args.lease));
            return exit::USAGE;
        }
    };
    if args.slots == 0 {
        error("--slots: at least 1");
        return exit::USAGE;
    }
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let takes = match takes(args.modes, &modes) {
        Ok(t) => t,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    let config = match load_config(paths) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let journal = match Journal::open_url_leasing(url, lease).await {
        Ok(j) => j,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    let mut ready = match journal.ready().await {
        Ok(Some(r)) => r,
        Ok(None) => return exit::USAGE,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    let drive = DriveArgs {
        headless: true,
        yes: args.yes,
        allow_shell: args.allow_shell,
        workspace: args.workspace,
        ..DriveArgs::interactive()
    };
    // A control socket of its own (several workers may share a data dir):
    // `lev hook` reaches the worker that executes a `pty` step through it.
    let socket = paths
        .data_dir
        .join(format!("lev-worker-{}.sock", std::process::id()));
    let mut settings = run_settings(modes, &drive, None, config);
    // The runs' files are where this worker was told they are on its machine.
    settings.options.workspace_here = drive.workspace.is_some();
    settings.options.terminals.hook_socket = Some(socket.clone());
    let engine = Engine::open(journal.clone(), Ok(settings));
    let _host = match crate::paths::private_dir(&paths.data_dir)
        .and_then(|()| crate::host::serve(&socket, engine.clone()))
    {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, socket = %socket.display(), "no control socket: `pty` steps' hooks cannot reach this worker");
            None
        }
    };
    let (_flowmind, conductor) = flowmind_on(paths, &engine);
    // Steering from other machines: `lev answer`, `lev cancel`, … of the
    // runs this worker executes.
    let _inbox = crate::host::serve_inbox(engine.clone()).await;
    // `lev run --headless`'s policy: given answers win, questions take
    // their defaults, `--yes` approves and picks a question's recommended
    // option, what is left takes its timeout policy at once — or, with
    // `--wait-for-answers`, waits for `lev answer` until then.
    let policy = HeadlessOptions {
        yes: args.yes,
        wait_for_answers: args.wait_for_answers,
        conductor,
        ..HeadlessOptions::default()
    };
    let holder = journal.holder().unwrap_or("this worker").to_owned();
    println!(
        "lev worker {holder}: executing runs of {} ({} at once, lease {})",
        journal.path(),
        args.slots,
        args.lease
    );
    let mut running: JoinSet<(RunId, Result<RunOutcome, EngineError>)> = JoinSet::new();
    let mut scheduling: JoinSet<(RunId, Result<RunOutcome, EngineError>)> = JoinSet::new();
    let mut poll = tokio::time::interval(
        (lease / 3).clamp(Duration::from_millis(250), Duration::from_secs(5)),
    );
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The spread runs this worker schedules, to hand over when it stops.
    let mut scheduled: BTreeSet<RunId> = BTreeSet::new();
    let mut stopping = false;
    let mut stop = StopSignals::new();
    loop {
        if !stopping {
            let schedule = (&takes.scheduling, MAX_SCHEDULING, &policy);
            scheduled.extend(claim_runs(&engine, &journal, &mut scheduling, schedule).await);
            let work = (&takes.work, args.slots as usize, &policy);
            claim_runs(&engine, &journal, &mut running, work).await;
        }
        if stopping && running.is_empty() {
            // Scheduling only waits for step runs (which may need workers
            // that are gone): it is handed to other workers at once. Its
            // lease is taken back and released; what this process would
            // still write to it is refused (fenced), as after a crash.
            for run in &scheduled {
                match journal.let_go(run).await {
                    Ok(()) => println!("run {run}: its scheduling left to other workers"),
                    Err(e) => println!(
                        "run {run}: its scheduling is left to other workers once its lease lapses ({e})"
                    ),
                }
            }
            println!("lev worker {holder}: stopped");
            return exit::OK;
        }
        tokio::select! {
            () = stop.next() => {
                if stopping {
                    println!("lev worker {holder}: stopping now; the leases of its runs lapse and other workers take them over");
                    return exit::FAILED;
                }
                stopping = true;
                println!(
                    "lev worker {holder}: claiming no more runs; letting {} run(s) end (stop again to leave them now)",
                    running.len()
                );
            }
            Some(joined) = running.join_next() => {
                report(joined);
            }
            Some(joined) = scheduling.join_next() => {
                if let Some(run) = report(joined) {
                    scheduled.remove(&run);
                }
            }
            Some(_) = ready.recv() => {}
            _ = poll.tick() => {}
        }
    }
}

/// Claims runs `accept` takes while `running` has fewer than `room`, and
/// begins each.
async fn claim_runs(
    engine: &Engine,
    journal: &Journal,
    running: &mut JoinSet<(RunId, Result<RunOutcome, EngineError>)>,
    (accept, room, policy): (&Accept, usize, &HeadlessOptions),
) -> Vec<RunId> {
    let mut claimed = Vec::new();
    while running.len() < room {
        let lease = match journal.claim_next_of(accept).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return claimed,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a run");
                return claimed;
            }
        };
        let run = lease.run().clone();
        let generation = lease.generation().unwrap_or_default();
        // Subscribed before the run begins: its follower misses nothing.
        let notices = engine.subscribe();
        match engine.resume_claimed(lease, HOLD_BACK).await {
            Ok(driving) => {
                println!("run {run}: executing here (claim {generation})");
                claimed.push(run.clone());
                let (engine, policy) = (engine.clone(), policy.clone());
                running.spawn(async move {
                    let outcome = follow(&engine, notices, driving, policy).await;
                    (run, outcome)
                });
            }
            Err(e) => {
                eprintln!(
                    "run {run}: cannot execute it here, leaving it to other workers for {}s: {e}",
                    HOLD_BACK.as_secs()
                );
            }
        }
    }
    claimed
}

/// Follows a run this worker executes by the headless policy (its
/// transcript is the journal's: `lev show`, `lev replay`), to its end here.
async fn follow(
    engine: &Engine,
    notices: tokio::sync::mpsc::UnboundedReceiver<crate::protocol::Notice>,
    driving: crate::engine::Driving,
    policy: HeadlessOptions,
) -> Result<RunOutcome, EngineError> {
    // What the run said before this drive (a question FlowMind already
    // spoke to) is known to the policy, as a resume's printer knows it.
    let printer = match driving.resumed_after {
        Some(last) => headless::clock(engine, &driving.run, last).await?,
        None => headless::Printer::default(),
    };
    headless::follow(
        engine,
        notices,
        driving,
        printer,
        policy,
        &mut std::io::sink(),
    )
    .await
}

/// One line for how a run this worker executed ended here.
/// Prints how a run ended here; its id, unless its follower failed.
fn report(
    joined: Result<(RunId, Result<RunOutcome, EngineError>), tokio::task::JoinError>,
) -> Option<RunId> {
    let (run, outcome) = match joined {
        Ok(ended) => ended,
        Err(e) => {
            tracing::error!(error = %e, "a run's follower task failed");
            return None;
        }
    };
    match outcome {
        Ok(o) => {
            let why = o.error.map(|e| format!(": {e}")).unwrap_or_default();
            println!("run {run}: {}{why}", o.status.as_str());
        }
        Err(e) => println!("run {run}: stopped here: {e}"),
    }
    Some(run)
}

/// Ctrl-C, or SIGTERM (a service manager's stop). The streams are made
/// once, before the worker's loop: a signal that arrives while the loop is
/// busy claiming is kept for the next wait, not lost with a dropped future.
struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

impl StopSignals {
    fn new() -> StopSignals {
        let listen = |kind| {
            signal(kind)
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for a stop signal"))
                .ok()
        };
        StopSignals {
            interrupt: listen(SignalKind::interrupt()),
            terminate: listen(SignalKind::terminate()),
        }
    }

    async fn next(&mut self) {
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => {}
            () = recv(&mut self.terminate) => {}
        }
    }
}
