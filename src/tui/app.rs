//! The workbench's driver: sets up and always restores the terminal, feeds
//! terminal input, engine notices and ticks into `State`, carries out the
//! effects (ops and queries through the engine handle, bell and desktop
//! notifications, clipboard),
//! and redraws on demand: a burst of notices costs one frame.
//!
//! Logs go to the log file; nothing is printed while the screen is up.

use std::io::Write;
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
use tokio::time::Instant;

use super::attention;
use super::keymap::Keymap;
use super::state::{Effect, Input, RunView, State};
use super::theme::{Catalog, Theme};
use super::view;
use crate::config::AttentionSettings;
use crate::engine::{Driving, Engine, Query, Reply, Submitted};
use crate::protocol::{Millis, Notice, Op, Recorded, RunId, RunStatus};

/// What the workbench opens on.
pub enum Launch {
    /// The runs browser.
    Browser,
    /// A run the engine began executing (started, resumed, retried or
    /// forked): shown live, with its history.
    Driving(Box<Driving>),
    /// Playback of a recorded run.
    Replay {
        events: Vec<crate::protocol::Recorded>,
    },
}

pub struct App {
    /// The workbench's only way to the engine: ops in, notices out, queries.
    pub engine: Engine,
    /// `engine.subscribe()`, taken before the run it shows was started.
    pub notices: mpsc::UnboundedReceiver<Notice>,
    pub theme: Theme,
    /// The name `theme` was loaded by, and where the palette finds others.
    pub theme_name: String,
    pub themes: Catalog,
    /// Bell and desktop notification for prompts (`tui.attention`).
    pub attention: AttentionSettings,
    /// Lines of scrollback per pane (`tui.scrollback_lines`).
    pub scrollback: usize,
    pub keymap: Keymap,
    /// What FlowMind runs on in this process (`flowmind:`), in words.
    pub flowmind: String,
}

/// The shortest time between two frames (60 per second at most).
pub const FRAME: Duration = Duration::from_millis(16);

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
    let engine = app.engine.clone();
    let left = event_loop(&mut screen, Box::pin(input), app, launch).await;
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
    // The screen is the terminal's again: say what was left and how to go on.
    let Some(left) = left else { return 0 };
    let status = match engine
        .query(Query::Run {
            id: left.run.clone(),
        })
        .await
    {
        Ok(Reply::Run(Some(meta))) => Some(meta.status),
        _ => None,
    };
    let (line, code) = farewell(&left, status);
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    code
}

/// The run on screen when the workbench ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub run: RunId,
    /// It was a replay (nothing was executed).
    pub replay: bool,
    /// This workbench was executing it: quitting interrupts it.
    pub live: bool,
}

/// What the terminal shows after the workbench ends, and the exit code:
/// the same codes as a headless run (0 succeeded, 1 failed or cancelled,
/// 3 left paused or unfinished: `lev resume` goes on).
pub fn farewell(left: &Left, status: Option<RunStatus>) -> (String, u8) {
    let run = &left.run;
    if left.replay {
        let status = status.map_or("?", RunStatus::as_str);
        return (
            format!("replayed run {run} ({status}); `lev show {run}` prints it"),
            0,
        );
    }
    match status {
        Some(RunStatus::Succeeded) => (
            format!("run {run} succeeded; `lev show {run}` prints its outputs"),
            0,
        ),
        Some(RunStatus::Failed) => (
            format!(
                "run {run} failed; `lev show {run}` says why, `lev retry {run} STEP` tries a step again"
            ),
            1,
        ),
        Some(RunStatus::Cancelled) => (format!("run {run} was cancelled; `lev show {run}`"), 1),
        Some(RunStatus::Paused) => (
            format!("run {run} is paused; `lev resume {run}` goes on"),
            3,
        ),
        Some(RunStatus::Running) if left.live => (
            format!(
                "run {run} was interrupted where it stood; `lev resume {run}` goes on from there"
            ),
            3,
        ),
        Some(RunStatus::Running) => (
            format!("run {run} is running in another lev; `lev show {run}` prints where it is"),
            0,
        ),
        None => (format!("run {run}: `lev show {run}`"), 0),
    }
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
) -> Option<Left> {
    event_loop(screen, input, app, launch).await
}

