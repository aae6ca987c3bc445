//! The workbench's driver: sets up and always restores the terminal, feeds
//! terminal input, engine notices and ticks into `State`, carries out the
//! effects (ops to the engine, bell and desktop notifications, clipboard),
//! and redraws on demand: a burst of notices costs one frame.
//!
//! Logs go to the log file; nothing is printed while the screen is up.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream, KeyEventKind,
};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use super::attention;
use super::keymap::Keymap;
use super::state::{Effect, Input, State};
use super::theme::{Catalog, Theme};
use super::view;
use crate::config::AttentionSettings;
use crate::host::{self, ActiveRuns};
use crate::isolation::{self, StepWorktree};
use crate::journal::Journal;
use crate::protocol::{Millis, Notice, Op, Recorded, RunId, RunStatus, StepKey};
use crate::workflow::{self, EngineDeps, RunOutcome, Settle, Settled, Start};

/// Builds engine dependencies to resume a run chosen in the browser.
/// It gets the run and the path its definition came from.
pub type DepsFactory = Box<dyn Fn(&RunId, &str) -> Result<Arc<EngineDeps>, String> + Send>;

/// What the workbench opens on.
pub enum Launch {
    /// The runs browser.
    Browser,
    /// A live run: freshly started, or resumed.
    Live {
        deps: Arc<EngineDeps>,
        run: RunId,
        start: Start,
    },
    /// Playback of a recorded run.
    Replay { events: Vec<Recorded> },
}

pub struct App {
    pub journal: Journal,
    pub socket: std::path::PathBuf,
    pub theme: Theme,
    /// The name `theme` was loaded by, and where the palette finds others.
    pub theme_name: String,
    pub themes: Catalog,
    /// Bell and desktop notification for prompts (`tui.attention`).
    pub attention: AttentionSettings,
    pub keymap: Keymap,
    pub resume: DepsFactory,
}

/// A run this process is executing.
struct Engine {
    run: RunId,
    ops: mpsc::UnboundedSender<Op>,
    task: tokio::task::JoinHandle<Result<RunOutcome, workflow::EngineError>>,
}

/// Runs the workbench on the terminal until the user quits. Returns the
/// exit code.
pub async fn run(app: App, launch: Launch) -> u8 {
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the terminal");
            return 1;
        }
    };
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    // Key presses (not releases or repeats), mouse, paste and resizes; the
    // stream ends when the terminal is gone.
    let input = EventStream::new()
        .take_while(|ev| std::future::ready(ev.is_ok()))
        .filter_map(|ev| std::future::ready(ev.ok().and_then(to_input)));
    let mut screen = Screen {
        terminal: &mut terminal,
        escapes: &mut std::io::stdout(),
        synchronized: true,
    };
    let code = event_loop(&mut screen, Box::pin(input), app, launch).await;
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
    code
}

/// Where the workbench draws, and where the escapes that are not drawing
/// go (bell, desktop notification, clipboard): the terminal, or in tests a
/// `TestBackend` and a buffer.
pub struct Screen<'a, B: Backend> {
    pub terminal: &'a mut Terminal<B>,
    pub escapes: &'a mut (dyn Write + Send),
    /// Wrap each frame in synchronized-update escapes (a real terminal).
    pub synchronized: bool,
}

/// Runs the workbench on `screen` with `input` until the user quits or
/// the input ends: what `run` does on the terminal, and what whole-app
/// tests drive with a `TestBackend` and injected keys.
pub async fn run_on<B: Backend>(
    screen: &mut Screen<'_, B>,
    input: impl Stream<Item = Input> + Unpin,
    app: App,
    launch: Launch,
) -> u8 {
    event_loop(screen, input, app, launch).await
}

