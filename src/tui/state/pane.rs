//! One agent pane: the bounded scrollback of a step (streamed tokens, final
//! replies, tool calls, shell output), its scroll position and its search.
//! Token deltas are appended to the open line, so streaming allocates lines
//! only at newlines.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::scroll::Scroll;
use crate::protocol::{Attempt, Millis, StepKey, StepStatus, Usage};

/// Lines kept per pane by default (`tui.scrollback_lines`); older ones are
/// dropped from the front. A line costs its text plus ≈ 32 bytes, so a
/// pane of 100,000 lines of 80 characters holds ≈ 11 MB.
pub const MAX_LINES: usize = 100_000;

/// What a line is, for styling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Text,
    /// A ``` fence line.
    Fence,
    /// Inside a fenced code block.
    Code,
    DiffAdd,
    DiffDel,
    /// Header of tool call `n` (index into `Pane::tools`).
    Tool(usize),
    Stdout,
    Stderr,
    /// Lifecycle notes written by the workbench (attempt separators, exits).
    Note,
    Error,
}

/// One line of scrollback.
#[derive(Debug, Clone, PartialEq)]
pub struct PaneLine {
    pub text: String,
    pub kind: LineKind,
    /// Its wrapped rows at the width they were last counted for.
    rows: RowsMemo,
}

impl PaneLine {
    pub fn new(text: String, kind: LineKind) -> PaneLine {
        PaneLine {
            text,
            kind,
            rows: RowsMemo::default(),
        }
    }
}

/// A line's wrapped row count at one width, so scrolling to the top of a
/// 100,000-line pane sums counts instead of wrapping every line again. It
/// is keyed by the text's length too: a line's text only ever grows (a
/// stream appends to the open line), so a changed length means a stale
/// count. Not part of a line's equality.
#[derive(Debug, Clone, Default)]
struct RowsMemo(std::cell::Cell<(u16, u16, u32)>);

impl RowsMemo {
    fn get(&self, width: usize, len: usize) -> Option<usize> {
        let (w, rows, l) = self.0.get();
        (w != 0 && usize::from(w) == width && l as usize == len).then_some(usize::from(rows))
    }

    /// Remembers a count; one that does not fit (a line of more than
    /// 65,535 rows, 4 GiB of text) is counted again when asked.
    fn set(&self, width: usize, len: usize, rows: usize) {
        if let (Ok(w), Ok(r), Ok(l)) = (
            u16::try_from(width),
            u16::try_from(rows),
            u32::try_from(len),
        ) {
            self.0.set((w, r, l));
        }
    }
}

impl PartialEq for RowsMemo {
    fn eq(&self, _: &RowsMemo) -> bool {
        true
    }
}

/// A tool call shown as a collapsible line.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolView {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    /// `None` while the tool runs.
    pub output: Option<String>,
    pub is_error: bool,
    pub expanded: bool,
}

impl ToolView {
    /// Detail rows shown under the header when expanded.
    pub fn detail_lines(&self) -> Vec<String> {
        let mut out = vec![format!("  args: {}", self.arguments)];
        match &self.output {
            Some(o) => {
                for l in o.lines() {
                    out.push(format!("  │ {l}"));
                }
            }
            None => out.push("  │ (running)".to_string()),
        }
        out
    }
}

/// Search over the pane's lines (absolute line numbers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    pub query: String,
    pub matches: Vec<u64>,
    pub current: Option<usize>,
}

