//! The TUI state as a fold of recorded events, and its input → effect rules
//! (approvals need focus and a grace period, empty answers are not sent,
//! quitting an active run asks first, replay sends nothing).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use lev::protocol::{
    AnswerSource, Attempt, Event, Millis, Notice, Op, Recorded, Seq, StepKey, StepStatus,
};
use lev::tui::keymap::Action;
use lev::tui::state::sample::{
    T0, sample_deltas, sample_events, sample_run_id, sample_runs, sample_state,
};
use lev::tui::state::{
    Confirm, Effect, Focus, GRACE_MS, Input, LineKind, Overlay, PromptKind, State,
};

fn key(code: KeyCode) -> Input {
    Input::Key(KeyEvent::from(code))
}

/// `a`, which asks first: nothing is sent until `y` answers its
/// confirmation; returns what `y` sends.
fn confirmed(s: &mut State, a: Action) -> Vec<Effect> {
    let asked = s.handle_action(a);
    assert!(
        asked.is_empty(),
        "{a:?} sent {asked:?} before it was confirmed"
    );
    assert!(
        matches!(s.overlay, Some(Overlay::Confirm(_))),
        "{a:?} asked nothing: {:?}",
        s.message
    );
    s.handle(key(KeyCode::Char('y')))
}

fn ops(effects: &[Effect]) -> Vec<&Op> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Op(op) => Some(op),
            _ => None,
        })
        .collect()
}

/// The sample run with its prompts on screen past the grace period.
fn settled() -> State {
    let mut s = sample_state();
    s.handle(Input::Tick(Millis(T0 + 31_000)));
    s.handle(Input::Tick(Millis(T0 + 31_000 + GRACE_MS)));
    s
}

#[test]
fn recorded_run_folds_into_panes_statuses_usage_and_prompts() {
    let s = sample_state();
    let run = &s.run;
    assert_eq!(run.name, "Implement auth system");
    let steps: Vec<&str> = run.panes.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(
        steps,
        ["architect", "coder", "tester", "security", "checks"]
    );
    let status = |k: &str| run.panes[run.pane_index(&StepKey::new(k)).unwrap()].status;
    assert_eq!(status("architect"), StepStatus::Succeeded);
    assert_eq!(status("coder"), StepStatus::Waiting);
    assert_eq!(status("tester"), StepStatus::Waiting);
    assert_eq!(status("security"), StepStatus::Running);
    assert_eq!(status("checks"), StepStatus::Running);
    assert!(run.needs_input(&StepKey::new("coder")));
    assert!(!run.needs_input(&StepKey::new("security")));

    // Usage: architect 2220 + coder 3010 tokens.
    assert_eq!(run.usage().total_tokens(), 5_230);
    assert!((run.usage().cost_usd - 0.0328).abs() < 1e-9);

    // Prompts: one answered (history), an approval and a question pending.
    assert_eq!(run.prompts.len(), 3);
    let answered = run.prompts[0].answered.as_ref().unwrap();
    assert_eq!(
        (answered.text.as_str(), answered.source),
        ("cookie", AnswerSource::User)
    );
    assert_eq!(s.pending_count(), 2);
    // The option labelled "Recommended" is listed first.
    match &run.prompts[2].kind {
        PromptKind::Question { options, .. } => assert_eq!(options[0].value, "proptest"),
        other => panic!("expected a question, got {other:?}"),
    }

    // The retried step shows both attempts on the timeline.
    let checks = run
        .steps
        .iter()
        .find(|r| r.key.as_str() == "checks")
        .unwrap();
    assert_eq!(checks.segments.len(), 2);
    assert_eq!(checks.segments[0].status, StepStatus::Retrying);
    assert!(checks.segments[1].end.is_none());

    // Deltas: tokens coalesce into lines; the shell's live output is kept.
    let security = &run.panes[3];
    assert_eq!(security.lines.len(), 3);
    assert_eq!(
        security.lines[2].text,
        "2. CSRF on /refresh — needs SameSite=strict"
    );
    let coder = &run.panes[1];
    assert!(coder.lines.iter().any(|l| l.kind == LineKind::DiffAdd));
    assert!(
        coder
            .lines
            .iter()
            .any(|l| matches!(l.kind, LineKind::Tool(0)))
    );
    assert_eq!(
        coder.tools[0].output.as_deref(),
        Some("wrote 120 lines to src/auth.rs")
    );
}

#[test]
fn final_reply_replaces_streamed_tokens() {
    let mut s = sample_state();
    let run = sample_run_id();
    s.apply(&Notice::Event(Recorded {
        run,
        seq: Seq(100),
        event: Event::LlmReplied {
            step: StepKey::new("security"),
            attempt: Attempt(1),
            turn: 1,
            fingerprint: "x".into(),
            text: "Final threat model.".into(),
            tool_calls: vec![],
            usage: Default::default(),
            model: "m".into(),
            stop_reason: Some("end_turn".into()),
            refusal: None,
            at: Millis(T0 + 40_000),
        },
    }));
    let texts: Vec<&str> = s.run.panes[3]
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, ["Final threat model."]);
}

#[test]
fn a_retried_request_takes_back_what_it_streamed_and_says_why() {
    let mut s = sample_state();
    let run = sample_run_id();
    let pane = |s: &State| -> Vec<String> {
        s.run.panes[3]
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect()
    };
    let streamed = pane(&s).join("\n");
    assert!(!streamed.is_empty(), "the sample streams into this pane");
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(100),
        event: Event::LlmRetrying {
            step: StepKey::new("security"),
            attempt: Attempt(1),
            turn: 1,
            endpoint: "anthropic@http://127.0.0.1:9".into(),
            failed: 1,
            tries: 4,
            error: "overloaded (HTTP 529): Overloaded".into(),
            delay_ms: 1500,
            at: Millis(T0 + 40_000),
        },
    }));
    let lines = pane(&s);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(
            "request 1 of 4 failed: overloaded (HTTP 529): Overloaded; trying again in 1.5s"
        ),
        "{lines:?}"
    );
    // A refusal shows in the pane of the step that met it.
    s.apply(&Notice::Event(Recorded {
        run,
        seq: Seq(101),
        event: Event::LlmReplied {
            step: StepKey::new("security"),
            attempt: Attempt(1),
            turn: 1,
            fingerprint: "x".into(),
            text: String::new(),
            tool_calls: vec![],
            usage: Default::default(),
            model: "m".into(),
            stop_reason: Some("refusal".into()),
            refusal: Some("I can't help with that.".into()),
            at: Millis(T0 + 42_000),
        },
    }));
    let lines = pane(&s);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the model refused: I can't help with that.")),
        "{lines:?}"
    );
}

