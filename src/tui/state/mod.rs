//! Screen state as a fold of engine notices (`apply`) plus UI state, and
//! input handling that turns keys into effects (`handle`): plain data,
//! testable without a terminal. State never reads the clock: time arrives
//! as `Input::Tick` and with event times.
//!
//! Split by job: `fold` (the run as a pure fold of events), `pane`
//! (scrollback, search, tools), `input` (keys and mouse → effects),
//! `layout` (regions shared by the view and mouse hit-testing), `palette`
//! (fuzzy command list), `replay` (playback over recorded events),
//! `outline` (the declared steps and the hints agents got at their start),
//! `swarm` (slot panes, stealing, breakers, the plan under review) and
//! `review` (the plan review's keys and its editor) and `worktrees` (the
//! steps' git worktrees: diff, merge, discard).

mod answer;
mod confirm;
mod fold;
mod input;
mod inspector;
pub mod layout;
mod outline;
mod palette;
mod pane;
mod replay;
mod retryfork;
mod review;
mod run_view;
pub mod sample;
pub mod sample_swarm;
mod scroll;
mod select;
mod steering;
mod swarm;
pub mod terminal;
mod terminal_keys;
pub use terminal_keys::LEAVE_NAME;
mod worktrees;

use std::collections::BTreeSet;

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui_textarea::TextArea;

use crate::engine::{Query, Reply, Submitted};
use crate::journal::{MemoryRecord, RunMeta};
use crate::protocol::{Delta, Millis, Notice, Op, Recorded, RunId, StepKey};

use super::keymap::Keymap;

pub use confirm::Confirm;
pub use outline::GivenHint;
pub use palette::{PaletteEntry, PaletteItem, action_label};
pub use pane::{LineKind, MAX_LINES, Pane, PaneLine, Search, ToolView, classify, wrapped_rows};
pub use replay::Replay;
pub use review::{ACCEPT as REVIEW_ACCEPT, REGENERATE as REVIEW_REGENERATE};
pub use run_view::{Answered, Folded, LlmRetry, Prompt, PromptKind, RunView, Segment, StepRow};
pub use scroll::{RowPos, Scroll};
pub use select::Selection;
pub use steering::SentMessage;
pub use swarm::{BreakerShown, BreakerView, PlanReview, SlotPane, SlotTask, TaskSlot};
pub use worktrees::{DiffView, fate_text};

/// A new prompt neither takes focus nor accepts an approval before this much
/// tick time has passed since it appeared (keys typed for something else must
/// not answer it).
pub const GRACE_MS: u64 = 700;

/// Input from the terminal (already filtered to key presses).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Bracketed paste: one event.
    Paste(String),
    Resize(u16, u16),
    /// Time passed (spinners, countdowns, replay playback, grace periods).
    Tick(Millis),
}

/// What the app loop must do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Submit to the engine: steering the run on screen, a retry, a fork, a
    /// worktree merged or discarded. What it did comes back through
    /// `State::op_done` (or as the run shown live).
    Op(Op),
    /// Ask the engine (the memory bank, a worktree's diff); the reply comes
    /// back through `State::answered`.
    Query(Query),
    /// Leave the workbench (runs stay durable).
    Quit,
    /// Open a run from the runs browser (resume it when unfinished).
    OpenRun(RunId),
    /// Start a run from what the user typed in the runs browser: a
    /// workflow file and `name=value` inputs, or an objective for a swarm
    /// (the app loop, which can look at files, tells them apart).
    StartRun(String),
    /// Ring the terminal bell and/or send a desktop notification (OSC 9/777).
    Attention(String),
    /// Copy text to the clipboard (OSC 52).
    Copy(String),
    /// Load the theme of this name, draw with it from now on, and report
    /// through `State::theme_switched`.
    SetTheme(String),
    /// Do what an accepted suggestion says (a file written or edited;
    /// the outcome comes back through `State::report`).
    Remedy(crate::engine::Suggestion),
}

/// How panes are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaneLayout {
    /// One pane full size with a tab bar.
    #[default]
    Tabs,
    /// Tiled grid (up to 9 panes at once).
    Grid,
}

/// What the main area shows for an open run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Panes,
    Overview,
    Timeline,
}

