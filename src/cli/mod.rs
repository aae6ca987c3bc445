//! The command line: argument parsing (`args`) → dispatch (`dispatch`) →
//! one file per command, sharing `context` (errors, logging, modes, config,
//! journal, engine dependencies) and `drive` (a run in the workbench or
//! headless). No command imports the dispatcher. The only layer that
//! prints to the terminal directly.

mod access;
mod args;
mod context;
mod demo;
mod dispatch;
mod doctor;
mod drive;
mod hook;
mod inspect;
mod mcp;
mod mcp_http;
mod memory;
mod modes;
mod pipe;
mod prune;
mod retryfork;
mod run;
mod salvage;
mod steer;
mod swarm;
mod template;
mod validate;
mod whispers;
mod worker;
mod worktrees;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};

/// Exit codes: 0 success, 1 a failed run or invalid files, 2 bad usage or
/// input, 3 a paused run that needs a decision.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PAUSED: u8 = 3;
}

/// How long leftover blocking work may finish before lev exits anyway.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Entry point of the `lev` binary.
pub fn main() -> ExitCode {
    pipe::quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            context::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(exit::FAILED);
        }
    };
    // On a worker, not on this thread: the engine's tasks wake the command
    // (a printer, the workbench) several times a step, and waking a task on
    // a worker that is already running is a queue push, where waking the
    // thread `block_on` parks is a system call and a context switch.
    let code = runtime.block_on(async move {
        match tokio::spawn(dispatch::dispatch(cli)).await {
            Ok(code) => code,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => exit::FAILED,
        }
    });
    // Everything lev waits for has been awaited by now. What is left on the
    // blocking pool is work a cancelled or timed-out step walked away from
    // (a tool stuck in a syscall): it must not keep the process alive, which
    // dropping the runtime would (it waits for blocking threads forever).
    runtime.shutdown_timeout(EXIT_GRACE);
    ExitCode::from(code)
}
