//! Modal overlays drawn over everything: help (generated from the keymap),
//! the command palette, confirmations (quit or cancel an active run, merge
//! or discard a worktree) and a step's worktree diff.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use crate::tui::keymap::Action;
use crate::tui::state::{Confirm, State};
use crate::tui::theme::Theme;
use crate::workflow::Settle;

use super::{centered, clip};

fn frame<'a>(theme: &Theme, title: &'a str) -> Block<'a> {
    Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border.focused"))
        .title(Span::styled(title, theme.style("title")))
        .style(theme.style("panel"))
}

pub fn help(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let rows = help_rows(state, theme);
    let w = 110.min(area.width.saturating_sub(4));
    let max_h = area.height.saturating_sub(2);
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 16);
    // Inside the border, the last two rows are a blank and the footer.
    let (inner_w, room) = (w.saturating_sub(2), max_h.saturating_sub(4) as usize);
    // Two columns when everything fits in them, else one that scrolls.
    let two = help_lines(&rows, key_w, inner_w / 2);
    let (cols, lines) = if inner_w >= 80 && two.len() <= 2 * room {
        (2, two)
    } else {
        (1, help_lines(&rows, key_w, inner_w))
    };
    let content = if cols == 2 {
        lines.len().div_ceil(2)
    } else {
        lines.len()
    };
    let r = centered(area, w, (content.min(room) as u16 + 4).min(max_h));
    Clear.render(r, buf);
    let block = frame(theme, " keys ");
    let inner = block.inner(r);
    block.render(r, buf);
    if rows.is_empty() {
        buf.set_stringn(
            inner.x + 1,
            inner.y,
            "no key bindings configured",
            inner.width as usize,
            theme.style("dim"),
        );
    }
    let visible = inner.height.saturating_sub(2) as usize;
    let col_w = inner.width / cols as u16;
    let scrolls = cols == 1 && lines.len() > visible;
    let first = if scrolls {
        state.help_scroll.min(lines.len() - visible)
    } else {
        0
    };
    let per_col = if cols == 2 { content } else { visible };
    for (n, line) in lines.iter().skip(first).enumerate() {
        let (c, k) = (n / per_col.max(1), n % per_col.max(1));
        if c >= cols || k >= visible {
            break;
        }
        let x = inner.x + c as u16 * col_w;
        let text = Line::from(vec![
            Span::styled(format!(" {:>key_w$}  ", line.keys), theme.style("help.key")),
            Span::styled(line.text.clone(), theme.style("base")),
        ]);
        buf.set_line(x, inner.y + k as u16, &text, col_w.saturating_sub(1));
    }
    let footer = if scrolls {
        format!(
            "lines {}–{} of {} · ↑↓ PgUp PgDn scroll · Esc closes",
            first + 1,
            (first + visible).min(lines.len()),
            lines.len()
        )
    } else {
        "Esc closes · : runs any action by name".to_string()
    };
    buf.set_stringn(
        inner.x + 1,
        inner.y + inner.height.saturating_sub(1),
        footer,
        inner.width as usize,
        theme.style("dim"),
    );
}

/// Actions the runs browser takes (the rest act on an open run).
const BROWSER_ACTIONS: &[Action] = &[
    Action::NewRun,
    Action::Search,
    Action::DeleteRun,
    Action::Back,
    Action::Help,
    Action::Palette,
    Action::Memory,
    Action::Quit,
    Action::ScrollUp,
    Action::ScrollDown,
    Action::Top,
    Action::Bottom,
    Action::PageUp,
    Action::PageDown,
];

/// What the help lists where it is opened: the browser's keys in the runs
/// browser, every key over a run; then the mouse and what the glyphs mean.
fn help_rows(state: &State, theme: &Theme) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    if !state.run_open {
        rows.push((
            "Enter".into(),
            "Open the selected run: an unfinished one resumes, a finished one replays".into(),
        ));
    }
    rows.extend(
        state
            .keymap
            .help_rows()
            .into_iter()
            .filter(|(_, a, _)| {
                // Over a run, the browser's own actions would only refuse.
                if state.run_open {
                    !matches!(a, Action::NewRun | Action::DeleteRun)
                } else {
                    BROWSER_ACTIONS.contains(a)
                }
            })
            .map(|(keys, _, desc)| (keys, desc)),
    );
    rows.push((
        "mouse".into(),
        "Click focuses a pane, a tab or a prompt; the wheel scrolls what is under it. To select text with the terminal, hold Shift (Option in iTerm2) while dragging".into(),
    ));
    if state.run_open {
        use crate::protocol::StepStatus as S;
        let glyph = |s: S| theme.status_symbol(s).to_string();
        rows.push((
            "glyphs".into(),
            format!(
                "{} pending · {} running · {} needs you · {} succeeded · {} failed · {} skipped · ■ stopped · ◇ paused · ⏱ time left to answer",
                glyph(S::Pending),
                glyph(S::Running),
                glyph(S::Waiting),
                glyph(S::Succeeded),
                glyph(S::Failed),
                glyph(S::Skipped)
            ),
        ));
    }
    rows
}

