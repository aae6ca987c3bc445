//! The swarm's plan review: the plan as the sidebar shows it (summary,
//! then each task with its mode, what it waits for and its acceptance
//! checks) with the review's keys, and the multi-line plan editor drawn
//! over the main area while the user edits.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};

use crate::tui::state::{PlanReview, State, Typing};
use crate::tui::theme::Theme;

/// The lines of pending review prompt `i` in the sidebar, after its head line.
pub fn prompt_lines(
    state: &State,
    theme: &Theme,
    i: usize,
    review: &PlanReview,
    focused: bool,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &review.plan {
        Some(plan) => {
            if !plan.summary.is_empty() {
                lines.push(Line::styled(
                    format!("  {}", plan.summary),
                    theme.style("base"),
                ));
            }
            for (n, t) in plan.tasks.iter().enumerate() {
                let needs = if t.needs.is_empty() {
                    String::new()
                } else {
                    format!("  ← {}", t.needs.join(", "))
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {}. {}", n + 1, t.id), theme.style("title")),
                    Span::styled(format!(" · {}", t.mode), mode_style(theme, &t.mode)),
                    Span::styled(needs, theme.style("dim")),
                ]));
                lines.push(Line::styled(
                    format!("     {}", t.title),
                    theme.style("base"),
                ));
                for a in &t.acceptance {
                    lines.push(Line::styled(format!("     ✓ {a}"), theme.style("dim")));
                }
            }
        }
        // Not readable as a plan: the text as the question has it.
        None => {
            for l in review.edit_text.lines().filter(|l| !l.starts_with('#')) {
                lines.push(Line::styled(format!("  {l}"), theme.style("base")));
            }
        }
    }
    if state.plan_draft == Some(i) && state.typing != Some(Typing::EditPlan(i)) {
        lines.push(Line::styled(
            "  (your edit is kept: e opens it again)",
            theme.style("dim"),
        ));
    }
    if focused {
        let hint = if state.prompt_ready(i) {
            "  [a] accept · [r] regenerate · [e] edit"
        } else {
            "  (just arrived — read it first)"
        };
        lines.push(Line::styled(hint, theme.style("help.key")));
    }
    lines
}

fn mode_style(theme: &Theme, mode: &str) -> Style {
    theme.style(&format!("agent.{mode}"))
}

/// The plan editor over `area` (the main area) while the user edits.
pub fn draw_editor(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(Typing::EditPlan(i)) = state.typing else {
        return;
    };
    let header = state
        .run
        .prompts
        .get(i)
        .and_then(|p| match &p.kind {
            crate::tui::state::PromptKind::Question { header, .. } => header.clone(),
            _ => None,
        })
        .unwrap_or_else(|| "Review the plan".to_string());
    Clear.render(area, buf);
    let block = Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border.focused"))
        .title(Span::styled(
            format!(" edit the plan · {} ", super::clip(&header, 60)),
            theme.style("title.focused"),
        ))
        .title_bottom(Span::styled(
            " Ctrl+S sends · Esc keeps the edit · Enter new line ",
            theme.style("dim"),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    (&state.textarea).render(inner, buf);
}
