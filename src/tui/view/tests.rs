//! Whole-screen snapshots over fixed sizes and fixed event times. The text
//! (symbols and layout) is what reviewers read; styles come from the theme.

use crate::engine::Query;
use crate::protocol::Millis;
use crate::tui::keymap::Action;
use crate::tui::state::sample::{T0, sample_events, sample_runs, sample_state};
use crate::tui::state::{Effect, Input, State};
use crate::tui::theme::Theme;

use super::{buffer_text, render};

fn screen(state: &State, w: u16, h: u16) -> String {
    buffer_text(&render(state, &Theme::fallback(), w, h))
}

/// The sample run after its prompts have been on screen past the grace period.
fn settled() -> State {
    let mut s = sample_state();
    s.handle(Input::Resize(120, 36));
    s.handle(Input::Tick(Millis(T0 + 31_000)));
    s.handle(Input::Tick(Millis(T0 + 32_000)));
    s
}

#[test]
fn runs_browser() {
    let mut s = State::new();
    s.set_runs(sample_runs());
    s.handle_action(Action::ScrollDown);
    insta::assert_snapshot!("runs_browser", screen(&s, 120, 16));
}

/// What the newest runs suggest shows under the list, each with the
/// command that does it, at 80×24 as at 200×50; the list keeps its rows.
#[test]
fn the_runs_browser_shows_suggestions_under_the_list() {
    use crate::engine::suggest::{Kind, Remedy, Suggestion};
    let mut s = State::new();
    s.set_runs(sample_runs());
    let newest = s.runs[0].id.clone();
    s.answered(
        &Query::Suggestions { runs: 50 },
        Ok(crate::engine::Reply::Suggestions(vec![
            Suggestion {
                kind: Kind::RaiseTimeout,
                run: newest.clone(),
                workflow: "nightly".into(),
                text: "step `fetch` of nightly timed out in 3 of its last 5 runs (timed out after 1s): raise its `timeout:` in nightly.yaml".into(),
                command: None,
                remedy: Remedy::RaiseTimeout {
                    file: "nightly.yaml".into(),
                    step: "fetch".into(),
                },
            },
            Suggestion {
                kind: Kind::SaveTemplate,
                run: newest.clone(),
                workflow: "swarm".into(),
                text: "the swarm for \"添加登录页面\" succeeded: save its plan as a workflow to run it again".into(),
                command: Some(format!("lev template save {newest} login")),
                remedy: Remedy::SaveTemplate {
                    name: "login".into(),
                },
            },
        ])),
    );
    for (w, h) in [(80, 24), (200, 50)] {
        let text = screen(&s, w, h);
        assert!(text.contains("suggestions"), "{text}");
        assert!(
            text.contains("› step `fetch` of nightly timed out"),
            "{text}"
        );
        assert!(text.contains("添加登录页面"), "{text}");
        // Every run is still listed above.
        for r in &s.runs {
            assert!(text.contains(r.id.as_str()) || w < 100, "{text}");
        }
        assert!(text.contains(s.runs[0].id.as_str()), "{text}");
    }
    let wide = screen(&s, 200, 50);
    assert!(
        wide.contains(&format!("· lev template save {newest} login")),
        "{wide}"
    );

    // `a` does the marked one (the workbench's loop carries it out), `d`
    // dismisses the next; neither comes back while the workbench runs.
    let all = s.suggestions.clone();
    let effects = s.handle_action(Action::Approve);
    assert!(
        matches!(&effects[..], [Effect::Remedy(r)] if r.remedy == all[0].remedy),
        "{effects:?}"
    );
    assert!(screen(&s, 200, 50).contains("› the swarm for"));
    assert!(s.handle_action(Action::Deny).is_empty());
    let text = screen(&s, 200, 50);
    assert!(text.contains("dismissed: the swarm for"), "{text}");
    assert!(!text.contains("suggestions ·"), "{text}");
    s.answered(
        &Query::Suggestions { runs: 50 },
        Ok(crate::engine::Reply::Suggestions(all)),
    );
    assert!(s.suggestions.is_empty());
    assert!(s.handle_action(Action::Approve).is_empty());
}

/// A run's sidebar shows what its workflow's newest runs suggest, and
/// nothing about other workflows.
#[test]
fn the_sidebar_shows_suggestions_about_the_runs_workflow() {
    use crate::engine::suggest::{Kind, Remedy, Suggestion};
    let mut s = settled();
    let run = s.runs.first().map(|r| r.id.clone()).unwrap_or_default();
    let about = |workflow: &str, text: &str| Suggestion {
        kind: Kind::RepeatedFailure,
        run: run.clone(),
        workflow: workflow.into(),
        text: text.into(),
        command: Some("lev show R".into()),
        remedy: Remedy::ShowRun,
    };
    s.answered(
        &Query::Suggestions { runs: 50 },
        Ok(crate::engine::Reply::Suggestions(vec![
            about(
                "implement-auth",
                "step `tests` of implement-auth failed in 2 of its last 3 runs",
            ),
            about(
                "nightly",
                "step `fetch` of nightly failed in 2 of its last 2 runs",
            ),
        ])),
    );
    let text = screen(&s, 120, 36);
    assert!(text.contains("── suggestions ──"), "{text}");
    assert!(text.contains("step `tests` of implement-auth"), "{text}");
    assert!(!text.contains("nightly"), "{text}");
}

#[test]
fn grid_with_agents_mid_stream() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::LayoutGrid);
    s.handle_action(Action::JumpPane(4));
    insta::assert_snapshot!("grid", screen(&s, 120, 36));
}

#[test]
fn tabs_layout() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::LayoutTabs);
    s.handle_action(Action::JumpPane(2));
    s.handle_action(Action::ToggleToolDetails);
    insta::assert_snapshot!("tabs", screen(&s, 120, 36));
}

#[test]
fn zoom_hides_sidebar_and_tabs() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::ToggleSidebar);
    s.handle_action(Action::JumpPane(1));
    s.handle_action(Action::ToggleZoom);
    insta::assert_snapshot!("zoom", screen(&s, 100, 20));
}

#[test]
fn sidebar_with_pending_question_focused() {
    let mut s = settled();
    // The approval arrived first and took focus; move on to the question.
    s.handle_action(Action::NextPrompt);
    insta::assert_snapshot!("sidebar_question", screen(&s, 120, 36));
}