async fn event_loop<B: Backend>(
    screen: &mut Screen<'_, B>,
    mut input: impl Stream<Item = Input> + Unpin,
    mut app: App,
    launch: Launch,
) -> u8 {
    let mut state = State::with_keymap(app.keymap.clone());
    state.set_themes(app.themes.names(), &app.theme_name);
    if let Ok(size) = screen.terminal.size() {
        state.handle(Input::Resize(size.width, size.height));
    }
    let (notice_tx, mut notices) = mpsc::unbounded_channel::<Notice>();
    let active: ActiveRuns = Default::default();
    // Other lev commands reach the journal (and our runs) through the socket.
    let _host = host::serve(&app.socket, app.journal.clone(), active.clone())
        .map_err(|e| tracing::warn!(error = %e, "no control socket"))
        .ok();
    let mut engine: Option<Engine> = None;
    match launch {
        Launch::Browser => refresh_runs(&app.journal, &mut state).await,
        Launch::Live { deps, run, start } => {
            engine = Some(start_engine(deps, run, start, notice_tx.clone(), &active));
        }
        Launch::Replay { events } => state.load_replay(events),
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(80));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        // Every pass through the loop follows an input, a burst of notices,
        // a tick or an engine's end: each of them may change the screen.
        draw(screen, &state, &app.theme);
        let effects = tokio::select! {
            ev = input.next() => match ev {
                Some(i) => state.handle(i),
                // The terminal is gone: nothing more can be shown.
                None => break,
            },
            Some(n) = notices.recv() => {
                state.apply(&n);
                // Coalesce: everything already queued lands in the same frame.
                while let Ok(n) = notices.try_recv() {
                    state.apply(&n);
                }
                Vec::new()
            }
            _ = ticker.tick(), if state.animating() => state.handle(Input::Tick(Millis::now())),
            done = async { match engine.as_mut() { Some(e) => (&mut e.task).await.ok(), None => std::future::pending().await } } => {
                if let Some(e) = engine.take() {
                    if let Ok(mut a) = active.lock() {
                        a.remove(&e.run);
                    }
                    if let Some(Err(err)) = done {
                        tracing::error!(run = %e.run, error = %err, "engine stopped");
                    }
                }
                Vec::new()
            }
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
        };
        for effect in effects {
            match effect {
                Effect::Quit => return 0,
                Effect::Op(op) => match &engine {
                    Some(e) => {
                        let _ = e.ops.send(op);
                    }
                    None => tracing::warn!(?op, "no engine for this op"),
                },
                Effect::OpenRun(run) => {
                    if engine.is_some() {
                        continue;
                    }
                    match open_run(&app, &run).await {
                        Ok(Opened::Live(deps)) => {
                            engine = Some(start_engine(
                                deps,
                                run,
                                Start::Resume,
                                notice_tx.clone(),
                                &active,
                            ));
                        }
                        Ok(Opened::Finished(events)) => state.load_replay(events),
                        Err(e) => tracing::warn!(%run, error = %e, "cannot open run"),
                    }
                }
                Effect::LoadMemory => {
                    let entries = crate::memory::list(&app.journal, None)
                        .await
                        .map_err(|e| e.to_string());
                    state.set_memory(entries);
                }
                Effect::Retry { run, step } => {
                    if let Some(e) = engine.as_ref().filter(|e| e.run == run) {
                        // Still driven here: the engine takes it as an op.
                        let _ = e.ops.send(Op::RetryStep { run, step });
                        continue;
                    }
                    if engine.is_some() {
                        state.report(
                            "another run is executing in this workbench; retry once it has ended",
                        );
                        continue;
                    }
                    match retry_run(&app, &run, &step).await {
                        Ok((deps, events)) => {
                            state.show_live(&events);
                            engine = Some(start_engine(
                                deps,
                                run,
                                Start::Resume,
                                notice_tx.clone(),
                                &active,
                            ));
                        }
                        Err(e) => state.report(format!("retry of {step}: {e}")),
                    }
                }
                Effect::Fork { run, step } => {
                    if engine.is_some() {
                        state
                            .report("a run is executing in this workbench; fork once it has ended");
                        continue;
                    }
                    match fork_run(&app, &run, &step).await {
                        Ok((deps, fork, events)) => {
                            state.show_live(&events);
                            engine = Some(start_engine(
                                deps,
                                fork,
                                Start::Resume,
                                notice_tx.clone(),
                                &active,
                            ));
                        }
                        Err(e) => state.report(format!("fork from {step}: {e}")),
                    }
                }
                Effect::WorktreeDiff { run, step } => {
                    let diff = worktree_diff(&app, &run, &step).await;
                    state.show_diff(step, diff);
                }
                Effect::SettleWorktree { run, step, how } => {
                    if engine.as_ref().is_some_and(|e| e.run == run) {
                        // Its steps may still be working in those worktrees.
                        state.report(format!(
                            "run {run} is executing in this workbench; merge or discard its worktrees once it has ended"
                        ));
                        continue;
                    }
                    let done = settle(&app, &run, &step, how).await;
                    state.worktree_settled(&step, done);
                }
                Effect::Attention(text) => announce(screen.escapes, &app.attention, &text),
                Effect::Copy(text) => copy(screen.escapes, &text),
                Effect::SetTheme(name) => match app.themes.load(&name) {
                    Ok(t) => {
                        app.theme = t;
                        state.theme_switched(Ok(name));
                    }
                    Err(e) => {
                        tracing::warn!(theme = %name, "{e}");
                        state.theme_switched(Err(e));
                    }
                },
            }
        }
    }
    0
}

enum Opened {
    Live(Arc<EngineDeps>),
    Finished(Vec<Recorded>),
}

async fn open_run(app: &App, run: &RunId) -> Result<Opened, String> {
    let meta = app
        .journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such run")?;
    if matches!(meta.status, RunStatus::Running | RunStatus::Paused) {
        return (app.resume)(run, &meta.source).map(Opened::Live);
    }
    workflow::read_run(&app.journal, run)
        .await
        .map(Opened::Finished)
        .map_err(|e| e.to_string())
}

