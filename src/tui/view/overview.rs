//! The run overview: the workflow's steps in order with status glyphs, and
//! a timeline with one bar per step over wall-clock time (from event times),
//! each attempt its own segment so retries are visible. Declared steps that
//! have not started show as pending with the steps they wait for. Steps'
//! git worktrees (branch, merged or discarded, diff size) follow the steps.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Widget};

use crate::isolation::{self, Fate};
use crate::protocol::{Millis, StepStatus};
use crate::tui::state::{State, StepRow, fate_text};
use crate::tui::theme::Theme;

use super::{clip, fmt_secs, fmt_usage, status_style};

fn frame<'a>(theme: &Theme, title: String) -> Block<'a> {
    Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border"))
        .title(Span::styled(title, theme.style("title")))
}

/// Steps with status, attempts, duration and usage.
pub fn draw_list(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let block = frame(
        theme,
        format!(" overview · {} steps ", state.run.steps.len()),
    );
    let inner = block.inner(area);
    block.render(area, buf);
    let w = inner.width as usize;
    let now = state.now();
    let header = format!(
        "  {:<2}{:<24} {:<12} {:>8} {:>9}  {}",
        "", "step", "status", "attempts", "time", "usage"
    );
    buf.set_stringn(inner.x, inner.y, header, w, theme.style("title"));
    for (k, row) in state
        .run
        .steps
        .iter()
        .enumerate()
        .take(inner.height.saturating_sub(1) as usize)
    {
        let y = inner.y + 1 + k as u16;
        let sel = k == state.overview_cursor;
        let needs = state.run.needs_input(&row.key);
        let status = if needs {
            "needs input"
        } else {
            row.status.as_str()
        };
        let glyph = theme.status_symbol(if needs {
            StepStatus::Waiting
        } else {
            row.status
        });
        let time: u64 = row
            .segments
            .iter()
            .map(|s| s.end.unwrap_or(now).0.saturating_sub(s.start.0))
            // A damaged journal's times can be anything: never overflow.
            .fold(0, u64::saturating_add);
        let usage = match state.run.step_usage(&row.key) {
            Some(u) => fmt_usage(&u),
            None => waits_for(row),
        };
        // A swarm task's slot (and where it was stolen from) follows its name.
        let tag = slot_tag(state, row);
        let name = if tag.is_empty() {
            clip(row.key.as_str(), 24)
        } else {
            let name = clip(
                row.key.as_str(),
                23usize.saturating_sub(tag.chars().count()),
            );
            format!("{name} {tag}")
        };
        // A step that has not started has no attempts or time to show yet.
        let (attempts, time) = if row.segments.is_empty() {
            (String::new(), String::new())
        } else {
            (row.segments.len().to_string(), fmt_secs(time))
        };
        // FlowMind's latest ledger about an agent step, after its usage.
        let ledger = state
            .run
            .ledgers
            .get(&row.key)
            .map(|v| format!(" · FlowMind: {v}"))
            .unwrap_or_default();
        let line = format!(
            "{} {glyph} {:<24} {:<12} {attempts:>8} {time:>9}  {usage}{ledger}",
            if sel { "›" } else { " " },
            name,
            status,
        );
        let style = if sel {
            theme.style("selection")
        } else {
            status_style(theme, row.status)
        };
        buf.set_stringn(inner.x, y, line, w, style);
    }
    let top = inner.y + 2 + state.run.steps.len() as u16;
    let used = draw_worktrees(state, theme, inner, top, buf);
    draw_notes(state, theme, inner, top + used, buf);
}

/// The steps' worktrees (branch, state, journaled diff size) under the
/// steps; the selected step's is marked. Returns the rows used.
fn draw_worktrees(state: &State, theme: &Theme, inner: Rect, top: u16, buf: &mut Buffer) -> u16 {
    let all = &state.run.worktrees;
    let bottom = inner.y + inner.height;
    if all.is_empty() || top + 1 >= bottom {
        return 0;
    }
    let w = inner.width as usize;
    buf.set_stringn(
        inner.x,
        top,
        "  worktrees  (D diff · alt-m merge · X discard)",
        w,
        theme.style("title"),
    );
    let selected = state.run.steps.get(state.overview_cursor).map(|r| &r.key);
    let room = (bottom - top - 1) as usize;
    for (k, wt) in all.iter().take(room).enumerate() {
        let sel = selected == Some(&wt.step);
        let size = wt.changed.as_ref().map_or_else(
            || "no changes recorded".to_string(),
            |(s, _)| isolation::stat_text(s),
        );
        let pushed = wt
            .pushed
            .as_ref()
            .map(|p| format!(" · pushed to {}", p.remote))
            .unwrap_or_default();
        let line = format!(
            "{} {:<22} {}  {} · {size}{pushed}",
            if sel { "›" } else { " " },
            clip(wt.step.as_str(), 22),
            wt.worktree.branch,
            fate_text(&wt.fate),
        );
        let style = match (&wt.fate, sel) {
            (_, true) => theme.style("selection"),
            (Fate::Open, _) => theme.style("base"),
            _ => theme.style("dim"),
        };
        buf.set_stringn(inner.x, top + 1 + k as u16, line, w, style);
    }
    // A blank row before the notes.
    all.len().min(room) as u16 + 2
}