#[test]
fn search_highlights_matches() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::JumpPane(4));
    s.handle_action(Action::Search);
    for c in "token".chars() {
        s.handle(Input::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        )));
    }
    s.handle(Input::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    )));
    insta::assert_snapshot!("search", screen(&s, 100, 20));
}

#[test]
fn help_overlay() {
    let mut s = settled();
    s.handle_action(Action::Help);
    insta::assert_snapshot!("help", screen(&s, 120, 36));
}

/// Help says what works where it is opened: the browser's keys in the runs
/// browser, not the keys that act on a run; the mouse everywhere.
#[test]
fn help_in_the_runs_browser_lists_the_browsers_keys() {
    let mut s = State::new();
    s.set_runs(sample_runs());
    s.handle_action(Action::Help);
    let text = screen(&s, 120, 30);
    for wanted in ["Open the selected run", "mouse", "Shift"] {
        assert!(text.contains(wanted), "{wanted}:\n{text}");
    }
    for run_key in ["Approve", "Fork", "glyphs"] {
        assert!(!text.contains(run_key), "{run_key}:\n{text}");
    }
    let mut s = settled();
    s.handle_action(Action::Help);
    s.help_scroll = usize::MAX / 2;
    let text = screen(&s, 120, 36);
    assert!(text.contains("needs you"), "{text}");
}

#[test]
fn palette_filters_fuzzily() {
    let mut s = settled();
    s.handle_action(Action::Palette);
    s.handle(Input::Paste("zom".into()));
    let first = s.palette.first().map(|e| e.item.clone());
    assert_eq!(
        first,
        Some(crate::tui::state::PaletteItem::Action(Action::ToggleZoom))
    );
    insta::assert_snapshot!("palette", screen(&s, 120, 36));
}

#[test]
fn overview_and_timeline() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::Overview);
    insta::assert_snapshot!("overview", screen(&s, 120, 20));
    s.handle_action(Action::Timeline);
    insta::assert_snapshot!("timeline", screen(&s, 120, 20));
}

#[test]
fn confirm_quit_overlay() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::Quit);
    insta::assert_snapshot!("confirm_quit", screen(&s, 100, 24));
}

#[test]
fn replay_status() {
    let mut s = State::new();
    s.load_replay(sample_events());
    s.replay_jump(9);
    insta::assert_snapshot!("replay", screen(&s, 120, 24));
}

#[test]
fn too_small_terminal() {
    let s = settled();
    insta::assert_snapshot!("too_small", screen(&s, 50, 12));
}

#[test]
fn sidebar_while_typing_a_free_answer() {
    let mut s = settled();
    s.handle_action(Action::NextPrompt);
    s.handle_action(Action::Answer);
    s.handle(Input::Paste("proptest, but keep one example".into()));
    insta::assert_snapshot!("sidebar_typing", screen(&s, 120, 36));
}

#[test]
fn palette_in_the_runs_browser_lists_runs() {
    let mut s = State::new();
    s.set_runs(sample_runs());
    s.handle_action(Action::Palette);
    s.handle(Input::Paste("open paused".into()));
    insta::assert_snapshot!("palette_runs", screen(&s, 100, 20));
}

#[test]
fn tab_bar_scrolls_to_the_focused_tab() {
    let mut s = crate::tui::state::sample::bench_state(12, 3);
    s.handle_action(Action::LayoutTabs);
    s.handle_action(Action::JumpPane(9));
    for _ in 0..3 {
        s.handle_action(Action::FocusNext);
    }
    assert_eq!(s.focus_pane, 11);
    let text = screen(&s, 80, 16);
    let bar = text.lines().next().unwrap();
    assert!(bar.contains("12 "), "focused tab visible: {bar}");
    assert!(bar.starts_with('‹'), "scrolled: {bar}");
}

#[test]
fn overview_lists_run_notes() {
    use crate::protocol::{Event, Notice, Recorded, Seq};
    let mut s = settled();
    s.apply(&Notice::Event(Recorded {
        run: crate::tui::state::sample::sample_run_id(),
        seq: Seq(300),
        event: Event::GuardTripped {
            guard: "max_cost_usd".into(),
            limit: "5.00".into(),
            observed: "5.12".into(),
            step: Some(crate::protocol::StepKey::new("coder")),
            at: Millis(T0 + 33_000),
        },
    }));
    s.handle_action(Action::Back);
    s.handle_action(Action::Overview);
    let text = screen(&s, 120, 20);
    assert!(text.contains("run notes"), "{text}");
    assert!(
        text.contains("· limit max_cost_usd (5.00) reached at coder: observed 5.12"),
        "{text}"
    );
    assert!(
        text.contains("limit max_cost_usd"),
        "status bar shows the newest note"
    );
}

/// What lev did on its own shows in the sidebar, newest first: the
/// question it put to an agent with the agent's reply, and follow-ups
/// spawned and refused.
#[test]
fn sidebar_shows_lev_s_initiative_with_the_agent_s_reply() {
    use crate::protocol::{Attempt, Event, Notice, Recorded, Seq, StepKey};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    let mut seq = 300;
    let mut fold = |s: &mut State, event: Event| {
        seq += 1;
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        }));
    };
    let architect = StepKey::new("architect");
    fold(
        &mut s,
        Event::AgentAsked {
            step: architect.clone(),
            attempt: Attempt(1),
            turn: 4,
            question: "Was every must-fix addressed? Answer yes or no.".into(),
            at: Millis(T0 + 33_000),
        },
    );
    fold(
        &mut s,
        Event::LlmReplied {
            step: architect.clone(),
            attempt: Attempt(1),
            turn: 4,
            fingerprint: "f".into(),
            text: "yes, all three".into(),
            tool_calls: vec![],
            usage: Default::default(),
            model: "m".into(),
            stop_reason: Some("stop".into()),
            refusal: None,
            at: Millis(T0 + 34_000),
        },
    );
    fold(
        &mut s,
        Event::SemanticVerdict {
            step: StepKey::new("architect.2"),
            condition: "the issue is new".into(),
            holds: true,
            confidence: Some(0.9),
            reason: "it is".into(),
            judge: "m".into(),
            usage: Default::default(),
            at: Millis(T0 + 34_500),
        },
    );
    fold(
        &mut s,
        Event::FollowupRefused {
            step: StepKey::new("architect.2"),
            parent: architect.clone(),
            title: "Fix the token log".into(),
            guard: "duplicate".into(),
            limit: "one follow-up per mode and prompt in a chain".into(),
            observed: "the same as architect.1".into(),
            at: Millis(T0 + 35_000),
        },
    );
    let text = screen(&s, 200, 50);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in\n{text}"))
    };
    at("lev's initiative");
    // (The sidebar wraps long entries; these pieces are each on one row.)
    let asked = at("◆ architect: lev asks the agent: Was");
    let reply = at("↩ yes, all three");
    let refused = at("◆ follow-up architect.2 not spawned:");
    assert!(refused < asked && asked < reply, "newest first:\n{text}");
    // The follow-up's verdict gave way to the refusal it led to.
    assert!(!text.contains("architect.2: when_semantic"), "{text}");
}