/// One display line of the help: keys (on a row's first line only) and
/// a piece of its description.
struct HelpLine {
    keys: String,
    text: String,
}

/// The help rows as display lines in a column `col_w` wide: keys right
/// aligned in `key_w` columns, descriptions wrapped (never cut) beside them.
fn help_lines(rows: &[(String, String)], key_w: usize, col_w: u16) -> Vec<HelpLine> {
    let text_w = (col_w as usize).saturating_sub(key_w + 4).max(8);
    let mut out = Vec::new();
    for (keys, desc) in rows {
        for (n, text) in crate::text::wrap(desc, text_w).into_iter().enumerate() {
            out.push(HelpLine {
                keys: if n == 0 {
                    clip(keys, key_w)
                } else {
                    String::new()
                },
                text,
            });
        }
    }
    out
}

pub fn palette(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let w = 64.min(area.width.saturating_sub(4));
    let h = 16.min(area.height.saturating_sub(2));
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + 2.min(area.height),
        w,
        h,
    );
    Clear.render(r, buf);
    let block = frame(theme, " : command ");
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.height < 2 {
        return;
    }
    let query = state.textarea.lines().join(" ");
    buf.set_stringn(
        inner.x,
        inner.y,
        format!(": {query}▏"),
        inner.width as usize,
        theme.style("base"),
    );
    let list_h = (inner.height - 1) as usize;
    // Keep the cursor in view.
    let first = state
        .palette_cursor
        .saturating_sub(list_h.saturating_sub(1));
    for (k, e) in state.palette.iter().enumerate().skip(first).take(list_h) {
        let y = inner.y + 1 + (k - first) as u16;
        let sel = k == state.palette_cursor;
        let slot = if sel { "selection" } else { "base" };
        let mark = if sel { "›" } else { " " };
        let keys = if e.keys.is_empty() {
            String::new()
        } else {
            format!("  {}", e.keys)
        };
        let room = (inner.width as usize).saturating_sub(keys.chars().count() + 2);
        buf.set_stringn(
            inner.x,
            y,
            format!("{mark} {}", clip(&e.label, room)),
            inner.width as usize,
            theme.style(slot),
        );
        if !keys.is_empty() {
            let kw = keys.chars().count() as u16;
            buf.set_stringn(
                inner.x + inner.width.saturating_sub(kw),
                y,
                keys,
                kw as usize,
                theme.style("dim"),
            );
        }
    }
    if state.palette.is_empty() {
        buf.set_stringn(
            inner.x,
            inner.y + 1,
            "  no match",
            inner.width as usize,
            theme.style("dim"),
        );
    }
}

