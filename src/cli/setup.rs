//! Wiring for each command: paths, logging, journal, modes, config and
//! provider, then the participant that does the work.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::{Cli, Command, DriveArgs, InFlightArg, ModesAction, TemplateCommand};
use super::exit;
use super::{demo, doctor, inspect, memory, modes, retryfork, steer, swarm, template, worktrees};
use crate::config::{Config, ProviderKind, ProviderSettings};
use crate::headless::{self, HeadlessOptions};
use crate::host::{self, ActiveRuns};
use crate::journal::{Journal, JournalError};
use crate::paths::Paths;
use crate::protocol::{InFlightDecision, RunId, RunStatus};
use crate::spec::{self, ModeRegistry};
use crate::tui::{
    self,
    app::{App, DepsFactory, Launch},
    keymap::Keymap,
    theme::{Catalog, Theme},
};
use crate::workflow::{self, EngineDeps, EngineError, RunOptions, Start};

/// Prints an error the way every lev command does.
pub fn error(msg: &str) {
    // Messages may quote a step's output or a file: no escapes to the terminal.
    eprintln!("error: {}", crate::text::sanitize(msg));
}

pub async fn dispatch(cli: Cli) -> u8 {
    let paths = Paths::resolve(cli.data_dir.as_deref());
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
            drive,
        } => run(&paths, &file, &inputs, &drive).await,
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
            drive,
        } => {
            let args = swarm::SwarmArgs {
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
        Command::Show { run, json } => inspect::show(&paths, &run, json).await,
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
        Command::Doctor { json } => doctor::run(&paths, json).await,
        Command::Import { file } => inspect::import(&paths, &file).await,
        Command::Cancel { run, step } => inspect::cancel(&paths, &run, step.as_deref()).await,
        Command::Modes { json, action } => match action {
            None => modes::list(&paths, json),
            Some(ModesAction::Show { id, json: own }) => modes::show(&paths, &id, json || own),
        },
        Command::Pause { run, step } => steer::pause(&paths, &run, step, true).await,
        Command::Unpause { run, step } => steer::pause(&paths, &run, step, false).await,
        Command::Message { run, step, text } => steer::message(&paths, &run, &step, text).await,
        Command::Stop { run } => steer::stop(&paths, &run).await,
        Command::Memory { command } => memory::run(&paths, command).await,
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

/// Logs go to `<state>/lev.log`, never to the terminal. The folder is
/// 0700 and the file 0600 (made so before the appender opens it): logs
/// carry prompts, outputs and errors of runs.
fn init_logging(paths: &Paths) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = &paths.state_dir;
    crate::paths::private_dir(dir).ok()?;
    private_log(&paths.log_file()).ok()?;
    let appender = tracing_appender::rolling::never(dir, "lev.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
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
fn private_log(file: &Path) -> std::io::Result<()> {
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

fn validate(files: &[PathBuf]) -> u8 {
    let paths = Paths::resolve(None);
    let modes = match load_modes(&paths) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for file in files {
        match spec::load_workflow(file, &modes) {
            Ok(wf) => println!("{}: ok ({} steps)", file.display(), wf.steps.len()),
            Err(diags) => {
                eprint!("{diags}");
                let n = diags
                    .0
                    .iter()
                    .filter(|d| d.severity == spec::diagnostics::Severity::Error)
                    .count();
                if diags.has_errors() {
                    eprintln!(
                        "{}: {n} error{}",
                        file.display(),
                        if n == 1 { "" } else { "s" }
                    );
                    code = exit::FAILED;
                }
            }
        }
    }
    code
}

pub fn open_journal(paths: &Paths) -> Result<Journal, u8> {
    if let Err(e) = crate::paths::private_dir(&paths.data_dir) {
        error(&format!(
            "cannot create the data directory {}: {e}",
            paths.data_dir.display()
        ));
        return Err(exit::FAILED);
    }
    open_waiting(paths).map_err(|e| {
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

/// Opens the journal, waiting (up to `LOCK_PATIENCE`) while another lev
/// process briefly holds it.
pub fn open_waiting(paths: &Paths) -> Result<Journal, JournalError> {
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match Journal::open(&paths.journal()) {
            Err(JournalError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(25));
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
    let mut notes = Vec::new();
    let workspace = match &drive.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let workspace = workspace
        .canonicalize()
        .map_err(|e| format!("workspace {}: {e}", workspace.display()))?;
    let mut config = config;
    let mut provider = crate::llm::select::build_provider(&config).map_err(|e| e.to_string());
    if provider.is_err()
        && std::env::var("LEV_PROVIDER")
            .map(|v| v.trim().is_empty())
            .unwrap_or(true)
        && let Some(cassette) = workflow_source.and_then(sibling_cassette)
    {
        // Nothing configured, but the workflow ships canned replies: replay them.
        notes.push(format!(
            "no LLM provider is configured; replaying {} (scripted provider)",
            cassette.display()
        ));
        config.provider = ProviderSettings {
            cassette: Some(cassette),
            ..ProviderSettings::of_kind(ProviderKind::Scripted)
        };
        provider = crate::llm::select::build_provider(&config).map_err(|e| e.to_string());
    }
    let profiles = crate::llm::Profiles::from_config(&config);
    if let Some(why) = profiles.fallback_problem() {
        notes.push(format!(
            "the fallback provider cannot be used, runs go on without it: {why}"
        ));
    }
    let deps = Arc::new(EngineDeps {
        journal,
        provider,
        default_model: config.provider.model.clone(),
        profiles,
        modes,
        workspace,
        options: RunOptions {
            interactive: wants_tui(drive),
            allow_shell: drive.allow_shell,
            shell_allow: config.shell_allow.clone(),
            in_flight,
        },
    });
    Ok((deps, notes))
}

/// The workbench unless `--headless` was asked for or there is no terminal
/// to draw on (a pipe, CI): then the run goes headless.
pub fn wants_tui(drive: &DriveArgs) -> bool {
    use std::io::IsTerminal;
    !drive.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// `flow.cassette.yaml` beside `flow.yaml`, when it exists.
fn sibling_cassette(workflow: &Path) -> Option<PathBuf> {
    let stem = workflow.file_stem()?.to_str()?;
    let candidate = workflow.with_file_name(format!("{stem}.cassette.yaml"));
    candidate.is_file().then_some(candidate)
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

/// Says which parts of a workflow this build accepts but does not act on yet.
fn unsupported_notes(wf: &spec::Workflow) {
    if wf.any_step(&|s| s.followups.is_some()) {
        eprintln!(
            "note: `followups:` are validated but not spawned by this build (they arrive with whispers)."
        );
    }
    if wf.any_step(&|s| matches!(s.kind, spec::StepKind::Pty { .. })) {
        eprintln!("note: `pty` steps need the TUI, which is not built yet; they will fail.");
    }
}

pub fn headless_note(drive: &DriveArgs) {
    if !drive.headless && !wants_tui(drive) {
        eprintln!("note: no terminal to draw on; running headless.");
    }
}

async fn run(paths: &Paths, file: &Path, inputs: &[String], drive: &DriveArgs) -> u8 {
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
    let journal = match open_journal(paths) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let deps = match engine_deps(Some(file), journal, modes, drive, None, config) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let Err(why) = &deps.provider
        && wf.any_step(&|s| matches!(s.kind, spec::StepKind::Agent { .. }))
    {
        error(&format!(
            "this workflow has agent steps, but no LLM provider can be used: {why}"
        ));
        return exit::USAGE;
    }
    headless_note(drive);
    unsupported_notes(&wf);
    let run = match workflow::start_run(&deps.journal, &wf, inputs, Some(&deps.workspace)).await {
        Ok(r) => r,
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    drive_run(paths, deps, run, Start::Fresh, drive).await
}

/// What driving a recorded run needs, loaded in this order (the first
/// problem is the one reported): modes, configuration, the journal.
pub fn modes_config_journal(paths: &Paths) -> Result<(ModeRegistry, Config, Journal), u8> {
    Ok((
        load_modes(paths)?,
        load_config(paths)?,
        open_journal(paths)?,
    ))
}

async fn resume(paths: &Paths, run: &str, in_flight: Option<InFlightArg>, drive: &DriveArgs) -> u8 {
    let (modes, config, journal) = match modes_config_journal(paths) {
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
            error(&format!("no run {run} in {}", paths.journal().display()));
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

/// The `--theme` choice, set once by `dispatch`.
static THEME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The theme folders: the user's, then the project's.
fn theme_dirs(paths: &Paths) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(c) = &paths.config_dir {
        dirs.push(c.join("themes"));
    }
    dirs.push(PathBuf::from("themes"));
    dirs
}

/// The theme for the workbench (`--theme`, else dark; `NO_COLOR` honoured),
/// its name, and the catalog the palette switches themes from. Problems are
/// logged (the screen is about to be taken) and the dark theme used.
fn theme(paths: &Paths) -> (Theme, String, Catalog) {
    let name = THEME
        .get()
        .cloned()
        .flatten()
        .unwrap_or_else(|| "dark".to_string());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let catalog = Catalog::new(theme_dirs(paths), no_color);
    match catalog.load(&name) {
        Ok(t) => (t, name, catalog),
        Err(e) => {
            tracing::error!(theme = %name, "{e}");
            (
                Theme::fallback().with_no_color(no_color),
                "dark".to_string(),
                catalog,
            )
        }
    }
}

/// The workbench for `journal`, with the theme, keymap and settings of
/// this invocation. A config file with errors is reported here, before
/// the screen is taken.
fn workbench(paths: &Paths, journal: Journal, resume: DepsFactory) -> Result<App, u8> {
    let config = load_config(paths)?;
    let (theme, theme_name, themes) = theme(paths);
    Ok(App {
        journal,
        socket: paths.socket(),
        theme,
        theme_name,
        themes,
        attention: config.tui.attention,
        keymap: KEYMAP.get().cloned().unwrap_or_default(),
        resume,
    })
}

/// Key bindings: the defaults, patched by `$XDG_CONFIG_HOME/lev/keymap.yaml`
/// and then `.lev/keymap.yaml`, checked once before the screen is taken.
static KEYMAP: std::sync::OnceLock<Keymap> = std::sync::OnceLock::new();

fn load_keymap(paths: &Paths) -> Result<Keymap, u8> {
    let mut keymap = Keymap::defaults();
    let mut files = Vec::new();
    if let Some(c) = &paths.config_dir {
        files.push(c.join("keymap.yaml"));
    }
    files.push(PathBuf::from(".lev/keymap.yaml"));
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match keymap.patched(&text, &file.display().to_string()) {
            Ok((k, warnings)) => {
                if !warnings.0.is_empty() {
                    eprint!("{warnings}");
                }
                keymap = k;
            }
            Err(d) => {
                eprint!("{d}");
                return Err(exit::USAGE);
            }
        }
    }
    Ok(keymap)
}

/// Checks `--theme` and the keymap files before the screen is taken, so a
/// typo is an error, not a log line.
pub fn check_theme(paths: &Paths, name: Option<String>) -> Result<(), u8> {
    let _ = KEYMAP.set(load_keymap(paths)?);
    if let Some(n) = &name
        && let Err(d) = Theme::load(n, &theme_dirs(paths))
    {
        eprint!("{d}");
        return Err(exit::USAGE);
    }
    let _ = THEME.set(name);
    Ok(())
}

/// Drives a run in the workbench, or headless when asked or when there is no terminal.
pub async fn drive_run(
    paths: &Paths,
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    drive: &DriveArgs,
) -> u8 {
    if !wants_tui(drive) {
        return drive_headless(paths, deps, run, start, drive).await;
    }
    let resume = resume_factory(
        paths,
        deps.journal.clone(),
        deps.modes.clone(),
        drive.clone(),
    );
    let app = match workbench(paths, deps.journal.clone(), resume) {
        Ok(a) => a,
        Err(c) => return c,
    };
    tui::app::run(app, Launch::Live { deps, run, start }).await
}

/// How the workbench resumes a run picked in its browser.
fn resume_factory(
    paths: &Paths,
    journal: Journal,
    modes: ModeRegistry,
    drive: DriveArgs,
) -> DepsFactory {
    let config = load_config_quiet(paths);
    Box::new(move |_run, source| {
        let config = config.clone()?;
        build_deps(
            Some(Path::new(source)),
            journal.clone(),
            modes.clone(),
            &drive,
            None,
            config,
        )
        .map(|(d, _)| d)
    })
}

fn load_config_quiet(paths: &Paths) -> Result<Config, String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = Config::load(&cwd, paths.config_dir.as_deref()).map_err(|e| e.to_string())?;
    crate::secrets::install_from_config(&config);
    Ok(config)
}

/// `lev` with no command: the runs browser.
pub async fn browser(paths: &Paths) -> u8 {
    let drive = DriveArgs {
        headless: false,
        json: false,
        yes: false,
        allow_shell: false,
        answers: Vec::new(),
        workspace: None,
    };
    if !wants_tui(&drive) {
        eprintln!(
            "lev: no terminal to draw the workbench on. Try `lev runs`, `lev demo --headless` or `lev --help`."
        );
        return exit::USAGE;
    }
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let journal = match open_journal(paths) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let resume = resume_factory(paths, journal.clone(), modes, drive);
    let app = match workbench(paths, journal, resume) {
        Ok(a) => a,
        Err(c) => return c,
    };
    tui::app::run(app, Launch::Browser).await
}

/// `lev replay RUN` in the workbench.
pub async fn replay_tui(paths: &Paths, run: &str) -> u8 {
    let journal = match open_journal(paths) {
        Ok(j) => j,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let events = match workflow::read_run(&journal, &run).await {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => {
            error(&format!("no run {run}"));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e.to_string());
            return exit::FAILED;
        }
    };
    // Playback itself never runs anything; a retry or fork asked for from
    // it (`r`, `f`) drives the run live like the browser does.
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let drive = DriveArgs {
        headless: false,
        json: false,
        yes: false,
        allow_shell: false,
        answers: Vec::new(),
        workspace: None,
    };
    let resume = resume_factory(paths, journal.clone(), modes, drive);
    let app = match workbench(paths, journal, resume) {
        Ok(a) => a,
        Err(c) => return c,
    };
    tui::app::run(app, Launch::Replay { events }).await
}

pub async fn drive_headless(
    paths: &Paths,
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    drive: &DriveArgs,
) -> u8 {
    let answers = match parse_pairs(&drive.answers, "--answer") {
        Ok(a) => a,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    let opts = HeadlessOptions {
        json: drive.json,
        yes: drive.yes,
        answers,
    };
    // Other lev invocations reach this run (and the journal) through the host socket.
    let (op_tx, op_rx) = tokio::sync::mpsc::unbounded_channel();
    let active: ActiveRuns = Default::default();
    if let Ok(mut a) = active.lock() {
        a.insert(run.clone(), op_tx.clone());
    }
    let _host = match host::serve(&paths.socket(), deps.journal.clone(), active) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, socket = %paths.socket().display(), "no control socket; other lev commands must wait");
            None
        }
    };
    let mut stdout = std::io::stdout();
    let result = headless::drive(deps, run.clone(), start, opts, (op_tx, op_rx), &mut stdout).await;
    let _ = stdout.flush();
    match result {
        Ok(outcome) => match outcome.status {
            RunStatus::Succeeded => exit::OK,
            RunStatus::Paused => {
                eprintln!(
                    "run {run} is paused{}; resume with `lev resume {run}`",
                    outcome.error.map(|e| format!(": {e}")).unwrap_or_default()
                );
                exit::PAUSED
            }
            _ => exit::FAILED,
        },
        Err(EngineError::RunNotFound(r)) => {
            error(&format!("no run {r}"));
            exit::USAGE
        }
        Err(e) => {
            error(&e.to_string());
            exit::FAILED
        }
    }
}