/// An agent/step pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Pane {
    pub step: StepKey,
    pub kind: String,
    pub mode: Option<String>,
    pub attempt: Attempt,
    pub status: StepStatus,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// Usage summed over all attempts.
    pub usage: Usage,
    pub lines: VecDeque<PaneLine>,
    /// Lines kept at most (`tui.scrollback_lines`).
    max_lines: usize,
    /// Lines dropped from the front (absolute number of `lines[0]`).
    pub dropped: u64,
    pub tools: Vec<ToolView>,
    /// Paused alone by the user (an agent holding before its next request).
    pub paused: bool,
    /// It was running when the run stopped executing (paused, stopped,
    /// ended): shown stopped, its clock still, until it starts again.
    pub halted: bool,
    /// The last line is still being appended to.
    open: bool,
    /// Absolute line where this turn's streamed tokens start (replaced by the reply).
    live_start: Option<u64>,
    /// Fence state after the last closed line, and at `live_start`.
    in_code: bool,
    live_in_code: bool,
    /// Shell output was streamed for the current attempt (so tails are not repeated).
    shell_streamed: bool,
    /// Makes streamed text terminal-safe; keeps its place inside an escape
    /// sequence that a delta boundary cut in two.
    clean: crate::text::Sanitizer,
    pub scroll: Scroll,
    pub search: Search,
    /// Set when the pane is a swarm agent slot's (it shows the slot's
    /// tasks one after another; `step` is the current one).
    pub slot: Option<super::swarm::SlotPane>,
    /// What each of its requests was made of (`context_assembled`), by
    /// turn, for the context inspector.
    pub contexts: Vec<ContextView>,
    /// FlowMind's latest progress ledger about it, in a few words.
    pub ledger: Option<String>,
    /// A `pty` step's terminal, while its program runs (drawn instead of
    /// the lines).
    pub terminal: Option<super::terminal::TerminalView>,
    /// What that program is doing, as its hooks or screen tell.
    pub terminal_state: Option<crate::protocol::TerminalState>,
    /// Bytes the program wrote, and as many at the workbench's last tick:
    /// a program that wrote nothing since shows no spinner (and asks for
    /// no animation frames).
    terminal_bytes: u64,
    terminal_bytes_at_tick: u64,
    pub terminal_active: bool,
}

/// One request of an agent as the context inspector shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextView {
    pub attempt: Attempt,
    pub turn: u32,
    pub counter: String,
    pub budget: Option<u64>,
    pub total: u64,
    pub parts: Vec<crate::protocol::ContextPart>,
    pub left_out: Vec<crate::protocol::LeftOut>,
}

impl Pane {
    /// Keeps at most `lines` lines of scrollback (at least one).
    pub fn with_max_lines(mut self, lines: usize) -> Pane {
        self.max_lines = lines.max(1);
        self
    }

    pub fn new(
        step: StepKey,
        kind: String,
        mode: Option<String>,
        attempt: Attempt,
        at: Millis,
    ) -> Pane {
        Pane {
            step,
            kind,
            mode,
            attempt,
            status: StepStatus::Running,
            started_at: at,
            finished_at: None,
            usage: Usage::default(),
            lines: VecDeque::new(),
            max_lines: MAX_LINES,
            dropped: 0,
            tools: Vec::new(),
            paused: false,
            halted: false,
            open: false,
            live_start: None,
            in_code: false,
            live_in_code: false,
            shell_streamed: false,
            clean: crate::text::Sanitizer::default(),
            scroll: Scroll::default(),
            search: Search::default(),
            slot: None,
            contexts: Vec::new(),
            ledger: None,
            terminal: None,
            terminal_state: None,
            terminal_bytes: 0,
            terminal_bytes_at_tick: 0,
            terminal_active: false,
        }
    }

    /// The pane goes on with another step (a swarm slot's next task): the
    /// scrollback stays, the per-step state starts over.
    pub(super) fn start_section(&mut self, step: StepKey, at: Millis) {
        self.close_open();
        self.step = step;
        self.attempt = Attempt(1);
        self.status = StepStatus::Running;
        self.started_at = at;
        self.finished_at = None;
        self.paused = false;
        self.shell_streamed = false;
        self.clean.reset();
        self.live_start = None;
        self.in_code = false;
    }

    /// A new attempt of the same step starts in the same pane.
    pub fn restart(&mut self, attempt: Attempt, at: Millis) {
        self.close_open();
        self.attempt = attempt;
        self.status = StepStatus::Running;
        self.started_at = at;
        self.finished_at = None;
        self.shell_streamed = false;
        self.clean.reset();
        self.live_start = None;
        self.push(format!("── attempt {attempt} ──"), LineKind::Note);
    }

    /// Absolute number one past the last line.
    pub fn end(&self) -> u64 {
        self.dropped + self.lines.len() as u64
    }

    /// The line with absolute number `abs`, if still kept.
    pub fn line(&self, abs: u64) -> Option<&PaneLine> {
        abs.checked_sub(self.dropped)
            .and_then(|i| self.lines.get(i as usize))
    }

    /// Appends streamed tokens to the open text line.
    pub fn push_tokens(&mut self, text: &str) {
        if self.live_start.is_none() {
            self.close_open();
            self.live_start = Some(self.end());
            self.live_in_code = self.in_code;
        }
        self.append_stream(text, LineKind::Text);
    }