/// FlowMind's decisions show in the agent's pane and under lev's
/// initiative; an escalation also becomes a run note.
#[test]
fn flowmind_s_decisions_show_in_the_pane_the_sidebar_and_the_notes() {
    use crate::protocol::{Event, FlowmindLevel, Notice, Recorded, Seq, StepKey};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    for (seq, level, text) in [
        (301, FlowmindLevel::Instruct, "Stop repeating it."),
        (302, FlowmindLevel::Escalate, "Send it a message."),
    ] {
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event: Event::FlowmindDecided {
                step: StepKey::new("security"),
                rule: "loop".into(),
                observed: "read_file 3 times".into(),
                level,
                text: text.into(),
                at: Millis(T0 + 33_000),
            },
        }));
    }
    let text = screen(&s, 200, 50);
    assert!(text.contains("FlowMind → security"), "{text}");
    assert!(text.contains("◆ ! FlowMind: security looks"), "{text}");
    assert_eq!(
        s.run.notes.last().map(String::as_str),
        Some("! FlowMind: security looks stuck (loop: read_file 3 times): Send it a message.")
    );
}

/// FlowMind's escalation waits in the sidebar like a question: Enter
/// messages the stuck agent, `d` dismisses it (an op the engine journals,
/// counted as a dismissed whisper), and what settled it shows after.
#[test]
fn flowmind_s_escalation_waits_in_the_sidebar_until_dismissed() {
    use crate::protocol::{Event, FlowmindLevel, Notice, Op, Recorded, Seq, StepKey};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    let step = StepKey::new("security");
    let at = |seq: u64, event: Event| {
        Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        })
    };
    s.apply(&at(
        301,
        Event::FlowmindDecided {
            step: step.clone(),
            rule: "loop".into(),
            observed: "`read_file` called with the same arguments 3 times in a row".into(),
            level: FlowmindLevel::Escalate,
            text: "Send it a message (m), pause it, or cancel the step.".into(),
            at: Millis(T0 + 33_000),
        },
    ));
    // Seen on one tick, ready to act on after the grace period.
    s.handle(Input::Tick(Millis(T0 + 34_000)));
    s.handle(Input::Tick(Millis(T0 + 40_000)));
    s.handle_action(Action::NextPrompt);
    while s
        .focused_prompt()
        .is_some_and(|(_, p)| p.step.as_ref() != Some(&step))
    {
        s.handle_action(Action::NextPrompt);
    }
    for (w, h) in [(80, 24), (120, 36), (200, 50)] {
        let text = screen(&s, w, h);
        assert!(text.contains("▶ ◆ FlowMind: security"), "{text}");
        assert!(text.contains("[d] dismiss") || w < 100, "{text}");
    }
    let effects = s.handle_action(Action::Deny);
    assert!(
        matches!(&effects[..], [Effect::Op(Op::DismissEscalation { step: st, .. })] if *st == step),
        "{effects:?} {:?}",
        s.message
    );
    s.apply(&at(
        302,
        Event::FlowmindDismissed {
            step: step.clone(),
            at: Millis(T0 + 41_000),
        },
    ));
    let settled = s
        .run
        .prompts
        .iter()
        .find(|p| p.kind == crate::tui::state::PromptKind::Escalation)
        .and_then(|p| p.answered.as_ref())
        .map(|a| a.text.as_str());
    assert_eq!(settled, Some("dismissed"));
    let text = screen(&s, 200, 50);
    assert!(
        text.contains("✓ FlowMind: security looks stuck ="),
        "{text}"
    );
}

/// FlowMind's question to an agent shows in the sidebar, and the agent's
/// next words show under it as the answer.
#[test]
fn flowmind_s_question_and_the_agent_s_answer_show_in_the_sidebar() {
    use crate::protocol::{Attempt, Event, FlowmindLevel, Notice, Recorded, Seq, StepKey, Usage};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    let step = StepKey::new("security");
    let at = |seq: u64, event: Event| {
        Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        })
    };
    s.apply(&at(
        301,
        Event::FlowmindDecided {
            step: step.clone(),
            rule: "ledger".into(),
            observed: "It reads the notes in order.".into(),
            level: FlowmindLevel::Ask,
            text: "Which note did you expect the date in?".into(),
            at: Millis(T0 + 33_000),
        },
    ));
    s.apply(&at(
        302,
        Event::LlmReplied {
            step: step.clone(),
            attempt: Attempt(1),
            turn: 9,
            fingerprint: "f".into(),
            text: "In notes3.txt — 日付 is not there.".into(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            model: "m".into(),
            stop_reason: None,
            refusal: None,
            at: Millis(T0 + 34_000),
        },
    ));
    for (w, h) in [(80, 24), (200, 50)] {
        let text = screen(&s, w, h);
        assert!(text.contains("FlowMind asks security"), "{text}");
    }
    let asked = s.run.initiative.last().unwrap();
    assert_eq!(asked.awaiting, None);
    assert_eq!(
        asked.reply.as_deref(),
        Some("In notes3.txt — 日付 is not there.")
    );
    let text = screen(&s, 200, 50);
    assert!(text.contains("日付 is not there"), "{text}");
}

