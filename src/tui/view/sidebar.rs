//! The whisper sidebar: prompts waiting for the user (questions with their
//! options, recommended first; approvals), how long each has waited, the
//! answer box while typing, the history of answered prompts, what lev did
//! on its own initiative (questions to agents and their replies, verdicts,
//! follow-ups, limits), and what agents were told besides their prompt
//! (messages, hints).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::protocol::AnswerSource;
use crate::tui::keymap::Action;
use crate::tui::state::{PromptKind, REVIEW_ACCEPT, REVIEW_REGENERATE, State, Typing};
use crate::tui::theme::Theme;

use super::fmt_secs;

pub fn draw(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let pending = state.pending_count();
    let title = if pending > 0 {
        format!(" whispers · {pending} waiting ")
    } else {
        " whispers ".to_string()
    };
    let block = Block::bordered()
        .border_type(theme.border_type())
        .border_style(theme.style("border"))
        .title(Span::styled(title, theme.style("title")));
    let inner = block.inner(area);
    block.render(area, buf);

    let typing_answer = matches!(state.typing, Some(Typing::Answer(_) | Typing::Message(_)));
    let (list_area, input_area) = if typing_answer && inner.height > 6 {
        let h = 3;
        (
            Rect::new(inner.x, inner.y, inner.width, inner.height - h),
            Some(Rect::new(
                inner.x,
                inner.y + inner.height - h,
                inner.width,
                h,
            )),
        )
    } else {
        (inner, None)
    };

    let mut lines: Vec<Line> = Vec::new();
    // Where each pending prompt's lines start, and which one has focus.
    let mut starts: Vec<usize> = Vec::new();
    let mut focused_group: Option<usize> = None;
    let now = state.now();
    let key_of = |a: Action| -> String { state.keymap.first_key(a).unwrap_or_default() };
    for (i, p) in state.run.pending() {
        if state.focused_prompt().is_some_and(|(f, _)| f == i) {
            focused_group = Some(starts.len());
        }
        starts.push(lines.len());
        let focused = state.focused_prompt().is_some_and(|(f, _)| f == i);
        let marker = if focused { "▶ " } else { "  " };
        // A countdown when a timeout applies, else how long it has waited;
        // a replay shows neither (nothing is waiting: it happened).
        // ⏱ is always time left; a prompt with no timeout says how long
        // it has waited in words.
        let waited = match p.deadline {
            _ if state.replay.is_some() => "waited here".to_string(),
            Some(d) => format!("⏱ {} left", fmt_secs(d.0.saturating_sub(now.0))),
            None => format!("waiting {}", fmt_secs(now.0.saturating_sub(p.asked_at.0))),
        };
        let head_style = theme.style(if focused { "selection" } else { "question" });
        let waited = if state.sent.contains(&i) {
            format!("{waited} · sent")
        } else {
            waited
        };
        match &p.kind {
            PromptKind::Question {
                options, default, ..
            } => {
                let label = p.title();
                lines.push(Line::from(vec![
                    Span::styled(format!("{marker}? {label}"), head_style),
                    Span::styled(format!("  {waited}"), theme.style("dim")),
                ]));
                if let Some(review) = &p.review {
                    // The plan readably, with its own keys instead of options.
                    lines.extend(super::review::prompt_lines(
                        state, theme, i, review, focused,
                    ));
                    lines.push(Line::raw(""));
                    continue;
                }
                lines.extend(text_lines(&p.text, theme));
                if let Some((answer, deadline)) = &p.proposal {
                    let when = match deadline {
                        Some(d) if state.replay.is_none() => format!(
                            " — answers in {} unless you do",
                            fmt_secs(d.0.saturating_sub(now.0))
                        ),
                        _ => String::new(),
                    };
                    lines.push(Line::styled(
                        format!("  FlowMind: {answer}{when}"),
                        theme.style("whisper"),
                    ));
                }
                for (k, o) in options.iter().enumerate() {
                    let sel = focused && k == state.option_cursor;
                    let pick = if sel { "›" } else { " " };
                    let dflt = if Some(&o.value) == default.as_ref() {
                        " (default)"
                    } else {
                        ""
                    };
                    let slot = if sel { "selection" } else { "whisper" };
                    // The label alone when it only repeats the value.
                    let text = if o.label.is_empty() || o.label == o.value {
                        o.value.clone()
                    } else {
                        format!("{} — {}", o.value, o.label)
                    };
                    lines.push(Line::styled(
                        format!("  {pick} {text}{dflt}"),
                        theme.style(slot),
                    ));
                }
                if focused && state.replay.is_some() {
                    lines.push(Line::styled("  (replay: read-only)", theme.style("dim")));
                } else if focused {
                    let answer = key_of(Action::Answer);
                    let hint = if p.proposal.is_some() && !answer.is_empty() {
                        format!("  {answer} FlowMind's answer to send or edit · ↑↓ pick")
                    } else if answer.is_empty() {
                        "  ↑↓ pick · Enter send".to_string()
                    } else {
                        format!("  ↑↓ pick · Enter send · {answer} type")
                    };
                    lines.push(Line::styled(hint, theme.style("dim")));
                }
            }
            PromptKind::Approval => {
                lines.push(Line::from(vec![
                    Span::styled(format!("{marker}⚠ {}", p.title()), head_style),
                    Span::styled(format!("  {waited}"), theme.style("dim")),
                ]));
                lines.extend(text_lines(&p.text, theme));
                if focused {
                    let (y, n) = (key_of(Action::Approve), key_of(Action::Deny));
                    let key = |k: String| {
                        if k.is_empty() {
                            String::new()
                        } else {
                            format!("[{k}] ")
                        }
                    };
                    let hint = if state.replay.is_some() {
                        "  (replay: read-only)".to_string()
                    } else if state.prompt_ready(i) {
                        format!("  {}approve · {}deny", key(y), key(n))
                    } else {
                        "  (just arrived — read it first)".to_string()
                    };
                    lines.push(Line::styled(hint, theme.style("help.key")));
                }
            }
            PromptKind::Escalation => {
                lines.push(Line::from(vec![
                    Span::styled(format!("{marker}◆ {}", p.title()), head_style),
                    Span::styled(format!("  {waited}"), theme.style("dim")),
                ]));
                lines.extend(text_lines(&p.text, theme));
                if focused {
                    let dismiss = key_of(Action::Deny);
                    let hint = if state.replay.is_some() {
                        "  (replay: read-only)".to_string()
                    } else if !state.prompt_ready(i) {
                        "  (just arrived — read it first)".to_string()
                    } else if dismiss.is_empty() {
                        "  [Enter] message it (its pane: pause, cancel)".to_string()
                    } else {
                        format!(
                            "  [Enter] message it · [{dismiss}] dismiss (its pane: pause, cancel)"
                        )
                    };
                    lines.push(Line::styled(hint, theme.style("help.key")));
                }
            }
        }
        lines.push(Line::raw(""));
    }
    if pending == 0 {
        lines.push(Line::styled("  nothing waits for you", theme.style("dim")));
        lines.push(Line::raw(""));
    }
    let answered: Vec<_> = state
        .run
        .prompts
        .iter()
        .filter(|p| !p.is_pending())
        .collect();
    if !answered.is_empty() {
        lines.push(Line::styled("── answered ──", theme.style("dim")));
        for p in answered.iter().rev() {
            let Some(a) = &p.answered else { continue };
            let who = match a.source {
                AnswerSource::User => "",
                AnswerSource::Default => " (default)",
                AnswerSource::Timeout => " (timeout)",
                AnswerSource::Flowmind => " (FlowMind)",
            };
            // An edited plan is many lines: the history names it only.
            let text = match &p.review {
                Some(_) if a.text != REVIEW_ACCEPT && a.text != REVIEW_REGENERATE => {
                    "edited plan".to_string()
                }
                _ => a.text.clone(),
            };
            let what = p.title();
            lines.push(Line::styled(
                format!("✓ {what} = {text}{who}"),
                theme.style("dim"),
            ));
        }
    }
    // What lev did on its own, newest first: its questions to agents (with
    // their replies), verdicts, follow-ups spawned or refused, limits.
    let flowmind = match (
        &state.run.flowmind_fallback,
        &state.run.flowmind_mode,
        state.flowmind.as_str(),
    ) {
        (Some(why), _, _) => Some(format!("FlowMind: rules (its model stopped: {why})")),
        (None, Some(mode), _) => Some(format!(
            "FlowMind: {} (this workflow's)",
            match mode.as_str() {
                "fallback" => "rules",
                other => other,
            }
        )),
        (None, None, "") => None,
        (None, None, words) => Some(format!("FlowMind: {words}")),
    };
    if !state.run.initiative.is_empty() || flowmind.is_some() {
        lines.push(Line::styled("── lev's initiative ──", theme.style("dim")));
    }
    if let Some(words) = flowmind {
        lines.push(Line::styled(words, theme.style("dim")));
    }
    if !state.run.initiative.is_empty() {
        for i in state.run.initiative.iter().rev() {
            lines.push(Line::styled(format!("◆ {}", i.text), theme.style("dim")));
            match (&i.reply, &i.awaiting) {
                (Some(reply), _) => {
                    lines.push(Line::styled(format!("  ↩ {reply}"), theme.style("dim")));
                }
                (None, Some(_)) => {
                    lines.push(Line::styled(
                        "  … waiting for its reply",
                        theme.style("dim"),
                    ));
                }
                (None, None) => {}
            }
        }
    }
    // What this workflow's newest runs suggest (a timeout hit again, a
    // step failing again, a plan worth keeping).
    let advice: Vec<&crate::engine::Suggestion> = state
        .suggestions
        .iter()
        .filter(|s| !state.run.workflow_id.is_empty() && s.workflow == state.run.workflow_id)
        .collect();
    if !advice.is_empty() {
        lines.push(Line::styled("── suggestions ──", theme.style("dim")));
        for s in advice {
            let text = match &s.command {
                Some(command) => format!("• {} ({command})", s.text),
                None => format!("• {}", s.text),
            };
            lines.push(Line::styled(text, theme.style("whisper")));
        }
    }
    // What agents were told besides their prompt, dimmed: the user's
    // messages and lev's hints at their start, newest first.
    if !state.run.messages.is_empty() || !state.run.hints.is_empty() {
        lines.push(Line::styled("── sent to agents ──", theme.style("dim")));
        let mut sent: Vec<(crate::protocol::Millis, String)> = state
            .run
            .messages
            .iter()
            .map(|m| (m.at, format!("» {} (turn {}): {}", m.step, m.turn, m.text)))
            .chain(
                state
                    .run
                    .hints
                    .iter()
                    .map(|h| (h.at, format!("» {} (hint): {}", h.step, h.text))),
            )
            .collect();
        // Newest first; a stable sort keeps hints given together in the
        // order the agent read them.
        sent.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        for (_, text) in sent {
            lines.push(Line::styled(text, theme.style("dim")));
        }
    }
    // Many prompts: start further down so the focused one is on screen.
    if let Some(g) = focused_group {
        let rows = |ls: &[Line]| -> usize {
            ls.iter()
                .map(|l| wrapped(l, list_area.width as usize).len())
                .sum()
        };
        let end = starts.get(g + 1).copied().unwrap_or(lines.len());
        let mut first = 0;
        while first < g && rows(&lines[starts[first]..end]) + 1 > list_area.height as usize {
            first += 1;
        }
        if first > 0 {
            let mut rest = lines.split_off(starts[first]);
            lines.clear();
            lines.push(Line::styled(
                format!("  ↑ {first} more waiting"),
                theme.style("dim"),
            ));
            lines.append(&mut rest);
        }
    }
    // Wrapped as panes wrap (tabs expanded, wide characters counted):
    // ratatui's own wrapping drops tabs and can put a wide character past
    // the last column.
    let rows: Vec<Line> = lines
        .iter()
        .flat_map(|l| wrapped(l, list_area.width as usize))
        .collect();
    Paragraph::new(rows).render(list_area, buf);

    if let Some(ia) = input_area {
        let block = Block::bordered()
            .border_type(theme.border_type())
            .border_style(theme.style("border.focused"))
            .title(match state.typing {
                Some(Typing::Message(i)) => format!(
                    " message to {} ",
                    state
                        .run
                        .panes
                        .get(i)
                        .map(|p| p.step.as_str())
                        .unwrap_or("?")
                ),
                _ => " answer ".to_string(),
            });
        let inner = block.inner(ia);
        block.render(ia, buf);
        (&state.textarea).render(inner, buf);
    }
}

/// `line` as the rows it takes at `width` columns.
fn wrapped(line: &Line, width: usize) -> Vec<Line<'static>> {
    let parts: Vec<(&str, ratatui::style::Style)> = line
        .spans
        .iter()
        .map(|s| (s.content.as_ref(), s.style))
        .collect();
    crate::text::wrap_parts(&parts, width)
        .into_iter()
        .map(|row| {
            let spans: Vec<ratatui::text::Span<'static>> = row
                .into_iter()
                .map(|(text, style)| ratatui::text::Span::styled(text, style))
                .collect();
            Line::from(spans).style(line.style)
        })
        .collect()
}

/// A prompt's text, a line per line it has (a `Line` draws no line break),
/// indented under its heading.
fn text_lines<'a>(text: &str, theme: &Theme) -> Vec<Line<'a>> {
    text.lines()
        .map(|l| Line::styled(format!("  {l}"), theme.style("base")))
        .collect()
}