#[test]
fn folding_one_by_one_equals_replay_jumped_to_the_end() {
    let events = sample_events();
    let mut live = State::new();
    for r in &events {
        live.apply(&Notice::Event(r.clone()));
    }
    let mut replay = State::new();
    replay.load_replay(events.clone());
    replay.replay_jump(events.len());
    assert_eq!(live.run, replay.run);

    // Stepping back rebuilds a prefix; stepping forward again gives the same fold.
    replay.handle_action(Action::ReplayStepBack);
    assert_eq!(replay.replay.as_ref().unwrap().pos, events.len() - 1);
    assert_ne!(live.run, replay.run);
    replay.handle_action(Action::ReplayStepForward);
    assert_eq!(live.run, replay.run);

    // Jumping back to the middle equals folding that prefix.
    let mut half = State::new();
    for r in &events[..7] {
        half.apply(&Notice::Event(r.clone()));
    }
    replay.replay_jump(7);
    assert_eq!(half.run, replay.run);
}

#[test]
fn playback_follows_event_times_and_speed() {
    let events = sample_events();
    let mut s = State::new();
    s.load_replay(events.clone());
    assert_eq!(s.replay.as_ref().unwrap().pos, 0);
    assert!(s.animating());
    s.handle(Input::Tick(Millis(1_000)));
    s.handle(Input::Tick(Millis(1_150)));
    // 150 ms in: the run start and the question (at +100 ms) are shown.
    assert_eq!(s.replay.as_ref().unwrap().pos, 2);
    s.handle_action(Action::ReplayFaster);
    assert_eq!(s.replay.as_ref().unwrap().speed(), 2);
    let mut t = 1_150;
    for _ in 0..200 {
        t += 500;
        s.handle(Input::Tick(Millis(t)));
    }
    assert_eq!(s.replay.as_ref().unwrap().pos, events.len());
    assert!(!s.animating());
}

#[test]
fn replay_sends_no_ops() {
    let mut s = State::new();
    s.load_replay(sample_events());
    s.replay_jump(sample_events().len());
    s.handle(Input::Tick(Millis(10_000)));
    s.handle_action(Action::NextPrompt);
    let out = s.handle_action(Action::Approve);
    assert!(ops(&out).is_empty());
    let out = s.handle(key(KeyCode::Char('y')));
    assert!(ops(&out).is_empty());
}

#[test]
fn approve_on_focused_prompt_emits_decide() {
    let mut s = settled();
    // The approval came first and took focus after its grace period.
    assert_eq!(s.focus, Focus::Prompt);
    assert_eq!(s.focused_prompt().map(|(i, _)| i), Some(1));
    let out = s.handle_action(Action::Approve);
    assert_eq!(
        ops(&out),
        [&Op::Decide {
            run: sample_run_id(),
            step: StepKey::new("coder"),
            approved: true,
            comment: String::new(),
            source: AnswerSource::User,
        }]
    );
}

#[test]
fn deny_emits_decide_false() {
    let mut s = settled();
    let out = confirmed(&mut s, Action::Deny);
    assert!(matches!(
        ops(&out)[..],
        [Op::Decide {
            approved: false,
            ..
        }]
    ));
}

#[test]
fn grace_period_blocks_an_approval_typed_right_after_the_prompt_appears() {
    let mut s = State::new();
    s.handle(Input::Tick(Millis(T0)));
    for r in sample_events().into_iter().take(15) {
        s.apply(&Notice::Event(r));
    }
    s.handle(Input::Tick(Millis(T0 + 10)));
    // The approval appears while the user is working in the panes.
    let approval = sample_events().into_iter().nth(15).unwrap();
    s.apply(&Notice::Event(approval));
    let out = s.handle(Input::Tick(Millis(T0 + 20)));
    assert!(out.iter().any(|e| matches!(e, Effect::Attention(_))));
    // Not focused yet: approve does nothing.
    assert!(ops(&s.handle_action(Action::Approve)).is_empty());
    // Even when focused explicitly, it is too early.
    s.handle_action(Action::NextPrompt);
    assert_eq!(s.focus, Focus::Prompt);
    assert!(ops(&s.handle_action(Action::Approve)).is_empty());
    assert!(s.message.as_deref().unwrap_or("").contains("just arrived"));
    // After the grace period the same key approves.
    s.handle(Input::Tick(Millis(T0 + 20 + GRACE_MS)));
    assert_eq!(ops(&s.handle_action(Action::Approve)).len(), 1);
}

#[test]
fn a_new_prompt_does_not_steal_keys_from_a_text_box() {
    let mut s = State::new();
    s.handle(Input::Tick(Millis(T0)));
    for r in sample_events().into_iter().take(15) {
        s.apply(&Notice::Event(r));
    }
    s.handle_action(Action::Search);
    let approval = sample_events().into_iter().nth(15).unwrap();
    s.apply(&Notice::Event(approval));
    s.handle(Input::Tick(Millis(T0 + 5_000)));
    s.handle(Input::Tick(Millis(T0 + 10_000)));
    // Typing "y" goes to the search box, not to the approval.
    let out = s.handle(key(KeyCode::Char('y')));
    assert!(ops(&out).is_empty());
    assert_eq!(s.textarea.lines()[0], "y");
    assert_ne!(s.focus, Focus::Prompt);
}

#[test]
fn attention_is_announced_once_per_prompt() {
    let mut s = sample_state();
    let first = s.handle(Input::Tick(Millis(T0 + 31_000)));
    let n = first
        .iter()
        .filter(|e| matches!(e, Effect::Attention(_)))
        .count();
    // Three prompts were asked in the recorded run (one already answered).
    assert_eq!(n, 3);
    // A re-announcement of a pending prompt after resume is not a new prompt.
    let pending = sample_events().into_iter().nth(15).unwrap();
    s.apply(&Notice::Pending(pending));
    let again = s.handle(Input::Tick(Millis(T0 + 32_000)));
    assert!(again.iter().all(|e| !matches!(e, Effect::Attention(_))));
    assert_eq!(s.pending_count(), 2);
}

#[test]
fn picking_an_option_sends_it_and_empty_answers_are_not_sent() {
    let mut s = settled();
    s.handle_action(Action::NextPrompt);
    assert_eq!(s.focused_prompt().map(|(i, _)| i), Some(2));
    // Free text: nothing typed, Enter sends nothing.
    s.handle_action(Action::Answer);
    let out = s.handle(key(KeyCode::Enter));
    assert!(ops(&out).is_empty());
    assert_eq!(s.message.as_deref(), Some("empty answer not sent"));
    // Whitespace only is empty too.
    s.handle_action(Action::NextPrompt);
    s.handle_action(Action::Answer);
    s.handle(Input::Paste("   ".into()));
    assert!(ops(&s.handle(key(KeyCode::Enter))).is_empty());

    // Down + Enter picks the second option (the recommended one is first).
    s.handle_action(Action::NextPrompt);
    s.handle(key(KeyCode::Down));
    let out = s.handle(key(KeyCode::Enter));
    assert_eq!(
        ops(&out),
        [&Op::Answer {
            run: sample_run_id(),
            question: "framework".into(),
            answer: "examples".into(),
            source: AnswerSource::User,
        }]
    );
}