#[test]
fn flowmind_s_mode_and_ledger_show_in_the_sidebar_and_the_running_agent_s_title() {
    use crate::protocol::{Attempt, Event, Ledger, Notice, Recorded, Seq, Usage};
    let mut s = settled();
    s.flowmind = "model fm-1 · rules · 50000 tok budget".into();
    let run = crate::tui::state::sample::sample_run_id();
    let pane = crate::protocol::StepKey::new("security");
    assert!(
        s.run
            .panes
            .iter()
            .any(|p| p.step == pane && !p.status.is_terminal())
    );
    let text = screen(&s, 200, 50);
    assert!(text.contains("FlowMind: model fm-1 · rules"), "{text}");
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(301),
        event: Event::FlowmindLedger {
            step: pane.clone(),
            attempt: Attempt(1),
            turn: 4,
            ledger: Ledger {
                satisfied: false,
                looping: true,
                progressing: false,
                next: "agent".into(),
                instruction: String::new(),
                reason: "It runs the same test again.".into(),
                question: String::new(),
                followup: None,
            },
            model: "fm-1".into(),
            usage: Usage {
                input_tokens: 900,
                output_tokens: 40,
                ..Usage::default()
            },
            at: Millis(T0 + 33_000),
        },
    }));
    s.handle_action(Action::Back);
    s.handle_action(Action::LayoutGrid);
    let text = screen(&s, 240, 50);
    assert!(text.contains("FlowMind: looping, no progress"), "{text}");
    assert_eq!(s.run.flowmind_usage.total_tokens(), 940);
    s.apply(&Notice::Event(Recorded {
        run,
        seq: Seq(302),
        event: Event::FlowmindFellBack {
            why: "its budget of 1000 tokens is spent (940 used)".into(),
            at: Millis(T0 + 34_000),
        },
    }));
    let text = screen(&s, 200, 50);
    assert!(
        text.contains("FlowMind: rules (its model stopped"),
        "{text}"
    );
    // The overview names each agent's latest ledger after its usage.
    s.handle_action(Action::Overview);
    let text = screen(&s, 200, 50);
    assert!(
        text.lines()
            .any(|l| l.contains("security") && l.contains("FlowMind: looping, no progress")),
        "{text}"
    );
}

#[test]
fn flowmind_s_answer_to_an_agent_s_question_is_offered_and_typed_in_for_you() {
    use crate::protocol::{Event, Notice, Recorded, Seq, StepKey, Usage};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    let id = "security#1.t2.1".to_string();
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(301),
        event: Event::QuestionAsked {
            id: id.clone(),
            step: Some(StepKey::new("security")),
            header: None,
            ask: "Name style for the module?".into(),
            options: Vec::new(),
            default: None,
            timeout_ms: None,
            from_agent: true,
            at: Millis(T0 + 33_000),
        },
    }));
    s.apply(&Notice::Event(Recorded {
        run,
        seq: Seq(302),
        event: Event::AnswerProposed {
            id,
            answer: Some("snake_case".into()),
            confidence: 0.93,
            category: "naming".into(),
            reason: "The code uses it.".into(),
            auto: true,
            grace_ms: 15_000,
            model: "fm-1".into(),
            usage: Usage::default(),
            at: Millis(T0 + 34_000),
        },
    }));
    s.handle(Input::Tick(Millis(T0 + 40_000)));
    let text = screen(&s, 200, 50);
    assert!(
        text.contains("FlowMind: snake_case — answers in 9s"),
        "{text}"
    );
    assert!(
        text.contains("FlowMind answers security#1.t2.1 in 15s"),
        "{text}"
    );
    // Focus it and press the answer key: FlowMind's answer is typed in,
    // Enter sends it.
    while s.focused_prompt().is_none_or(|(_, p)| p.proposal.is_none()) {
        s.handle_action(Action::NextPrompt);
    }
    s.handle_action(Action::Answer);
    assert_eq!(s.textarea.lines(), ["snake_case"]);
}

/// Every screen draws at every size, down to nothing, without panicking.
#[test]
fn every_screen_draws_at_every_size() {
    let mut states = Vec::new();
    let mut browser = State::new();
    browser.set_runs(sample_runs());
    states.push(browser);
    for actions in [
        vec![],
        vec![Action::LayoutGrid],
        vec![Action::ToggleZoom],
        vec![Action::Overview],
        vec![Action::Timeline],
        vec![Action::Help],
        vec![Action::Palette],
        vec![Action::Quit],
        vec![Action::NextPrompt, Action::Answer],
        vec![Action::Search],
    ] {
        let mut s = settled();
        for a in actions {
            s.handle_action(a);
        }
        states.push(s);
    }
    let mut replay = State::new();
    replay.load_replay(sample_events());
    replay.replay_jump(5);
    states.push(replay);
    for s in &mut states {
        for w in (0..=130).step_by(7) {
            for h in (0..=40).step_by(3) {
                // The state pages and hit-tests with the same size.
                s.handle(Input::Resize(w, h));
                s.handle_action(Action::PageUp);
                s.handle_action(Action::FocusRight);
                let _ = render(s, &Theme::fallback(), w, h);
            }
        }
    }
}

#[test]
fn sidebar_scrolls_to_the_focused_prompt() {
    use crate::protocol::{Event, Notice, Recorded, Seq};
    let mut s = settled();
    for k in 0..8 {
        s.apply(&Notice::Event(Recorded {
            run: crate::tui::state::sample::sample_run_id(),
            seq: Seq(400 + k),
            event: Event::QuestionAsked {
                id: format!("extra{k}"),
                step: None,
                header: Some(format!("Extra {k}")),
                ask: "Another question that needs a few words to ask".into(),
                options: vec![],
                default: None,
                timeout_ms: None,
                from_agent: false,
                at: Millis(T0 + 31_000),
            },
        }));
    }
    s.handle(Input::Tick(Millis(T0 + 40_000)));
    for _ in 0..9 {
        s.handle_action(Action::NextPrompt);
    }
    assert_eq!(s.focused_prompt().map(|(i, _)| i), Some(10));
    let text = screen(&s, 100, 20);
    assert!(text.contains("▶ ? Extra 7"), "{text}");
    assert!(text.contains("more waiting"), "{text}");
}

