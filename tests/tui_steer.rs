//! Steering in the workbench as a fold and as keys: delivered messages show
//! in the agent's pane and dimmed in the sidebar; a live pause shows as
//! "paused" (not "needs input") on agents while shell steps run on; the
//! emergency stop asks first; every key only sends an op.

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use lev::protocol::{
    Attempt, Event, Millis, Notice, Op, PauseReason, Recorded, RunStatus, Seq, StepKey, Usage,
};
use lev::tui::keymap::Action;
use lev::tui::state::sample::{T0, sample_events, sample_run_id, sample_state};
use lev::tui::state::{Confirm, Effect, GRACE_MS, Input, Overlay, State, Typing};

fn key(code: KeyCode) -> Input {
    Input::Key(KeyEvent::from(code))
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

fn settled() -> State {
    let mut s = sample_state();
    s.handle(Input::Tick(Millis(T0 + 31_000)));
    s.handle(Input::Tick(Millis(T0 + 31_000 + GRACE_MS)));
    s
}

/// Steering events appended after the sample run's events.
fn after_sample(events: Vec<Event>) -> Vec<Recorded> {
    let first = sample_events().len() as u64 + 1;
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            run: sample_run_id(),
            seq: Seq(first + i as u64),
            event,
        })
        .collect()
}

fn fold(s: &mut State, events: Vec<Event>) {
    for r in after_sample(events) {
        s.apply(&Notice::Event(r));
    }
}

fn at(ms: u64) -> Millis {
    Millis(T0 + 40_000 + ms)
}

fn security() -> StepKey {
    StepKey::new("security")
}

fn pane<'a>(s: &'a State, step: &str) -> &'a lev::tui::state::Pane {
    &s.run.panes[s.run.pane_index(&StepKey::new(step)).unwrap()]
}

fn messaged(text: &str, turn: u32, ms: u64) -> Event {
    Event::AgentMessaged {
        step: security(),
        attempt: Attempt(1),
        turn,
        text: text.into(),
        at: at(ms),
    }
}

#[test]
fn a_delivered_message_shows_in_the_agents_pane_and_the_sidebar_list() {
    let mut s = settled();
    fold(&mut s, vec![messaged("check SameSite\ntoo", 2, 1)]);
    let lines: Vec<&str> = pane(&s, "security")
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    let at = lines
        .iter()
        .position(|l| *l == "» you: check SameSite")
        .unwrap();
    assert_eq!(lines[at + 1], "  too");
    assert_eq!(s.run.messages.len(), 1);
    assert_eq!(s.run.messages[0].step, security());
    assert_eq!(s.run.messages[0].turn, 2);
}

#[test]
fn a_live_pause_holds_agents_not_shell_steps_and_lifts() {
    let mut s = settled();
    fold(
        &mut s,
        vec![Event::PauseRequested {
            step: None,
            at: at(1),
        }],
    );
    assert!(s.run.paused);
    assert_eq!(s.run.status, Some(RunStatus::Running));
    assert!(s.run.holds(pane(&s, "security")));
    // The shell step runs on.
    assert!(!s.run.holds(pane(&s, "checks")));
    assert!(s.run.runs_on_while_paused(pane(&s, "checks")));
    // Paused is not "needs input".
    assert!(!s.run.needs_input(&security()));
    fold(
        &mut s,
        vec![Event::PauseLifted {
            step: None,
            at: at(2),
        }],
    );
    assert!(!s.run.paused);
    assert!(!s.run.holds(pane(&s, "security")));
}

#[test]
fn one_agent_pauses_alone_until_unpaused_or_its_attempt_ends() {
    let mut s = settled();
    let pause = Event::PauseRequested {
        step: Some(security()),
        at: at(1),
    };
    fold(&mut s, vec![pause.clone()]);
    assert!(!s.run.paused);
    assert!(s.run.holds(pane(&s, "security")));
    assert!(!s.run.holds(pane(&s, "architect")));
    fold(
        &mut s,
        vec![Event::PauseLifted {
            step: Some(security()),
            at: at(2),
        }],
    );
    assert!(!s.run.holds(pane(&s, "security")));

    let mut s = settled();
    fold(
        &mut s,
        vec![
            pause,
            Event::StepSucceeded {
                step: security(),
                attempt: Attempt(1),
                outputs: Default::default(),
                usage: Usage::default(),
                at: at(3),
            },
        ],
    );
    assert!(!pane(&s, "security").paused);
}

