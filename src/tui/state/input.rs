//! Keys and mouse → state changes and effects. Context decides first (an
//! open text box, a confirm overlay, the runs browser, a focused prompt),
//! then the keymap maps the key to an `Action` for `handle_action`.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::TextArea;

use crate::engine::Query;
use crate::tui::keymap::Action;

use super::layout::{self, pane_viewport};
use super::palette::{self, PaletteItem};
use super::{Confirm, Effect, Focus, Overlay, PaneLayout, Screen, State, Typing};

impl State {
    pub(super) fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if self.typing_into().is_some() {
            // Ctrl-C too: it is the program's.
            return self.terminal_key(&key).unwrap_or_default();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') && self.typing.is_none() {
            return self.handle_action(Action::Quit);
        }
        if let Some(Overlay::Confirm(what)) = self.overlay {
            return self.confirm_key(what, key);
        }
        if let Some(t) = self.typing {
            return self.typing_key(t, key);
        }
        if self.overlay == Some(Overlay::Memory) {
            return self.memory_key(key);
        }
        if self.selection.is_some() && self.overlay.is_none() {
            return self.selection_key(key);
        }
        if self.overlay == Some(Overlay::Diff) {
            return self.diff_key(key);
        }
        if self.overlay == Some(Overlay::Help) {
            let a = self.keymap.action(&key);
            match (a, key.code) {
                (Some(Action::Help | Action::Back | Action::Quit), _) | (_, KeyCode::Esc) => {
                    self.overlay = None;
                }
                // The view clamps the offset to what it holds.
                (Some(Action::ScrollDown), _) | (_, KeyCode::Down) => self.help_scroll += 1,
                (Some(Action::ScrollUp), _) | (_, KeyCode::Up) => {
                    self.help_scroll = self.help_scroll.saturating_sub(1);
                }
                (Some(Action::PageDown), _) | (_, KeyCode::PageDown | KeyCode::Char(' ')) => {
                    self.help_scroll += 10;
                }
                (Some(Action::PageUp), _) | (_, KeyCode::PageUp) => {
                    self.help_scroll = self.help_scroll.saturating_sub(10);
                }
                (Some(Action::Top), _) | (_, KeyCode::Home) => self.help_scroll = 0,
                (Some(Action::Bottom), _) | (_, KeyCode::End) => self.help_scroll = usize::MAX / 2,
                _ => {}
            }
            return Vec::new();
        }
        if !self.run_open {
            match key.code {
                KeyCode::Up | KeyCode::Char('k') => return self.handle_action(Action::ScrollUp),
                KeyCode::Down | KeyCode::Char('j') => {
                    return self.handle_action(Action::ScrollDown);
                }
                KeyCode::Enter => return self.open_selected_run(),
                _ => {}
            }
        }
        if let Some(effects) = self.review_key(&key) {
            return effects;
        }
        if self.focused_prompt().is_some() {
            match key.code {
                KeyCode::Up => return self.move_option(-1),
                KeyCode::Down => return self.move_option(1),
                KeyCode::Enter => return self.submit_option(),
                _ => {}
            }
        }
        if self.screen != Screen::Panes && key.code == KeyCode::Enter {
            return self.overview_enter();
        }
        if key.code == KeyCode::Enter
            && self.screen == Screen::Panes
            && self.focus == Focus::Panes
            && let Some(i) = self.pane_prompt()
        {
            // A question's own pane answers it: Enter takes the keys to
            // its prompt (↑↓ pick, Enter sends, i types).
            self.focus_prompt(i.checked_sub(1));
            return Vec::new();
        }
        if let Some(effects) = self.terminal_key(&key) {
            return effects;
        }
        match self.keymap.action(&key).or_else(|| fallback_action(&key)) {
            Some(a) => self.handle_action(a),
            None => Vec::new(),
        }
    }

    /// Runs an action (also reachable from the palette).
    pub fn handle_action(&mut self, a: Action) -> Vec<Effect> {
        if a != Action::Palette {
            self.message = None;
        }
        if !self.run_open {
            return self.browser_action(a);
        }
        match a {
            Action::Help => self.toggle_overlay(Overlay::Help),
            Action::Palette => self.open_palette(),
            Action::Memory => return self.open_memory(),
            Action::Quit => {
                if self.run.active() && self.replay.is_none() {
                    self.ask(Confirm::Quit);
                } else {
                    return vec![Effect::Quit];
                }
            }
            Action::Back => return self.back(),
            Action::FocusNext => self.focus_by(1),
            Action::FocusPrev => self.focus_by(-1),
            Action::FocusLeft => self.focus_in_grid(-1),
            Action::FocusRight => {
                if self.focus == Focus::Panes
                    && self.is_last_col()
                    && self.sidebar
                    && self.pending_count() > 0
                {
                    self.focus_prompt(None);
                } else {
                    self.focus_in_grid(1);
                }
            }
            Action::FocusUp => {
                let cols = self.cols() as isize;
                self.focus_in_grid(-cols);
            }
            Action::FocusDown => {
                let cols = self.cols() as isize;
                self.focus_in_grid(cols);
            }
            Action::JumpPane(n) => {
                let i = usize::from(n.max(1)) - 1;
                if i < self.run.panes.len() {
                    self.focus_pane = i;
                    self.focus = Focus::Panes;
                    self.screen = Screen::Panes;
                }
            }
            Action::NextPage => self.next_page(),
            Action::ToggleZoom => self.zoom = !self.zoom,
            Action::LayoutTabs => {
                self.layout = PaneLayout::Tabs;
                self.layout_chosen = true;
                self.zoom = false;
            }
            Action::LayoutGrid => {
                self.layout = PaneLayout::Grid;
                self.layout_chosen = true;
                self.zoom = false;
            }
            Action::ToggleSidebar => {
                self.sidebar = !self.sidebar;
                if !self.sidebar {
                    self.focus = Focus::Panes;
                }
            }
            Action::Overview => self.toggle_screen(Screen::Overview),
            Action::Timeline => self.toggle_screen(Screen::Timeline),
            Action::Search => {
                if self.focused_pane().is_some() {
                    self.start_typing(Typing::Search, "search");
                }
            }
            Action::SearchNext => self.search_step(true),
            Action::SearchPrev => self.search_step(false),
            Action::ScrollUp => self.scroll(Scrolling::Rows(1)),
            Action::ScrollDown => self.scroll(Scrolling::Rows(-1)),
            Action::PageUp => self.scroll(Scrolling::Page(1)),
            Action::PageDown => self.scroll(Scrolling::Page(-1)),
            Action::Top => self.scroll(Scrolling::Top),
            Action::Bottom => self.scroll(Scrolling::Bottom),
            Action::ToggleToolDetails => self.toggle_tool(),
            Action::NextPrompt => self.next_prompt(),
            Action::Approve => return self.decide(true),
            Action::Deny => return self.decide(false),
            Action::Answer => self.start_answer(),
            Action::CancelStep => {
                if self.run.active() && self.replay.is_none() {
                    // The focused step when it runs; otherwise the whole run.
                    let row = self
                        .focused_running_step()
                        .and_then(|s| self.step_row_of(&s));
                    self.ask(match row {
                        Some(row) => Confirm::CancelStep(row),
                        None => Confirm::CancelRun,
                    });
                } else {
                    self.say("no active run to cancel");
                }
            }
            Action::SendMessage => self.start_message(),
            Action::PauseRun => return self.toggle_run_pause(),
            Action::PauseAgent => return self.toggle_agent_pause(),
            Action::EmergencyStop => self.ask_emergency_stop(),
            Action::StopCallbacks => self.ask_stop_callbacks(),
            Action::InspectContext => return self.inspect_context(),
            Action::RetryStep => return self.retry_selected(),
            Action::Fork => return self.fork_selected(),
            Action::WorktreeDiff | Action::WorktreeMerge | Action::WorktreeDiscard => {
                return self.worktree_action(a);
            }
            Action::CopyPane => return self.copy_lines(None, ("", "")),
            Action::DeleteRun => {
                self.say("runs are deleted from the runs browser (Esc back to it, or `lev rm RUN`)")
            }
            Action::NewRun => self.say(
                "runs are started from the runs browser (Esc back to it), or with `lev run` / `lev workflow`",
            ),
            Action::Select => self.start_selection(),
            Action::CopyVisible => {
                let i = self.focus_pane;
                let (w, h) = pane_viewport(self, i);
                let shown = self.run.panes.get(i).map(|p| p.visible_lines(w, h));
                return self.copy_lines(shown, ("", " on screen"));
            }
            Action::ReplayPlayPause
            | Action::ReplayStepForward
            | Action::ReplayStepBack
            | Action::ReplayFaster
            | Action::ReplaySlower => self.replay_action(a),
        }
        Vec::new()
    }

    fn browser_action(&mut self, a: Action) -> Vec<Effect> {
        let n = self.visible_runs().len();
        match a {
            Action::Quit => return vec![Effect::Quit],
            Action::Back if self.overlay.is_some() => self.overlay = None,
            Action::Back => {
                self.runs_filter.clear();
                self.runs_cursor = 0;
            }
            Action::Search => self.start_typing(Typing::Search, "filter: name, id, status"),
            Action::NewRun => self.start_typing(
                Typing::NewRun,
                "a workflow file and name=value inputs, or an objective for a swarm",
            ),
            Action::DeleteRun => {
                match self
                    .visible_runs()
                    .get(self.runs_cursor)
                    .map(|r| r.id.clone())
                {
                    Some(id) => {
                        self.deleting = Some(id);
                        self.ask(Confirm::DeleteRun);
                    }
                    None => self.say("no run selected"),
                }
            }
            Action::Approve => return self.accept_suggestion(),
            Action::Deny => self.dismiss_suggestion(),
            Action::Help => self.toggle_overlay(Overlay::Help),
            Action::Palette => self.open_palette(),
            Action::Memory => return self.open_memory(),
            Action::ScrollUp | Action::FocusPrev | Action::FocusUp => {
                self.runs_cursor = self.runs_cursor.saturating_sub(1)
            }
            Action::ScrollDown | Action::FocusNext | Action::FocusDown => {
                self.runs_cursor = (self.runs_cursor + 1).min(n.saturating_sub(1))
            }
            Action::Top | Action::PageUp => self.runs_cursor = 0,
            Action::Bottom | Action::PageDown => self.runs_cursor = n.saturating_sub(1),
            _ => {}
        }
        Vec::new()
    }

    /// Copies the focused pane's lines as they are shown (every line, or
    /// the absolute lines `only`), and says how many.
    /// Copies the focused pane's lines (`only` these, all when `None`) as
    /// they are shown; `which` says which in the message ("selected ",
    /// and after "lines": " on screen").
    pub(super) fn copy_lines(
        &mut self,
        only: Option<Vec<u64>>,
        which: (&str, &str),
    ) -> Vec<Effect> {
        let i = self.focus_pane;
        let Some(p) = self.run.panes.get(i) else {
            self.say("no pane to copy");
            return Vec::new();
        };
        let lines: Vec<u64> = match only {
            Some(mut v) => {
                v.sort_unstable();
                v
            }
            None => (p.dropped..p.end()).collect(),
        };
        let text = lines
            .iter()
            .flat_map(|a| p.display_texts(*a))
            .collect::<Vec<_>>()
            .join("\n");
        let n = text.lines().count();
        let plural = if n == 1 { "" } else { "s" };
        self.say(format!(
            "copied {n} {}line{plural}{} of {} to the clipboard",
            which.0, which.1, p.step
        ));
        vec![Effect::Copy(text)]
    }

    /// The suggestion `a` and `d` act on in the runs browser: the one
    /// about the selected run, else the first.
    pub fn suggestion_at_hand(&self) -> Option<usize> {
        if self.suggestions.is_empty() {
            return None;
        }
        let selected = self
            .visible_runs()
            .get(self.runs_cursor)
            .map(|r| r.id.clone());
        let about = selected.and_then(|id| self.suggestions.iter().position(|s| s.run == id));
        Some(about.unwrap_or(0))
    }

    /// `a` in the runs browser: the suggestion at hand does what it says —
    /// a timeout raised in its file, a plan saved as a workflow, a failing
    /// run opened — and leaves the list.
    fn accept_suggestion(&mut self) -> Vec<Effect> {
        let Some(i) = self.suggestion_at_hand() else {
            self.say("no suggestion to accept");
            return Vec::new();
        };
        let s = self.suggestions.remove(i);
        self.suggestions_done.insert(s.text.clone());
        match s.remedy {
            crate::engine::suggest::Remedy::ShowRun => {
                self.opened_from_browser = true;
                vec![Effect::OpenRun(s.run)]
            }
            _ => vec![Effect::Remedy(s)],
        }
    }

    /// `d` in the runs browser: the suggestion at hand leaves the list
    /// while this workbench runs.
    fn dismiss_suggestion(&mut self) {
        match self.suggestion_at_hand() {
            Some(i) => {
                let s = self.suggestions.remove(i);
                self.suggestions_done.insert(s.text.clone());
                self.say(format!("dismissed: {}", crate::text::one_line(&s.text, 80)));
            }
            None => self.say("no suggestion to dismiss"),
        }
    }

    fn open_selected_run(&mut self) -> Vec<Effect> {
        match self
            .visible_runs()
            .get(self.runs_cursor)
            .map(|r| r.id.clone())
        {
            Some(id) => {
                self.opened_from_browser = true;
                vec![Effect::OpenRun(id)]
            }
            None => Vec::new(),
        }
    }

    /// The runs the browser lists: every run, or those whose name, id,
    /// workflow or status contain the filter (any case).
    pub fn visible_runs(&self) -> Vec<&crate::journal::RunMeta> {
        let want = self.runs_filter.trim().to_lowercase();
        self.runs
            .iter()
            .filter(|r| {
                want.is_empty()
                    || [
                        r.name.as_str(),
                        r.id.as_str(),
                        r.workflow_id.as_str(),
                        r.status.as_str(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&want))
            })
            .collect()
    }

    /// The focused pane's step, when it is still running or waiting.
    fn focused_running_step(&self) -> Option<crate::protocol::StepKey> {
        self.focused_pane()
            .filter(|p| !p.status.is_terminal())
            .map(|p| p.step.clone())
    }

    /// Asks the app for the memory bank (it calls `set_memory`), or
    /// closes the overlay when it is open.
    fn open_memory(&mut self) -> Vec<Effect> {
        if self.overlay == Some(Overlay::Memory) {
            self.overlay = None;
            return Vec::new();
        }
        vec![Effect::Query(Query::Memory { namespaces: None })]
    }

    /// Keys while the memory overlay is open: move, refresh, close.
    fn memory_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let last = self.memory.len().saturating_sub(1);
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.memory_cursor = self.memory_cursor.saturating_sub(1)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.memory_cursor = (self.memory_cursor + 1).min(last)
            }
            KeyCode::Home | KeyCode::Char('g') => self.memory_cursor = 0,
            KeyCode::End | KeyCode::Char('G') => self.memory_cursor = last,
            KeyCode::Char('r') => return vec![Effect::Query(Query::Memory { namespaces: None })],
            _ => {
                let a = self.keymap.action(&key);
                if matches!(a, Some(Action::Memory | Action::Back | Action::Quit))
                    || key.code == KeyCode::Esc
                {
                    self.overlay = None;
                }
            }
        }
        Vec::new()
    }

    fn toggle_overlay(&mut self, o: Overlay) {
        if o == Overlay::Help {
            self.help_scroll = 0;
        }
        self.overlay = if self.overlay == Some(o) {
            None
        } else {
            Some(o)
        };
    }

    fn toggle_screen(&mut self, s: Screen) {
        self.screen = if self.screen == s { Screen::Panes } else { s };
        self.overview_cursor = self
            .overview_cursor
            .min(self.run.steps.len().saturating_sub(1));
    }

    fn back(&mut self) -> Vec<Effect> {
        if self.overlay.is_some() {
            self.overlay = None;
        } else if self.focus == Focus::Prompt {
            self.focus = Focus::Panes;
        } else if self.screen != Screen::Panes {
            self.screen = Screen::Panes;
        } else if self
            .focused_pane()
            .is_some_and(|p| !p.search.query.is_empty())
        {
            let i = self.focus_pane;
            self.run.panes[i].set_search("");
        } else if self.zoom {
            self.zoom = false;
        } else if self.opened_from_browser {
            return self.back_to_browser();
        }
        Vec::new()
    }

    /// Esc on a run opened from the runs browser: back to the list (fresh
    /// from the journal), unless this workbench executes the run.
    fn back_to_browser(&mut self) -> Vec<Effect> {
        if self.replay.is_none() && self.run.active() {
            self.say("this run executes here: q leaves it (`lev resume` goes on later)");
            return Vec::new();
        }
        self.reset_run();
        self.opened_from_browser = false;
        vec![
            Effect::Query(crate::engine::Query::Runs),
            Effect::Query(crate::engine::Query::Suggestions {
                runs: crate::engine::suggest::RUNS,
            }),
        ]
    }

    /// Focuses the first pane of the grid's next page (after the last
    /// page, the first); says so when every pane is shown already.
    fn next_page(&mut self) {
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        match layout::page(self, area) {
            Some(p) => {
                let next = p.first + p.shown;
                let (grid, _) = layout::grid_panes(self);
                let pos = if next >= p.total { 0 } else { next };
                self.focus_pane = grid.get(pos).copied().unwrap_or(0);
                self.focus = Focus::Panes;
            }
            None => self.say("every pane is on screen"),
        }
    }

    fn cols(&self) -> usize {
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        layout::regions(self, area).cols.max(1)
    }

    fn is_last_col(&self) -> bool {
        if self.layout == PaneLayout::Tabs || self.zoom {
            return self.focus_pane + 1 >= self.run.panes.len();
        }
        let cols = self.cols();
        let (grid, _) = layout::grid_panes(self);
        let at = grid.iter().position(|i| *i == self.focus_pane).unwrap_or(0);
        (at % cols) + 1 == cols || at + 1 >= grid.len()
    }

    /// Moves the focus between the cells of the grid (left, right, up and
    /// down, over the panes it lays out); elsewhere as `focus_by`.
    fn focus_in_grid(&mut self, delta: isize) {
        if self.layout != PaneLayout::Grid
            || self.zoom
            || self.screen != Screen::Panes
            || self.focus != Focus::Panes
        {
            return self.focus_by(delta);
        }
        let (grid, _) = layout::grid_panes(self);
        let Some(at) = grid.iter().position(|i| *i == self.focus_pane) else {
            return self.focus_by(delta);
        };
        let (at, n) = (at as isize, grid.len() as isize);
        let next = if delta.abs() == 1 {
            (at + delta).rem_euclid(n)
        } else {
            (at + delta).clamp(0, n - 1)
        };
        self.focus_pane = grid[next as usize];
    }

    fn focus_by(&mut self, delta: isize) {
        if self.screen != Screen::Panes {
            let n = self.run.steps.len() as isize;
            if n > 0 {
                self.overview_cursor =
                    (self.overview_cursor as isize + delta.signum()).clamp(0, n - 1) as usize;
            }
            return;
        }
        if self.focus == Focus::Prompt {
            self.focus = Focus::Panes;
            return;
        }
        let n = self.run.panes.len() as isize;
        if n == 0 {
            return;
        }
        let next = self.focus_pane as isize + delta;
        self.focus_pane = if delta.abs() == 1 {
            next.rem_euclid(n) as usize
        } else {
            next.clamp(0, n - 1) as usize
        };
    }

    fn scroll(&mut self, how: Scrolling) {
        if self.screen != Screen::Panes {
            match how {
                Scrolling::Rows(d) | Scrolling::Page(d) => self.focus_by(-d),
                Scrolling::Top => self.overview_cursor = 0,
                Scrolling::Bottom => self.overview_cursor = self.run.steps.len().saturating_sub(1),
            }
            return;
        }
        let i = self.focus_pane;
        let (w, h) = pane_viewport(self, i);
        let Some(p) = self.run.panes.get_mut(i) else {
            return;
        };
        match how {
            Scrolling::Rows(d) => p.scroll_by(d, w, h),
            Scrolling::Page(d) => p.scroll_by(d * h.saturating_sub(1).max(1) as isize, w, h),
            Scrolling::Top => p.scroll_to_top(w, h),
            Scrolling::Bottom => p.scroll_to_bottom(),
        }
    }

    fn search_step(&mut self, forward: bool) {
        let i = self.focus_pane;
        let (w, h) = pane_viewport(self, i);
        let Some(p) = self.run.panes.get_mut(i) else {
            return;
        };
        match p.search_step(forward) {
            Some(abs) => p.scroll_to_line(abs, h / 2, w, h),
            None if !p.search.query.is_empty() => {
                let q = p.search.query.clone();
                self.say(format!("no match for {q:?}"));
            }
            None => {}
        }
    }

    fn toggle_tool(&mut self) {
        let i = self.focus_pane;
        let (w, h) = pane_viewport(self, i);
        let Some(p) = self.run.panes.get_mut(i) else {
            return;
        };
        let visible = p.visible_lines(w, h);
        if !p.toggle_tool(&visible) {
            self.say("no tool calls in this pane");
        }
    }

    pub(super) fn start_typing(&mut self, t: Typing, placeholder: &str) {
        let mut ta = TextArea::default();
        ta.set_placeholder_text(placeholder);
        self.textarea = ta;
        self.plan_draft = None;
        self.typing = Some(t);
        if t == Typing::Palette {
            self.overlay = Some(Overlay::Palette);
            self.after_typing();
        }
    }

    fn open_palette(&mut self) {
        self.start_typing(Typing::Palette, "type to filter");
    }

    /// Live updates while typing: palette filter, incremental search.
    pub(super) fn after_typing(&mut self) {
        let text = self.textarea.lines().join(" ");
        match self.typing {
            Some(Typing::Palette) => {
                let runs = (!self.run_open).then_some(self.runs.as_slice());
                let mut entries = palette::entries(&self.keymap, &self.themes, &self.theme, runs);
                if self.focused_agent().is_none() {
                    // Pausing one agent is offered with a running agent in focus.
                    entries.retain(|e| e.item != PaletteItem::Action(Action::PauseAgent));
                }
                self.palette = palette::filter(entries, &text);
                // `spawn CMD`: a program in a new pane of the live run, first.
                if self.run_open
                    && self.replay.is_none()
                    && let Some(spawn) = palette::spawn_entry(&text)
                {
                    self.palette.insert(0, spawn);
                }
                self.palette_cursor = self
                    .palette_cursor
                    .min(self.palette.len().saturating_sub(1));
            }
            Some(Typing::Search) if !self.run_open => {
                // The runs browser filters its list as one types.
                self.runs_filter = text;
                self.runs_cursor = 0;
            }
            Some(Typing::Search) => {
                let i = self.focus_pane;
                if let Some(p) = self.run.panes.get_mut(i) {
                    p.set_search(&text);
                }
            }
            _ => {}
        }
    }

    fn typing_key(&mut self, t: Typing, key: KeyEvent) -> Vec<Effect> {
        if let Typing::EditPlan(i) = t {
            return self.plan_edit_key(i, key);
        }
        match key.code {
            KeyCode::Esc => {
                self.typing = None;
                if t == Typing::Palette {
                    self.overlay = None;
                }
                if t == Typing::Search && !self.run_open {
                    self.runs_filter.clear();
                } else if t == Typing::Search {
                    let i = self.focus_pane;
                    if let Some(p) = self.run.panes.get_mut(i) {
                        p.set_search("");
                    }
                }
                Vec::new()
            }
            KeyCode::Enter => {
                let text = self.textarea.lines().join("\n");
                self.typing = None;
                match t {
                    Typing::Answer(i) => self.send_answer(i, text.trim().to_string()),
                    // Handled by `plan_edit_key` (Enter is a new line there).
                    Typing::EditPlan(_) => Vec::new(),
                    Typing::Message(i) => self.send_message(i, text.trim().to_string()),
                    // The browser keeps its filter (Esc on it clears it).
                    Typing::Search if !self.run_open => Vec::new(),
                    Typing::NewRun => {
                        let what = text.trim();
                        if what.is_empty() {
                            self.say("nothing to start: give a workflow file or an objective");
                            return Vec::new();
                        }
                        self.opened_from_browser = true;
                        self.say(format!("starting {}", crate::text::one_line(what, 60)));
                        vec![Effect::StartRun(what.to_string())]
                    }
                    Typing::Search => {
                        self.search_step(false);
                        Vec::new()
                    }
                    Typing::Palette => {
                        self.overlay = None;
                        match self.palette.get(self.palette_cursor).cloned() {
                            Some(e) => match e.item {
                                PaletteItem::Action(a) => self.handle_action(a),
                                PaletteItem::Run(id) => {
                                    self.opened_from_browser |= !self.run_open;
                                    vec![Effect::OpenRun(id)]
                                }
                                PaletteItem::Theme(name) => vec![Effect::SetTheme(name)],
                                PaletteItem::Spawn(mut words) => match self.run.run.clone() {
                                    Some(run) if !words.is_empty() => {
                                        let command = words.remove(0);
                                        self.say(format!("{command} opens in a new pane"));
                                        vec![Effect::Op(crate::protocol::Op::Spawn {
                                            run,
                                            command,
                                            args: words,
                                        })]
                                    }
                                    _ => Vec::new(),
                                },
                            },
                            None => Vec::new(),
                        }
                    }
                }
            }
            KeyCode::Up if t == Typing::Palette => {
                self.palette_cursor = self.palette_cursor.saturating_sub(1);
                Vec::new()
            }
            KeyCode::Down if t == Typing::Palette => {
                self.palette_cursor =
                    (self.palette_cursor + 1).min(self.palette.len().saturating_sub(1));
                Vec::new()
            }
            _ => {
                self.textarea.input(key);
                self.after_typing();
                Vec::new()
            }
        }
    }

    /// Enter on the overview/timeline: open that step's pane, or in replay
    /// jump playback to where the step first appears.
    fn overview_enter(&mut self) -> Vec<Effect> {
        let Some(row) = self.run.steps.get(self.overview_cursor) else {
            return Vec::new();
        };
        let key = row.key.clone();
        // A declared step may not be named by any event folded so far.
        let first = self
            .replay
            .as_ref()
            .and_then(|r| r.first_naming(&key))
            .unwrap_or(row.first_index);
        if self.replay.is_some() {
            self.replay_jump(first + 1);
        }
        if let Some(i) = self.run.pane_index(&key) {
            self.focus_pane = i;
            self.screen = Screen::Panes;
        }
        Vec::new()
    }

    pub(super) fn handle_mouse(&mut self, m: MouseEvent) {
        if !self.run_open || self.screen != Screen::Panes {
            return;
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        let reg = layout::regions(self, area);
        let at = Position::new(m.column, m.row);
        let hit = reg
            .panes
            .iter()
            .find(|(_, r)| r.contains(at))
            .map(|(i, _)| *i);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                // A click moves the focus: a selection belongs to its pane.
                self.selection = None;
                let tab = reg.tabs.filter(|t| t.contains(at)).and_then(|t| {
                    layout::tab_slots(self, t)
                        .1
                        .into_iter()
                        .find(|s| m.column >= s.x && m.column < s.x + s.width)
                });
                let shelved = reg.shelf.filter(|s| s.contains(at)).and_then(|_| {
                    reg.shelved
                        .iter()
                        .find(|s| m.column >= s.x && m.column < s.x + s.width)
                });
                if let Some(t) = tab.or(shelved.copied()) {
                    self.focus_pane = t.pane;
                    self.focus = Focus::Panes;
                } else if let Some(i) = hit {
                    if self.terminal_input.is_some_and(|t| t != i) {
                        // Clicking another pane leaves the program's terminal.
                        self.terminal_input = None;
                    }
                    self.focus_pane = i;
                    self.focus = Focus::Panes;
                } else if reg.sidebar.is_some_and(|s| s.contains(at)) && self.pending_count() > 0 {
                    self.focus_prompt(None);
                }
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                if let Some(i) = hit {
                    let (w, h) = pane_viewport(self, i);
                    let d = if m.kind == MouseEventKind::ScrollUp {
                        3
                    } else {
                        -3
                    };
                    if let Some(p) = self.run.panes.get_mut(i) {
                        p.scroll_by(d, w, h);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Scrolling requests, in rows or pages (positive = up).
enum Scrolling {
    Rows(isize),
    Page(isize),
    Top,
    Bottom,
}

/// Keys that work even when the keymap leaves them unbound.
fn fallback_action(key: &KeyEvent) -> Option<Action> {
    Some(match key.code {
        KeyCode::Esc => Action::Back,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home => Action::Top,
        KeyCode::End => Action::Bottom,
        KeyCode::Up => Action::ScrollUp,
        KeyCode::Down => Action::ScrollDown,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Enter => Action::ToggleToolDetails,
        _ => return None,
    })
}