pub fn confirm(state: &State, what: Confirm, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let run = &state.run;
    let step = |row: usize| {
        run.steps
            .get(row)
            .map_or_else(|| "?".to_string(), |r| r.key.to_string())
    };
    let text = match what {
        Confirm::Quit => vec![
            "The run is still active.".to_string(),
            "Quit the workbench? The run stays durable:".to_string(),
            "resume it later from the runs list.".to_string(),
        ],
        Confirm::CancelRun => vec![
            format!("Cancel run {}?", run_name(state)),
            "Running steps are stopped; results so far stay in the journal.".to_string(),
        ],
        Confirm::CancelStep(row) => vec![
            format!("Cancel step {}?", step(row)),
            "It is stopped (TERM, then KILL); steps that need it are skipped.".to_string(),
        ],
        Confirm::EmergencyStop => vec![
            "Emergency stop?".to_string(),
            "Every running step is stopped now and nothing new starts.".to_string(),
            "The run ends paused: `lev resume` continues it.".to_string(),
        ],
        Confirm::StopCallbacks => vec![
            "Stop callbacks?".to_string(),
            "No new follow-up is spawned and the system asks no new question.".to_string(),
            "Running steps finish; the run goes on. It cannot be undone.".to_string(),
        ],
        Confirm::Worktree(how, i) => worktree_question(state, how, i),
        Confirm::Deny(i) => {
            let title = run.prompts.get(i).map_or_else(String::new, |p| p.title());
            vec![
                format!("Deny {title}?"),
                "Its step fails with \"not approved\"; steps that need it do not run.".to_string(),
            ]
        }
        Confirm::Retry(row) => vec![
            format!("Retry step {}?", step(row)),
            "It runs again from its start as a new attempt; steps after it".to_string(),
            "that were skipped run again too.".to_string(),
        ],
        Confirm::DeleteRun => {
            let run = state
                .deleting
                .as_ref()
                .and_then(|id| state.runs.iter().find(|r| &r.id == id));
            match run {
                Some(r) => {
                    let mut text = vec![
                        format!("Delete run \"{}\" ({})?", clip(&r.name, 40), r.id),
                        "Its journal, transcript and replay are gone for good.".to_string(),
                    ];
                    if !r.status.is_terminal() {
                        text.push(format!(
                            "It is {}: it could still be resumed.",
                            r.status.as_str()
                        ));
                    }
                    text
                }
                None => vec!["That run is gone.".to_string()],
            }
        }
        Confirm::Fork(row) => vec![
            format!("Fork run {} from step {}?", run_name(state), step(row)),
            format!(
                "A new run takes every result before {} from this one and runs",
                step(row)
            ),
            "from there; this run is left as it is.".to_string(),
        ],
    };
    let w = 64.min(area.width.saturating_sub(4));
    // Wrapped here, so the box is as tall as what it holds and the key
    // line is never cut off.
    let inner_w = w.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = text
        .iter()
        .flat_map(|t| crate::text::wrap(t, inner_w))
        .map(|row| Line::styled(row, theme.style("base")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        clip(&format!("[y] {}   [n] keep as is", what.verb()), inner_w),
        theme.style("help.key"),
    ));
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, w, h);
    Clear.render(r, buf);
    Paragraph::new(lines)
        .block(frame(theme, " confirm "))
        .render(r, buf);
}

/// The run's name and short id, as a confirmation names it.
fn run_name(state: &State) -> String {
    let id = state
        .run
        .run
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let short = &id[id.len().saturating_sub(6)..];
    match state.run.name.as_str() {
        "" => id,
        name => format!("\"{}\" (…{short})", clip(name, 40)),
    }
}

fn worktree_question(state: &State, how: Settle, i: usize) -> Vec<String> {
    let Some(w) = state.run.worktrees.get(i) else {
        return vec!["That worktree is gone.".to_string()];
    };
    let t = &w.worktree;
    match how {
        Settle::Merge => vec![
            format!(
                "Merge step {}'s branch {} into {}?",
                w.step, t.branch, t.base
            ),
            format!(
                "Uncommitted work in {} is committed first.",
                t.path.display()
            ),
            "A conflict aborts the merge and leaves the repository as it was.".to_string(),
        ],
        Settle::Discard => vec![
            format!("Discard step {}'s worktree?", w.step),
            format!(
                "{} is removed and branch {} deleted, with any work not merged.",
                t.path.display(),
                t.branch
            ),
        ],
    }
}

/// The selected step's diff against its merge-base, scrollable.
pub fn diff(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(d) = &state.diff else {
        return;
    };
    let w = area.width.saturating_sub(4);
    let h = area.height.saturating_sub(2);
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let title = match &d.context {
        Some((turn, turns)) => format!(
            " context · {} · turn {turn} of {} · ←→ turns ",
            d.step,
            turns.len()
        ),
        None => format!(" diff · {} · {} ", d.step, d.branch),
    };
    let block = frame(theme, &title);
    let inner = block.inner(r);
    block.render(r, buf);
    let rows = inner.height.saturating_sub(1) as usize;
    let width = inner.width as usize;
    for (k, line) in d.lines.iter().skip(d.scroll).take(rows).enumerate() {
        let slot = if d.context.is_some() {
            if line.starts_with("── ") {
                "title"
            } else {
                "base"
            }
        } else if line.starts_with("+++") || line.starts_with("---") {
            "title"
        } else if line.starts_with('+') {
            "diff.add"
        } else if line.starts_with('-') {
            "diff.del"
        } else if line.starts_with("@@") || line.starts_with("diff ") {
            "dim"
        } else {
            "base"
        };
        buf.set_stringn(
            inner.x,
            inner.y + k as u16,
            clip(line, width),
            width,
            theme.style(slot),
        );
    }
    let last = (d.scroll + rows).min(d.lines.len());
    buf.set_stringn(
        inner.x + 1,
        inner.y + inner.height.saturating_sub(1),
        format!(
            "lines {}-{last} of {} · j/k pgup/pgdn g/G scroll · Esc closes",
            (d.scroll + 1).min(last),
            d.lines.len()
        ),
        width,
        theme.style("dim"),
    );
}