#[test]
fn a_resumed_run_is_not_paused_any_more() {
    let mut s = settled();
    fold(
        &mut s,
        vec![
            Event::PauseRequested {
                step: None,
                at: at(1),
            },
            Event::PauseRequested {
                step: Some(security()),
                at: at(2),
            },
            Event::RunResumed { at: at(3) },
        ],
    );
    assert!(!s.run.paused);
    assert!(!pane(&s, "security").paused);
}

#[test]
fn the_emergency_stop_ends_the_run_paused_with_a_reason() {
    let mut s = settled();
    fold(
        &mut s,
        vec![
            Event::PauseRequested {
                step: None,
                at: at(1),
            },
            Event::EmergencyStopped { at: at(2) },
            Event::RunPaused {
                reason: PauseReason::EmergencyStop,
                at: at(3),
            },
        ],
    );
    assert_eq!(s.run.status, Some(RunStatus::Paused));
    assert!(!s.run.paused);
    let last = s.run.notes.last().unwrap();
    assert!(last.contains("emergency stop"), "{last}");
    assert!(last.contains("lev resume"), "{last}");
}

#[test]
fn steering_folds_the_same_live_and_in_replay() {
    let extra = vec![
        Event::PauseRequested {
            step: None,
            at: at(1),
        },
        messaged("hello", 3, 2),
        Event::PauseLifted {
            step: None,
            at: at(3),
        },
        Event::PauseRequested {
            step: Some(security()),
            at: at(4),
        },
    ];
    let mut events = sample_events();
    events.extend(after_sample(extra));
    let mut live = State::new();
    for r in &events {
        live.apply(&Notice::Event(r.clone()));
    }
    let mut replay = State::new();
    replay.load_replay(events.clone());
    replay.replay_jump(events.len());
    assert_eq!(live.run, replay.run);
}

#[test]
fn message_key_types_into_a_box_and_enter_sends_the_op() {
    let mut s = settled();
    s.handle_action(Action::JumpPane(4));
    assert!(s.handle_action(Action::SendMessage).is_empty());
    assert_eq!(s.typing, Some(Typing::Message(3)));
    for c in "use strict".chars() {
        s.handle(key(KeyCode::Char(c)));
    }
    let out = s.handle(key(KeyCode::Enter));
    assert_eq!(
        ops(&out),
        [&Op::Message {
            run: sample_run_id(),
            step: security(),
            text: "use strict".into(),
        }]
    );
    assert_eq!(s.typing, None);

    // Empty messages are not sent.
    s.handle_action(Action::SendMessage);
    let out = s.handle(key(KeyCode::Enter));
    assert!(ops(&out).is_empty());
    assert!(s.message.as_deref().unwrap().contains("empty"));
}

#[test]
fn only_running_agents_take_messages_or_pause_alone() {
    let mut s = settled();
    // Pane 5 is a shell step, pane 1 an agent that finished.
    for pane in [5, 1] {
        s.handle_action(Action::JumpPane(pane));
        assert!(s.handle_action(Action::SendMessage).is_empty());
        assert_eq!(s.typing, None);
        assert!(s.message.as_deref().unwrap().contains("running agent"));
        assert!(s.handle_action(Action::PauseAgent).is_empty());
        assert!(s.message.as_deref().unwrap().contains("running agent"));
    }
}

