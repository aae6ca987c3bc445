//! Driving a run: in the workbench when there is a terminal for it (the
//! runs browser and replay too), else headless. Either way this process
//! opens one engine handle, serves it on the control socket so other `lev`
//! commands reach its runs, and the participant (workbench or headless
//! printer) talks to the engine only through that handle.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::args::DriveArgs;
use super::context::{
    error, load_config, load_config_quiet, load_modes, open_journal, parse_pairs, run_settings,
    wants_tui,
};
use super::exit;
use crate::engine::{Driving, Engine, Submitted};
use crate::headless::{self, HeadlessOptions, Printer};
use crate::host::{self, Host};
use crate::intelligence::flowmind;
use crate::journal::Journal;
use crate::paths::Paths;
use crate::protocol::{Op, RunId, RunStatus, Seq};
use crate::spec::ModeRegistry;
use crate::tui::{
    self,
    app::{App, Launch},
    keymap::Keymap,
    theme::{Catalog, Theme},
};
use crate::workflow::{self, EngineDeps, EngineError, Start};

pub fn headless_note(drive: &DriveArgs) {
    if !drive.headless && !wants_tui(drive) {
        eprintln!("note: no terminal to draw on; running headless.");
    }
}

/// This invocation's engine over `journal`. It executes recorded runs
/// (the browser's resume, a retry, a fork) with this invocation's
/// settings; a config with errors leaves it able to read and record only.
pub(super) fn open_engine(
    paths: &Paths,
    journal: Journal,
    modes: ModeRegistry,
    drive: &DriveArgs,
) -> Engine {
    let settings = load_config_quiet(paths).map(|config| run_settings(modes, drive, None, config));
    Engine::open(journal, settings)
}

/// The participants that serve beside the workbench or the printer while
/// they live: the control socket, and the FlowMind controller.
pub(super) struct Participants {
    _host: Option<Host>,
    /// Requests from other machines, on a shared journal.
    _inbox: Option<host::Inbox>,
    flowmind: Option<flowmind::Controller>,
    /// Whether FlowMind's conductor looks at agents' questions first.
    conductor: headless::Conductor,
}

/// Other lev invocations reach `engine` through the control socket, and
/// FlowMind watches its agents by the config (its settings built once
/// here: its model is a provider to build), while the returned
/// participants live.
async fn serve(paths: &Paths, engine: &Engine) -> Participants {
    let host = host::serve(&paths.socket(), engine.clone())
        .map_err(|e| {
            tracing::warn!(error = %e, socket = %paths.socket().display(), "no control socket; other lev commands must wait")
        })
        .ok();
    let settings = flowmind_settings(&load_config_quiet(paths).unwrap_or_default());
    let conductor = conductor_on(&settings);
    Participants {
        _host: host,
        _inbox: host::serve_inbox(engine.clone()).await,
        flowmind: Some(flowmind::start(engine.clone(), settings)),
        conductor,
    }
}

/// FlowMind watching `engine`'s agents by the config, as beside the
/// workbench (a `lev worker` has no control socket to serve), and whether
/// its conductor looks at agents' questions.
pub(super) fn flowmind_on(
    paths: &Paths,
    engine: &Engine,
) -> (flowmind::Controller, headless::Conductor) {
    let settings = flowmind_settings(&load_config_quiet(paths).unwrap_or_default());
    let conductor = conductor_on(&settings);
    (flowmind::start(engine.clone(), settings), conductor)
}

/// How FlowMind runs by the config (a workflow's `flowmind:` may say
/// otherwise for its runs, even turn it on when the config has it off);
/// rules only when its model cannot be built (said in the log when the
/// config asks for it).
fn flowmind_settings(config: &crate::config::Config) -> flowmind::Settings {
    use crate::config::FlowmindMode;
    let f = &config.flowmind;
    let thresholds = flowmind::rules::Thresholds {
        repeats: f.repeats,
        instructions: f.instructions,
        stalls: f.stalls,
        silence_ms: f.silence_ms,
    };
    let model = match flowmind_model(config) {
        Ok(m) => Some(m),
        Err(e) => {
            if f.mode == FlowmindMode::Model {
                tracing::warn!("FlowMind runs on its rules only: its model cannot be used: {e}");
            }
            None
        }
    };
    flowmind::Settings {
        mode: f.mode,
        thresholds,
        model,
        conductor: f.conductor.clone(),
    }
}