/// Records a retry in an ended run; returns what driving it needs and
/// the run's events so far.
async fn retry_run(
    app: &App,
    run: &RunId,
    step: &StepKey,
) -> Result<(Arc<EngineDeps>, Vec<Recorded>), String> {
    let meta = app
        .journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such run")?;
    let deps = (app.resume)(run, &meta.source)?;
    workflow::request_retry(&app.journal, &deps.modes, run, step)
        .await
        .map_err(|e| e.to_string())?;
    let events = workflow::read_run(&app.journal, run)
        .await
        .map_err(|e| e.to_string())?;
    Ok((deps, events))
}

/// Creates the fork; returns what driving it needs, its id and its events.
async fn fork_run(
    app: &App,
    run: &RunId,
    step: &StepKey,
) -> Result<(Arc<EngineDeps>, RunId, Vec<Recorded>), String> {
    let meta = app
        .journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such run")?;
    let deps = (app.resume)(run, &meta.source)?;
    let (fork, _) = workflow::fork_run(&app.journal, &deps.modes, run, step)
        .await
        .map_err(|e| e.to_string())?;
    let events = workflow::read_run(&app.journal, &fork)
        .await
        .map_err(|e| e.to_string())?;
    Ok((deps, fork, events))
}

/// The worktree of `step` as `run`'s journal folds it.
async fn step_worktree(app: &App, run: &RunId, step: &StepKey) -> Result<StepWorktree, String> {
    let events = workflow::read_run(&app.journal, run)
        .await
        .map_err(|e| e.to_string())?;
    isolation::fold(&events)
        .into_iter()
        .find(|w| &w.step == step)
        .ok_or_else(|| format!("step {step} of run {run} has no worktree"))
}

/// The step's diff against its merge-base (what `lev worktrees --diff` prints).
async fn worktree_diff(app: &App, run: &RunId, step: &StepKey) -> Result<String, String> {
    let w = step_worktree(app, run, step).await?.worktree;
    tokio::task::spawn_blocking(move || isolation::diff(&w.repo, &w.path, &w.base, &w.branch))
        .await
        .map_err(|e| format!("git stopped: {e}"))?
        .map_err(|e| e.to_string())
}

/// Merges or discards the step's worktree the way `lev worktrees` does.
async fn settle(app: &App, run: &RunId, step: &StepKey, how: Settle) -> Result<Settled, String> {
    let found = step_worktree(app, run, step).await?;
    workflow::settle_worktree(&app.journal, run, &found, how).await
}

fn start_engine(
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    notices: mpsc::UnboundedSender<Notice>,
    active: &ActiveRuns,
) -> Engine {
    let (ops, ops_rx) = mpsc::unbounded_channel();
    if let Ok(mut a) = active.lock() {
        a.insert(run.clone(), ops.clone());
    }
    let task = tokio::spawn(workflow::drive(
        deps,
        run.clone(),
        start,
        ops_rx,
        vec![notices],
    ));
    Engine { run, ops, task }
}

async fn refresh_runs(journal: &Journal, state: &mut State) {
    match journal.runs().await {
        Ok(runs) => state.set_runs(runs),
        Err(e) => tracing::error!(error = %e, "cannot list runs"),
    }
}

fn draw<B: Backend>(screen: &mut Screen<'_, B>, state: &State, theme: &Theme) {
    // Synchronized updates: many streaming panes repaint without flicker.
    if screen.synchronized {
        let _ = crossterm::execute!(std::io::stdout(), BeginSynchronizedUpdate);
    }
    let _ = screen.terminal.draw(|f| {
        let area = f.area();
        view::draw(state, theme, area, f.buffer_mut());
    });
    if screen.synchronized {
        let _ = crossterm::execute!(std::io::stdout(), EndSynchronizedUpdate);
    }
}

/// Key presses (not releases or repeats), mouse, paste and resizes.
fn to_input(ev: TermEvent) -> Option<Input> {
    match ev {
        TermEvent::Key(k) if k.kind == KeyEventKind::Press => Some(Input::Key(k)),
        TermEvent::Key(_) => None,
        TermEvent::Mouse(m) => Some(Input::Mouse(m)),
        TermEvent::Paste(s) => Some(Input::Paste(s)),
        TermEvent::Resize(w, h) => Some(Input::Resize(w, h)),
        TermEvent::FocusGained | TermEvent::FocusLost => None,
    }
}

/// The bell and/or a desktop notification, as configured.
fn announce(out: &mut (dyn Write + Send), settings: &AttentionSettings, text: &str) {
    let bytes = attention::escapes(settings, text);
    if bytes.is_empty() {
        return;
    }
    let _ = out.write_all(bytes.as_bytes());
    let _ = out.flush();
}

/// Copies through OSC 52, which works over ssh and inside tmux.
fn copy(out: &mut (dyn Write + Send), text: &str) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let _ = write!(out, "\x1b]52;c;{encoded}\x07");
    let _ = out.flush();
}