/// Which part of the screen keys go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Panes,
    /// The sidebar prompt at `State::prompt_cursor`.
    Prompt,
}

/// A text box that has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// Free-text answer to prompt `n`.
    Answer(usize),
    /// A message for the agent of pane `n`.
    Message(usize),
    Search,
    Palette,
    /// The plan of review prompt `n`, in the multi-line editor.
    EditPlan(usize),
    /// What to start from the runs browser: a workflow file (with inputs)
    /// or an objective.
    NewRun,
}

/// Modal overlays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Palette,
    Confirm(Confirm),
    /// The memory bank's entries (`State::memory`).
    Memory,
    /// A step's diff (`State::diff`).
    Diff,
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct State {
    pub keymap: Keymap,
    /// The run on screen (a fold of its events).
    pub run: RunView,
    /// Runs browser (newest first) and its cursor.
    pub runs: Vec<RunMeta>,
    pub runs_cursor: usize,
    /// What the newest runs suggest (shown under the runs browser's list).
    pub suggestions: Vec<crate::engine::Suggestion>,
    /// Suggestions dismissed (`d`) or accepted in this workbench: not
    /// shown again while it runs.
    pub(crate) suggestions_done: std::collections::BTreeSet<String>,
    /// A run is open (otherwise the runs browser shows).
    pub run_open: bool,
    pub layout: PaneLayout,
    /// The user picked the layout (a swarm run no longer switches to the grid).
    pub layout_chosen: bool,
    pub zoom: bool,
    /// Focused pane index.
    pub focus_pane: usize,
    pub screen: Screen,
    pub overview_cursor: usize,
    pub sidebar: bool,
    pub focus: Focus,
    /// Index into `run.prompts` of the focused prompt.
    pub prompt_cursor: usize,
    /// Highlighted option of the focused question.
    pub option_cursor: usize,
    pub typing: Option<Typing>,
    /// The input box (answers, search, palette share it; one has focus at a time).
    pub textarea: TextArea<'static>,
    /// `textarea` holds an unsent edit of review prompt `n` (Esc keeps it).
    pub plan_draft: Option<usize>,
    pub overlay: Option<Overlay>,
    pub palette: Vec<PaletteEntry>,
    pub palette_cursor: usize,
    /// Newest tick time (0 before the first tick).
    pub clock: Millis,
    /// Tick time each prompt was first seen at (by prompt index; `None` until a tick).
    prompt_seen: Vec<Option<Millis>>,
    auto_focused: BTreeSet<usize>,
    /// Prompts answered from this screen whose answer the engine has not
    /// recorded yet (a second Enter must not send it twice).
    pub sent: BTreeSet<usize>,
    /// Effects produced by `apply` (attention), handed out by the next `handle`.
    queued: Vec<Effect>,
    /// One-line message in the status bar ("not available yet", errors).
    pub message: Option<String>,
    /// Terminal size from `Resize` (for paging and mouse hit-testing).
    pub size: (u16, u16),
    /// The pane whose `pty` program takes every key (entered with Enter,
    /// left with `LEAVE_NAME`).
    pub terminal_input: Option<usize>,
    pub replay: Option<Replay>,
    /// Memory bank entries shown by the memory overlay, and its cursor.
    pub memory: Vec<MemoryRecord>,
    pub memory_cursor: usize,
    /// The diff the diff overlay shows.
    pub diff: Option<DiffView>,
    /// Themes the palette offers, and the name of the one in use.
    pub themes: Vec<String>,
    pub theme: String,
    /// Lines of scrollback per pane (`tui.scrollback_lines`).
    pub scrollback: usize,
    /// What FlowMind runs on in this process, in words (empty: unknown).
    pub flowmind: String,
    /// First line of the help overlay on screen (the view clamps it).
    pub help_scroll: usize,
    /// The run on screen was opened from the runs browser: Esc goes back.
    pub opened_from_browser: bool,
    /// What the runs browser's list is filtered by (`/`; empty: every run).
    pub runs_filter: String,
    /// The run a delete confirmation names.
    pub deleting: Option<RunId>,
    /// Lines being selected in the focused pane (`v`).
    pub selection: Option<Selection>,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    pub fn new() -> State {
        State::with_keymap(Keymap::defaults())
    }

    /// Keeps `lines` lines of scrollback per pane, from now on.
    pub fn set_scrollback(&mut self, lines: usize) {
        self.scrollback = lines.max(1);
        self.run.scrollback = self.scrollback;
    }

    pub fn with_keymap(keymap: Keymap) -> State {
        State {
            keymap,
            run: RunView::default(),
            runs: Vec::new(),
            runs_cursor: 0,
            suggestions: Vec::new(),
            suggestions_done: Default::default(),
            run_open: false,
            layout: PaneLayout::default(),
            layout_chosen: false,
            zoom: false,
            focus_pane: 0,
            screen: Screen::default(),
            overview_cursor: 0,
            sidebar: true,
            focus: Focus::default(),
            prompt_cursor: 0,
            option_cursor: 0,
            typing: None,
            textarea: TextArea::default(),
            plan_draft: None,
            overlay: None,
            palette: Vec::new(),
            palette_cursor: 0,
            clock: Millis(0),
            prompt_seen: Vec::new(),
            auto_focused: BTreeSet::new(),
            sent: BTreeSet::new(),
            queued: Vec::new(),
            message: None,
            size: (120, 36),
            terminal_input: None,
            replay: None,
            memory: Vec::new(),
            memory_cursor: 0,
            diff: None,
            themes: Vec::new(),
            theme: String::new(),
            scrollback: MAX_LINES,
            flowmind: String::new(),
            help_scroll: 0,
            opened_from_browser: false,
            runs_filter: String::new(),
            deleting: None,
            selection: None,
        }
    }

    /// Folds one notice from the engine (durable event, pending prompt, delta).
    pub fn apply(&mut self, notice: &Notice) {
        if self.replay.is_some() {
            // Playback owns the fold; live notices do not mix into it.
            return;
        }
        if let Notice::Refused(run, text) = notice {
            if self.run.run.as_ref().is_none_or(|cur| cur == run) {
                self.refused(text);
            }
            return;
        }
        self.run_open = true;
        if let Notice::Event(r) = notice
            && settles_a_message(&r.event)
        {
            // "pausing…", "unpausing", "resuming the run" announced an op;
            // its fact is on screen now, and the message would contradict it.
            self.message = None;
        }
        let panes = self.run.panes.len();
        // A new pane goes where its step is declared (a slot's in slot
        // order), so indices after it move: remember what they named.
        let may_add_pane = match notice {
            Notice::Delta(_, Delta::Token { step, .. } | Delta::ShellOutput { step, .. }) => {
                self.run.pane_index(step).is_none()
            }
            _ => true,
        };
        let held = may_add_pane.then(|| self.held_panes());
        let folded = self.run.apply(notice);
        if self.run.panes.len() != panes
            && let Some(held) = held
        {
            self.restore_panes(held);
        }
        if let Notice::Event(r) = notice
            && let crate::protocol::Event::StepStarted { step, .. } = &r.event
        {
            self.follow_new_work(step);
        }
        self.after_fold(folded);
    }

    /// More than one agent works at once, or this is a swarm (one pane per
    /// agent slot).
    fn side_by_side(&self) -> bool {
        self.run.swarm
            || self
                .run
                .panes
                .iter()
                .filter(|p| p.kind == "agent" && !p.status.is_terminal())
                .count()
                > 1
    }

    fn after_fold(&mut self, folded: Folded) {
        if !self.layout_chosen && self.layout == PaneLayout::Tabs && self.side_by_side() {
            // Parallel agents are watched side by side (a swarm's slots
            // too), until the user picks a layout.
            self.layout = PaneLayout::Grid;
        }
        self.prompt_seen.resize(self.run.prompts.len(), None);
        if let Some(text) = folded.attention
            && self.replay.is_none()
        {
            self.queued.push(Effect::Attention(text));
        }
        if self.focus_pane >= self.run.panes.len() {
            self.focus_pane = self.run.panes.len().saturating_sub(1);
        }
        self.drop_stale_confirm();
    }

    /// Effects produced by `apply` since the last `handle` (attention).
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.queued)
    }

    /// Handles one input; returns what the app loop must do.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let mut out = self.drain_effects();
        let more = match input {
            Input::Key(k) => self.handle_key(k),
            Input::Mouse(m) => {
                self.handle_mouse(m);
                Vec::new()
            }
            Input::Paste(s) if self.typing_into().is_some() => {
                self.terminal_paste(&s).unwrap_or_default()
            }
            Input::Paste(s) => {
                // Pasting onto a focused plan review opens its editor with
                // the pasted plan; onto a question, a free-text answer.
                if self.typing.is_none()
                    && let Some((i, p)) = self.focused_prompt()
                    && p.review.is_some()
                {
                    self.start_plan_edit(i, Some(String::new()));
                }
                if self.typing.is_none()
                    && self
                        .focused_prompt()
                        .is_some_and(|(_, p)| matches!(p.kind, PromptKind::Question { .. }))
                {
                    self.start_answer();
                }
                if self.typing.is_some() {
                    // Terminals send a pasted line break as CR (most), CRLF
                    // or LF: each is a line break in the text.
                    let text = s.replace("\r\n", "\n").replace('\r', "\n");
                    self.textarea.insert_str(text);
                    self.after_typing();
                }
                Vec::new()
            }
            Input::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Input::Tick(t) => {
                self.tick(t);
                Vec::new()
            }
        };
        out.extend(more);
        out.extend(self.drain_effects());
        out.extend(self.fit_terminals());
        if self.replay.is_some() {
            // Replay shows a recorded run: nothing steers it. What acts on
            // the record itself (retry, fork, worktrees) still goes out.
            out.retain(|e| match e {
                Effect::Op(op) => matches!(
                    op,
                    Op::RetryStep { .. } | Op::Fork { .. } | Op::SettleWorktree { .. }
                ),
                Effect::Attention(_) => false,
                _ => true,
            });
        }
        out
    }

    /// The runs browser's list (newest first).
    pub fn set_runs(&mut self, mut runs: Vec<RunMeta>) {
        runs.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        self.runs = runs;
        self.runs_cursor = self.runs_cursor.min(self.runs.len().saturating_sub(1));
    }

    /// The memory bank as read for the memory overlay, which it opens.
    pub fn set_memory(&mut self, entries: Result<Vec<MemoryRecord>, String>) {
        match entries {
            Ok(mut entries) => {
                // Newest first: what agents just learned is what one looks for.
                entries.sort_by(|a, b| {
                    b.updated_ms
                        .cmp(&a.updated_ms)
                        .then_with(|| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)))
                });
                self.memory = entries;
                self.memory_cursor = self.memory_cursor.min(self.memory.len().saturating_sub(1));
                self.overlay = Some(Overlay::Memory);
            }
            Err(e) => self.say(format!("memory bank: {e}")),
        }
    }

    /// The themes the palette offers and the one in use.
    pub fn set_themes(&mut self, names: Vec<String>, current: &str) {
        self.themes = names;
        self.theme = current.to_string();
    }

    /// The outcome of `Effect::SetTheme`: the name now in use, or why the
    /// theme could not be loaded (the old one stays).
    pub fn theme_switched(&mut self, result: Result<String, String>) {
        match result {
            Ok(name) => {
                self.say(format!("theme: {name}"));
                self.theme = name;
            }
            Err(e) => {
                let first = e.lines().next().unwrap_or("").to_string();
                self.say(format!("theme not changed: {first}"));
            }
        }
    }

    /// Forgets the run on screen (before opening another one, or to go back
    /// to the runs browser). UI preferences (layout, sidebar) are kept.
    pub fn reset_run(&mut self) {
        self.run = RunView {
            scrollback: self.scrollback,
            ..RunView::default()
        };
        self.run_open = false;
        self.replay = None;
        self.focus = Focus::Panes;
        self.focus_pane = 0;
        self.screen = Screen::Panes;
        self.typing = None;
        self.overlay = None;
        self.diff = None;
        self.prompt_seen.clear();
        self.plan_draft = None;
        self.selection = None;
        self.auto_focused.clear();
        self.sent.clear();
        self.queued.clear();
        self.message = None;
    }

    /// Shows a run about to be driven live here (after a retry or a fork):
    /// its recorded events folded, then the engine's notices on top.
    pub fn show_live(&mut self, events: &[Recorded]) {
        let mut view = self.empty_run();
        for r in events {
            let _ = view.apply(&Notice::Event(r.clone()));
        }
        self.show_folded(view);
    }

    /// An empty run view with this screen's settings, to fold a run's
    /// history into (away from the screen, as the engine reads it).
    pub fn empty_run(&self) -> RunView {
        RunView {
            scrollback: self.scrollback,
            ..RunView::default()
        }
    }

    /// Shows a run whose history was folded into `view`; the engine's
    /// notices go on from there.
    pub fn show_folded(&mut self, view: RunView) {
        self.reset_run();
        self.run = view;
        self.run_open = true;
        self.after_fold(Folded::default());
    }

    /// A one-line message from the app loop (an effect that failed).
    pub fn report(&mut self, text: impl Into<String>) {
        self.say(text);
    }

    /// The engine's reply to an `Effect::Query`.
    pub fn answered(&mut self, query: &Query, reply: Result<Reply, String>) {
        match (query, reply) {
            (Query::Memory { .. }, Ok(Reply::Memory(entries))) => self.set_memory(Ok(entries)),
            (Query::Memory { .. }, Err(e)) => self.set_memory(Err(e)),
            (Query::WorktreeDiff { step, .. }, Ok(Reply::Diff(diff))) => {
                self.show_diff(step.clone(), Ok(diff))
            }
            (Query::WorktreeDiff { step, .. }, Err(e)) => self.show_diff(step.clone(), Err(e)),
            (Query::Runs, Ok(Reply::Runs(runs))) => self.set_runs(runs),
            (Query::Suggestions { .. }, Ok(Reply::Suggestions(s))) => {
                self.suggestions = s
                    .into_iter()
                    .filter(|s| !self.suggestions_done.contains(&s.text))
                    .collect();
            }
            // Advice only: a browser without it still lists the runs.
            (Query::Suggestions { .. }, Err(e)) => tracing::warn!("suggestions: {e}"),
            (Query::Context { step, .. }, Ok(Reply::Context(c))) => self.show_context(step, Ok(*c)),
            (Query::Context { step, .. }, Err(e)) => self.show_context(step, Err(e)),
            (_, Ok(other)) => self.say(other.unexpected()),
            (_, Err(e)) => self.say(e),
        }
    }

    /// What the engine did with an `Effect::Op` (a run it began executing
    /// for it is shown by the app instead).
    pub fn op_done(&mut self, op: &Op, done: Result<Submitted, String>) {
        match (op, done) {
            (Op::SettleWorktree { step, .. }, Ok(Submitted::Settled(s))) => {
                self.worktree_settled(step, Ok(s))
            }
            (Op::SettleWorktree { step, .. }, Err(e)) => self.worktree_settled(step, Err(e)),
            (Op::DeleteRun { run }, Ok(_)) => {
                self.runs.retain(|r| &r.id != run);
                self.runs_cursor = self
                    .runs_cursor
                    .min(self.visible_runs().len().saturating_sub(1));
                self.say(format!("run {run} deleted"));
            }
            (_, Ok(_)) => {}
            (Op::DeleteRun { run }, Err(e)) => self.say(format!("run {run} not deleted: {e}")),
            (Op::RetryStep { step, .. }, Err(e)) => self.say(format!("retry of {step}: {e}")),
            (Op::Fork { from, .. }, Err(e)) => self.say(format!("fork from {from}: {e}")),
            (Op::StartWorkflow { .. } | Op::StartObjective { .. }, Err(e)) => {
                self.opened_from_browser = false;
                self.say(format!("not started: {e}"));
            }
            (_, Err(e)) => self.say(e),
        }
    }

    /// Enters playback mode over a recorded run.
    pub fn load_replay(&mut self, events: Vec<Recorded>) {
        self.replay = Some(Replay::new(events));
        self.run_open = true;
        self.rebuild_replay(0);
    }

    /// True while something animates (spinners, countdown, playback): the app ticks only then.
    pub fn animating(&self) -> bool {
        if let Some(r) = &self.replay {
            return r.playing && r.pos < r.events.len();
        }
        let unseen = self.prompt_seen.iter().any(Option::is_none);
        let running = self.run.panes.iter().any(|p| !p.status.is_terminal());
        let waiting = self.run.pending().next().is_some();
        self.run_open && ((self.run.active() && (running || waiting)) || unseen)
    }

    /// The time shown as "now": the newest of the tick clock and the events.
    pub fn now(&self) -> Millis {
        if self.replay.is_some() {
            return self.run.last_at;
        }
        self.clock.max(self.run.last_at)
    }

    /// Spinner frame counter derived from tick time.
    pub fn spinner_tick(&self) -> u64 {
        self.clock.0 / 100
    }

    /// The focused pane, if any.
    /// A step that starts takes the focus from a pane whose step has ended
    /// (so a grid's page shows the work going on, not only finished
    /// panes), unless the user is typing, reading an overlay or zoomed in.
    fn follow_new_work(&mut self, step: &StepKey) {
        let idle = self.typing.is_none()
            && self.overlay.is_none()
            && self.focus == Focus::Panes
            && !self.zoom
            && self.selection.is_none()
            && self.focused_pane().is_none_or(|p| p.status.is_terminal());
        if idle && let Some(i) = self.run.pane_index(step) {
            self.focus_pane = i;
        }
    }

    /// The panes the focus and a message being typed name, by identity.
    fn held_panes(&self) -> [Option<PaneIdentity>; 2] {
        let message = match self.typing {
            Some(Typing::Message(i)) => self.run.panes.get(i).map(PaneIdentity::of),
            _ => None,
        };
        [self.focused_pane().map(PaneIdentity::of), message]
    }

    /// Points the focus and a message being typed at the panes they named
    /// before panes were added.
    fn restore_panes(&mut self, [focus, message]: [Option<PaneIdentity>; 2]) {
        let find = |id: &PaneIdentity| self.run.panes.iter().position(|p| id.names(p));
        if let Some(i) = focus.as_ref().and_then(find) {
            self.focus_pane = i;
        }
        if let Some(i) = message.as_ref().and_then(find) {
            self.typing = Some(Typing::Message(i));
        }
    }

    pub fn focused_pane(&self) -> Option<&crate::tui::state::Pane> {
        self.run.panes.get(self.focus_pane)
    }

    /// Prompts waiting for the user.
    /// The terminal's title: the run's name and what it is doing, so a
    /// run that needs you, ended or stopped shows in a tab or window list
    /// without looking at it.
    pub fn terminal_title(&self) -> String {
        if !self.run_open {
            return "lev · runs".to_string();
        }
        let name = match self.run.name.as_str() {
            "" => "run",
            name => name,
        };
        let status = self.run.status.map_or("starting", |s| s.as_str());
        let doing = match self.pending_count() {
            _ if self.replay.is_some() => format!("replay of a {status} run"),
            0 => status.to_string(),
            n => format!("⚑ {n} waiting · {status}"),
        };
        format!("lev · {} · {doing}", crate::text::clip(name, 60))
    }

    pub fn pending_count(&self) -> usize {
        self.run.pending().count()
    }

    /// True once prompt `i` has been on screen for the grace period.
    pub fn prompt_ready(&self, i: usize) -> bool {
        self.prompt_seen
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|seen| self.clock.0 >= seen.0.saturating_add(GRACE_MS))
    }

    /// The focused prompt, when the sidebar has focus.
    pub fn focused_prompt(&self) -> Option<(usize, &Prompt)> {
        if self.focus != Focus::Prompt {
            return None;
        }
        let p = self.run.prompts.get(self.prompt_cursor)?;
        p.is_pending().then_some((self.prompt_cursor, p))
    }

    fn tick(&mut self, t: Millis) {
        if t > self.clock {
            self.clock = t;
        }
        for seen in self.prompt_seen.iter_mut() {
            if seen.is_none() {
                *seen = Some(t);
            }
        }
        self.replay_tick(t);
        self.auto_focus();
        for p in &mut self.run.panes {
            p.terminal_tick();
        }
    }

    /// How often the clock should tick: often while something spins (an
    /// agent, a program drawing, a prompt's grace period), once a second
    /// while only clocks move (programs that wait), never when nothing does.
    pub fn tick_period(&self) -> Option<std::time::Duration> {
        if !self.animating() {
            return None;
        }
        let fast = self.replay.is_some()
            || self.prompt_seen.iter().any(Option::is_none)
            || self.run.pending().next().is_some()
            || self.run.panes.iter().any(|p| p.spins());
        Some(std::time::Duration::from_millis(if fast {
            80
        } else {
            1000
        }))
    }

    /// A prompt takes focus once its grace period is over, unless the user is
    /// typing or reading an overlay.
    fn auto_focus(&mut self) {
        if self.typing.is_some() || self.overlay.is_some() || self.focus == Focus::Prompt {
            return;
        }
        let ready = self
            .run
            .pending()
            .map(|(i, _)| i)
            .find(|i| !self.auto_focused.contains(i) && self.prompt_ready(*i));
        if let Some(i) = ready {
            self.auto_focused.insert(i);
            self.sidebar = true;
            self.focus = Focus::Prompt;
            self.prompt_cursor = i;
            self.option_cursor = 0;
        }
    }

    /// Rebuilds the fold from the first `pos` recorded events (replay).
    fn rebuild_replay(&mut self, pos: usize) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let pos = pos.min(replay.events.len());
        let mut run = RunView {
            scrollback: self.scrollback,
            ..RunView::default()
        };
        for r in &replay.events[..pos] {
            run.apply(&Notice::Event(r.clone()));
        }
        replay.pos = pos;
        replay.sync_clock(&run);
        self.run = run;
        self.prompt_seen = vec![Some(Millis(0)); self.run.prompts.len()];
        self.sent.clear();
        self.after_fold(Folded::default());
    }

    /// Sets the status-line message (until the next key, or until a fact
    /// that settles what it announced: `settles_a_message`).
    fn say(&mut self, text: impl Into<String>) {
        self.message = Some(text.into());
    }
}