#[test]
fn free_text_answer_is_sent_on_enter() {
    let mut s = settled();
    s.handle_action(Action::NextPrompt);
    s.handle_action(Action::Answer);
    for c in "both".chars() {
        s.handle(key(KeyCode::Char(c)));
    }
    let out = s.handle(key(KeyCode::Enter));
    assert!(matches!(
        ops(&out)[..],
        [Op::Answer { question, answer, .. }] if question == "framework" && answer == "both"
    ));
}

#[test]
fn answered_prompts_move_to_history() {
    let mut s = settled();
    s.apply(&Notice::Event(Recorded {
        run: sample_run_id(),
        seq: Seq(200),
        event: Event::ApprovalDecided {
            step: StepKey::new("coder"),
            approved: true,
            comment: String::new(),
            source: AnswerSource::User,
            at: Millis(T0 + 33_000),
        },
    }));
    assert_eq!(s.pending_count(), 1);
    assert_eq!(s.run.prompts[1].answered.as_ref().unwrap().text, "approved");
    let coder = s.run.pane_index(&StepKey::new("coder")).unwrap();
    assert_eq!(s.run.panes[coder].status, StepStatus::Running);
}

#[test]
fn quit_with_an_active_run_asks_first() {
    let mut s = settled();
    s.handle_action(Action::Back);
    let out = s.handle_action(Action::Quit);
    assert!(out.is_empty());
    assert_eq!(s.overlay, Some(Overlay::Confirm(Confirm::Quit)));
    assert!(s.handle(key(KeyCode::Char('n'))).is_empty());
    assert_eq!(s.overlay, None);
    s.handle_action(Action::Quit);
    assert_eq!(s.handle(key(KeyCode::Char('y'))), vec![Effect::Quit]);

    // Ctrl-C asks too.
    let mut s = settled();
    s.handle(Input::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(s.overlay, Some(Overlay::Confirm(Confirm::Quit)));

    // No run open: quit at once.
    let mut browser = State::new();
    assert_eq!(browser.handle_action(Action::Quit), vec![Effect::Quit]);
}

#[test]
fn cancel_asks_then_sends_cancel() {
    let mut s = settled();
    // A finished step in focus: `x` cancels the run.
    s.focus_pane = s.run.pane_index(&StepKey::new("architect")).unwrap();
    assert!(s.handle_action(Action::CancelStep).is_empty());
    let out = s.handle(key(KeyCode::Char('y')));
    assert_eq!(
        ops(&out),
        [&Op::Cancel {
            run: sample_run_id()
        }]
    );
}

#[test]
fn retry_refuses_a_step_that_did_not_fail_and_fork_takes_any_selected_step() {
    let mut s = settled();
    let run = sample_run_id();
    s.focus = Focus::Panes;
    s.focus_pane = s.run.pane_index(&StepKey::new("architect")).unwrap();
    let out = s.handle_action(Action::RetryStep);
    assert!(out.is_empty(), "{out:?}");
    let said = s.message.clone().unwrap_or_default();
    assert!(said.contains("architect did not fail"), "{said}");
    let out = confirmed(&mut s, Action::Fork);
    assert_eq!(
        out,
        vec![Effect::Op(Op::Fork {
            run,
            from: StepKey::new("architect")
        })]
    );
}

#[test]
fn a_failed_step_of_the_live_run_is_retried_with_an_op_from_its_pane_or_the_overview() {
    let mut s = settled();
    let run = sample_run_id();
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(100),
        event: Event::StepFailed {
            step: StepKey::new("checks"),
            attempt: Attempt(2),
            error: "exit 1".into(),
            retry_in_ms: None,
            usage: Default::default(),
            at: Millis(T0 + 32_000),
        },
    }));
    let want = vec![Effect::Op(Op::RetryStep {
        run: run.clone(),
        step: StepKey::new("checks"),
    })];
    s.focus = Focus::Panes;
    s.focus_pane = s.run.pane_index(&StepKey::new("checks")).unwrap();
    assert_eq!(confirmed(&mut s, Action::RetryStep), want);
    s.handle_action(Action::Overview);
    s.overview_cursor = s
        .run
        .steps
        .iter()
        .position(|r| r.key.as_str() == "checks")
        .unwrap();
    assert_eq!(confirmed(&mut s, Action::RetryStep), want);
}

fn ended_run() -> Vec<Recorded> {
    let run = sample_run_id();
    let at = |ms| Millis(T0 + ms);
    let events = vec![
        Event::RunStarted {
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_hash: "h".into(),
            inputs: Default::default(),
            seed: 1,
            workspace: None,
            steps: Vec::new(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: at(0),
        },
        Event::StepStarted {
            step: StepKey::new("build"),
            attempt: Attempt(1),
            fingerprint: "f".into(),
            kind: "shell".into(),
            mode: None,
            idempotent: false,
            hints: Vec::new(),
            at: at(1),
        },
        Event::StepFailed {
            step: StepKey::new("build"),
            attempt: Attempt(1),
            error: "exit 2".into(),
            retry_in_ms: None,
            usage: Default::default(),
            at: at(2),
        },
        Event::StepSkipped {
            step: StepKey::new("ship"),
            reason: "a needed step did not succeed".into(),
            at: at(3),
        },
        Event::RunFinished {
            status: lev::protocol::RunStatus::Failed,
            outputs: Default::default(),
            error: Some("step `build` failed: exit 2".into()),
            usage: Default::default(),
            at: at(4),
        },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            run: run.clone(),
            seq: Seq(i as u64 + 1),
            event,
        })
        .collect()
}

#[test]
fn an_ended_run_in_replay_asks_the_app_to_retry_it() {
    let events = ended_run();
    let mut s = State::new();
    s.load_replay(events.clone());
    s.replay_jump(events.len());
    s.focus_pane = s.run.pane_index(&StepKey::new("build")).unwrap();
    assert!(s.handle(key(KeyCode::Char('r'))).is_empty());
    let out = s.handle(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Effect::Op(Op::RetryStep {
            run: sample_run_id(),
            step: StepKey::new("build")
        })]
    );
}