/// Whether FlowMind's conductor looks at agents' questions (the controller
/// then always says something of each): by the config, and when a
/// workflow's `flowmind:` sets `mode: model`.
fn conductor_on(settings: &flowmind::Settings) -> headless::Conductor {
    let possible = settings.conductor.enabled && settings.model.is_some();
    headless::Conductor {
        by_config: possible && settings.mode == crate::config::FlowmindMode::Model,
        with_model: possible,
    }
}

/// FlowMind's model: the config's `flowmind.provider` (a name of
/// `providers:`, else the default provider) and `flowmind.model` (else
/// that provider's model).
fn flowmind_model(config: &crate::config::Config) -> Result<flowmind::ledger::LedgerModel, String> {
    let f = &config.flowmind;
    let profiles = crate::llm::Profiles::from_config(config);
    let default = crate::llm::select::build_provider(config).map_err(|e| e.to_string());
    let provider = profiles.resolve(f.provider.as_deref(), &default)?.provider;
    let model = f
        .model
        .clone()
        .or_else(|| f.provider.as_deref().and_then(|p| profiles.model_of(p)))
        .or_else(|| config.provider.model.clone())
        .unwrap_or_default();
    Ok(flowmind::ledger::LedgerModel {
        provider,
        model,
        cadence: f.cadence,
        budget: f.budget_tokens,
    })
}

/// How a run begins executing in this process.
pub enum Begin {
    /// A run just created (`Start::Fresh`) or a recorded one resumed.
    Start {
        deps: Arc<EngineDeps>,
        run: RunId,
        start: Start,
    },
    /// An op that makes the engine execute a run: a retry, a fork.
    Submit(Op),
}

/// Drives a run in the workbench, or headless when asked or when there is no terminal.
pub async fn drive_run(
    paths: &Paths,
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    drive: &DriveArgs,
) -> u8 {
    let engine = open_engine(paths, deps.journal.clone(), deps.modes.clone(), drive);
    drive_on(paths, engine, Begin::Start { deps, run, start }, drive).await
}

/// Begins the run on `engine` and follows it in the workbench or headless.
/// A refusal (a retry of a step that did not fail) is printed before any
/// screen is taken.
pub async fn drive_on(paths: &Paths, engine: Engine, begin: Begin, drive: &DriveArgs) -> u8 {
    let answers = match parse_pairs(&drive.answers, "--answer") {
        Ok(a) => a,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    // The workbench (or the printer) subscribes before the run begins, so
    // no notice is missed.
    let app = match wants_tui(drive) {
        true => match workbench(paths, engine.clone()) {
            Ok(a) => Some(a),
            Err(c) => return c,
        },
        false => None,
    };
    let notices = engine.subscribe();
    let participants = serve(paths, &engine).await;
    // A resume's history is read for the printer before the engine reads
    // it too, so a long run's history is not held twice at once.
    let clock = match (&app, &begin) {
        (
            None,
            Begin::Start {
                run,
                start: Start::Resume,
                ..
            },
        ) => match headless::clock(&engine, run, Seq(u64::MAX)).await {
            Ok(p) => Some(p),
            Err(e) => return engine_error(e),
        },
        _ => None,
    };
    let driving = match begin_on(&engine, begin).await {
        Ok(Some(d)) => d,
        Ok(None) => return exit::OK,
        Err(e) => return engine_error(e),
    };
    if let Some(app) = app {
        drop(notices);
        return tui::app::run(app, Launch::Driving(Box::new(driving))).await;
    }
    if let Some(r) = &driving.request {
        // The retry or fork request, the way the transcript shows it.
        println!(
            "{}",
            headless::format_event(&mut Printer::default(), r, drive.json)
        );
    }
    let opts = HeadlessOptions {
        json: drive.json,
        yes: drive.yes,
        answers,
        wait_for_answers: drive.wait_for_answers,
        conductor: participants.conductor,
    };
    let printer = match (clock, driving.resumed_after) {
        (Some(p), _) => p,
        (None, Some(last)) => match headless::clock(&engine, &driving.run, last).await {
            Ok(p) => p,
            Err(e) => return engine_error(e),
        },
        (None, None) => Printer::default(),
    };
    let run = driving.run.clone();
    let mut stdout = std::io::stdout();
    let result = headless::follow(&engine, notices, driving, printer, opts, &mut stdout).await;
    let _ = stdout.flush();
    // FlowMind's last word on the run (a whisper's outcome counted) is
    // written before this process exits.
    if let Some(flowmind) = &participants.flowmind {
        flowmind.settled(&run, FLOWMIND_PATIENCE).await;
    }
    exit_code(&run, result)
}

/// How long a headless lev waits for FlowMind to take in its run's end.
const FLOWMIND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// How a headless run ended, as lev's exit code (a pause says how to go on).
fn exit_code(run: &RunId, result: Result<workflow::RunOutcome, EngineError>) -> u8 {
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
        Err(e) => engine_error(e),
    }
}

