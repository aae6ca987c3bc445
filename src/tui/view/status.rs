//! The status bar: run name and status, elapsed time, tokens and cost, the
//! badge of prompts waiting for the user, circuit breakers not closed
//! (provider endpoints, swarm slots), replay position, a message, and
//! as many key hints as fit on the right.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::protocol::StepStatus;
use crate::tui::keymap::Action;
use crate::tui::state::{BreakerShown, State, Typing};
use crate::tui::theme::Theme;

use super::{clip, fmt_secs, fmt_usage};

/// Columns the name always gets (when the bar is that wide).
const MIN_NAME: usize = 12;
/// The spaces around the name.
const NAME_PAD: u16 = 2;
/// Room kept for the first key hint (`? help`).
const MIN_HINT: u16 = 10;

/// Actions worth a hint, in priority order, with their short labels.
const HINTS: &[(Action, &str)] = &[
    (Action::Help, "help"),
    (Action::NextPrompt, "prompt"),
    (Action::Palette, "commands"),
    (Action::LayoutGrid, "grid"),
    (Action::LayoutTabs, "tabs"),
    (Action::ToggleZoom, "zoom"),
    (Action::Overview, "overview"),
    (Action::Search, "search"),
    (Action::Quit, "quit"),
];

pub fn draw(state: &State, theme: &Theme, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, theme.style("statusbar"));
    let run = &state.run;
    let mut left: Vec<Span> = Vec::new();
    let name = if run.name.is_empty() {
        "run"
    } else {
        run.name.as_str()
    };
    let status = run.status.map(|s| s.as_str()).unwrap_or("starting");
    left.push(Span::styled(
        format!("{status} "),
        super::status_style(theme, run_step_status(run.status)),
    ));
    if let Some(start) = run.started_at {
        let end = run.finished_at.unwrap_or(state.now());
        left.push(Span::styled(
            format!("· {} ", fmt_secs(end.0.saturating_sub(start.0))),
            theme.style("statusbar"),
        ));
    }
    left.push(Span::styled(
        format!("· {} ", fmt_usage(&run.usage())),
        theme.style("statusbar"),
    ));
    let screen = Rect::new(0, 0, state.size.0, state.size.1);
    if let Some(p) = crate::tui::state::layout::page(state, screen) {
        // More panes than the grid holds: which ones are shown, and the key
        // that shows the others.
        let next = next_page_key(state);
        left.push(Span::styled(
            format!(
                "· panes {}–{} of {}{next} ",
                p.first + 1,
                p.first + p.shown,
                p.total
            ),
            theme.style("statusbar"),
        ));
    }
    if run.paused && run.status == Some(crate::protocol::RunStatus::Running) {
        // A live pause by the user: not the same as prompts waiting for them.
        left.push(Span::styled(
            " ◇ paused ",
            super::status_style(theme, crate::protocol::StepStatus::Pending),
        ));
        left.push(Span::raw(" "));
    }
    if let Some(p) = state.typing_into().and_then(|i| run.panes.get(i)) {
        // Every key goes to the program: say which, and the way out.
        left.push(Span::styled(
            format!(
                " ⌨ keys go to {} · {} leaves ",
                clip(p.step.as_str(), 40),
                crate::tui::state::LEAVE_NAME
            ),
            theme.style("badge"),
        ));
        left.push(Span::raw(" "));
    }
    let pending = state.pending_count();
    if pending > 0 {
        left.push(Span::styled(
            format!(" ⚑ {pending} waiting "),
            theme.style("badge"),
        ));
        left.push(Span::raw(" "));
    }
    if !run.provider_breakers.is_empty() {
        // Open circuit breakers: work on them fails fast or goes elsewhere.
        let list: Vec<String> = run
            .provider_breakers
            .iter()
            .map(|(name, st)| format!("{} {}", clip(name, 36), st.replace('_', "-")))
            .collect();
        left.push(Span::styled(
            format!(" ⊘ {} ", clip(&list.join(", "), 72)),
            super::status_style(theme, crate::protocol::StepStatus::Failed),
        ));
    }
    if !run.mcp_down.is_empty() {
        // A server whose tools fail until it is back (its next use restarts it).
        let names: Vec<&str> = run.mcp_down.keys().map(String::as_str).collect();
        left.push(Span::styled(
            format!(" ⊘ MCP {} down ", clip(&names.join(", "), 48)),
            super::status_style(theme, crate::protocol::StepStatus::Failed),
        ));
        left.push(Span::raw(" "));
    }
    if let Some((step, retry)) = run.llm_retries.iter().next() {
        // A throttled or failing provider: the user sees why nothing moves.
        let when = fmt_secs(retry.at.0.saturating_sub(state.now().0));
        let text = match run.llm_retries.len() {
            1 => format!(
                " ↻ {} retries in {when}: {} ",
                clip(step.as_str(), 24),
                clip(&retry.error, 60)
            ),
            n => format!(" ↻ {n} steps retrying their LLM requests "),
        };
        left.push(Span::styled(
            text,
            super::status_style(theme, StepStatus::Retrying),
        ));
        left.push(Span::raw(" "));
    }
    for (slot, b) in &run.breakers {
        // Open: how long until the slot takes work again.
        let (text, status) = match b.state {
            BreakerShown::Open { until: Some(t) } => (
                format!(
                    " slot {slot} breaker open {} ",
                    fmt_secs(t.0.saturating_sub(state.now().0))
                ),
                StepStatus::Failed,
            ),
            BreakerShown::Open { until: None } => {
                (format!(" slot {slot} breaker open "), StepStatus::Failed)
            }
            BreakerShown::HalfOpen => (
                format!(" slot {slot} breaker half-open "),
                StepStatus::Waiting,
            ),
        };
        left.push(Span::styled(text, super::status_style(theme, status)));
        left.push(Span::raw(" "));
    }
    if let Some(r) = &state.replay {
        let play = if r.playing { "▶" } else { "⏸" };
        left.push(Span::styled(
            format!(
                " {play} replay {}/{} ×{} ",
                r.pos,
                r.events.len(),
                r.speed()
            ),
            theme.style("statusbar.replay"),
        ));
        left.push(Span::raw(" "));
    }
    let mode = match state.typing {
        Some(Typing::Search) => Some(format!(
            "/{}  (Enter: go · Esc: clear)",
            state.textarea.lines().join("")
        )),
        Some(Typing::Answer(_)) => Some("answering: Enter sends · Esc cancels".to_string()),
        Some(Typing::EditPlan(_)) => {
            Some("editing the plan: Ctrl+S sends · Esc keeps the edit".to_string())
        }
        Some(Typing::Message(i)) => Some(format!(
            "message to {}: Enter sends · Esc cancels",
            state
                .run
                .panes
                .get(i)
                .map(|p| p.step.as_str())
                .unwrap_or("?")
        )),
        _ => None,
    };
    // The name takes what the facts beside it leave, keeping room for the
    // help hint; a message after it may be cut, a name is not cut for it.
    let facts = Line::from(left.clone()).width() as u16;
    let room = area.width.saturating_sub(facts + NAME_PAD + MIN_HINT) as usize;
    left.insert(
        0,
        Span::styled(
            format!(" {} ", clip(name, room.max(MIN_NAME))),
            theme.style("statusbar.name"),
        ),
    );
    if let Some(m) = mode.or_else(|| state.message.clone()) {
        left.push(Span::styled(m, theme.style("statusbar.message")));
    } else if let Some(note) = state.run.notes.last() {
        // The newest run-wide note (pause, limit, error) until something replaces it.
        left.push(Span::styled(note.clone(), theme.style("statusbar.note")));
    }
    let left = Line::from(left);
    let used = left.width() as u16;
    buf.set_line(area.x, area.y, &left, area.width);

    // Hints fill what is left, right-aligned, dropping the ones that do not fit.
    let mut hints: Vec<String> = Vec::new();
    let mut width = 0usize;
    let room = area.width.saturating_sub(used + 2) as usize;
    // A run that stopped executing (paused, emergency stop) goes on with
    // the pause key: said first.
    let resumable =
        state.replay.is_none() && state.run.status == Some(crate::protocol::RunStatus::Paused);
    let resume = resumable.then_some((Action::PauseRun, "resume"));
    for (a, label) in resume.iter().chain(HINTS.iter()) {
        // The first key is enough for a hint; help lists the others.
        let Some(key) = state.keymap.first_key(*a) else {
            continue;
        };
        let h = format!("{key} {label}");
        let w = h.chars().count() + 2;
        if width + w > room {
            break;
        }
        width += w;
        hints.push(h);
    }
    if !hints.is_empty() {
        let text = hints.join("  ");
        let w = text.chars().count() as u16;
        let x = area.x + area.width.saturating_sub(w + 1);
        buf.set_stringn(
            x,
            area.y,
            text,
            (w + 1) as usize,
            theme.style("statusbar.hint"),
        );
    }
}