#[test]
fn a_retry_request_reopens_its_steps_and_the_run_and_a_fork_names_its_parent() {
    let mut events = ended_run();
    let run = sample_run_id();
    let mut s = State::new();
    s.show_live(&events);
    assert_eq!(s.run.status, Some(lev::protocol::RunStatus::Failed));
    let retry = Recorded {
        run: run.clone(),
        seq: Seq(6),
        event: Event::StepRetryRequested {
            step: StepKey::new("build"),
            also: vec![StepKey::new("ship")],
            at: Millis(T0 + 10),
        },
    };
    s.apply(&Notice::Event(retry.clone()));
    assert_eq!(s.run.status, Some(lev::protocol::RunStatus::Running));
    assert!(s.run.finished_at.is_none());
    let row = |s: &State, k: &str| {
        s.run
            .steps
            .iter()
            .find(|r| r.key.as_str() == k)
            .unwrap()
            .status
    };
    assert_eq!(row(&s, "build"), StepStatus::Pending);
    assert_eq!(row(&s, "ship"), StepStatus::Pending);
    let build = &s.run.panes[s.run.pane_index(&StepKey::new("build")).unwrap()];
    assert!(
        build
            .lines
            .iter()
            .any(|l| l.text.contains("retry requested"))
    );
    assert!(
        s.run
            .notes
            .iter()
            .any(|n| n == "retry of build requested (then 1 more)")
    );
    // The next attempt shows as a second segment on the timeline.
    s.apply(&Notice::Event(Recorded {
        run: run.clone(),
        seq: Seq(7),
        event: Event::StepStarted {
            step: StepKey::new("build"),
            attempt: Attempt(2),
            fingerprint: "f".into(),
            kind: "shell".into(),
            mode: None,
            idempotent: false,
            hints: Vec::new(),
            at: Millis(T0 + 11),
        },
    }));
    assert_eq!(row(&s, "build"), StepStatus::Running);
    let build_row = s
        .run
        .steps
        .iter()
        .find(|r| r.key.as_str() == "build")
        .unwrap();
    assert_eq!(build_row.segments.len(), 2);
    // Replaying the same events folds to the same run.
    events.push(retry);
    let mut replayed = State::new();
    replayed.show_live(&events);
    assert_eq!(replayed.run.status, Some(lev::protocol::RunStatus::Running));

    let forked = Recorded {
        run: run.clone(),
        seq: Seq(8),
        event: Event::RunForked {
            from_run: lev::protocol::RunId("PARENT".into()),
            from_step: StepKey::new("build"),
            at: Millis(T0 + 12),
        },
    };
    s.apply(&Notice::Event(forked));
    assert_eq!(
        s.run.forked_from,
        Some((lev::protocol::RunId("PARENT".into()), StepKey::new("build")))
    );
}

#[test]
fn runs_browser_opens_the_selected_run() {
    let mut s = State::new();
    s.set_runs(sample_runs());
    // Newest first.
    assert_eq!(s.runs[0].name, "Demo");
    s.handle(key(KeyCode::Down));
    let out = s.handle(key(KeyCode::Enter));
    assert_eq!(out, vec![Effect::OpenRun(sample_runs()[2].id.clone())]);
}

#[test]
fn scrolling_leaves_follow_mode_and_bottom_returns_to_it() {
    let mut s = lev::tui::state::sample::bench_state(2, 200);
    s.handle(Input::Resize(120, 36));
    s.handle_action(Action::PageUp);
    let (w, h) = lev::tui::state::layout::pane_viewport(&s, 0);
    let p = &s.run.panes[0];
    assert!(!p.scroll.following());
    let shown = p.visible_lines(w, h);
    // New output does not move the view while reading back: not a new
    // line, nor a line that streams on and wraps.
    s.apply(&sample_like_token("agent-0", "one more line\n"));
    s.apply(&sample_like_token(
        "agent-0",
        &"a long streamed line ".repeat(40),
    ));
    assert_eq!(s.run.panes[0].visible_lines(w, h), shown);
    s.handle_action(Action::Bottom);
    assert!(s.run.panes[0].scroll.following());
    s.handle_action(Action::Top);
    let top = s.run.panes[0].view_top(w, h);
    assert_eq!(top.line, s.run.panes[0].dropped);
    s.handle_action(Action::PageUp);
    assert_eq!(s.run.panes[0].view_top(w, h), top, "clamped at the top");
}

fn sample_like_token(step: &str, text: &str) -> Notice {
    Notice::Delta(
        sample_run_id(),
        lev::protocol::Delta::Token {
            step: StepKey::new(step),
            text: text.into(),
        },
    )
}

#[test]
fn search_finds_matches_and_moves_between_them() {
    let mut s = lev::tui::state::sample::bench_state(1, 50);
    s.handle_action(Action::Search);
    s.handle(Input::Paste("line 4".into()));
    s.handle(key(KeyCode::Enter));
    let p = &s.run.panes[0];
    // "line 4", "line 40".."line 49".
    assert_eq!(p.search.matches.len(), 11);
    assert_eq!(p.search.current, Some(10));
    s.handle_action(Action::SearchNext);
    assert_eq!(s.run.panes[0].search.current, Some(0));
    s.handle_action(Action::SearchPrev);
    assert_eq!(s.run.panes[0].search.current, Some(10));
    s.handle_action(Action::Back);
    assert!(s.run.panes[0].search.query.is_empty());
}

#[test]
fn mouse_click_focuses_a_pane_and_wheel_scrolls_it() {
    let mut s = lev::tui::state::sample::bench_state(4, 100);
    s.handle(Input::Resize(120, 36));
    s.handle_action(Action::LayoutGrid);
    assert_eq!(s.focus_pane, 0);
    // Bottom-right cell of the 2×2 grid left of the sidebar.
    let click = |kind| MouseEvent {
        kind,
        column: 60,
        row: 30,
        modifiers: KeyModifiers::NONE,
    };
    s.handle(Input::Mouse(click(MouseEventKind::Down(MouseButton::Left))));
    assert_eq!(s.focus_pane, 3);
    let (w, h) = lev::tui::state::layout::pane_viewport(&s, 3);
    let bottom = s.run.panes[3].view_top(w, h);
    s.handle(Input::Mouse(click(MouseEventKind::ScrollUp)));
    let p = &s.run.panes[3];
    let up = p.view_top(w, h);
    let between: usize = (up.line..bottom.line).map(|l| p.rows_of(l, w)).sum();
    assert_eq!(between + bottom.row - up.row, 3, "three rows up");
}

#[test]
fn deltas_of_other_runs_are_ignored() {
    let mut s = sample_state();
    let before = s.run.clone();
    s.apply(&Notice::Delta(
        lev::protocol::RunId("other".into()),
        lev::protocol::Delta::Token {
            step: StepKey::new("security"),
            text: "noise".into(),
        },
    ));
    assert_eq!(s.run, before);
    assert_eq!(sample_deltas().len(), 4);
}