#[test]
fn a_prompt_of_several_lines_keeps_them_in_the_sidebar() {
    use crate::protocol::{Event, Notice, Recorded, Seq};
    let mut s = settled();
    s.apply(&Notice::Event(Recorded {
        run: crate::tui::state::sample::sample_run_id(),
        seq: Seq(400),
        event: Event::QuestionAsked {
            id: "lines".into(),
            step: None,
            header: Some("Two lines".into()),
            ask: "First line?\n(second line)".into(),
            options: vec![],
            default: None,
            timeout_ms: None,
            from_agent: false,
            at: Millis(T0 + 31_000),
        },
    }));
    let text = screen(&s, 120, 40);
    assert!(!text.contains("line?(second"), "{text}");
    let first = text.lines().position(|l| l.contains("First line?"));
    let second = text.lines().position(|l| l.contains("(second line)"));
    assert!(
        matches!((first, second), (Some(a), Some(b)) if b == a + 1),
        "{text}"
    );
}

/// The screen's text, then each row's style runs (`x0-x1 fg bg modifiers`),
/// so a theme's colours are part of what a reviewer reads.
pub(super) fn styled_screen(state: &State, theme: &Theme, w: u16, h: u16) -> String {
    let buf = render(state, theme, w, h);
    let mut out = buffer_text(&buf);
    out.push_str("\n--- styles ---\n");
    for y in 0..h {
        let mut runs: Vec<String> = Vec::new();
        let mut start = 0;
        let style_at = |x: u16| {
            let c = &buf[(x, y)];
            format!("{:?} {:?} {:?}", c.fg, c.bg, c.modifier)
        };
        let mut current = style_at(0);
        for x in 1..=w {
            let next = if x < w { style_at(x) } else { String::new() };
            if next != current {
                runs.push(format!("{start}-{} {current}", x - 1));
                start = x;
                current = next;
            }
        }
        out.push_str(&format!("{y:>2}: {}\n", runs.join(" | ")));
    }
    out
}

#[test]
fn grid_in_the_dark_and_light_themes() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::LayoutGrid);
    for name in ["dark", "light"] {
        let theme = Theme::builtin(name).unwrap();
        insta::assert_snapshot!(
            format!("grid_theme_{name}"),
            styled_screen(&s, &theme, 100, 30)
        );
    }
}

#[test]
fn sidebar_question_in_the_high_contrast_theme_and_without_colour() {
    let s = settled();
    let theme = Theme::builtin("high-contrast").unwrap();
    insta::assert_snapshot!("sidebar_high_contrast", styled_screen(&s, &theme, 100, 30));
    let plain = Theme::builtin("dark").unwrap().with_no_color(true);
    let text = styled_screen(&s, &plain, 100, 30);
    assert!(!text.contains("Rgb("), "NO_COLOR must drop every colour");
    insta::assert_snapshot!("sidebar_no_color", text);
}

#[test]
fn steering_a_paused_run_while_typing_a_message() {
    use crate::protocol::{Attempt, Event, Notice, Recorded, Seq, StepKey};
    let mut s = settled();
    let first = sample_events().len() as u64 + 1;
    let events = [
        Event::PauseRequested {
            step: None,
            at: Millis(T0 + 32_000),
        },
        Event::AgentMessaged {
            step: StepKey::new("security"),
            attempt: Attempt(1),
            turn: 2,
            text: "check SameSite too".into(),
            at: Millis(T0 + 32_100),
        },
    ];
    for (i, event) in events.into_iter().enumerate() {
        s.apply(&Notice::Event(Recorded {
            run: crate::tui::state::sample::sample_run_id(),
            seq: Seq(first + i as u64),
            event,
        }));
    }
    s.handle_action(Action::Back);
    s.handle_action(Action::JumpPane(4));
    s.handle_action(Action::SendMessage);
    s.handle(Input::Paste("and CSRF".into()));
    insta::assert_snapshot!("steering", screen(&s, 120, 36));
}

fn memory_entries() -> Vec<crate::journal::MemoryRecord> {
    use crate::journal::{MemoryAuthor, MemoryRecord};
    let entry = |ns: &str, key: &str, text: &str, tags: &[&str], at: u64| MemoryRecord {
        namespace: ns.into(),
        key: key.into(),
        text: text.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        author: MemoryAuthor {
            run: Some("01JRUN".into()),
            step: Some("plan".into()),
            mode: Some("architect".into()),
        },
        created_ms: at,
        updated_ms: at,
    };
    vec![
        entry(
            "global",
            "release-day",
            "Releases are cut on Fridays.",
            &["process"],
            T0,
        ),
        entry(
            "project:/home/u/shop",
            "token-store",
            "Auth tokens are stored in SQLite, table `tokens`.\nRotate them weekly.",
            &["auth", "db"],
            T0 + 60_000,
        ),
    ]
}

#[test]
fn memory_overlay_lists_entries_and_shows_the_selected_one() {
    use crate::tui::state::{Effect, Overlay};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c| Input::Key(KeyEvent::new(c, KeyModifiers::NONE));
    let mut s = State::new();
    s.set_runs(sample_runs());
    // The action asks the app for the entries; the app hands them back.
    assert_eq!(
        s.handle_action(Action::Memory),
        vec![Effect::Query(Query::Memory { namespaces: None })]
    );
    s.set_memory(Ok(memory_entries()));
    assert_eq!(s.overlay, Some(Overlay::Memory));
    // Newest first; moving down selects the older one.
    assert_eq!(s.memory[0].key, "token-store");
    s.handle(key(KeyCode::Down));
    assert_eq!(s.memory_cursor, 1);
    assert_eq!(
        s.handle(key(KeyCode::Char('r'))),
        vec![Effect::Query(Query::Memory { namespaces: None })]
    );
    s.handle(key(KeyCode::Up));
    insta::assert_snapshot!("memory", screen(&s, 100, 20));
    s.handle(key(KeyCode::Esc));
    assert_eq!(s.overlay, None);
    s.set_memory(Err("journal busy".into()));
    assert_eq!(s.overlay, None);
    assert!(s.message.as_deref().unwrap().contains("journal busy"));
}

