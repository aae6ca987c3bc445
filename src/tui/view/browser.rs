//! The runs browser (no run open): runs newest first with status, the
//! unfinished ones marked resumable, forks with the run they came from,
//! what the newest runs suggest (a timeout hit again, a plan worth
//! keeping), and a one-line hint.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Widget};

use crate::protocol::RunStatus;
use crate::tui::state::State;
use crate::tui::theme::Theme;

use super::clip;
use crate::text::fit;

pub fn draw(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    // What the last action said (a start that was refused names the file,
    // line and column): all its lines, above the hint.
    let said: Vec<&str> = state
        .message
        .as_deref()
        .map(|m| m.lines().take(usize::from(area.height / 3)).collect())
        .unwrap_or_default();
    // What the newest runs suggest, under the list: a line each, at most
    // a quarter of the screen, never the list's first rows.
    let room = usize::from(area.height / 4).saturating_sub(1);
    let advice: Vec<&crate::engine::Suggestion> = state.suggestions.iter().take(room).collect();
    let advice_h = if advice.is_empty() {
        0
    } else {
        advice.len() as u16 + 1
    };
    let reserved = 1 + said.len() as u16 + advice_h;
    let body = Rect::new(
        area.x,
        area.y,
        area.width,
        area.height.saturating_sub(reserved),
    );
    let runs = state.visible_runs();
    let title = if state.runs_filter.trim().is_empty() {
        format!(" runs · {} ", state.runs.len())
    } else {
        format!(
            " runs · {} of {} · filter \"{}\" ",
            runs.len(),
            state.runs.len(),
            clip(state.runs_filter.trim(), 30)
        )
    };
    let block = Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border"))
        .title(Span::styled(title, theme.style("title")));
    let inner = block.inner(body);
    block.render(body, buf);
    let w = inner.width as usize;
    if runs.is_empty() {
        let empty = if state.runs.is_empty() {
            "no runs yet — c starts one (a workflow file or an objective), as `lev run FILE` does"
        } else {
            "no run matches the filter — Esc clears it"
        };
        buf.set_stringn(
            inner.x + 1,
            inner.y + 1,
            empty,
            w.saturating_sub(1),
            theme.style("dim"),
        );
    }
    let header = format!(
        "  {:<2}{:<28} {:<26} {:<10} {:<16} ",
        "", "name", "id", "status", "created (UTC)"
    );
    buf.set_stringn(inner.x, inner.y, &header, w, theme.style("title"));
    let list_h = inner.height.saturating_sub(1) as usize;
    let first = state.runs_cursor.saturating_sub(list_h.saturating_sub(1));
    for (k, r) in runs.iter().enumerate().skip(first).take(list_h) {
        let y = inner.y + 1 + (k - first) as u16;
        let sel = k == state.runs_cursor;
        let glyph = match r.status {
            RunStatus::Running => "◐",
            RunStatus::Paused => "⏸",
            RunStatus::Succeeded => "●",
            RunStatus::Failed => "✗",
            RunStatus::Cancelled => "–",
        };
        let mut resumable = if matches!(r.status, RunStatus::Running | RunStatus::Paused) {
            "↻ resumable ".to_string()
        } else {
            String::new()
        };
        if let Some(parent) = &r.parent {
            let of = if r.step_run { "step of" } else { "⑂ fork of" };
            resumable.push_str(&format!("{of} {}", clip(parent.as_str(), 26)));
        }
        // Columns by display width: a name in CJK or with an emoji keeps
        // the id and status under their headers.
        let line = format!(
            "{} {glyph} {} {} {:<10} {:<16} {resumable}",
            if sel { "›" } else { " " },
            fit(&r.name, 28),
            fit(r.id.as_str(), 26),
            r.status.as_str(),
            utc_minutes(r.created_ms),
        );
        let slot = if sel { "selection" } else { "base" };
        buf.set_stringn(inner.x, y, line, w, theme.style(slot));
    }
    let hint = match state.typing {
        Some(crate::tui::state::Typing::Search) => format!(
            " /{}  (Enter: keep the filter · Esc: clear it)",
            state.runs_filter
        ),
        Some(crate::tui::state::Typing::NewRun) => format!(
            " start: {}▏  (a workflow file and name=value inputs, or an objective · Enter: start · Esc: cancel)",
            state.textarea.lines().join(" ")
        ),
        _ => " ↑↓ select · Enter open or resume · c new run · / filter · Del delete · : palette · ? help"
            .to_string(),
    };
    if !advice.is_empty() {
        let top = body.y + body.height;
        let width = (area.width as usize).saturating_sub(1);
        buf.set_stringn(
            area.x + 1,
            top,
            "suggestions · a: do the marked one · d: dismiss it",
            width,
            theme.style("title"),
        );
        let at_hand = state.suggestion_at_hand();
        for (k, s) in advice.iter().enumerate() {
            let mark = if at_hand == Some(k) { "›" } else { "•" };
            let line = match &s.command {
                Some(command) => format!("{mark} {} · {command}", s.text),
                None => format!("{mark} {}", s.text),
            };
            buf.set_stringn(
                area.x + 1,
                top + 1 + k as u16,
                fit(&line, width),
                width,
                theme.style("whisper"),
            );
        }
    }
    for (k, line) in said.iter().enumerate() {
        let y = body.y + body.height + advice_h + k as u16;
        buf.set_stringn(
            area.x + 1,
            y,
            line,
            (area.width as usize).saturating_sub(1),
            theme.style("whisper"),
        );
    }
    let y = area.y + area.height.saturating_sub(1);
    buf.set_stringn(
        area.x,
        y,
        hint,
        area.width as usize,
        theme.style("statusbar"),
    );
}

/// `YYYY-MM-DD HH:MM` in UTC from epoch milliseconds (no clock read).
pub fn utc_minutes(ms: u64) -> String {
    let mut full = crate::protocol::Millis(ms).utc();
    full.truncate(16);
    full
}