async fn event_loop<B: Backend>(
    screen: &mut Screen<'_, B>,
    mut input: impl Stream<Item = Input> + Unpin,
    mut app: App,
    launch: Launch,
) -> Option<Left> {
    let mut state = State::with_keymap(app.keymap.clone());
    state.set_scrollback(app.scrollback);
    state.flowmind = app.flowmind.clone();
    state.set_themes(app.themes.names(), &app.theme_name);
    if let Ok(size) = screen.terminal.size() {
        state.handle(Input::Resize(size.width, size.height));
    }
    let mut notices = std::mem::replace(&mut app.notices, mpsc::unbounded_channel().1);
    // The run this workbench executes and shows live, while it executes.
    let mut live: Option<RunId> = None;
    match launch {
        Launch::Browser => refresh_runs(&app.engine, &mut state).await,
        Launch::Driving(d) => {
            refresh_suggestions(&app.engine, &mut state).await;
            show_driving(&app.engine, &mut state, &mut live, *d).await
        }
        Launch::Replay { events } => {
            refresh_suggestions(&app.engine, &mut state).await;
            state.load_replay(events)
        }
    }
    let mut period = Duration::from_millis(80);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    // Every input, burst of notices or tick may change the screen; it is
    // drawn at most once per `FRAME`, so a swarm streaming hundreds of
    // tokens a second costs sixty frames, not hundreds.
    let mut dirty = true;
    let mut last_frame: Option<Instant> = None;
    let mut title = String::new();
    let _ = screen.escapes.write_all(attention::SAVE_TITLE.as_bytes());
    loop {
        let now = Instant::now();
        let due = last_frame.map_or(now, |t| t + FRAME);
        if dirty && now >= due {
            draw(screen, &state, &app.theme);
            set_title(screen.escapes, &mut title, state.terminal_title());
            last_frame = Some(now);
            dirty = false;
        }
        // Fast while something spins, once a second while only clocks move.
        let wanted = state.tick_period();
        if let Some(p) = wanted
            && p != period
        {
            period = p;
            ticker = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        }
        let effects = tokio::select! {
            ev = input.next() => match ev {
                Some(i) => {
                    dirty = true;
                    state.handle(i)
                }
                // The terminal is gone: nothing more can be shown.
                None => break,
            },
            _ = tokio::time::sleep_until(due), if dirty => Vec::new(),
            Some(n) = notices.recv() => {
                dirty = true;
                fold_notices(&mut state, &mut live, n, &mut notices);
                // A program that just started gets its pane's size.
                state.fit_terminals()
            }
            _ = ticker.tick(), if wanted.is_some() => {
                dirty = true;
                state.handle(Input::Tick(Millis::now()))
            }
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
        };
        for effect in effects {
            if !carry_out(effect, screen.escapes, &mut app, &mut state, &mut live).await {
                return leave(screen.escapes, &state, &live);
            }
        }
    }
    leave(screen.escapes, &state, &live)
}

/// Writes the terminal's title when it changed since the last frame.
fn set_title(out: &mut (dyn Write + Send), last: &mut String, now: String) {
    if *last != now {
        let _ = out.write_all(attention::title(&now).as_bytes());
        let _ = out.flush();
        *last = now;
    }
}

/// Gives the terminal its title back; the run on screen as the workbench ends.
fn leave(out: &mut (dyn Write + Send), state: &State, live: &Option<RunId>) -> Option<Left> {
    let _ = out.write_all(attention::RESTORE_TITLE.as_bytes());
    let _ = out.flush();
    left(state, live)
}

/// The run on screen as the workbench ends (none from the runs browser).
fn left(state: &State, live: &Option<RunId>) -> Option<Left> {
    let run = state.run.run.clone().filter(|_| state.run_open)?;
    Some(Left {
        live: live.as_ref() == Some(&run),
        replay: state.replay.is_some(),
        run,
    })
}

/// Carries out one effect of a key or tick; false when the user quits.
async fn carry_out(
    effect: Effect,
    escapes: &mut (dyn Write + Send),
    app: &mut App,
    state: &mut State,
    live: &mut Option<RunId>,
) -> bool {
    match effect {
        Effect::Quit => return false,
        Effect::Op(op) => submit(&app.engine, state, live, op).await,
        Effect::Query(query) => {
            let reply = app.engine.query(query.clone()).await;
            state.answered(&query, reply.map_err(|e| e.to_string()));
        }
        Effect::OpenRun(run) => {
            if live.is_none() {
                open_run(&app.engine, state, live, run).await;
            }
        }
        Effect::StartRun(text) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            match super::new_run::op_for(&text, &cwd) {
                Ok(op) => submit(&app.engine, state, live, op).await,
                Err(e) => state.report(e),
            }
        }
        Effect::Remedy(suggestion) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let said = super::remedy::carry_out(&app.engine, &cwd, &suggestion).await;
            state.report(said);
        }
        Effect::Attention(text) => announce(escapes, &app.attention, &text),
        Effect::Copy(text) => copy(escapes, &text),
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
    true
}

/// Folds `first` and everything already queued behind it (one frame for
/// the burst); a run that ended is no longer the live one.
fn fold_notices(
    state: &mut State,
    live: &mut Option<RunId>,
    first: Notice,
    notices: &mut mpsc::UnboundedReceiver<Notice>,
) {
    let mut next = Some(first);
    while let Some(n) = next {
        if let Notice::Ended(run) = &n
            && live.as_ref() == Some(run)
        {
            *live = None;
        }
        state.apply(&n);
        next = notices.try_recv().ok();
    }
}

/// Why this workbench will not carry out `op` now: it shows one executing
/// run at a time.
fn busy(op: &Op, live: Option<&RunId>) -> Option<String> {
    let live = live?;
    match op {
        Op::RetryStep { run, .. } if run != live => {
            Some("another run is executing in this workbench; retry once it has ended".into())
        }
        Op::Fork { .. } => {
            Some("a run is executing in this workbench; fork once it has ended".into())
        }
        Op::StartWorkflow { .. } | Op::StartObjective { .. } => Some(
            "a run is executing in this workbench; start another once it has ended (or in another terminal)"
                .into(),
        ),
        // A worktree of the live run: the engine refuses it itself.
        _ => None,
    }
}

