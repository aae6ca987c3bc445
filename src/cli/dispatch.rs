//! From parsed arguments to the command that does the work. Nothing imports
//! this file but `cli/mod.rs`.
#![allow(clippy::print_stderr)]

use super::args::{Cli, Command, ModesAction, TemplateCommand};
use super::context::{error, init_logging};
use super::drive::{browser, check_theme, replay_tui};
use super::exit;
use super::run::{resume, run};
use super::validate::validate;
use super::{
    demo, doctor, hook, inspect, memory, modes, prune, retryfork, steer, swarm, template, whispers,
    worker, worktrees,
};
use crate::paths::Paths;

pub async fn dispatch(cli: Cli) -> u8 {
    let paths = Paths::resolve(cli.data_dir.as_deref());
    // `--journal` / `LEV_JOURNAL`, else the config's `journal: { url }` (a
    // config that does not load is reported by the command that loads it).
    let journal = cli.journal.or_else(|| {
        super::context::load_config_quiet(&paths)
            .ok()
            .and_then(|c| c.journal_url)
    });
    // The journal's password is a secret from here on: never shown, never
    // in a child process's environment.
    if let Some(password) = journal
        .as_deref()
        .filter(|url| crate::journal::Journal::is_url(url))
        .and_then(crate::journal::pg::password_in)
    {
        crate::secrets::keep_secret(&password);
    }
    let paths = paths.with_journal_url(journal);
    let _ = super::context::HOOK_SOCKET.set(paths.socket());
    let _log_guard = init_logging(&paths);
    if let Err(code) = check_theme(&paths, cli.theme) {
        return code;
    }
    let Some(command) = cli.command else {
        return browser(&paths).await;
    };
    match command {
        Command::Validate { files } => validate(&files),
        Command::Run {
            file,
            inputs,
            detach: true,
            spread,
            push_to,
            drive,
        } => super::run::detach(&paths, &file, &inputs, placed(spread, push_to), &drive).await,
        Command::Run {
            file,
            inputs,
            detach: false,
            spread,
            push_to,
            drive,
        } => run(&paths, &file, &inputs, placed(spread, push_to), &drive).await,
        Command::Worker {
            slots,
            lease,
            yes,
            allow_shell,
            wait_for_answers,
            workspace,
            modes,
        } => {
            let args = worker::WorkerArgs {
                slots,
                lease: &lease,
                yes,
                allow_shell,
                wait_for_answers,
                workspace,
                modes,
            };
            worker::work(&paths, args).await
        }
        Command::Resume {
            run,
            in_flight,
            drive,
        } => resume(&paths, &run, in_flight, &drive).await,
        Command::Retry { run, step, drive } => retryfork::retry(&paths, &run, &step, &drive).await,
        Command::Fork { run, from, drive } => retryfork::fork(&paths, &run, &from, &drive).await,
        Command::Demo { drive } => demo::run(&paths, &drive).await,
        Command::Workflow {
            objective,
            agents,
            max_tasks,
            max_tokens,
            max_cost,
            worktrees,
            base,
            detach,
            spread,
            push_to,
            drive,
        } => {
            let args = swarm::SwarmArgs {
                detach,
                placement: placed(spread, push_to),
                objective: &objective,
                agents,
                max_tasks,
                max_tokens,
                max_cost_usd: max_cost,
                worktrees,
                base,
            };
            swarm::start(&paths, args, &drive).await
        }
        Command::Runs { json } => inspect::runs(&paths, json).await,
        Command::Worktrees {
            run,
            diff,
            merge,
            discard,
            json,
        } => {
            let action = match (diff, merge, discard) {
                (Some(s), _, _) => worktrees::Action::Diff(s),
                (_, Some(s), _) => worktrees::Action::Merge(s),
                (_, _, Some(s)) => worktrees::Action::Discard(s),
                _ => worktrees::Action::List,
            };
            worktrees::run(&paths, &run, action, json).await
        }
        Command::Show {
            run,
            json,
            context: Some(step),
            turn,
        } => inspect::show_context(&paths, &run, &step, turn, json).await,
        Command::Show { run, json, .. } => inspect::show(&paths, &run, json).await,
        Command::Replay {
            run,
            json,
            headless,
        } => {
            use std::io::IsTerminal;
            if headless || json || !std::io::stdout().is_terminal() {
                inspect::replay(&paths, &run, json).await
            } else {
                replay_tui(&paths, &run).await
            }
        }
        Command::Export {
            run,
            all,
            output,
            format,
        } => match (run, output) {
            (Some(run), output) if !all => {
                inspect::export(&paths, &run, output.as_deref(), format).await
            }
            (_, Some(dir)) => doctor::export_all(&paths, &dir, format).await,
            (_, None) => {
                error("`lev export --all` needs --output DIR");
                exit::USAGE
            }
        },
        Command::Doctor { json, repair } => doctor::run(&paths, json, repair).await,
        Command::Import { file } => inspect::import(&paths, &file).await,
        Command::Cancel { run, step } => inspect::cancel(&paths, &run, step.as_deref()).await,
        Command::Rm { runs, force } => prune::rm(&paths, &runs, force).await,
        Command::Prune {
            older_than,
            keep_failed,
            dry_run,
        } => prune::prune(&paths, &older_than, keep_failed, dry_run).await,
        Command::Compact => prune::compact(&paths).await,
        Command::Mcp {
            command: None,
            http: None,
        } => super::mcp::serve(&paths).await,
        Command::Mcp {
            command: None,
            http: Some(addr),
        } => super::mcp_http::serve(&paths, addr).await,
        Command::Mcp {
            command: Some(super::args::McpCommand::Install { client }),
            ..
        } => super::mcp::install(&paths, client),
        Command::Modes { json, action } => match action {
            None => modes::list(&paths, json),
            Some(ModesAction::Show { id, json: own }) => modes::show(&paths, &id, json || own),
        },
        Command::Pause { run, step } => steer::pause(&paths, &run, step, true).await,
        Command::Unpause { run, step } => steer::pause(&paths, &run, step, false).await,
        Command::Hook {
            state,
            session,
            message,
            wait,
        } => hook::hook(state, session, message, wait).await,
        Command::Spawn { run, command, args } => steer::spawn(&paths, &run, command, args).await,
        Command::Message { run, step, text } => steer::message(&paths, &run, &step, text).await,
        Command::Answer {
            run,
            question,
            answer,
        } => steer::answer(&paths, &run, &question, answer).await,
        Command::Stop { run } => steer::stop(&paths, &run).await,
        Command::StopCallbacks { run } => steer::stop_callbacks(&paths, &run).await,
        Command::Memory { command } => memory::run(&paths, command).await,
        Command::Whispers {
            reset,
            category,
            json,
        } => whispers::run(&paths, reset, category, json).await,
        Command::Template {
            command:
                TemplateCommand::Save {
                    run,
                    name,
                    dir,
                    force,
                },
        } => template::save(&paths, &run, &name, dir.as_deref(), force).await,
    }
}

/// `--spread` and `--push-to` as the engine takes them.
fn placed(spread: bool, push_to: Option<String>) -> crate::workflow::Placement {
    crate::workflow::Placement { spread, push_to }
}