#[test]
fn replay_jumps_to_a_step_from_the_overview() {
    let events = sample_events();
    let mut s = State::new();
    s.load_replay(events.clone());
    s.replay_jump(events.len());
    s.handle_action(Action::Overview);
    // architect, coder, tester, security, checks: pick "tester".
    s.handle(key(KeyCode::Down));
    s.handle(key(KeyCode::Down));
    s.handle(key(KeyCode::Enter));
    let r = s.replay.as_ref().unwrap();
    assert!(!r.playing || r.pos <= 8);
    // Folded up to and including tester's start (the 8th event).
    assert_eq!(r.pos, 8);
    assert_eq!(s.run.panes.len(), 3);
    assert_eq!(s.focused_pane().unwrap().step.as_str(), "tester");
}

#[test]
fn palette_runs_the_picked_action() {
    let mut s = settled();
    s.handle_action(Action::Palette);
    s.handle(Input::Paste("grid".into()));
    s.handle(key(KeyCode::Enter));
    assert_eq!(s.layout, lev::tui::state::PaneLayout::Grid);
    assert_eq!(s.overlay, None);
    assert!(s.typing.is_none());
}

#[test]
fn a_second_enter_does_not_send_the_answer_twice() {
    let mut s = settled();
    s.handle_action(Action::NextPrompt);
    assert_eq!(ops(&s.handle(key(KeyCode::Enter))).len(), 1);
    s.handle_action(Action::NextPrompt);
    s.handle_action(Action::NextPrompt);
    assert_eq!(s.focused_prompt().map(|(i, _)| i), Some(2));
    assert!(ops(&s.handle(key(KeyCode::Enter))).is_empty());
}

#[test]
fn reset_run_returns_to_the_browser_and_a_new_run_folds_fresh() {
    let mut s = settled();
    s.set_runs(sample_runs());
    s.handle_action(Action::LayoutGrid);
    s.reset_run();
    assert!(!s.run_open);
    assert_eq!(s.pending_count(), 0);
    assert_eq!(s.layout, lev::tui::state::PaneLayout::Grid);
    assert_eq!(
        s.handle(key(KeyCode::Enter)),
        vec![Effect::OpenRun(s.runs[0].id.clone())]
    );
    for r in sample_events().into_iter().take(4) {
        s.apply(&Notice::Event(r));
    }
    assert!(s.run_open);
    assert_eq!(s.run.panes.len(), 1);
}

#[test]
fn pasting_onto_a_focused_question_starts_an_answer() {
    let mut s = settled();
    s.handle_action(Action::NextPrompt);
    s.handle(Input::Paste("examples please".into()));
    let out = s.handle(key(KeyCode::Enter));
    assert!(matches!(
        ops(&out)[..],
        [Op::Answer { answer, .. }] if answer == "examples please"
    ));
}

#[test]
fn copy_pane_hands_its_text_to_the_app() {
    let mut s = settled();
    s.handle_action(Action::Back);
    s.handle_action(Action::JumpPane(4));
    let out = s.handle_action(Action::CopyPane);
    match &out[..] {
        [Effect::Copy(text)] => assert!(text.starts_with("Threat model:\n1. Refresh token theft")),
        other => panic!("expected a copy, got {other:?}"),
    }
    // The status line says what was copied.
    assert!(
        s.message
            .as_deref()
            .is_some_and(|m| m.starts_with("copied ") && m.contains("lines of")),
        "{:?}",
        s.message
    );
}

#[test]
fn mouse_click_on_a_tab_focuses_its_pane() {
    let mut s = lev::tui::state::sample::bench_state(4, 10);
    s.handle(Input::Resize(120, 36));
    // Four agents open in the grid; this is about the tab bar.
    s.handle_action(lev::tui::keymap::Action::LayoutTabs);
    // Tabs: " 1 ⠋ agent-0 │ 2 ⠋ agent-1 │ ..." each 14 columns wide.
    let slots = lev::tui::state::layout::tab_slots(&s, ratatui::layout::Rect::new(0, 0, 80, 1)).1;
    assert_eq!(slots.len(), 4);
    let x = slots[2].x + 3;
    s.handle(Input::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: 0,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(s.focus_pane, 2);
    let text = lev::tui::view::buffer_text(&lev::tui::view::render(
        &s,
        &lev::tui::theme::Theme::fallback(),
        120,
        36,
    ));
    let bar = text.lines().next().unwrap_or_default();
    let at: String = bar.chars().skip(usize::from(slots[2].x)).take(12).collect();
    // The glyph between is the theme's spinner frame.
    assert!(at.starts_with(" 3 ") && at.ends_with(" agent-2"), "{at:?}");
}

#[test]
fn cancel_on_a_running_pane_asks_then_cancels_that_step_only() {
    let mut s = settled();
    let running = (1..=9u8)
        .find(|n| {
            s.handle_action(Action::JumpPane(*n));
            s.focused_pane().is_some_and(|p| !p.status.is_terminal())
        })
        .expect("the sample has a running pane");
    let step = s.focused_pane().unwrap().step.clone();
    assert!(
        s.handle_action(Action::CancelStep).is_empty(),
        "pane {running}"
    );
    assert!(matches!(
        s.overlay,
        Some(Overlay::Confirm(Confirm::CancelStep(_)))
    ));
    let out = s.handle(key(KeyCode::Char('y')));
    assert_eq!(
        ops(&out),
        [&Op::CancelStep {
            run: sample_run_id(),
            step
        }]
    );
}

#[test]
fn a_pasted_answer_keeps_its_line_breaks_whatever_the_terminal_sends() {
    // Terminals send a pasted newline as CR, some as CRLF, some as LF.
    for pasted in [
        "first\rsecond\rthird",
        "first\r\nsecond\r\nthird",
        "first\nsecond\nthird",
    ] {
        let mut s = settled();
        s.handle_action(Action::NextPrompt);
        s.handle(Input::Paste(pasted.into()));
        let out = s.handle(key(KeyCode::Enter));
        assert!(
            matches!(
                ops(&out)[..],
                [Op::Answer { answer, .. }] if answer == "first\nsecond\nthird"
            ),
            "{pasted:?} gave {:?}",
            ops(&out)
        );
    }
}

/// Panes follow the workflow's declaration order whatever order the steps
/// start in, and a pane added before the focused one does not move the
/// focus (or a message being typed) to another step.
#[test]
fn panes_are_numbered_in_declaration_order_and_keep_their_focus() {
    use lev::protocol::{Delta, StepOutline};
    let run = sample_run_id();
    let outline = |id: &str| StepOutline {
        id: id.into(),
        kind: "agent".into(),
        needs: Vec::new(),
        mode: Some("coder".into()),
    };
    let started = |step: &str, ms: u64| Event::StepStarted {
        step: StepKey::new(step),
        attempt: Attempt(1),
        fingerprint: "f".into(),
        kind: "agent".into(),
        mode: Some("coder".into()),
        idempotent: true,
        hints: Vec::new(),
        at: Millis(T0 + ms),
    };
    let mut s = State::new();
    let mut seq = 0;
    let mut fold = |s: &mut State, event: Event| {
        seq += 1;
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        }));
    };
    fold(
        &mut s,
        Event::RunStarted {
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_hash: "h".into(),
            inputs: Default::default(),
            seed: 1,
            workspace: None,
            steps: ["first", "second", "third"].map(outline).to_vec(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: Millis(T0),
        },
    );
    fold(&mut s, started("third", 1));
    s.handle_action(Action::SendMessage);
    fold(&mut s, started("second", 2));
    // Output before its start event makes a pane too, in its place.
    s.apply(&Notice::Delta(
        run.clone(),
        Delta::Token {
            step: StepKey::new("first"),
            text: "hello".into(),
        },
    ));
    fold(&mut s, started("first", 3));
    fold(&mut s, started("first/child", 4));
    let order: Vec<&str> = s.run.panes.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(order, ["first", "first/child", "second", "third"]);
    assert_eq!(s.focused_pane().map(|p| p.step.as_str()), Some("third"));
    let typing = s.typing;
    assert!(
        matches!(typing, Some(lev::tui::state::Typing::Message(3))),
        "{typing:?}"
    );
}