/// A swarm task's slot as the overview and the timeline mark it: `s2`, or
/// `s2←1` when it was stolen from slot 1's queue; nothing for other steps.
fn slot_tag(state: &State, row: &StepRow) -> String {
    match state.run.assignments.get(&row.key) {
        Some(a) => match a.stolen_from {
            Some(from) => format!("s{}←{from}", a.slot),
            None => format!("s{}", a.slot),
        },
        None => String::new(),
    }
}

/// `after a, b` for a step that has not started and declares needs.
fn waits_for(row: &StepRow) -> String {
    if !row.segments.is_empty() || row.needs.is_empty() {
        return String::new();
    }
    format!("after {}", row.needs.join(", "))
}

/// Run-wide notes (pauses, limits, errors) under the steps, newest last.
fn draw_notes(state: &State, theme: &Theme, inner: Rect, top: u16, buf: &mut Buffer) {
    let notes = &state.run.notes;
    let bottom = inner.y + inner.height;
    if notes.is_empty() || top + 1 >= bottom {
        return;
    }
    let w = inner.width as usize;
    buf.set_stringn(inner.x, top, "  run notes", w, theme.style("title"));
    let room = (bottom - top - 1) as usize;
    let first = notes.len().saturating_sub(room);
    for (k, n) in notes[first..].iter().enumerate() {
        buf.set_stringn(
            inner.x,
            top + 1 + k as u16,
            format!("  · {}", clip(n, w.saturating_sub(4))),
            w,
            theme.style("dim"),
        );
    }
}

/// One bar per step over the run's wall-clock span.
pub fn draw_timeline(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let run = &state.run;
    let now = state.now();
    let start = run
        .started_at
        .or_else(|| {
            run.steps
                .iter()
                .flat_map(|s| s.segments.first())
                .map(|s| s.start)
                .min()
        })
        .unwrap_or(now);
    let end = run.finished_at.unwrap_or(now).max(start);
    let span = end.0.saturating_sub(start.0).max(1);
    let block = frame(theme, format!(" timeline · {} ", fmt_secs(span)));
    let inner = block.inner(area);
    block.render(area, buf);
    let label_w = 18usize.min(inner.width as usize / 3);
    let bar_x = inner.x + label_w as u16 + 1;
    let bar_w = inner.width.saturating_sub(label_w as u16 + 2) as u64;
    if bar_w == 0 || inner.height < 2 {
        return;
    }
    // In u128: a journal may hold any time, and the product must not overflow.
    let col = |t: Millis| -> u64 {
        let c = u128::from(t.0.saturating_sub(start.0)) * u128::from(bar_w) / u128::from(span);
        u64::try_from(c).unwrap_or(u64::MAX).min(bar_w - 1)
    };
    let rows = inner.height.saturating_sub(1) as usize;
    for (k, row) in run.steps.iter().enumerate().take(rows) {
        let y = inner.y + k as u16;
        let sel = k == state.overview_cursor;
        // A swarm task's slot (and the slot it was stolen from) ends the label.
        let tag = slot_tag(state, row);
        let tag_w = tag.chars().count();
        let name_w = label_w.saturating_sub(1 + tag_w + usize::from(tag_w > 0));
        let label = format!(
            "{}{}",
            if sel { "›" } else { " " },
            clip(row.key.as_str(), name_w)
        );
        buf.set_stringn(inner.x, y, label, label_w, theme.style("base"));
        if tag_w > 0 && tag_w < label_w {
            let x = inner.x + (label_w - tag_w) as u16;
            buf.set_stringn(x, y, &tag, tag_w, theme.style("dim"));
        }
        if row.segments.is_empty() {
            // Not started: say so where its bar will be.
            let text = format!(
                "{} {} {}",
                theme.status_symbol(row.status),
                row.status.as_str(),
                waits_for(row)
            );
            buf.set_stringn(
                bar_x,
                y,
                text.trim_end(),
                bar_w as usize,
                status_style(theme, row.status),
            );
        }
        for (n, seg) in row.segments.iter().enumerate() {
            let status = if seg.end.is_none() {
                row.status
            } else {
                seg.status
            };
            let a = col(seg.start);
            let b = col(seg.end.unwrap_or(now)).max(a);
            let fill = match status {
                StepStatus::Succeeded => "█",
                StepStatus::Failed | StepStatus::Retrying => "▒",
                StepStatus::Waiting => "┄",
                _ => "░",
            };
            let style = status_style(theme, status);
            for x in a..=b {
                buf.set_string(bar_x + x as u16, y, fill, style);
            }
            // A retry starts with a visible edge even when it touches the previous attempt.
            if n > 0 {
                buf.set_string(bar_x + a as u16, y, "▕", style);
            }
        }
    }
    // Axis: start, middle and end offsets.
    let y = inner.y + inner.height - 1;
    let axis: String = "─".repeat(bar_w as usize);
    buf.set_string(bar_x, y, &axis, theme.style("dim"));
    buf.set_string(bar_x, y, "0s", theme.style("dim"));
    let mid = fmt_secs(span / 2);
    buf.set_string(bar_x + (bar_w / 2) as u16, y, &mid, theme.style("dim"));
    let last = fmt_secs(span);
    let lx = bar_x + (bar_w as u16).saturating_sub(last.chars().count() as u16);
    buf.set_string(lx, y, &last, theme.style("dim"));
}