    /// Appends streamed shell output.
    pub fn push_shell(&mut self, text: &str, stderr: bool) {
        self.shell_streamed = true;
        let kind = if stderr {
            LineKind::Stderr
        } else {
            LineKind::Stdout
        };
        self.append_stream(text, kind);
    }

    /// The final reply replaces whatever was streamed for it.
    pub fn replace_live(&mut self, text: &str) {
        if let Some(start) = self.live_start.take() {
            let keep = start.saturating_sub(self.dropped) as usize;
            self.lines.truncate(keep);
            self.in_code = self.live_in_code;
            self.search.matches.retain(|m| *m < start);
            if self
                .search
                .current
                .is_some_and(|c| c >= self.search.matches.len())
            {
                self.search.current = None;
            }
        }
        self.open = false;
        self.clean.reset();
        for l in safe(text).lines() {
            self.push_text(l);
        }
    }

    /// Adds a tool call header line; returns its index.
    pub fn add_tool(&mut self, call_id: &str, name: &str, arguments: &str) -> usize {
        self.close_open();
        let idx = self.tools.len();
        self.tools.push(ToolView {
            call_id: call_id.to_string(),
            name: safe(name).into_owned(),
            arguments: safe(arguments).into_owned(),
            output: None,
            is_error: false,
            expanded: false,
        });
        let text = tool_header(&self.tools[idx]);
        self.push(text, LineKind::Tool(idx));
        idx
    }

    /// The call still waiting for its result under this provider id.
    /// Providers reuse ids (`call_1` every turn, or within one reply), so a
    /// finished call is never matched again, and results arrive in order.
    pub fn tool_by_call(&self, call_id: &str) -> Option<usize> {
        self.tools
            .iter()
            .position(|t| t.call_id == call_id && t.output.is_none())
    }

    /// Records a tool result and refreshes its header line.
    pub fn finish_tool(&mut self, idx: usize, arguments: &str, output: &str, is_error: bool) {
        let Some(t) = self.tools.get_mut(idx) else {
            return;
        };
        if t.arguments.is_empty() {
            t.arguments = safe(arguments).into_owned();
        }
        t.output = Some(safe(output).into_owned());
        t.is_error = is_error;
        let header = tool_header(t);
        if let Some(line) = self
            .lines
            .iter_mut()
            .rev()
            .find(|l| l.kind == LineKind::Tool(idx))
        {
            line.text = header;
        }
    }

    /// Shell tails are shown only when nothing was streamed (replay, resume).
    pub fn shell_finished(&mut self, stdout: &str, stderr: &str, summary: String, failed: bool) {
        self.close_open();
        self.clean.reset();
        if !self.shell_streamed {
            for l in safe(stdout).lines() {
                self.push(l.to_string(), LineKind::Stdout);
            }
            for l in safe(stderr).lines() {
                self.push(l.to_string(), LineKind::Stderr);
            }
        }
        let kind = if failed {
            LineKind::Error
        } else {
            LineKind::Note
        };
        self.push(summary, kind);
    }

    /// A `pty` step's program starts in a terminal of this size.
    pub fn open_terminal(&mut self, rows: u16, cols: u16) {
        self.terminal = Some(super::terminal::TerminalView::new(
            rows,
            cols,
            self.max_lines,
        ));
        self.terminal_state = Some(crate::protocol::TerminalState::Running);
    }

    /// What the program wrote; a terminal is opened for output that comes
    /// before its launch is known (a workbench that attached late).
    pub fn push_terminal(&mut self, bytes: &[u8]) {
        let max_lines = self.max_lines;
        self.terminal
            .get_or_insert_with(|| super::terminal::TerminalView::new(24, 80, max_lines))
            .feed(bytes);
        self.terminal_bytes += bytes.len() as u64;
        self.terminal_active = true;
    }

    /// The workbench's clock ticked: whether the program wrote since the last tick.
    pub(super) fn terminal_tick(&mut self) {
        self.terminal_active = self.terminal_bytes != self.terminal_bytes_at_tick;
        self.terminal_bytes_at_tick = self.terminal_bytes;
    }

    /// The program's screen, once it has drawn anything (a pane of an
    /// interrupted run shows its lines, the launch among them, instead of
    /// an empty terminal).
    pub fn drawn_terminal(&self) -> Option<&super::terminal::TerminalView> {
        self.terminal.as_ref().filter(|_| self.terminal_bytes > 0)
    }