/// The palette offers every theme (built-ins, then the user's files) and
/// switching draws with the new one at once; `NO_COLOR` still holds.
#[test]
fn palette_switches_themes_live() {
    use crate::tui::state::{Effect, PaletteItem};
    use crate::tui::theme::Catalog;
    use crossterm::event::{KeyCode, KeyEvent};
    use ratatui::style::Color;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.yaml"),
        "version: 1\nkind: theme\nid: mine\nname: Mine\nextends: builtin:light\n",
    )
    .unwrap();
    // A user file named like a built-in replaces it; it is offered once.
    std::fs::write(
        dir.path().join("dark.yaml"),
        "version: 1\nkind: theme\nid: dark\nname: My dark\nextends: builtin:dark\n",
    )
    .unwrap();
    let catalog = Catalog::new(vec![dir.path().to_path_buf()], false);
    assert_eq!(
        catalog.names(),
        ["dark", "light", "high-contrast", "abyss", "mine"]
    );

    let mut s = settled();
    s.set_themes(catalog.names(), "dark");
    s.handle_action(Action::Palette);
    s.handle(Input::Paste("theme".into()));
    let themes: Vec<&str> = s
        .palette
        .iter()
        .filter_map(|e| match &e.item {
            PaletteItem::Theme(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(themes.len(), 5, "{themes:?}");
    insta::assert_snapshot!("palette_themes", screen(&s, 120, 36));

    s.handle(Input::Paste(": abyss".into()));
    let out = s.handle(Input::Key(KeyEvent::from(KeyCode::Enter)));
    assert_eq!(out, vec![Effect::SetTheme("abyss".into())]);
    // What the app does with the effect.
    let theme = catalog.load("abyss").unwrap();
    s.theme_switched(Ok("abyss".into()));
    assert_eq!(s.theme, "abyss");
    assert_eq!(s.message.as_deref(), Some("theme: abyss"));
    let buf = render(&s, &theme, 120, 36);
    assert_eq!(buf[(60, 20)].bg, Color::Rgb(0x0b, 0x0f, 0x14));

    // A theme that fails to load leaves the one in use.
    std::fs::write(dir.path().join("broken.yaml"), "version: 1\nkind: theme\n").unwrap();
    let err = catalog.load("broken").unwrap_err();
    s.theme_switched(Err(err));
    assert_eq!(s.theme, "abyss");
    assert!(
        s.message
            .as_deref()
            .unwrap()
            .starts_with("theme not changed: "),
        "{:?}",
        s.message
    );

    // NO_COLOR: the switched-to theme draws without colours too.
    let plain = Catalog::new(vec![dir.path().to_path_buf()], true)
        .load("abyss")
        .unwrap();
    assert!(plain.is_no_color());
    let buf = render(&s, &plain, 120, 36);
    assert_eq!(buf[(60, 20)].bg, Color::Reset);
}

/// Labels are drawn straight from names (a run's, a workflow's); ratatui
/// drops control and zero-width characters as it writes a cell, which is
/// what keeps an override or an escape out of the frame. This holds it to
/// that.
#[test]
fn names_with_bidirectional_overrides_never_reach_the_screen() {
    let evil = "\u{202e}exe.txt\u{2066} \u{1b}[31mred";
    let mut s = State::new();
    let mut runs = sample_runs();
    for r in &mut runs {
        r.name = evil.to_string();
        r.workflow_id = evil.to_string();
    }
    s.set_runs(runs);
    let mut run = settled();
    run.run.name = evil.to_string();
    for state in [&s, &run] {
        for (w, h) in [(80, 24), (200, 50)] {
            let buf = render(state, &Theme::fallback(), w, h);
            let unsafe_cells = buf
                .content()
                .iter()
                .filter(|c| c.symbol().chars().any(crate::text::is_unsafe_char))
                .count();
            assert_eq!(unsafe_cells, 0, "{}", buffer_text(&buf));
        }
    }
}

/// A reply with a wide character, a long URL, tab-indented code and
/// prose, in one zoomed pane at 80×24 and 200×50: prose wraps between
/// words, code keeps its indentation, and every character reaches the
/// screen (nothing cut at a row's end, nothing dropped after an emoji).
#[test]
fn pane_text_wraps_between_words_and_loses_nothing() {
    use crate::protocol::{Delta, Notice, StepKey};
    use crate::tui::state::sample::sample_run_id;
    let reply = "🚀, very long lines, and a URL https://example.com/a/b/c keep every word whole when the pane wraps them\n```\nfn main() {\n\tlet x = 1;\n}\n```\n";
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let mut s = settled();
        s.apply(&Notice::Delta(
            sample_run_id(),
            Delta::Token {
                step: StepKey::new("security"),
                text: reply.into(),
            },
        ));
        s.handle_action(Action::Back);
        let idx = s
            .run
            .panes
            .iter()
            .position(|p| p.step == StepKey::new("security"))
            .unwrap();
        s.handle_action(Action::JumpPane(idx as u8 + 1));
        s.handle_action(Action::ToggleZoom);
        let text = screen(&s, w, h);
        // The pane's rows, without its borders.
        let rows: Vec<String> = text
            .lines()
            .map(|l| l.trim_matches(|c| c == '│' || c == ' ').to_string())
            .collect();
        let joined = rows.join(" ");
        for word in reply.split_whitespace() {
            assert!(
                joined.contains(word),
                "{w}×{h}: `{word}` is not whole on screen:\n{text}"
            );
        }
        assert!(
            text.contains("    let x = 1;"),
            "{w}×{h}: the tab was not expanded:\n{text}"
        );
    }
}

/// At 80×24 the help does not fit: it scrolls, says where it is, cuts no
/// description, and its end is reachable.
#[test]
fn help_scrolls_at_80_by_24() {
    use crossterm::event::{KeyCode, KeyEvent};
    let mut s = settled();
    s.handle(Input::Resize(80, 24));
    s.handle_action(Action::Help);
    let top = screen(&s, 80, 24);
    assert!(top.contains("lines 1–"), "no position:\n{top}");
    assert!(top.contains("Scroll up one line"), "{top}");
    assert!(!top.contains("Quit the workbench"), "{top}");
    s.handle(Input::Key(KeyEvent::from(KeyCode::End)));
    let end = screen(&s, 80, 24);
    assert!(
        end.contains("Quit the workbench"),
        "the end is out of reach:\n{end}"
    );
    s.handle(Input::Key(KeyEvent::from(KeyCode::Home)));
    assert_eq!(screen(&s, 80, 24), top);
}

/// Tabs are drawn whole (a cut tab hid its needs-input mark under the
/// sidebar); `›` says more follow.
#[test]
fn tabs_are_whole_and_say_more_follow() {
    let mut s = crate::tui::state::sample::bench_state(12, 3);
    s.handle_action(Action::LayoutTabs);
    let bar = ratatui::layout::Rect::new(0, 0, 70, 1);
    let (_, slots) = crate::tui::state::layout::tab_slots(&s, bar);
    assert!(slots.len() < 12);
    for t in &slots {
        assert!(
            t.x + t.width < bar.width,
            "tab {} is cut: {t:?}",
            t.pane + 1
        );
    }
    let text = screen(&s, 100, 16);
    let first = text.lines().next().unwrap();
    assert!(
        first.trim_end().ends_with('›') || first.contains('›'),
        "{first}"
    );
}

/// Reading back while the agent streams: `g` shows the first line and
/// says where the view is; a long line streaming below (wrapping to more
/// rows with every token) and new lines leave the rows being read where
/// they are; `G` follows again and shows the newest text.
#[test]
fn reading_back_holds_still_while_the_agent_streams() {
    use crate::protocol::{Delta, Notice, StepKey};
    use crate::tui::state::sample::{bench_state, sample_run_id};
    let mut s = bench_state(1, 50);
    s.handle(Input::Resize(80, 24));
    s.handle_action(Action::Top);
    let first = screen(&s, 80, 24);
    assert!(first.contains("line 1 of"), "{first}");
    let top_row = |t: &str| t.lines().nth(2).unwrap_or("").to_string();
    let before = top_row(&first);
    for i in 0..30 {
        s.apply(&Notice::Delta(
            sample_run_id(),
            Delta::Token {
                step: StepKey::new("agent-0"),
                text: format!("streamed word {i} "),
            },
        ));
        assert_eq!(top_row(&screen(&s, 80, 24)), before, "token {i}");
    }
    s.handle_action(Action::Bottom);
    let end = screen(&s, 80, 24);
    assert!(end.contains("streamed word 29"), "{end}");
    assert!(!end.contains("End follows"), "{end}");
}

/// Run names in wide characters keep the browser's columns aligned: every
/// row's id starts in the same column as the header's.
#[test]
fn runs_browser_columns_align_with_wide_names() {
    let mut runs = sample_runs();
    runs[0].name = "日本語のワークフロー名前 🚀 とても長い".into();
    runs[1].name = "🚀🚀 deploy".into();
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    let mut s = State::new();
    s.set_runs(runs);
    let text = screen(&s, 120, 16);
    let header = text.lines().find(|l| l.contains("name")).unwrap();
    let col = |line: &str, what: &str| {
        let at = line.find(what).unwrap();
        crate::text::columns(&line[..at])
    };
    let want = col(header, "id");
    for id in &ids {
        let row = text.lines().find(|l| l.contains(id.as_str())).unwrap();
        assert_eq!(col(row, id), want, "{row}\n{text}");
    }
}

/// A `pty` step's pane draws what its program wrote as a terminal would:
/// colours and attributes kept, wide characters whole, the alternate
/// screen gone once left; entered, the keys go to the program and the pane
/// says how to leave; at 80×24 as at 200×50.
#[test]
fn a_program_s_screen_is_drawn_in_its_pane() {
    use crate::protocol::{Attempt, Delta, Event, Notice, Recorded, Seq, StepKey};
    use ratatui::style::{Color, Modifier};
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let mut s = settled();
        let run = crate::tui::state::sample::sample_run_id();
        let step = StepKey::new("term");
        let event = |seq: u64, event: Event| {
            Notice::Event(Recorded {
                run: run.clone(),
                seq: Seq(seq),
                event,
            })
        };
        s.apply(&event(
            401,
            Event::StepStarted {
                step: step.clone(),
                attempt: Attempt(1),
                fingerprint: "fp".into(),
                kind: "pty".into(),
                mode: None,
                idempotent: false,
                hints: Vec::new(),
                at: Millis(T0 + 32_000),
            },
        ));
        s.apply(&event(
            402,
            Event::PtyLaunched {
                step: step.clone(),
                attempt: Attempt(1),
                program: "htop".into(),
                args: Vec::new(),
                cwd: "/w".into(),
                env: vec!["LEV_RUN".into()],
                rows: 40,
                cols: 120,
                cli: None,
                session: None,
                resumed: false,
                at: Millis(T0 + 32_000),
            },
        ));
        let i = s.run.panes.iter().position(|p| p.step == step).unwrap();
        s.focus_pane = i;
        s.focus = crate::tui::state::Focus::Panes;
        s.handle_action(Action::ToggleZoom);
        s.handle(Input::Resize(w, h));
        let bytes = "before\r\n\x1b[?1049h\x1b[2J\x1b[HFULL\x1b[?1049l\x1b[1;31mred 你好\x1b[0m tab\there\r\n"
            .as_bytes()
            .to_vec();
        s.apply(&Notice::Delta(
            run.clone(),
            Delta::PtyOutput {
                step: step.clone(),
                bytes,
            },
        ));
        // The pane's size reached the emulator (and the program, as an op).
        let (rows, cols) = s.run.panes[i].terminal.as_ref().unwrap().size();
        assert!(cols < w && rows < h && cols > 20, "{rows}x{cols}");
        let buf = render(&s, &Theme::fallback(), w, h);
        let text = buffer_text(&buf);
        assert!(text.contains("before"), "{text}");
        assert!(text.contains("red 你好 tab    here"), "{text}");
        assert!(!text.contains("FULL"), "{text}");
        assert!(text.contains("Enter types into the program"), "{text}");
        let (x, y) = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .find(|&(x, y)| {
                buf[(x, y)].symbol() == "r"
                    && buf[(x + 1, y)].symbol() == "e"
                    && buf[(x + 2, y)].symbol() == "d"
            })
            .unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Indexed(1));
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        assert_eq!(buf[(x + 4, y)].symbol(), "你");
        assert_eq!(buf[(x + 8, y)].fg, Color::Reset);

        s.handle(Input::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        )));
        let effects = s.handle(Input::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char('q'),
        )));
        assert!(
            matches!(&effects[..], [Effect::Op(crate::protocol::Op::PtyInput { bytes, .. })] if bytes == b"q"),
            "{effects:?}"
        );
        let text = screen(&s, w, h);
        assert!(text.contains("Ctrl-g leaves"), "{text}");
    }
}