/// A confirmation names what it acts on, and one whose target ends while
/// it is on screen goes away (saying why) instead of taking the next key.
#[test]
fn confirmations_name_their_target_and_go_away_when_it_ends() {
    use lev::tui::theme::Theme;
    use lev::tui::view::{buffer_text, render};
    let mut s = settled();
    assert!(s.handle_action(Action::Deny).is_empty());
    let screen = buffer_text(&render(&s, &Theme::fallback(), 120, 40));
    assert!(screen.contains("Deny approve coder?"), "{screen}");
    assert!(screen.contains("[y] deny   [n] keep as is"), "{screen}");
    // Another participant (the CLI, a second workbench) decides it first.
    s.apply(&Notice::Event(Recorded {
        run: sample_run_id(),
        seq: Seq(100),
        event: Event::ApprovalDecided {
            step: StepKey::new("coder"),
            approved: true,
            comment: String::new(),
            source: AnswerSource::User,
            at: Millis(T0 + 32_000),
        },
    }));
    assert_eq!(s.overlay, None);
    let said = s.message.clone().unwrap_or_default();
    assert!(
        said.contains("nothing to deny") && said.contains("already decided"),
        "{said}"
    );
    // The next key is the user's again: `y` sends nothing.
    assert!(ops(&s.handle(key(KeyCode::Char('y')))).is_empty());
}

/// `/` in the runs browser filters the list as one types; Enter opens the
/// selected run of what is listed; Esc on a replayed run goes back to the
/// list, which is asked for again.
#[test]
fn the_runs_browser_filters_and_esc_comes_back_from_a_run_opened_there() {
    let mut s = State::new();
    s.set_runs(sample_runs());
    let all = s.runs.len();
    s.handle(key(KeyCode::Char('/')));
    let wanted = sample_runs()[2].clone();
    for c in wanted.name.to_uppercase().chars() {
        s.handle(key(KeyCode::Char(c)));
    }
    let listed = s.visible_runs().len();
    assert!(listed >= 1 && listed < all, "{listed} of {all}");
    s.handle(key(KeyCode::Enter));
    assert_eq!(s.typing, None);
    assert_eq!(s.runs_filter, wanted.name.to_uppercase());
    let screen = lev::tui::view::buffer_text(&lev::tui::view::render(
        &s,
        &lev::tui::theme::Theme::fallback(),
        120,
        16,
    ));
    assert!(
        screen.contains(&format!("runs · {listed} of {all} · filter")),
        "{screen}"
    );
    let out = s.handle(key(KeyCode::Enter));
    assert_eq!(out, vec![Effect::OpenRun(wanted.id.clone())]);
    // The app replays an ended run it opens.
    s.load_replay(ended_run());
    assert!(s.run_open);
    let out = s.handle(key(KeyCode::Esc));
    assert!(!s.run_open, "Esc stayed in the run");
    // Back in the list: the runs and what they suggest, fresh.
    assert_eq!(
        out,
        vec![
            Effect::Query(lev::engine::Query::Runs),
            Effect::Query(lev::engine::Query::Suggestions {
                runs: lev::engine::suggest::RUNS
            })
        ]
    );
    // Esc in the list clears the filter.
    s.handle(key(KeyCode::Esc));
    assert!(s.runs_filter.is_empty());
    assert_eq!(s.visible_runs().len(), all);
}

/// A grid of more panes than fit says which are shown and how to reach the
/// others: `0` shows the next page, and after the last, the first.
#[test]
fn a_full_grid_names_its_page_and_0_shows_the_next() {
    use lev::tui::theme::Theme;
    use lev::tui::view::{buffer_text, render};
    let mut s = lev::tui::state::sample::bench_state(11, 5);
    s.handle_action(Action::LayoutGrid);
    s.handle(Input::Resize(120, 36));
    let status = |s: &State| {
        let text = buffer_text(&render(s, &Theme::fallback(), 120, 36));
        text.lines().last().unwrap_or_default().to_string()
    };
    let line = status(&s);
    assert!(line.contains("panes 1–9 of 11 (0: more)"), "{line}");
    s.handle(key(KeyCode::Char('0')));
    assert_eq!(s.focus_pane, 9);
    let line = status(&s);
    assert!(line.contains("panes 10–11 of 11"), "{line}");
    s.handle(key(KeyCode::Char('0')));
    assert_eq!(s.focus_pane, 0);
    // With every pane on screen there is no page to name.
    s.handle(Input::Resize(250, 60));
    s.handle_action(Action::ToggleZoom);
    assert!(!status(&s).contains("panes 1–"));
}