    /// The same, to scroll or search it: a pane that shows its lines
    /// scrolls and searches its lines.
    pub(super) fn drawn_terminal_mut(&mut self) -> Option<&mut super::terminal::TerminalView> {
        self.terminal.as_mut().filter(|_| self.terminal_bytes > 0)
    }

    /// Something in it moves: a running step, unless it is a program that
    /// has drawn nothing lately.
    pub fn spins(&self) -> bool {
        !self.status.is_terminal() && (self.terminal.is_none() || self.terminal_active)
    }

    /// The program ended: its terminal gives way to the transcript's lines.
    pub fn terminal_finished(&mut self, transcript: &str, summary: String) {
        self.close_open();
        self.terminal = None;
        self.terminal_state = Some(crate::protocol::TerminalState::Exited);
        for l in safe(transcript).lines() {
            self.push(l.to_string(), LineKind::Stdout);
        }
        self.push(summary, LineKind::Note);
    }

    /// A closed line of workbench text.
    pub fn note(&mut self, text: String, kind: LineKind) {
        self.close_open();
        for l in safe(&text).lines() {
            self.push(l.to_string(), kind);
        }
    }

    fn append_stream(&mut self, text: &str, kind: LineKind) {
        let mut clean = String::with_capacity(text.len());
        self.clean.push(text, &mut clean);
        let text = clean.as_str();
        if self.open
            && self
                .lines
                .back()
                .is_some_and(|l| l.kind != kind && !is_textish(l.kind, kind))
        {
            self.close_open();
        }
        let mut parts = text.split('\n');
        if let Some(first) = parts.next() {
            if self.open {
                if let Some(last) = self.lines.back_mut() {
                    last.text.push_str(first);
                }
            } else {
                self.push_raw(first.to_string(), kind);
                self.open = true;
            }
        }
        for part in parts {
            self.close_open();
            self.push_raw(part.to_string(), kind);
            self.open = true;
        }
    }

    /// Closes the open line, classifying text lines (fences, code, diffs).
    fn close_open(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let in_code = self.in_code;
        if let Some(last) = self.lines.back_mut()
            && last.kind == LineKind::Text
        {
            let (kind, after) = classify(&last.text, in_code);
            last.kind = kind;
            self.in_code = after;
        }
        self.index_search(self.end().saturating_sub(1));
    }

    /// Adds closed line `abs` to the active search's matches when it matches,
    /// so `n`/`N` reach output that arrived after the search started.
    fn index_search(&mut self, abs: u64) {
        if self.search.query.is_empty() || self.search.matches.last().is_some_and(|m| *m >= abs) {
            return;
        }
        let q = self.search.query.to_lowercase();
        if self
            .line(abs)
            .is_some_and(|l| l.text.to_lowercase().contains(&q))
        {
            self.search.matches.push(abs);
        }
    }

    fn push_text(&mut self, text: &str) {
        let (kind, after) = classify(text, self.in_code);
        self.in_code = after;
        self.push(text.to_string(), kind);
    }

    /// Pushes a closed line.
    fn push(&mut self, text: String, kind: LineKind) {
        self.push_raw(text, kind);
        self.index_search(self.end().saturating_sub(1));
    }

    fn push_raw(&mut self, mut text: String, kind: LineKind) {
        // Every way into the scrollback passes here: a line holds no
        // control character (callers split at line breaks first).
        if text.chars().any(crate::text::is_unsafe_char) {
            let clean = safe(&text).replace('\n', " ");
            text = clean;
        }
        self.lines.push_back(PaneLine::new(text, kind));
        while self.lines.len() > self.max_lines {
            self.lines.pop_front();
            self.dropped += 1;
        }
        if let Some(first) = self.search.matches.first()
            && *first < self.dropped
        {
            let dropped = self.dropped;
            self.search.matches.retain(|m| *m >= dropped);
            self.search.current = None;
        }
    }

    /// Display kind of the open (still streaming) last line.
    pub fn open_kind(&self) -> Option<LineKind> {
        if !self.open {
            return None;
        }
        let last = self.lines.back()?;
        if last.kind == LineKind::Text {
            Some(classify(&last.text, self.in_code).0)
        } else {
            Some(last.kind)
        }
    }

