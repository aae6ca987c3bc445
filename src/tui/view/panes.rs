//! Agent panes: the tab bar, bordered panes (tabs, grid, zoom) with their
//! titles, and pane bodies (wrapped scrollback, styled code/diff/tool/shell
//! lines, search highlights).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::protocol::StepStatus;
use crate::tui::state::layout::{Regions, SHELF_LABEL, grid_panes, pane_body, tab_slots};
use crate::tui::state::{Focus, LineKind, Pane, RowPos, Selection, State};
use crate::tui::theme::Theme;

use super::{clip, fmt_count, fmt_secs, fmt_usage, pane_glyph, pane_state_word};

pub fn draw(state: &State, theme: &Theme, reg: &Regions, buf: &mut Buffer) {
    if state.run.panes.is_empty() {
        let msg = if state.run.status.is_some() {
            "waiting for the first step to start…"
        } else {
            "no run events yet"
        };
        Paragraph::new(msg)
            .style(theme.style("dim"))
            .block(
                Block::bordered()
                    .border_type(theme.border_type())
                    .border_style(theme.style("border")),
            )
            .render(reg.main, buf);
        return;
    }
    if let Some(t) = reg.tabs {
        tab_bar(state, theme, t, buf);
    }
    for (i, r) in &reg.panes {
        if let Some(p) = state.run.panes.get(*i) {
            let focused = *i == state.focus_pane && state.focus == Focus::Panes;
            pane(state, theme, p, focused, *r, buf);
        }
    }
    if let Some(shelf) = reg.shelf {
        shelf_row(state, theme, reg, shelf, buf);
    }
}

/// The panes moved aside while the run goes on: number, glyph and name,
/// each a key (its number) or a click away from its cell.
fn shelf_row(state: &State, theme: &Theme, reg: &Regions, area: Rect, buf: &mut Buffer) {
    buf.set_stringn(
        area.x,
        area.y,
        SHELF_LABEL,
        area.width as usize,
        theme.style("dim"),
    );
    for t in &reg.shelved {
        let Some(p) = state.run.panes.get(t.pane) else {
            continue;
        };
        let line = Line::from(vec![
            Span::styled(format!(" {} ", t.pane + 1), theme.style("dim")),
            Span::styled(
                pane_glyph(state, theme, p).to_string(),
                super::status_style(theme, p.status),
            ),
            Span::styled(format!(" {} ", p.label()), theme.style("dim")),
        ]);
        let right = area.x + area.width;
        if t.x < right {
            buf.set_line(t.x, area.y, &line, right - t.x);
        }
    }
    let (_, aside) = grid_panes(state);
    let hidden = aside
        .iter()
        .filter(|i| {
            !reg.panes.iter().any(|(p, _)| p == *i) && !reg.shelved.iter().any(|t| t.pane == **i)
        })
        .count();
    if hidden > 0 {
        let x = reg
            .shelved
            .last()
            .map_or(area.x + SHELF_LABEL.len() as u16, |t| t.x + t.width);
        let right = area.x + area.width;
        if x < right {
            buf.set_stringn(
                x,
                area.y,
                format!(" +{hidden}"),
                usize::from(right - x),
                theme.style("dim"),
            );
        }
    }
}

fn tab_bar(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let (first, tabs) = tab_slots(state, area);
    if first > 0 {
        buf.set_string(area.x, area.y, "‹", theme.style("dim"));
    }
    if tabs
        .last()
        .is_some_and(|t| t.pane + 1 < state.run.panes.len())
        && area.width > 0
    {
        buf.set_string(area.x + area.width - 1, area.y, "›", theme.style("dim"));
    }
    for t in &tabs {
        let Some(p) = state.run.panes.get(t.pane) else {
            continue;
        };
        let style = theme.style(if t.pane == state.focus_pane {
            "tab.active"
        } else {
            "tab"
        });
        let needs = state.run.needs_input(&p.step);
        let status = if needs { StepStatus::Waiting } else { p.status };
        let attention = if needs { "!" } else { "" };
        let line = Line::from(vec![
            Span::styled(format!(" {} ", t.pane + 1), style),
            Span::styled(
                pane_glyph(state, theme, p).to_string(),
                style.patch(super::status_style(theme, status)),
            ),
            Span::styled(format!(" {}{attention} ", p.label()), style),
            Span::styled("│", theme.style("dim")),
        ]);
        let right = area.x + area.width;
        if t.x < right {
            buf.set_line(t.x, area.y, &line, right - t.x);
        }
    }
}