/// Submits `op`; a run the engine begins executing for it (a retry of an
/// ended run, a fork, a resume) is shown live with its history.
async fn submit(engine: &Engine, state: &mut State, live: &mut Option<RunId>, op: Op) {
    // A pane's size follows the screen; a program of a run no one
    // executes (an interrupted run opened from the browser) has none to tell.
    if let Op::PtyResize { run, .. } = &op
        && live.as_ref() != Some(run)
    {
        return;
    }
    if let Some(why) = busy(&op, live.as_ref()) {
        state.report(why);
        return;
    }
    match engine.submit(op.clone()).await {
        Ok(Submitted::Driving(d)) => show_driving(engine, state, live, d).await,
        other => state.op_done(&op, other.map_err(|e| e.to_string())),
    }
}

/// Shows a run the engine just began executing: its history up to the
/// drive, then the notices that follow (they carry the rest, once).
async fn show_driving(engine: &Engine, state: &mut State, live: &mut Option<RunId>, d: Driving) {
    if let Some(last) = d.resumed_after {
        // Folded as the journal is read: a long run's events are never all
        // in memory beside the screen that shows them.
        let fold = |view: &mut RunView, r: Recorded| {
            let _ = view.apply(&Notice::Event(r));
        };
        match engine
            .fold_events(&d.run, last, state.empty_run(), fold)
            .await
        {
            Ok(view) => state.show_folded(view),
            Err(e) => state.report(format!("run {}: {e}", d.run)),
        }
    }
    *live = Some(d.run);
}

/// Opens a run from the browser: an unfinished one is resumed and shown
/// live with its history, a finished one played back.
async fn open_run(engine: &Engine, state: &mut State, live: &mut Option<RunId>, run: RunId) {
    let meta = match engine.query(Query::Run { id: run.clone() }).await {
        Ok(Reply::Run(Some(meta))) => meta,
        Ok(_) => return tracing::warn!(%run, "cannot open run: no such run"),
        Err(e) => return tracing::warn!(%run, error = %e, "cannot open run"),
    };
    if matches!(meta.status, RunStatus::Running | RunStatus::Paused) {
        match engine.submit(Op::Resume { run: run.clone() }).await {
            Ok(Submitted::Driving(d)) => show_driving(engine, state, live, d).await,
            Ok(_) => {}
            // Another process executes it (a shared journal): followed live
            // from here, steered through that process.
            Err(e) => match engine.watch(&run).await {
                Ok(d) => show_driving(engine, state, live, d).await,
                Err(_) => {
                    tracing::warn!(%run, error = %e, "cannot open run");
                    state.report(format!("cannot open run {run}: {e}"));
                }
            },
        }
        return;
    }
    match engine.query(Query::Events { id: run.clone() }).await {
        Ok(Reply::Events(events)) => state.load_replay(events),
        Ok(other) => tracing::warn!(%run, "cannot open run: {}", other.unexpected()),
        Err(e) => tracing::warn!(%run, error = %e, "cannot open run"),
    }
}

async fn refresh_runs(engine: &Engine, state: &mut State) {
    match engine.query(Query::Runs).await {
        Ok(Reply::Runs(runs)) => state.set_runs(runs),
        Ok(other) => tracing::error!("cannot list runs: {}", other.unexpected()),
        Err(e) => tracing::error!(error = %e, "cannot list runs"),
    }
    refresh_suggestions(engine, state).await;
}

/// What the newest runs suggest, for the browser and a run's sidebar.
async fn refresh_suggestions(engine: &Engine, state: &mut State) {
    let suggestions = Query::Suggestions {
        runs: crate::engine::suggest::RUNS,
    };
    let reply = engine.query(suggestions.clone()).await;
    state.answered(&suggestions, reply.map_err(|e| e.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn left(live: bool, replay: bool) -> Left {
        Left {
            run: RunId("01RUN".into()),
            live,
            replay,
        }
    }

    /// Quitting says what was left and how to go on, with the exit codes of
    /// a headless run.
    #[test]
    fn farewell_names_the_run_its_state_and_the_next_command() {
        let cases = [
            (
                left(true, false),
                Some(RunStatus::Succeeded),
                0,
                "lev show 01RUN",
            ),
            (
                left(true, false),
                Some(RunStatus::Failed),
                1,
                "lev retry 01RUN",
            ),
            (
                left(true, false),
                Some(RunStatus::Paused),
                3,
                "lev resume 01RUN",
            ),
            (
                left(true, false),
                Some(RunStatus::Running),
                3,
                "lev resume 01RUN",
            ),
            (
                left(false, true),
                Some(RunStatus::Succeeded),
                0,
                "replayed run 01RUN",
            ),
        ];
        for (l, status, code, says) in cases {
            let (line, got) = farewell(&l, status);
            assert_eq!(got, code, "{line}");
            assert!(line.contains(says), "{line}");
        }
    }
}