/// Facts that carry out what a status message announced (a pause, an
/// unpause, a resume, the run's end).
fn settles_a_message(event: &crate::protocol::Event) -> bool {
    use crate::protocol::Event;
    matches!(
        event,
        Event::PauseRequested { .. }
            | Event::PauseLifted { .. }
            | Event::RunStarted { .. }
            | Event::RunResumed { .. }
            | Event::RunPaused { .. }
            | Event::RunFinished { .. }
            | Event::EmergencyStopped { .. }
    )
}

/// What a pane is, whatever its index: a swarm slot, or a step's pane.
struct PaneIdentity {
    slot: Option<u32>,
    step: StepKey,
}

impl PaneIdentity {
    fn of(p: &Pane) -> PaneIdentity {
        PaneIdentity {
            slot: p.slot_no(),
            step: p.step.clone(),
        }
    }

    fn names(&self, p: &Pane) -> bool {
        match self.slot {
            Some(n) => p.slot_no() == Some(n),
            None => p.slot.is_none() && p.step == self.step,
        }
    }
}

#[cfg(test)]
mod scrollback_tests {
    use super::*;
    use crate::protocol::{Delta, StepKey};

    /// `tui.scrollback_lines` caps every pane, also those of a run opened
    /// after it was set and those a replay rebuilds.
    #[test]
    fn panes_keep_the_configured_scrollback() {
        let mut s = State::new();
        s.set_scrollback(150);
        let run = sample::sample_run_id();
        for r in sample::sample_events() {
            s.apply(&Notice::Event(r));
        }
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        s.apply(&Notice::Delta(
            run.clone(),
            Delta::ShellOutput {
                step: StepKey::new("checks"),
                stderr: false,
                text,
            },
        ));
        let pane = s
            .run
            .panes
            .iter()
            .find(|p| p.step == StepKey::new("checks"))
            .unwrap();
        assert_eq!(pane.lines.len(), 150);
        let last = pane.lines.iter().rev().find(|l| !l.text.is_empty());
        assert_eq!(last.map(|l| l.text.as_str()), Some("line 999"));
        s.reset_run();
        assert_eq!(s.run.scrollback, 150);
    }
}