/// ` (0: more)` with the key of the next page, when it has one.
fn next_page_key(state: &State) -> String {
    state
        .keymap
        .first_key(Action::NextPage)
        .map(|k| format!(" ({k}: more)"))
        .unwrap_or_default()
}

/// The step status whose style a run status borrows.
fn run_step_status(s: Option<crate::protocol::RunStatus>) -> crate::protocol::StepStatus {
    use crate::protocol::{RunStatus, StepStatus};
    match s {
        None | Some(RunStatus::Running) => StepStatus::Running,
        Some(RunStatus::Paused) => StepStatus::Waiting,
        Some(RunStatus::Succeeded) => StepStatus::Succeeded,
        Some(RunStatus::Failed) => StepStatus::Failed,
        Some(RunStatus::Cancelled) => StepStatus::Skipped,
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::{Event, Millis, Notice, Recorded, Seq};
    use crate::tui::state::sample::{T0, sample_run_id, sample_state};
    use crate::tui::theme::Theme;
    use crate::tui::view::{buffer_text, render};

    fn fold(s: &mut crate::tui::state::State, seq: u64, event: Event) {
        s.apply(&Notice::Event(Recorded {
            run: sample_run_id(),
            seq: Seq(seq),
            event,
        }));
    }

    fn status_line(s: &crate::tui::state::State) -> String {
        let text = buffer_text(&render(s, &Theme::fallback(), 160, 30));
        text.lines().last().unwrap_or_default().to_string()
    }

    #[test]
    fn a_long_run_name_is_whole_when_the_bar_has_room_and_cut_when_not() {
        let mut s = sample_state();
        let name = "Greeting script, designed, built, tested and reviewed";
        s.run.name = name.into();
        let line = status_line(&s);
        assert!(line.contains(name), "{line}");
        let text = buffer_text(&render(&s, &Theme::fallback(), 60, 20));
        let line = text.lines().last().unwrap_or_default();
        assert!(line.contains("Greeting"), "{line}");
        assert!(line.contains('…') && line.contains("running"), "{line}");
    }

    #[test]
    fn open_breakers_show_until_they_close() {
        let mut s = sample_state();
        assert!(!status_line(&s).contains('⊘'));
        fold(
            &mut s,
            900,
            Event::ProviderBreaker {
                endpoint: "openai@http://127.0.0.1:9/v1".into(),
                state: "open".into(),
                failures: 3,
                until: Some(Millis(T0 + 90_000)),
                reason: "3 failures in a row".into(),
                step: None,
                at: Millis(T0 + 30_000),
            },
        );
        fold(
            &mut s,
            901,
            Event::SlotBreaker {
                slot: 2,
                state: "half_open".into(),
                until: None,
                reason: "cooldown over".into(),
                at: Millis(T0 + 30_001),
            },
        );
        let line = status_line(&s);
        assert!(
            line.contains("⊘ openai@http://127.0.0.1:9/v1 open "),
            "{line}"
        );
        assert!(line.contains("slot 2 breaker half-open"), "{line}");
        fold(
            &mut s,
            902,
            Event::ProviderBreaker {
                endpoint: "openai@http://127.0.0.1:9/v1".into(),
                state: "closed".into(),
                failures: 0,
                until: None,
                reason: "the probe request succeeded".into(),
                step: None,
                at: Millis(T0 + 31_000),
            },
        );
        let line = status_line(&s);
        assert!(!line.contains('⊘'), "{line}");
        assert!(line.contains("slot 2 breaker half-open"), "{line}");
    }

    #[test]
    fn an_mcp_server_that_went_down_shows_until_it_starts_again() {
        let mut s = sample_state();
        fold(
            &mut s,
            900,
            Event::McpServerStarted {
                server: "everything".into(),
                restart: 0,
                tools: 14,
                at: Millis(T0 + 1_000),
            },
        );
        assert!(!status_line(&s).contains("⊘ MCP"), "{}", status_line(&s));
        fold(
            &mut s,
            901,
            Event::McpServerDown {
                server: "everything".into(),
                error: "MCP server `everything` stopped while calling a tool".into(),
                at: Millis(T0 + 2_000),
            },
        );
        let line = status_line(&s);
        assert!(line.contains("⊘ MCP everything down"), "{line}");
        fold(
            &mut s,
            902,
            Event::McpServerStarted {
                server: "everything".into(),
                restart: 1,
                tools: 14,
                at: Millis(T0 + 3_000),
            },
        );
        let line = status_line(&s);
        assert!(!line.contains("⊘ MCP"), "{line}");
    }

    #[test]
    fn a_retrying_llm_request_shows_with_the_providers_words_until_a_reply() {
        use crate::protocol::{Attempt, StepKey};
        let mut s = sample_state();
        let step = StepKey::new("coder");
        fold(
            &mut s,
            900,
            Event::LlmRetrying {
                step: step.clone(),
                attempt: Attempt(1),
                turn: 2,
                endpoint: "anthropic@http://127.0.0.1:9".into(),
                failed: 1,
                tries: 4,
                error: "anthropic@http://127.0.0.1:9: overloaded (HTTP 529): Overloaded".into(),
                delay_ms: 30_000,
                at: Millis(T0 + 1_000),
            },
        );
        let line = status_line(&s);
        assert!(line.contains("↻ coder retries in"), "{line}");
        assert!(
            line.contains("Overloaded") || line.contains("overloaded"),
            "{line}"
        );
        fold(
            &mut s,
            901,
            Event::LlmReplied {
                step,
                attempt: Attempt(1),
                turn: 2,
                fingerprint: "f".into(),
                text: "fine now".into(),
                tool_calls: vec![],
                usage: Default::default(),
                model: "m".into(),
                stop_reason: Some("end_turn".into()),
                refusal: None,
                at: Millis(T0 + 31_000),
            },
        );
        assert!(!status_line(&s).contains('↻'));
    }
}