/// `y` copies what the pane shows — an opened tool call with its details —
/// and `Y` only the lines on screen, each saying how many lines it copied.
#[test]
fn copy_takes_what_is_shown_and_capital_y_only_the_lines_on_screen() {
    let copied = |out: Vec<Effect>| match &out[..] {
        [Effect::Copy(text)] => text.clone(),
        other => panic!("expected a copy, got {other:?}"),
    };
    let mut s = settled();
    s.handle_action(Action::Back);
    s.focus_pane = s.run.pane_index(&StepKey::new("coder")).unwrap();
    let closed = copied(s.handle_action(Action::CopyPane));
    assert!(closed.contains("▸\u{a0}write_file("), "{closed}");
    s.handle_action(Action::ToggleToolDetails);
    let open = copied(s.handle_action(Action::CopyPane));
    assert!(open.contains("▾\u{a0}write_file("), "{open}");
    assert!(open.lines().count() > closed.lines().count(), "{open}");
    // A pane of many lines: `Y` copies the ones on screen.
    let mut s = lev::tui::state::sample::bench_state(1, 500);
    s.handle(Input::Resize(120, 36));
    let all = copied(s.handle_action(Action::CopyPane));
    let shown = copied(s.handle_action(Action::CopyVisible));
    let (a, v) = (all.lines().count(), shown.lines().count());
    assert!(v > 5 && v < 40 && a >= 500, "{v} of {a}");
    assert!(
        all.ends_with(&shown),
        "the screen shows the end of the pane"
    );
    let said = s.message.clone().unwrap_or_default();
    assert!(
        said.contains(&format!("copied {v} lines on screen")),
        "{said}"
    );
}

/// `v` selects lines as tmux's copy mode does: the cursor starts on the
/// last line on screen, moves extend the selection, `v` begins it again
/// at the cursor, `g` takes the cursor (and the view) to the first line,
/// `y` or Enter copies the selected lines and says how many; other keys
/// do nothing but say what the keys are.
#[test]
fn v_selects_a_range_of_lines_and_y_copies_it() {
    use lev::tui::theme::Theme;
    use lev::tui::view::{buffer_text, render};
    let copied = |out: Vec<Effect>| match &out[..] {
        [Effect::Copy(text)] => text.clone(),
        other => panic!("expected a copy, got {other:?}"),
    };
    let mut s = lev::tui::state::sample::bench_state(1, 500);
    s.handle(Input::Resize(120, 36));
    let all = copied(s.handle_action(Action::CopyPane));
    let lines: Vec<&str> = all.lines().collect();
    s.handle(key(KeyCode::Char('v')));
    for _ in 0..4 {
        s.handle(key(KeyCode::Char('k')));
    }
    let screen = buffer_text(&render(&s, &Theme::fallback(), 120, 36));
    assert!(screen.contains("5 lines selected"), "{screen}");
    let zoom = s.zoom;
    s.handle(key(KeyCode::Char('z')));
    assert_eq!(s.zoom, zoom, "keys other than the selection's do nothing");
    assert!(
        s.message
            .clone()
            .unwrap_or_default()
            .contains("y or Enter copy")
    );
    let five = copied(s.handle(key(KeyCode::Char('y'))));
    assert_eq!(five, lines[lines.len() - 5..].join("\n"));
    assert!(s.selection.is_none());
    let said = s.message.clone().unwrap_or_default();
    assert!(said.contains("copied 5 selected lines"), "{said}");
    // From the top: g, begin there, three lines down, Enter.
    s.handle(key(KeyCode::Char('v')));
    s.handle(key(KeyCode::Char('g')));
    let (w, h) = lev::tui::state::layout::pane_viewport(&s, 0);
    assert_eq!(
        s.run.panes[0].view_top(w, h).line,
        0,
        "the view shows the cursor"
    );
    s.handle(key(KeyCode::Char('v')));
    s.handle(key(KeyCode::Char('j')));
    s.handle(key(KeyCode::Char('j')));
    let three = copied(s.handle(key(KeyCode::Enter)));
    assert_eq!(three, lines[..3].join("\n"));
    // Esc leaves without copying.
    s.handle(key(KeyCode::Char('v')));
    assert!(s.handle(key(KeyCode::Esc)).is_empty());
    assert!(s.selection.is_none());
}

/// `Del` in the runs browser asks first, naming the run (and that an
/// unfinished one could still be resumed), then sends the delete op; when
/// it is done the run leaves the list.
#[test]
fn a_run_is_deleted_from_the_browser_after_a_confirmation() {
    use lev::engine::Submitted;
    use lev::tui::theme::Theme;
    use lev::tui::view::{buffer_text, render};
    let mut s = State::new();
    s.set_runs(sample_runs());
    let first = s.runs[0].clone();
    assert!(s.handle(key(KeyCode::Delete)).is_empty());
    let screen = buffer_text(&render(&s, &Theme::fallback(), 120, 30));
    assert!(
        screen.contains(&format!("Delete run \"{}\"", first.name)),
        "{screen}"
    );
    assert!(screen.contains("[y] delete   [n] keep as is"), "{screen}");
    let out = s.handle(key(KeyCode::Char('y')));
    let op = Op::DeleteRun {
        run: first.id.clone(),
    };
    assert_eq!(out, vec![Effect::Op(op.clone())]);
    s.op_done(&op, Ok(Submitted::Deleted(first.id.clone())));
    assert!(s.runs.iter().all(|r| r.id != first.id));
    let said = s.message.clone().unwrap_or_default();
    assert!(said.contains("deleted"), "{said}");
    // `n` keeps it.
    let before = s.runs.len();
    s.handle(key(KeyCode::Delete));
    assert!(s.handle(key(KeyCode::Char('n'))).is_empty());
    assert_eq!(s.runs.len(), before);
}

/// A step that starts takes the focus from a finished pane (a full grid
/// then shows the page with the work going on), never from a running one.
#[test]
fn new_work_takes_the_focus_from_a_finished_pane_only() {
    let mut s = lev::tui::state::sample::bench_state(2, 3);
    let run = sample_run_id();
    let mut seq = 1_000;
    let mut fold = |s: &mut State, event: Event| {
        seq += 1;
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        }));
    };
    let started = |step: &str| Event::StepStarted {
        step: StepKey::new(step),
        attempt: Attempt(1),
        fingerprint: "f".into(),
        kind: "agent".into(),
        mode: None,
        idempotent: true,
        hints: Vec::new(),
        at: Millis(T0 + 50_000),
    };
    s.focus_pane = 0;
    assert!(!s.run.panes[0].status.is_terminal());
    fold(&mut s, started("later"));
    assert_eq!(s.focused_pane().map(|p| p.step.as_str()), Some("agent-0"));
    fold(
        &mut s,
        Event::StepSucceeded {
            step: StepKey::new("agent-0"),
            attempt: Attempt(1),
            outputs: Default::default(),
            usage: Default::default(),
            at: Millis(T0 + 51_000),
        },
    );
    fold(&mut s, started("last"));
    assert_eq!(s.focused_pane().map(|p| p.step.as_str()), Some("last"));
}