    /// Runs the search for `query` (case-insensitive) over all kept lines.
    pub fn set_search(&mut self, query: &str) {
        let q = query.to_lowercase();
        self.search.query = query.to_string();
        self.search.matches.clear();
        self.search.current = None;
        if q.is_empty() {
            return;
        }
        if let Some(view) = self.drawn_terminal_mut() {
            // A program's pane searches what its terminal keeps.
            for (i, row) in view.rows().iter().enumerate() {
                if row.to_lowercase().contains(&q) {
                    self.search.matches.push(i as u64);
                }
            }
            return;
        }
        for (i, l) in self.lines.iter().enumerate() {
            if l.text.to_lowercase().contains(&q) {
                self.search.matches.push(self.dropped + i as u64);
            }
        }
    }

    /// Moves to the next (or previous) match; returns its absolute line.
    pub fn search_step(&mut self, forward: bool) -> Option<u64> {
        let n = self.search.matches.len();
        if n == 0 {
            return None;
        }
        let next = match (self.search.current, forward) {
            // The first jump goes to the newest match: that is where the eye is.
            (None, _) => n - 1,
            (Some(c), true) => (c + 1) % n,
            (Some(c), false) => (c + n - 1) % n,
        };
        self.search.current = Some(next);
        self.search.matches.get(next).copied()
    }

    /// Display rows of line `abs` at `width` (wrapped, plus tool details).
    pub fn rows_of(&self, abs: u64, width: usize) -> usize {
        if let Some(l) = self.line(abs)
            && !matches!(l.kind, LineKind::Tool(_))
        {
            // A text line shows its text alone (`display_texts`).
            if let Some(rows) = l.rows.get(width, l.text.len()) {
                return rows;
            }
            let rows = wrapped_rows(&l.text, width);
            l.rows.set(width, l.text.len(), rows);
            return rows;
        }
        self.display_texts(abs)
            .iter()
            .map(|t| wrapped_rows(t, width))
            .sum()
    }

    /// What line `abs` shows, before wrapping: its text, or for a tool
    /// call its header with the fold mark and, expanded, its details. The
    /// renderer draws exactly these, so rows counted here are rows drawn.
    pub fn display_texts(&self, abs: u64) -> Vec<Cow<'_, str>> {
        let Some(l) = self.line(abs) else {
            return Vec::new();
        };
        let LineKind::Tool(i) = l.kind else {
            return vec![Cow::Borrowed(l.text.as_str())];
        };
        let tool = self.tools.get(i);
        let open = tool.is_some_and(|t| t.expanded);
        // The fold mark stays with the call's name when the header wraps.
        let mut texts = vec![Cow::Owned(format!(
            "{}{}{}",
            if open { "▾" } else { "▸" },
            crate::text::NO_BREAK_SPACE,
            l.text
        ))];
        if let Some(t) = tool.filter(|t| t.expanded) {
            texts.extend(t.detail_lines().into_iter().map(Cow::Owned));
        }
        texts
    }

    /// The index of the newest tool call whose header is visible (or the newest one).
    pub fn toggle_tool(&mut self, visible: &[u64]) -> bool {
        let from_view = visible
            .iter()
            .rev()
            .find_map(|a| match self.line(*a)?.kind {
                LineKind::Tool(i) => Some(i),
                _ => None,
            });
        let Some(i) = from_view.or(self.tools.len().checked_sub(1)) else {
            return false;
        };
        if let Some(t) = self.tools.get_mut(i) {
            t.expanded = !t.expanded;
        }
        true
    }
}

/// Stream kinds that share the open text line.
fn is_textish(a: LineKind, b: LineKind) -> bool {
    let t = |k| {
        matches!(
            k,
            LineKind::Text
                | LineKind::Code
                | LineKind::Fence
                | LineKind::DiffAdd
                | LineKind::DiffDel
        )
    };
    t(a) && t(b)
}

/// Kind of a text line given whether a fence is open before it; returns the
/// state after it.
pub fn classify(text: &str, in_code: bool) -> (LineKind, bool) {
    if text.trim_start().starts_with("```") {
        return (LineKind::Fence, !in_code);
    }
    let kind = if text.starts_with('+') && !text.starts_with("+++") {
        LineKind::DiffAdd
    } else if text.starts_with('-') && !text.starts_with("---") {
        LineKind::DiffDel
    } else if in_code {
        LineKind::Code
    } else {
        LineKind::Text
    };
    (kind, in_code)
}

