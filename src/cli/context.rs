//! What every command shares: printing an error, logging to the log file,
//! loading modes and the configuration, opening the journal, and building
//! the engine's dependencies (provider, workspace, options) for a run.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::DriveArgs;
use super::exit;
use crate::config::Config;
use crate::engine::RunSettings;
use crate::journal::{Journal, JournalError};
use crate::paths::Paths;
use crate::protocol::InFlightDecision;
use crate::spec::ModeRegistry;
use crate::workflow::{EngineDeps, RunOptions};

/// Prints an error the way every lev command does.
pub fn error(msg: &str) {
    // Messages may quote a step's output or a file: no escapes to the terminal.
    eprintln!("error: {}", crate::text::sanitize(msg));
}

/// Log lines waiting for the log writer thread.
const LOG_BUFFER_LINES: usize = 8192;

/// Logs go to `<state>/lev.log`, never to the terminal. The folder is
/// 0700 and the file 0600 (made so before the appender opens it): logs
/// carry prompts, outputs and errors of runs.
pub(super) fn init_logging(paths: &Paths) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = &paths.state_dir;
    crate::paths::private_dir(dir).ok()?;
    private_log(&paths.log_file()).ok()?;
    let appender = tracing_appender::rolling::never(dir, "lev.log");
    // The default buffer holds 128,000 lines (4 MB allocated up front); a
    // burst beyond these is dropped rather than slowing lev down.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .finish(appender);
    let filter = std::env::var("LEV_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Some(guard)
}

/// Creates the log file 0600 when missing and tightens it when looser.
pub(super) fn private_log(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::paths::private_file(file)?;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(crate::paths::PRIVATE_FILE_MODE)
        .open(file)
        .map(drop)
}

/// The modes lev uses here: built-ins, then the user's folder, then the
/// project's `.lev/modes/` (later wins by id). Problems are printed.
pub fn load_modes(paths: &Paths) -> Result<ModeRegistry, u8> {
    ModeRegistry::for_cwd(paths.config_dir.as_deref(), Path::new(".")).map_err(|d| {
        eprint!("{d}");
        exit::FAILED
    })
}

pub async fn open_journal(paths: &Paths) -> Result<Journal, u8> {
    if let Err(e) = crate::paths::private_dir(&paths.data_dir) {
        error(&format!(
            "cannot create the data directory {}: {e}",
            paths.data_dir.display()
        ));
        return Err(exit::FAILED);
    }
    open_waiting(paths).await.map_err(|e| {
        match e {
            JournalError::Locked { .. } => error(&format!(
                "{e}; wait for it to finish, or use another --data-dir"
            )),
            e => error(&e.to_string()),
        }
        exit::FAILED
    })
}

/// How long a command waits for another lev process to let go of the
/// journal: a `lev runs` in another terminal holds it for a moment only.
pub const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the journal: the database `--journal` names, else the data
/// dir's file. A database has no lock of its own yet, so the data dir's
/// control socket stands for it: while a lev process that executes runs
/// answers there, the journal is `Locked` to others of that data dir, as
/// redb's file is.
pub async fn open_once(paths: &Paths) -> Result<Journal, JournalError> {
    match &paths.journal_url {
        Some(url) if !Journal::is_url(url) => Err(JournalError::Open {
            path: "--journal".to_owned(),
            message: "takes a PostgreSQL URL (postgres://… or `host=… dbname=…`); the redb journal is the data dir's file (--data-dir)".to_owned(),
        }),
        Some(url) => {
            if crate::host::Client::connect(&paths.socket()).await.is_ok() {
                return Err(JournalError::Locked {
                    path: paths.journal_name(),
                });
            }
            Journal::open_url(url).await
        }
        None => Journal::open(&paths.journal()),
    }
}

/// Opens the journal, waiting (up to `LOCK_PATIENCE`) while another lev
/// process briefly holds it.
pub async fn open_waiting(paths: &Paths) -> Result<Journal, JournalError> {
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match open_once(paths).await {
            Err(JournalError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

/// Splits `name=value` pairs.
pub fn parse_pairs(pairs: &[String], flag: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!("{flag} `{p}` must look like NAME=VALUE"));
        };
        if k.trim().is_empty() {
            return Err(format!("{flag} `{p}` has an empty name"));
        }
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

pub fn load_config(paths: &Paths) -> Result<Config, u8> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = Config::load(&cwd, paths.config_dir.as_deref()).map_err(|e| {
        error(&e.to_string());
        exit::USAGE
    })?;
    crate::secrets::install_from_config(&config);
    Ok(config)
}

pub(super) fn load_config_quiet(paths: &Paths) -> Result<Config, String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = Config::load(&cwd, paths.config_dir.as_deref()).map_err(|e| e.to_string())?;
    crate::secrets::install_from_config(&config);
    Ok(config)
}

/// What driving a recorded run needs, loaded in this order (the first
/// problem is the one reported): modes, configuration, the journal.
pub async fn modes_config_journal(paths: &Paths) -> Result<(ModeRegistry, Config, Journal), u8> {
    Ok((
        load_modes(paths)?,
        load_config(paths)?,
        open_journal(paths).await?,
    ))
}

/// Engine dependencies from config, environment and flags; problems are
/// printed (only call this before a TUI takes the screen).
pub fn engine_deps(
    workflow_source: Option<&Path>,
    journal: Journal,
    modes: ModeRegistry,
    drive: &DriveArgs,
    in_flight: Option<InFlightDecision>,
    config: Config,
) -> Result<Arc<EngineDeps>, u8> {
    match build_deps(workflow_source, journal, modes, drive, in_flight, config) {
        Ok((deps, notes)) => {
            for n in notes {
                eprintln!("note: {n}");
            }
            Ok(deps)
        }
        Err(e) => {
            error(&e);
            Err(exit::USAGE)
        }
    }
}

/// Engine dependencies, plus notes for the user; prints nothing.
pub fn build_deps(
    workflow_source: Option<&Path>,
    journal: Journal,
    modes: ModeRegistry,
    drive: &DriveArgs,
    in_flight: Option<InFlightDecision>,
    config: Config,
) -> Result<(Arc<EngineDeps>, Vec<String>), String> {
    run_settings(modes, drive, in_flight, config).deps(journal, workflow_source)
}

/// Where `lev hook` reaches the process that executes a `pty` step: the
/// data dir's control socket (set once by `dispatch`; a `lev worker`
/// serves one of its own and says so in its settings).
pub static HOOK_SOCKET: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// This invocation's settings for the runs its engine executes.
pub fn run_settings(
    modes: ModeRegistry,
    drive: &DriveArgs,
    in_flight: Option<InFlightDecision>,
    config: Config,
) -> RunSettings {
    let clis = config.agent_clis.clone();
    RunSettings {
        config,
        modes,
        workspace: drive.workspace.clone(),
        options: RunOptions {
            interactive: wants_tui(drive),
            allow_shell: drive.allow_shell,
            yes: drive.yes,
            shell_allow: Vec::new(),
            followups: Default::default(),
            in_flight,
            terminals: crate::workflow::TerminalOptions {
                clis,
                hook_socket: HOOK_SOCKET.get().cloned(),
            },
            // Filled from the config by `RunSettings::deps`, as `shell_allow`.
            mcp_servers: Default::default(),
            workspace_here: false,
        },
    }
}

/// The workbench unless `--headless` was asked for or there is no terminal
/// to draw on (a pipe, CI): then the run goes headless.
pub fn wants_tui(drive: &DriveArgs) -> bool {
    use std::io::IsTerminal;
    !drive.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}