#[test]
fn pause_toggles_the_run_and_p_upper_toggles_the_focused_agent() {
    let mut s = settled();
    let run = sample_run_id();
    let out = s.handle_action(Action::PauseRun);
    assert_eq!(
        ops(&out),
        [&Op::Pause {
            run: run.clone(),
            step: None
        }]
    );
    fold(
        &mut s,
        vec![Event::PauseRequested {
            step: None,
            at: at(1),
        }],
    );
    let out = s.handle_action(Action::PauseRun);
    assert_eq!(
        ops(&out),
        [&Op::Unpause {
            run: run.clone(),
            step: None
        }]
    );

    let mut s = settled();
    s.handle_action(Action::JumpPane(4));
    let out = s.handle(key(KeyCode::Char('P')));
    assert_eq!(
        ops(&out),
        [&Op::Pause {
            run: run.clone(),
            step: Some(security())
        }]
    );
    fold(
        &mut s,
        vec![Event::PauseRequested {
            step: Some(security()),
            at: at(1),
        }],
    );
    let out = s.handle_action(Action::PauseAgent);
    assert_eq!(
        ops(&out),
        [&Op::Unpause {
            run,
            step: Some(security())
        }]
    );
}

#[test]
fn emergency_stop_asks_first() {
    let mut s = settled();
    assert!(s.handle_action(Action::EmergencyStop).is_empty());
    assert_eq!(s.overlay, Some(Overlay::Confirm(Confirm::EmergencyStop)));
    assert!(ops(&s.handle(key(KeyCode::Char('n')))).is_empty());
    assert_eq!(s.overlay, None);
    s.handle_action(Action::EmergencyStop);
    let out = s.handle(key(KeyCode::Char('y')));
    assert_eq!(
        ops(&out),
        [&Op::EmergencyStop {
            run: sample_run_id()
        }]
    );
}

#[test]
fn stop_callbacks_asks_first_and_sends_the_op() {
    let mut s = settled();
    assert!(s.handle_action(Action::StopCallbacks).is_empty());
    assert_eq!(s.overlay, Some(Overlay::Confirm(Confirm::StopCallbacks)));
    assert!(ops(&s.handle(key(KeyCode::Esc))).is_empty());
    assert_eq!(s.overlay, None);
    s.handle_action(Action::StopCallbacks);
    let out = s.handle(key(KeyCode::Char('y')));
    assert_eq!(
        ops(&out),
        [&Op::StopCallbacks {
            run: sample_run_id()
        }]
    );
    // The fact, once journaled, is in the run's notes (the sidebar).
    fold(
        &mut s,
        vec![Event::CallbacksStopped {
            by: "user".into(),
            reason: "`lev stop-callbacks`".into(),
            at: at(2),
        }],
    );
    assert!(
        s.run
            .notes
            .iter()
            .any(|n| n.starts_with("callbacks stopped by the user")),
        "{:?}",
        s.run.notes
    );
}

#[test]
fn a_refusal_from_the_engine_is_said_in_the_status_bar() {
    let mut s = settled();
    let before = s.run.clone();
    s.apply(&Notice::Refused(
        sample_run_id(),
        "message not sent: `checks` is not a running agent step".into(),
    ));
    assert!(
        s.message
            .as_deref()
            .unwrap()
            .contains("not a running agent")
    );
    assert_eq!(s.run, before);
}

#[test]
fn replay_steers_nothing() {
    let mut s = State::new();
    s.load_replay(sample_events());
    s.replay_jump(sample_events().len());
    for a in [
        Action::PauseRun,
        Action::PauseAgent,
        Action::SendMessage,
        Action::StopCallbacks,
    ] {
        assert!(ops(&s.handle_action(a)).is_empty());
    }
    assert_eq!(s.overlay, None);
}

#[test]
fn the_palette_offers_pausing_one_agent_only_with_an_agent_in_focus() {
    use lev::tui::state::PaletteItem;
    let offered = |s: &mut State| {
        s.handle_action(Action::Palette);
        s.handle(Input::Paste("pause".into()));
        let yes = s
            .palette
            .iter()
            .any(|e| e.item == PaletteItem::Action(Action::PauseAgent));
        s.handle(key(KeyCode::Esc));
        yes
    };
    let mut s = settled();
    s.handle_action(Action::JumpPane(5));
    assert!(!offered(&mut s));
    s.handle_action(Action::JumpPane(4));
    assert!(offered(&mut s));
}