/// Title: glyph, step, mode, attempt, elapsed, usage and state, shortened
/// (mode, then usage go first) until it fits in `room` columns.
fn title(state: &State, theme: &Theme, p: &Pane, room: usize, focused: bool) -> Line<'static> {
    let glyph = pane_glyph(state, theme, p).to_string();
    let mode = p.mode.as_deref().unwrap_or(p.kind.as_str());
    // The mode is shown when it adds something to the step's name.
    let mode = if mode == p.step.as_str() {
        String::new()
    } else {
        format!(" ({mode})")
    };
    let end = p.finished_at.unwrap_or(state.now());
    let elapsed = fmt_secs(end.0.saturating_sub(p.started_at.0));
    let usage = format!(" · {}", fmt_usage(&p.usage));
    let word = pane_state_word(state, p);
    let word = if word == "running" {
        String::new()
    } else {
        format!(" · {word}")
    };
    // FlowMind's latest ledger, while the agent runs, when there is room.
    let ledger = match &p.ledger {
        Some(l) if !p.status.is_terminal() => format!(" · FlowMind: {l}"),
        _ => String::new(),
    };
    let (step, attempt) = (&p.step, p.attempt);
    let variants = match slot_title(p) {
        // A slot keeps its spend longest: it is what a swarm is watched for.
        Some(v) => {
            let tokens = format!(
                " · {}{} tok",
                p.usage.estimate_mark(),
                fmt_count(p.usage.total_tokens())
            );
            vec![
                format!(" {} · {elapsed}{usage}{word}{ledger} ", v.long),
                format!(" {} · {elapsed}{usage}{word} ", v.long),
                format!(" {} · {elapsed}{usage}{word} ", v.short),
                format!(" {}{usage}{word} ", v.short),
                format!(" {}{usage} ", v.short),
                format!(" {}{tokens} ", v.short),
                format!(" {}{tokens} ", v.tiny),
                format!(" {} ", v.tiny),
            ]
        }
        None => vec![
            format!(" {step}{mode} #{attempt} · {elapsed}{usage}{word}{ledger} "),
            format!(" {step}{mode} #{attempt} · {elapsed}{usage}{word} "),
            format!(" {step} #{attempt} · {elapsed}{usage}{word} "),
            format!(" {step} #{attempt} · {elapsed}{word} "),
            format!(" {step} #{attempt} · {elapsed} "),
        ],
    };
    let room = room.saturating_sub(glyph.chars().count() + 1);
    let rest = match variants.iter().find(|t| t.chars().count() <= room) {
        Some(t) => t.clone(),
        None => clip(variants.last().map_or("", String::as_str), room),
    };
    let status = if state.run.needs_input(&p.step) {
        crate::protocol::StepStatus::Waiting
    } else {
        p.status
    };
    // The step name takes its agent mode's colour unless the pane is focused.
    let rest_style = if focused {
        theme.style("title.focused")
    } else {
        match p.mode.as_deref() {
            Some(m) => theme.style(&format!("agent.{m}")),
            None => theme.style("title"),
        }
    };
    Line::from(vec![
        Span::raw(" "),
        Span::styled(glyph, super::status_style(theme, status)),
        Span::styled(rest, rest_style),
    ])
}

/// The start of a slot pane's title, long and short.
struct SlotTitle {
    /// `slot 2 · coder · task login-api (#3 on this slot) · stolen from slot 1`
    long: String,
    /// `slot 2 · login-api #3 · stolen from slot 1`
    short: String,
    /// `s2 login-api #3 ←1`
    tiny: String,
}

/// The slot, mode, task and its number on the slot; that the task was
/// stolen while it runs; the attempt when it is a retry. Spend follows in
/// the title: the pane's usage sums the slot's tasks.
fn slot_title(p: &Pane) -> Option<SlotTitle> {
    let slot = p.slot.as_ref()?;
    let task = slot.current()?;
    let n = slot.tasks.len();
    let stolen = task.stolen_from.filter(|_| !p.status.is_terminal());
    let (stolen_long, stolen_tiny) = match stolen {
        Some(s) => (format!(" · stolen from slot {s}"), format!(" ←{s}")),
        None => (String::new(), String::new()),
    };
    let retry = if p.attempt.0 > 1 {
        format!(" · attempt {}", p.attempt)
    } else {
        String::new()
    };
    Some(SlotTitle {
        long: format!(
            "slot {} · {} · task {} (#{n} on this slot){stolen_long}{retry}",
            slot.slot, task.mode, task.task
        ),
        short: format!("slot {} · {} #{n}{stolen_long}", slot.slot, task.task),
        tiny: format!("s{} {} #{n}{stolen_tiny}", slot.slot, task.task),
    })
}