/// `/` in a program's pane searches what its terminal keeps, scrolls back
/// to the match and says where it is; End follows the program again.
#[test]
fn searching_a_program_s_pane_scrolls_its_terminal_to_the_match() {
    use crate::protocol::{Attempt, Delta, Event, Notice, Recorded, Seq, StepKey};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    let step = StepKey::new("term");
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(401),
        event: Event::PtyLaunched {
            step: step.clone(),
            attempt: Attempt(1),
            program: "cargo".into(),
            args: Vec::new(),
            cwd: "/w".into(),
            env: Vec::new(),
            rows: 20,
            cols: 80,
            cli: None,
            session: None,
            resumed: false,
            at: Millis(T0 + 32_000),
        },
    }));
    let i = s.run.panes.iter().position(|p| p.step == step).unwrap();
    s.focus_pane = i;
    s.focus = crate::tui::state::Focus::Panes;
    s.handle_action(Action::ToggleZoom);
    let mut out = String::new();
    for n in 0..300 {
        out.push_str(&format!("compiling crate_{n}\r\n"));
    }
    out.push_str("warning: unused import in crate_7 again\r\n");
    s.apply(&Notice::Delta(
        run.clone(),
        Delta::PtyOutput {
            step: step.clone(),
            bytes: out.into_bytes(),
        },
    ));
    let before = screen(&s, 120, 36);
    assert!(!before.contains("compiling crate_42 "), "{before}");
    s.handle_action(Action::Search);
    for c in "crate_42".chars() {
        s.handle(Input::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        )));
    }
    s.handle(Input::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Enter,
    )));
    let text = screen(&s, 120, 36);
    assert!(text.contains("compiling crate_42 "), "{text}");
    assert!(text.contains("/crate_42 1/1"), "{text}");
    s.handle_action(Action::Bottom);
    let text = screen(&s, 120, 36);
    assert!(
        text.contains("warning: unused import in crate_7 again"),
        "{text}"
    );
}