/// Starts the run, or submits the op that starts it. `None`: the op was
/// carried out without executing a run (it was delivered to a live one).
async fn begin_on(engine: &Engine, begin: Begin) -> Result<Option<Driving>, EngineError> {
    match begin {
        Begin::Start { deps, run, start } => engine.start(deps, run, start).await.map(Some),
        Begin::Submit(op) => match engine.submit(op).await? {
            Submitted::Driving(d) => Ok(Some(d)),
            other => {
                println!("{}", other.done().describe());
                Ok(None)
            }
        },
    }
}

/// A refusal or an unknown run is the user's to fix (exit 2); anything
/// else is a failure.
pub(super) fn engine_error(e: EngineError) -> u8 {
    match e {
        EngineError::RunNotFound(r) => {
            error(&format!("no run {r}"));
            exit::USAGE
        }
        EngineError::Refused(_) => {
            error(&e.to_string());
            exit::USAGE
        }
        e => {
            error(&e.to_string());
            exit::FAILED
        }
    }
}

/// The `--theme` choice, set once by `dispatch`.
pub(super) static THEME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The theme folders: the user's, then the project's.
pub(super) fn theme_dirs(paths: &Paths) -> Vec<PathBuf> {
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
pub(super) fn theme(paths: &Paths) -> (Theme, String, Catalog) {
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

/// The workbench on `engine` (subscribed to it now), with the theme,
/// keymap and settings of this invocation. A config file with errors is
/// reported here, before the screen is taken.
pub(super) fn workbench(paths: &Paths, engine: Engine) -> Result<App, u8> {
    let config = load_config(paths)?;
    let (theme, theme_name, themes) = theme(paths);
    Ok(App {
        notices: engine.subscribe(),
        engine,
        theme,
        theme_name,
        themes,
        attention: config.tui.attention,
        scrollback: config.tui.scrollback_lines,
        keymap: KEYMAP.get().cloned().unwrap_or_default(),
        flowmind: flowmind_words(&config),
    })
}

/// What FlowMind runs on, as the workbench says it.
fn flowmind_words(config: &crate::config::Config) -> String {
    use crate::config::FlowmindMode;
    match config.flowmind.mode {
        FlowmindMode::Off => "off".into(),
        FlowmindMode::Fallback => "rules".into(),
        FlowmindMode::Model => match flowmind_model(config) {
            Ok(m) if m.model.is_empty() => format!("model · rules · {} tok budget", m.budget),
            Ok(m) => format!("model {} · rules · {} tok budget", m.model, m.budget),
            Err(_) => "rules (its model cannot be used)".into(),
        },
    }
}

/// Key bindings: the defaults, patched by `$XDG_CONFIG_HOME/lev/keymap.yaml`
/// and then `.lev/keymap.yaml`, checked once before the screen is taken.
pub(super) static KEYMAP: std::sync::OnceLock<Keymap> = std::sync::OnceLock::new();

pub(super) fn load_keymap(paths: &Paths) -> Result<Keymap, u8> {
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

/// `lev` with no command: the runs browser.
pub async fn browser(paths: &Paths) -> u8 {
    let drive = DriveArgs::interactive();
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
    let journal = match open_journal(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let engine = open_engine(paths, journal, modes, &drive);
    let app = match workbench(paths, engine.clone()) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let _host = serve(paths, &engine).await;
    tui::app::run(app, Launch::Browser).await
}

/// `lev replay RUN` in the workbench.
pub async fn replay_tui(paths: &Paths, run: &str) -> u8 {
    let journal = match open_journal(paths).await {
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
    let engine = open_engine(paths, journal, modes, &DriveArgs::interactive());
    let app = match workbench(paths, engine.clone()) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let _host = serve(paths, &engine).await;
    tui::app::run(app, Launch::Replay { events }).await
}
