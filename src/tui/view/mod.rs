//! Drawing: pure functions from `&State` (and the theme) to a ratatui
//! `Buffer`. Snapshot-tested by drawing into a `Buffer` and reading its
//! text. Only the theme builds styles; views ask it for slots by meaning
//! (`pane.border.focused`, `diff.add`, `step.running`).
//!
//! Split by region: `panes` (tabs, grid, zoom, pane bodies), `sidebar`
//! (whispers), `status` (status bar), `overlays` (help, palette, confirm),
//! `browser` (runs list), `overview` (steps list and timeline), `review`
//! (a swarm's plan under review and its editor).

/// Every style slot the views ask the theme for (besides `step.<status>`
/// for the six styled statuses). The names follow the theme module's slot
/// catalogue; the few finer ones (`title.focused`, `border.attention`,
/// `statusbar.*`, `search.current`, `code.fence`) fall back to their parent.
pub const STYLE_SLOTS: &[&str] = &[
    "base",
    "panel",
    "border",
    "border.focused",
    "border.attention",
    "title",
    "title.focused",
    "statusbar",
    "statusbar.name",
    "statusbar.replay",
    "statusbar.message",
    "statusbar.note",
    "statusbar.hint",
    "selection",
    "whisper",
    "question",
    "diff.add",
    "diff.del",
    "code",
    "code.fence",
    "tab",
    "tab.active",
    "search.match",
    "search.current",
    "badge",
    "dim",
    "error",
    "help.key",
];

mod browser;
mod memory;
mod overlays;
mod overview;
mod panes;
mod review;
mod sidebar;
mod status;
#[cfg(test)]
mod swarm_tests;
#[cfg(test)]
mod tests;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::protocol::{StepStatus, Usage};

use super::state::layout::{self, Regions};
use super::state::{Overlay, Pane, Screen, State};
use super::theme::Theme;

/// Draws the whole screen.
pub fn draw(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, theme.style("base"));
    if layout::too_small(area) {
        too_small(theme, area, buf);
        return;
    }
    if !state.run_open {
        browser::draw(state, theme, area, buf);
    } else {
        let reg: Regions = layout::regions(state, area);
        match state.screen {
            Screen::Panes => panes::draw(state, theme, &reg, buf),
            Screen::Overview => overview::draw_list(state, theme, reg.main, buf),
            Screen::Timeline => overview::draw_timeline(state, theme, reg.main, buf),
        }
        review::draw_editor(state, theme, reg.main, buf);
        if let Some(s) = reg.sidebar {
            sidebar::draw(state, theme, s, buf);
        }
        status::draw(state, theme, reg.status, buf);
    }
    match state.overlay {
        Some(Overlay::Help) => overlays::help(state, theme, area, buf),
        Some(Overlay::Palette) => overlays::palette(state, theme, area, buf),
        Some(Overlay::Confirm(c)) => overlays::confirm(state, c, theme, area, buf),
        Some(Overlay::Diff) => overlays::diff(state, theme, area, buf),
        Some(Overlay::Memory) => memory::draw(state, theme, area, buf),
        None => {}
    }
}

/// Draws `state` into a fresh buffer of `width`×`height` (tests, benches).
pub fn render(state: &State, theme: &Theme, width: u16, height: u16) -> Buffer {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    draw(state, theme, area, &mut buf);
    buf
}

/// The buffer's text, one line per row, trailing spaces trimmed.
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.y..area.y + area.height {
        let mut line = String::new();
        // A wide character's second column is not a character of its own
        // (a terminal draws nothing there).
        let mut covered = 0;
        for x in area.x..area.x + area.width {
            if covered > 0 {
                covered -= 1;
                continue;
            }
            let symbol = buf[(x, y)].symbol();
            line.push_str(symbol);
            covered = crate::text::columns(symbol).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn too_small(theme: &Theme, area: Rect, buf: &mut Buffer) {
    let text = format!(
        "terminal too small: {}×{}\nlev needs at least {}×{}\nenlarge the window (the run keeps going)",
        area.width,
        area.height,
        layout::MIN_WIDTH,
        layout::MIN_HEIGHT
    );
    let h = 3.min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    Paragraph::new(text)
        .style(theme.style("error"))
        .alignment(ratatui::layout::Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(Rect::new(area.x, y, area.width, h), buf);
}

/// Glyph for a pane: spinner while running, the waiting symbol when it needs input.
fn pane_glyph<'a>(state: &State, theme: &'a Theme, p: &Pane) -> &'a str {
    if state.run.needs_input(&p.step) {
        return theme.status_symbol(StepStatus::Waiting);
    }
    if state.run.holds(p) {
        // Not the theme's waiting symbol: paused by the user is not "needs input".
        return "◇";
    }
    if p.halted {
        return "■";
    }
    match p.status {
        StepStatus::Running if state.replay.is_none() && p.spins() => {
            theme.spinner(state.spinner_tick())
        }
        s => theme.status_symbol(s),
    }
}

/// Word for a pane's state: "needs input" is distinct from running/idle/done.
/// "paused" (the user holds it) is distinct from "needs input" too.
fn pane_state_word(state: &State, p: &Pane) -> &'static str {
    if p.halted {
        "stopped"
    } else if state.run.needs_input(&p.step) {
        "needs input"
    } else if let Some(word) = p
        .terminal_state
        .filter(|s| !p.status.is_terminal() && *s != crate::protocol::TerminalState::Running)
    {
        word.as_str()
    } else if state.run.holds(p) {
        "paused"
    } else if state.run.runs_on_while_paused(p) {
        "runs on (run paused)"
    } else {
        p.status.as_str()
    }
}

fn status_style(theme: &Theme, s: StepStatus) -> Style {
    // Themes style six statuses; the others borrow the nearest one.
    let slot = match s {
        StepStatus::Pending | StepStatus::Blocked => "step.pending",
        StepStatus::Running | StepStatus::Retrying => "step.running",
        StepStatus::Waiting => "step.waiting",
        StepStatus::Succeeded => "step.succeeded",
        StepStatus::Failed => "step.failed",
        StepStatus::Skipped | StepStatus::Cancelled => "step.skipped",
    };
    theme.style(slot)
}

/// `950`, `12.3k`, `1.2M`.
fn fmt_count(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        format!("{:.1}M", n as f64 / 1_000_000.0)
    }
}

/// `1.2k tok $0.0123` (cost only when known), `~1.2k tok` when some of
/// the counts are estimates.
fn fmt_usage(u: &Usage) -> String {
    let mut s = format!("{}{} tok", u.estimate_mark(), fmt_count(u.total_tokens()));
    if u.cost_usd > 0.0 {
        s.push_str(&format!(" ${:.4}", u.cost_usd));
    }
    s
}

/// Whole seconds: `42s`, `3m07s`, `1h02m`.
fn fmt_secs(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Clips `s` to `max` display columns, marking the cut with `…`.
fn clip(s: &str, max: usize) -> String {
    crate::text::clip(s, max)
}

/// A rectangle of `w`×`h` centred in `area` (clamped to it).
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