/// A paste into a program that asked for bracketed pastes goes in
/// bracketed (a newline in it is not Enter), escapes taken out; into one
/// that did not, as typed text.
#[test]
fn a_paste_into_a_program_is_bracketed_when_it_asked() {
    use crate::protocol::{Attempt, Delta, Event, Notice, Op, Recorded, Seq, StepKey};
    for bracketed in [true, false] {
        let mut s = settled();
        let run = crate::tui::state::sample::sample_run_id();
        let step = StepKey::new("term");
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(401),
            event: Event::PtyLaunched {
                step: step.clone(),
                attempt: Attempt(1),
                program: "claude".into(),
                args: Vec::new(),
                cwd: "/w".into(),
                env: Vec::new(),
                rows: 20,
                cols: 80,
                cli: None,
                session: None,
                resumed: false,
                at: Millis(T0 + 32_000),
            },
        }));
        let drawn = if bracketed { "\x1b[?2004h> " } else { "> " };
        s.apply(&Notice::Delta(
            run.clone(),
            Delta::PtyOutput {
                step: step.clone(),
                bytes: drawn.as_bytes().to_vec(),
            },
        ));
        s.focus_pane = s.run.panes.iter().position(|p| p.step == step).unwrap();
        s.focus = crate::tui::state::Focus::Panes;
        s.handle(Input::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        )));
        let effects = s.handle(Input::Paste("line one\nline two\x1b[201~".into()));
        let sent: Vec<&Vec<u8>> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Op(Op::PtyInput { bytes, .. }) => Some(bytes),
                _ => None,
            })
            .collect();
        let want: &[u8] = if bracketed {
            b"\x1b[200~line one\nline two[201~\x1b[201~"
        } else {
            b"line one\nline two[201~"
        };
        assert_eq!(sent, vec![&want.to_vec()], "bracketed: {bracketed}");
    }
}

/// The sidebar wraps a question as a pane would: a tab is a space (as in
/// the pane; it was dropped), and wide characters never push the right
/// border out of its column, at 80×24 as at 200×50.
#[test]
fn the_sidebar_keeps_tabs_and_its_border_with_wide_characters() {
    use crate::protocol::{Event, Notice, Recorded, Seq, StepKey};
    let mut s = settled();
    let run = crate::tui::state::sample::sample_run_id();
    s.apply(&Notice::Event(Recorded {
        run,
        seq: Seq(301),
        event: Event::QuestionAsked {
            id: "wide".into(),
            step: Some(StepKey::new("security")),
            header: None,
            ask: "a tab\there 日本語のテキスト日本語のテキスト日本語のテキスト日本語のテキスト"
                .into(),
            options: Vec::new(),
            default: None,
            timeout_ms: None,
            from_agent: true,
            at: Millis(T0 + 33_000),
        },
    }));
    // Focused, so the sidebar shows it at 80×24 too.
    for _ in 0..10 {
        if s.focused_prompt()
            .is_some_and(|(_, p)| p.text.contains("a tab"))
        {
            break;
        }
        s.handle_action(Action::NextPrompt);
    }
    for (w, h) in [(80, 24), (200, 50)] {
        s.handle(Input::Resize(w, h));
        let text = screen(&s, w, h);
        let sidebar = text.lines().filter(|l| l.contains("a tab here")).count();
        assert_eq!(sidebar, 2, "the pane and the sidebar, {w}×{h}:\n{text}");
        let wide: Vec<&str> = text.lines().filter(|l| l.contains('語')).collect();
        assert!(!wide.is_empty(), "{w}×{h}:\n{text}");
        for line in wide {
            assert_eq!(crate::text::columns(line), w as usize, "{w}×{h}: {line:?}");
            assert!(line.ends_with('│'), "{w}×{h}: {line:?}\n{text}");
        }
    }
}
