//! The memory overlay: the memory bank's entries (newest first) with the
//! selected one in full below: namespace, tags, who stored it, its text.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::memory::label;
use crate::protocol::Millis;
use crate::tui::state::State;
use crate::tui::theme::Theme;

use super::{centered, clip};

pub fn draw(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let w = 110.min(area.width.saturating_sub(4));
    let h = 32.min(area.height.saturating_sub(2));
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let title = format!(" memory bank ({}) ", state.memory.len());
    let block = Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border.focused"))
        .title(Span::styled(title, theme.style("title")))
        .style(theme.style("panel"));
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.height < 3 || inner.width < 10 {
        return;
    }
    let width = inner.width as usize;
    let footer_y = inner.y + inner.height - 1;
    buf.set_stringn(
        inner.x + 1,
        footer_y,
        "↑↓ select · r refresh · Esc closes · `lev memory rm KEY` deletes",
        width.saturating_sub(1),
        theme.style("dim"),
    );
    if state.memory.is_empty() {
        buf.set_stringn(
            inner.x + 1,
            inner.y,
            "no memories yet — agents store them with the memory_store tool",
            width.saturating_sub(1),
            theme.style("dim"),
        );
        return;
    }
    // The list takes up to half the body; the selected entry gets the rest.
    let body = inner.height - 1;
    let list_h = (state.memory.len() as u16).min(body / 2).max(1);
    let first = state
        .memory_cursor
        .saturating_sub(list_h.saturating_sub(1) as usize);
    for (i, e) in state
        .memory
        .iter()
        .enumerate()
        .skip(first)
        .take(list_h as usize)
    {
        let y = inner.y + (i - first) as u16;
        let selected = i == state.memory_cursor;
        let slot = if selected { "selection" } else { "base" };
        let tags = if e.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.tags.join(", "))
        };
        let head = format!(
            "{} {:<8} {}{tags}  ",
            if selected { "›" } else { " " },
            label(&e.namespace),
            clip(&e.key, 32)
        );
        let text = e.text.replace(['\n', '\r'], " ");
        let line = Line::from(vec![
            Span::styled(head, theme.style(slot)),
            Span::styled(text, theme.style(if selected { slot } else { "dim" })),
        ]);
        buf.set_line(inner.x, y, &line, inner.width);
    }
    let Some(e) = state.memory.get(state.memory_cursor) else {
        return;
    };
    let detail = Rect::new(
        inner.x + 1,
        inner.y + list_h + 1,
        inner.width.saturating_sub(2),
        body.saturating_sub(list_h + 1),
    );
    if detail.height == 0 {
        return;
    }
    let mut by = Vec::new();
    if let Some(m) = &e.author.mode {
        by.push(format!("mode {m}"));
    }
    if let Some(s) = &e.author.step {
        by.push(format!("step {s}"));
    }
    if let Some(run) = &e.author.run {
        by.push(format!("run {run}"));
    }
    let mut lines = vec![
        Line::from(vec![
            Span::styled(e.key.clone(), theme.style("title")),
            Span::styled(format!("  in {}", e.namespace), theme.style("dim")),
        ]),
        Line::from(Span::styled(
            format!(
                "updated {} UTC{}{}",
                Millis(e.updated_ms).utc(),
                if by.is_empty() {
                    String::new()
                } else {
                    format!(" · by {}", by.join(", "))
                },
                if e.tags.is_empty() {
                    String::new()
                } else {
                    format!(" · tags {}", e.tags.join(", "))
                }
            ),
            theme.style("dim"),
        )),
        Line::default(),
    ];
    lines.extend(
        e.text
            .lines()
            .map(|l| Line::from(Span::styled(l.to_string(), theme.style("base")))),
    );
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(detail, buf);
}