fn pane(state: &State, theme: &Theme, p: &Pane, focused: bool, area: Rect, buf: &mut Buffer) {
    let border = if focused {
        "border.focused"
    } else if state.run.needs_input(&p.step) {
        "border.attention"
    } else {
        "border"
    };
    let inner = pane_body(area);
    let top = p.view_top(inner.width as usize, inner.height as usize);
    let mut block = Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style(border))
        .title(title(
            state,
            theme,
            p,
            area.width.saturating_sub(4) as usize,
            focused,
        ));
    let selection = state.selection.filter(|_| focused);
    let room = usize::from(area.width.saturating_sub(2));
    if let Some(hint) = selection.and_then(|_| state.selection_hint(room)) {
        block = block.title_bottom(Span::styled(hint, theme.style("selection")));
    } else if !p.scroll.following() {
        block = block.title_bottom(Span::styled(
            format!(" ↑ line {} of {} · End follows ", top.line + 1, p.end()),
            theme.style("dim"),
        ));
    } else if !p.search.query.is_empty() {
        let cur = p.search.current.map(|c| c + 1).unwrap_or(0);
        block = block.title_bottom(Span::styled(
            format!(" /{} {cur}/{} ", p.search.query, p.search.matches.len()),
            theme.style("dim"),
        ));
    }
    if let Some(view) = p.drawn_terminal() {
        let typing = state.typing_into() == Some(index_of(state, p));
        let hint = if !p.search.query.is_empty() && !typing {
            let cur = p.search.current.map(|c| c + 1).unwrap_or(0);
            Some(format!(
                " /{} {cur}/{} ",
                p.search.query,
                p.search.matches.len()
            ))
        } else if view.scrolled() > 0 {
            Some(format!(" ↑ {} lines up · End follows ", view.scrolled()))
        } else if typing {
            Some(format!(
                " typing into the program · {} leaves ",
                crate::tui::state::LEAVE_NAME
            ))
        } else if focused && !p.status.is_terminal() {
            Some(" Enter types into the program ".to_string())
        } else {
            None
        };
        if let Some(hint) = hint {
            block = block.title_bottom(Span::styled(hint, theme.style("dim")));
        }
        block.render(area, buf);
        terminal_body(view, typing, inner, buf);
        return;
    }
    block.render(area, buf);
    body(p, theme, inner, top, selection, buf);
}

fn index_of(state: &State, p: &Pane) -> usize {
    state
        .run
        .panes
        .iter()
        .position(|q| std::ptr::eq(q, p))
        .unwrap_or(usize::MAX)
}

/// A program's screen, cell by cell: its colours and attributes, wide
/// characters whole, its cursor while it takes the keys.
fn terminal_body(
    view: &crate::tui::state::terminal::TerminalView,
    typing: bool,
    area: Rect,
    buf: &mut Buffer,
) {
    let screen = view.screen();
    let (rows, cols) = view.size();
    for row in 0..rows.min(area.height) {
        for col in 0..cols.min(area.width) {
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let (x, y) = (area.x + col, area.y + row);
            // A wide character at the last column would spill over the border.
            if cell.is_wide() && col + 1 >= area.width {
                continue;
            }
            let Some(out) = buf.cell_mut((x, y)) else {
                continue;
            };
            let text = cell.contents();
            out.set_symbol(if text.is_empty() { " " } else { text });
            out.set_style(cell_style(cell));
        }
    }
    if typing && !screen.hide_cursor() {
        let (row, col) = screen.cursor_position();
        if row < area.height
            && col < area.width
            && let Some(out) = buf.cell_mut((area.x + col, area.y + row))
        {
            let style = out.style().add_modifier(ratatui::style::Modifier::REVERSED);
            out.set_style(style);
        }
    }
}