/// While the run goes on, a pane whose step ended leaves the grid to the
/// work in progress: it shrinks to a small cell in a band under the grid
/// (its last lines still readable), or on a low screen to one line in a
/// row under it ("ended: 1 ● architect"). Its number or a click brings it
/// back into the grid (a focused pane stays there); the arrows move
/// between the grid's cells only; once the run has ended every pane is
/// back in the grid.
#[test]
fn ended_panes_shrink_or_move_aside_while_the_run_goes_on() {
    use lev::tui::state::layout::regions;
    use lev::tui::theme::Theme;
    use lev::tui::view::{buffer_text, render};
    use ratatui::layout::Rect;
    let mut s = settled();
    s.handle(Input::Resize(120, 36));
    s.handle_action(Action::LayoutGrid);
    s.focus = Focus::Panes;
    s.focus_pane = 1;
    let area = Rect::new(0, 0, 120, 36);
    let cell = |s: &State, i: usize| {
        regions(s, area)
            .panes
            .iter()
            .find(|p| p.0 == i)
            .map(|p| p.1)
    };
    assert_eq!(s.run.panes[0].status, StepStatus::Succeeded);
    let small = cell(&s, 0).expect("the ended pane keeps a cell");
    let working = cell(&s, 1).unwrap();
    assert!(small.height < working.height, "{small:?} {working:?}");
    assert!(small.y > working.y + working.height - 1, "under the grid");
    // The arrows stay in the grid: the ended pane is never reached.
    for _ in 0..8 {
        s.handle_action(Action::FocusRight);
        assert_ne!(s.focus_pane, 0);
        s.focus = Focus::Panes;
    }
    // Its number brings it back into the grid.
    s.handle(key(KeyCode::Char('1')));
    assert_eq!(s.focus_pane, 0);
    assert!(cell(&s, 0).unwrap().height >= working.height);
    // On a low screen it is one line under the grid; a click brings it back.
    s.handle(key(KeyCode::Char('2')));
    let low = Rect::new(0, 0, 120, 16);
    s.handle(Input::Resize(120, 16));
    let screen = buffer_text(&render(&s, &Theme::fallback(), 120, 16));
    let shelf_row = screen
        .lines()
        .find(|l| l.contains("ended:"))
        .unwrap_or_else(|| panic!("no row of ended panes:\n{screen}"));
    assert!(shelf_row.contains("1 ● architect"), "{shelf_row}");
    let reg = regions(&s, low);
    assert!(!reg.panes.iter().any(|p| p.0 == 0));
    let (slot, shelf) = (reg.shelved[0], reg.shelf.unwrap());
    s.handle(Input::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: slot.x + 1,
        row: shelf.y,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(s.focus_pane, 0);
    // The run ends: every pane is in the grid again, at full size.
    s.handle(Input::Resize(120, 36));
    s.focus_pane = 1;
    s.apply(&Notice::Event(Recorded {
        run: sample_run_id(),
        seq: Seq(10_000),
        event: Event::RunFinished {
            status: lev::protocol::RunStatus::Succeeded,
            outputs: Default::default(),
            error: None,
            usage: Default::default(),
            at: Millis(T0 + 40_000),
        },
    }));
    let reg = regions(&s, area);
    assert_eq!(reg.panes.len(), s.run.panes.len());
    assert!(reg.shelf.is_none());
    assert_eq!(cell(&s, 0).unwrap().height, cell(&s, 1).unwrap().height);
}

/// A question's own pane shows its options and answers it: Enter on the
/// pane takes the keys to its prompt, ↓ picks, Enter sends.
#[test]
fn a_question_is_answered_from_its_own_pane() {
    let mut s = settled();
    s.handle(Input::Resize(120, 36));
    s.focus = Focus::Panes;
    s.focus_pane = s.run.pane_index(&StepKey::new("tester")).unwrap();
    let text: Vec<String> = s.run.panes[s.focus_pane]
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(
        text.iter()
            .any(|l| l.contains("· examples — Example-based tests")),
        "{text:?}"
    );
    assert!(text.iter().any(|l| l.contains("Enter here")), "{text:?}");
    assert!(s.handle(key(KeyCode::Enter)).is_empty());
    assert_eq!(s.focus, Focus::Prompt);
    let (_, p) = s.focused_prompt().expect("the pane's question is focused");
    assert_eq!(p.step, Some(StepKey::new("tester")));
    s.handle(key(KeyCode::Down));
    let sent = s.handle(key(KeyCode::Enter));
    assert!(
        sent.iter().any(|e| matches!(
            e,
            Effect::Op(Op::Answer { answer, .. }) if answer == "examples"
        )),
        "{sent:?}"
    );
}

#[test]
fn a_step_executed_as_a_step_run_shows_where_and_its_outputs() {
    let run = lev::protocol::RunId("01SPREAD".into());
    let step = StepKey::new("build");
    let event = |seq: u64, event: Event| Recorded {
        run: run.clone(),
        seq: Seq(seq),
        event,
    };
    let events = [
        event(
            1,
            Event::RunStarted {
                workflow_id: "w".into(),
                name: "Spread".into(),
                source: "w.yaml".into(),
                definition_hash: "h".into(),
                inputs: Default::default(),
                seed: 1,
                workspace: None,
                steps: Vec::new(),
                flowmind: None,
                spread: true,
                step_of: None,
                push_to: None,
                at: Millis(T0),
            },
        ),
        event(
            2,
            Event::StepStarted {
                step: step.clone(),
                attempt: Attempt(1),
                fingerprint: "f".into(),
                kind: "shell".into(),
                mode: None,
                idempotent: true,
                hints: Vec::new(),
                at: Millis(T0 + 1),
            },
        ),
        event(
            3,
            Event::StepDelegated {
                step: step.clone(),
                attempt: Attempt(1),
                run: lev::protocol::RunId("01STEPRUN".into()),
                work: "shell".into(),
                at: Millis(T0 + 1),
            },
        ),
        event(
            4,
            Event::StepSucceeded {
                step: step.clone(),
                attempt: Attempt(1),
                outputs: [
                    ("stdout".to_string(), serde_json::json!("built\tok")),
                    ("exit_code".to_string(), serde_json::json!(0)),
                ]
                .into(),
                usage: Default::default(),
                at: Millis(T0 + 900),
            },
        ),
    ];
    let mut s = State::new();
    for r in &events {
        s.apply(&Notice::Event(r.clone()));
    }
    let pane = &s.run.panes[s.run.pane_index(&step).unwrap()];
    let text: Vec<&str> = pane.lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        text.iter().any(|l| l.contains("step run 01STEPRUN")),
        "{text:?}"
    );
    assert!(text.contains(&"→ exit_code: 0"), "{text:?}");
    assert!(
        text.iter().any(|l| l.starts_with("→ stdout: built")),
        "{text:?}"
    );
    assert_eq!(pane.status, StepStatus::Succeeded);
}