/// Rows a line takes when wrapped at `width` columns (as it is drawn:
/// `text::wrap`).
pub fn wrapped_rows(text: &str, width: usize) -> usize {
    crate::text::rows(text, width)
}

/// Text from a step (reply, output, tool call) made terminal-safe.
fn safe(text: &str) -> Cow<'_, str> {
    crate::text::sanitize(text)
}

fn tool_header(t: &ToolView) -> String {
    let args = crate::text::one_line(&t.arguments, 60);
    let result = match &t.output {
        None => "…".to_string(),
        Some(o) => {
            let status = if t.is_error { "error" } else { "ok" };
            format!("{status}: {}", crate::text::one_line(o, 60))
        }
    };
    format!("{}({args}) → {result}", t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane() -> Pane {
        Pane::new(
            StepKey::new("a"),
            "agent".into(),
            None,
            Attempt(1),
            Millis(0),
        )
    }

    /// The remembered row count of a line follows its text as a stream
    /// grows it, and the width it is asked for.
    #[test]
    fn a_lines_row_count_follows_its_growing_text_and_the_width() {
        let mut p = pane();
        p.push_tokens("one two ");
        assert_eq!(p.rows_of(0, 4), 2);
        p.push_tokens("three four five");
        let text = p.lines[0].text.clone();
        assert_eq!(p.rows_of(0, 4), wrapped_rows(&text, 4));
        assert_eq!(p.rows_of(0, 10), wrapped_rows(&text, 10));
        assert_eq!(p.rows_of(0, 4), wrapped_rows(&text, 4));
    }

    #[test]
    fn tokens_coalesce_into_lines_and_reply_replaces_them() {
        let mut p = pane();
        p.push_tokens("hel");
        p.push_tokens("lo\nwor");
        p.push_tokens("ld");
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[1].text, "world");
        p.replace_live("hello\nworld!\n```\ncode\n```\n+added");
        let kinds: Vec<LineKind> = p.lines.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            vec![
                LineKind::Text,
                LineKind::Text,
                LineKind::Fence,
                LineKind::Code,
                LineKind::Fence,
                LineKind::DiffAdd
            ]
        );
    }

    #[test]
    fn streamed_escapes_cut_between_deltas_leave_no_trace() {
        let mut p = pane();
        p.push_shell("before\x1b]52;c;ZXZp", false);
        p.push_shell("bA==\x07after\x1b[", false);
        p.push_shell("2J\rline\x07\n", false);
        p.push_tokens("tok\u{9b}3");
        p.push_tokens("1mred\u{202e}");
        p.note("note \x1b]0;title\x07end".into(), LineKind::Note);
        let texts: Vec<&str> = p.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["beforeafter", "line␇", "", "tokred", "note end"]);
        p.add_tool("c1", "run_shell", "{\"cmd\":\"\x1b[2J\"}");
        p.finish_tool(0, "", "out\x1b]0;t\x07put", false);
        let t = &p.tools[0];
        assert!(!t.arguments.contains('\x1b') && t.output.as_deref() == Some("output"));
    }

    #[test]
    fn search_picks_up_lines_that_arrive_later() {
        let mut p = pane();
        p.note("an error here".into(), LineKind::Note);
        p.set_search("ERROR");
        assert_eq!(p.search.matches, vec![0]);
        p.push_shell("ok\nanother error\n", false);
        p.note("fine".into(), LineKind::Note);
        assert_eq!(p.search.matches, vec![0, 2]);
        // Streamed tokens that the final reply replaces leave no stale match.
        p.push_tokens("error in draft\n");
        assert_eq!(p.search.matches, vec![0, 2, 5]);
        p.replace_live("clean reply");
        assert_eq!(p.search.matches, vec![0, 2]);
    }

    #[test]
    fn scrollback_is_bounded_and_search_keeps_absolute_lines() {
        let mut p = pane();
        for i in 0..(MAX_LINES + 10) {
            p.note(format!("line {i}"), LineKind::Note);
        }
        assert_eq!(p.lines.len(), MAX_LINES);
        assert_eq!(p.dropped, 10);
        p.set_search("line 10");
        assert_eq!(p.search.matches.first(), Some(&10));
        assert_eq!(p.line(10).map(|l| l.text.as_str()), Some("line 10"));
    }
}