fn cell_style(cell: &vt100::Cell) -> Style {
    use ratatui::style::{Color, Modifier};
    let color = |c: vt100::Color| match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    };
    let mut style = Style::default()
        .fg(color(cell.fgcolor()))
        .bg(color(cell.bgcolor()));
    for (on, m) in [
        (cell.bold(), Modifier::BOLD),
        (cell.dim(), Modifier::DIM),
        (cell.italic(), Modifier::ITALIC),
        (cell.underline(), Modifier::UNDERLINED),
        (cell.inverse(), Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(m);
        }
    }
    style
}

/// One display row of a pane.
struct Row {
    text: String,
    style: Style,
    abs: u64,
}

fn line_style(theme: &Theme, p: &Pane, kind: LineKind) -> Style {
    let slot = match kind {
        LineKind::Text => "base",
        LineKind::Fence => "code.fence",
        LineKind::Code => "code",
        LineKind::DiffAdd => "diff.add",
        LineKind::DiffDel => "diff.del",
        LineKind::Tool(i) => {
            if p.tools.get(i).is_some_and(|t| t.is_error) {
                "error"
            } else {
                "title"
            }
        }
        LineKind::Stdout => "base",
        LineKind::Stderr => "error",
        LineKind::Note => "dim",
        LineKind::Error => "error",
    };
    theme.style(slot)
}

/// The display rows of line `abs`, wrapped at `width`.
fn line_rows(p: &Pane, theme: &Theme, abs: u64, width: usize, out: &mut Vec<Row>) {
    let Some(l) = p.line(abs) else { return };
    let last = abs + 1 == p.end();
    let kind = if last {
        p.open_kind().unwrap_or(l.kind)
    } else {
        l.kind
    };
    let style = line_style(theme, p, kind);
    for t in p.display_texts(abs) {
        for text in crate::text::wrap(&t, width) {
            out.push(Row { text, style, abs });
        }
    }
}

fn body(
    p: &Pane,
    theme: &Theme,
    area: Rect,
    top: RowPos,
    selection: Option<Selection>,
    buf: &mut Buffer,
) {
    let (w, h) = (area.width as usize, area.height as usize);
    if w == 0 || h == 0 {
        return;
    }
    // From the view's top down: cost is the viewport, never the whole
    // scrollback (rows above the top are skipped by count).
    let mut rows: Vec<Row> = Vec::with_capacity(h);
    let mut abs = top.line;
    while abs < p.end() && rows.len() < h {
        let start = rows.len();
        line_rows(p, theme, abs, w, &mut rows);
        if abs == top.line {
            let skip = top.row.min(rows.len() - start);
            rows.drain(start..start + skip);
        }
        abs += 1;
    }
    rows.truncate(h);
    let query: Vec<char> = p.search.query.to_lowercase().chars().collect();
    let current = p
        .search
        .current
        .and_then(|c| p.search.matches.get(c))
        .copied();
    for (y, row) in rows.iter().enumerate() {
        let y = area.y + y as u16;
        buf.set_stringn(area.x, y, &row.text, w, row.style);
        if let Some(sel) = selection.filter(|s| s.contains(row.abs)) {
            // The whole row, so a selected blank line shows too.
            let mut style = theme.style("selection");
            if row.abs == sel.cursor {
                style = style.add_modifier(ratatui::style::Modifier::BOLD);
            }
            buf.set_style(Rect::new(area.x, y, area.width, 1), style);
        }
        if query.is_empty() {
            continue;
        }
        let slot = if Some(row.abs) == current {
            "search.current"
        } else {
            "search.match"
        };
        let hl = theme
            .style(slot)
            .add_modifier(ratatui::style::Modifier::REVERSED);
        let chars: Vec<char> = row.text.chars().collect();
        for start in find_ci(&chars, &query) {
            let s: String = chars[start..start + query.len()].iter().collect();
            // Columns, not characters: a wide character before the match
            // takes two.
            let column = crate::text::columns(&chars[..start].iter().collect::<String>());
            if column < w {
                buf.set_stringn(area.x + column as u16, y, s, w - column, hl);
            }
        }
    }
}

/// Start indices of case-insensitive matches of `needle` in `hay`.
fn find_ci(hay: &[char], needle: &[char]) -> Vec<usize> {
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > hay.len() {
        return out;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i..i + needle.len()]
            .iter()
            .zip(needle)
            .all(|(a, b)| lower(*a) == *b)
        {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}
