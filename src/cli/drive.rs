//! Driving a run: in the workbench when there is a terminal for it (the
//! runs browser and replay too), else headless, with the control socket up
//! so other `lev` commands reach the run.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::DriveArgs;
use super::context::{
    build_deps, error, load_config, load_config_quiet, load_modes, open_journal, parse_pairs,
    wants_tui,
};
use super::exit;
use crate::headless::{self, HeadlessOptions};
use crate::host::{self, ActiveRuns};
use crate::journal::Journal;
use crate::paths::Paths;
use crate::protocol::{RunId, RunStatus};
use crate::spec::{self, ModeRegistry};
use crate::tui::{
    self,
    app::{App, DepsFactory, Launch},
    keymap::Keymap,
    theme::{Catalog, Theme},
};
use crate::workflow::{self, EngineDeps, EngineError, Start};

/// Says which parts of a workflow this build accepts but does not act on yet.
pub(super) fn unsupported_notes(wf: &spec::Workflow) {
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
pub(super) fn resume_factory(
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

/// The workbench for `journal`, with the theme, keymap and settings of
/// this invocation. A config file with errors is reported here, before
/// the screen is taken.
pub(super) fn workbench(paths: &Paths, journal: Journal, resume: DepsFactory) -> Result<App, u8> {
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
    let drive = DriveArgs::interactive();
    let resume = resume_factory(paths, journal.clone(), modes, drive);
    let app = match workbench(paths, journal, resume) {
        Ok(a) => a,
        Err(c) => return c,
    };
    tui::app::run(app, Launch::Replay { events }).await
}
