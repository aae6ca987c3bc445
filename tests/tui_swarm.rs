//! A swarm run in the workbench, as a fold of its recorded events: one pane
//! per agent slot with the slot's tasks in its scrollback, stolen tasks
//! marked, spend per slot, breakers, and the plan review's keys → ops
//! (accept, regenerate, an edited plan; never before the grace period).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lev::protocol::{Event, Millis, Notice, Op, Recorded, Seq, StepKey, StepStatus};
use lev::tui::keymap::Action;
use lev::tui::state::sample::T0;
use lev::tui::state::sample_swarm::{
    swarm_events, swarm_review_events, swarm_review_state, swarm_run_id, swarm_state,
};
use lev::tui::state::{
    BreakerShown, Effect, Focus, GRACE_MS, Input, LineKind, PaneLayout, State, TaskSlot, Typing,
};

fn key(code: KeyCode) -> Input {
    Input::Key(KeyEvent::from(code))
}

fn ctrl(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn answers(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Op(Op::Answer {
                question, answer, ..
            }) => Some((question.clone(), answer.clone())),
            _ => None,
        })
        .collect()
}

fn event(seq: u64, event: Event) -> Notice {
    Notice::Event(Recorded {
        run: swarm_run_id(),
        seq: Seq(seq),
        event,
    })
}

fn lines(s: &State, pane: usize) -> Vec<String> {
    s.run.panes[pane]
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect()
}

#[test]
fn each_agent_slot_is_one_pane_with_its_tasks_in_order() {
    let s = swarm_state();
    let run = &s.run;
    assert!(run.swarm);
    // The orchestrator keeps its own pane; then one pane per slot, in slot order.
    let shown: Vec<(Option<u32>, &str)> = run
        .panes
        .iter()
        .map(|p| (p.slot_no(), p.step.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (None, "plan"),
            (Some(0), "api"),
            (Some(1), "docs"),
            (Some(2), "tests"),
            (Some(3), "docs"),
        ]
    );
    // Slot 0 ran `design` and now runs `api`: the earlier task stays above,
    // each task after its own separator, and no attempt separator.
    let slot0 = lines(&s, 1);
    assert_eq!(slot0[0], "── task design · architect (#1 on this slot) ──");
    assert!(slot0.iter().any(|l| l.contains("Sessions in a table")));
    let second = slot0
        .iter()
        .position(|l| l == "── task api · coder (#2 on this slot) ──")
        .unwrap();
    assert!(
        slot0[second + 1..]
            .iter()
            .any(|l| l == "Adding the handlers.")
    );
    assert!(!slot0.iter().any(|l| l.contains("attempt")));
    assert_eq!(run.panes[1].status, StepStatus::Running);
    assert_eq!(run.panes[1].slot.as_ref().unwrap().tasks.len(), 2);

    // Events about a task reach its slot's pane, finished tasks included.
    assert_eq!(run.pane_index(&StepKey::new("design")), Some(1));
    assert_eq!(run.pane_index(&StepKey::new("tests")), Some(3));

    // Spend per slot sums its tasks; per step it is the task's own.
    assert_eq!(run.panes[1].usage.total_tokens(), 1_900);
    assert_eq!(run.panes[2].usage.total_tokens(), 1_450);
    assert_eq!(
        run.step_usage(&StepKey::new("design"))
            .unwrap()
            .total_tokens(),
        1_900
    );
    assert_eq!(
        run.step_usage(&StepKey::new("api")).unwrap().total_tokens(),
        0
    );
    assert_eq!(run.usage().total_tokens(), 2_600 + 1_900 + 1_450 + 300);

    // The overview and the timeline still list the tasks by step id.
    let rows: Vec<&str> = run.steps.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(rows, ["plan", "design", "api", "ui", "tests", "docs"]);
    // The plan step finished before its review question; it stays finished.
    assert_eq!(run.panes[0].status, StepStatus::Succeeded);
    // A swarm opens on the grid.
    assert_eq!(s.layout, PaneLayout::Grid);
}

#[test]
fn a_stolen_task_says_so_and_leaves_its_old_slot() {
    let s = swarm_state();
    let run = &s.run;
    let docs = StepKey::new("docs");
    assert_eq!(
        run.assignments.get(&docs),
        Some(&TaskSlot {
            slot: 1,
            stolen_from: Some(3)
        })
    );
    let slot1 = &run.panes[2];
    let task = slot1.slot_task().unwrap();
    assert_eq!((task.task.as_str(), task.stolen_from), ("docs", Some(3)));
    assert!(lines(&s, 2).contains(
        &"── task docs · docs-writer (#2 on this slot) · stolen from slot 3 ──".to_string()
    ));
    // Slot 1's pane runs the retry (attempt 2) as its task, without an
    // attempt separator; slot 3's attempt failed there and the task moved on.
    assert_eq!(slot1.attempt.0, 2);
    assert_eq!(slot1.status, StepStatus::Running);
    let slot3 = &run.panes[4];
    assert_eq!(slot3.status, StepStatus::Failed);
    assert!(lines(&s, 4).contains(&"↪ docs moved to slot 1".to_string()));
    // Spend stays where it was spent: slot 3 paid for the failed attempt.
    assert_eq!(slot3.usage.total_tokens(), 300);
    assert_eq!(run.step_usage(&docs).unwrap().total_tokens(), 300);
    // Tokens of the running task stream into its slot's pane.
    assert!(lines(&s, 2).iter().any(|l| l == "## Logging in"));
    // Later events about docs change slot 1's pane, not slot 3's.
    let mut s = swarm_state();
    s.apply(&event(
        100,
        Event::StepSucceeded {
            step: docs.clone(),
            attempt: lev::protocol::Attempt(2),
            outputs: Default::default(),
            usage: lev::protocol::Usage {
                input_tokens: 500,
                output_tokens: 100,
                cost_usd: 0.0,
                estimated: 0,
            },
            at: Millis(T0 + 31_000),
        },
    ));
    assert_eq!(s.run.panes[2].status, StepStatus::Succeeded);
    assert_eq!(s.run.panes[4].status, StepStatus::Failed);
    assert_eq!(s.run.panes[2].usage.total_tokens(), 1_450 + 600);
    assert_eq!(s.run.step_usage(&docs).unwrap().total_tokens(), 900);
}

#[test]
fn breakers_open_half_open_and_close() {
    let mut s = swarm_state();
    let b = s.run.breakers.get(&3).unwrap();
    assert_eq!(
        b.state,
        BreakerShown::Open {
            until: Some(Millis(T0 + 78_000))
        }
    );
    assert!(b.reason.contains("moved to other slots"));
    assert!(
        s.run.panes[4]
            .lines
            .iter()
            .any(|l| l.kind == LineKind::Error && l.text.starts_with("⊘ breaker open"))
    );
    let breaker = |seq, state: &str| {
        event(
            seq,
            Event::SlotBreaker {
                slot: 3,
                state: state.into(),
                until: None,
                reason: "cooldown over".into(),
                at: Millis(T0 + 79_000),
            },
        )
    };
    s.apply(&breaker(100, "half_open"));
    assert_eq!(s.run.breakers[&3].state, BreakerShown::HalfOpen);
    s.apply(&breaker(101, "closed"));
    assert!(s.run.breakers.is_empty());
    assert_eq!(
        s.run.notes.last().map(String::as_str),
        Some("slot 3 breaker closed: cooldown over")
    );
}

#[test]
fn live_fold_equals_replay_of_a_swarm() {
    let events = swarm_events();
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
fn focus_stays_on_its_pane_when_a_slot_pane_is_inserted_before_it() {
    let mut s = State::new();
    let events = swarm_events();
    // Up to slot 0's second task and slot 1's first; then slot 3 starts
    // before slot 2 does.
    let upto = events
        .iter()
        .position(|r| matches!(&r.event, Event::TaskAssigned { slot: 2, .. }))
        .unwrap();
    for r in &events[..upto] {
        s.apply(&Notice::Event(r.clone()));
    }
    s.handle_action(Action::JumpPane(3));
    assert_eq!(s.focused_pane().unwrap().slot_no(), Some(1));
    let slot3_first = events
        .iter()
        .find(|r| matches!(&r.event, Event::TaskAssigned { slot: 3, .. }))
        .unwrap();
    s.apply(&Notice::Event(slot3_first.clone()));
    assert_eq!(s.focused_pane().unwrap().slot_no(), Some(1));
    let slot2 = &events[upto];
    s.apply(&Notice::Event(slot2.clone()));
    // Slot 2 goes between slots 1 and 3; the focus follows slot 1's pane.
    let slots: Vec<Option<u32>> = s.run.panes.iter().map(|p| p.slot_no()).collect();
    assert_eq!(slots, [None, Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(s.focused_pane().unwrap().slot_no(), Some(1));
    assert_eq!(s.focus_pane, 2);
}

#[test]
fn the_review_takes_a_to_accept_and_r_to_regenerate_after_the_grace_period() {
    let mut s = State::new();
    s.handle(Input::Tick(Millis(T0)));
    for r in swarm_review_events() {
        s.apply(&Notice::Event(r));
    }
    s.handle(Input::Tick(Millis(T0 + 5_000)));
    let p = &s.run.prompts[0];
    let review = p.review.as_ref().unwrap();
    assert_eq!(review.plan.as_ref().unwrap().tasks.len(), 6);
    assert!(
        review
            .edit_text
            .starts_with("# The plan the swarm will run.")
    );
    assert!(!review.edit_text.contains("Accept it, regenerate it"));
    // Focused on purpose, but it just arrived: `a` sends nothing.
    s.handle_action(Action::NextPrompt);
    assert_eq!(s.focus, Focus::Prompt);
    assert!(answers(&s.handle(key(KeyCode::Char('a')))).is_empty());
    assert!(s.message.as_deref().unwrap_or("").contains("just arrived"));
    s.handle(Input::Tick(Millis(T0 + 5_000 + GRACE_MS)));
    // Enter does not pick an option here: only the review's keys answer.
    assert!(answers(&s.handle(key(KeyCode::Enter))).is_empty());
    let out = s.handle(key(KeyCode::Char('a')));
    assert_eq!(
        answers(&out),
        [("plan-review".to_string(), "accept".to_string())]
    );
    // Sent once: the focus left the prompt and a second `a` is no answer.
    assert!(answers(&s.handle(key(KeyCode::Char('a')))).is_empty());

    let mut s = swarm_review_state();
    let out = s.handle(key(KeyCode::Char('r')));
    assert_eq!(
        answers(&out),
        [("plan-review".to_string(), "regenerate".to_string())]
    );
}

#[test]
fn editing_the_plan_sends_the_edited_text() {
    let mut s = swarm_review_state();
    assert_eq!(s.focus, Focus::Prompt);
    s.handle(key(KeyCode::Char('e')));
    assert_eq!(s.typing, Some(Typing::EditPlan(0)));
    let review = s.run.prompts[0].review.clone().unwrap();
    assert_eq!(s.textarea.lines().join("\n"), review.edit_text.trim_end());
    // Enter is a new line in the editor, not "send".
    let out = s.handle(key(KeyCode::Enter));
    assert!(answers(&out).is_empty());
    s.handle(Input::Paste("# my change".into()));
    // Esc closes the editor and keeps the edit; `e` opens it again.
    s.handle(key(KeyCode::Esc));
    assert_eq!(s.typing, None);
    s.handle(key(KeyCode::Char('e')));
    assert_eq!(s.typing, Some(Typing::EditPlan(0)));
    let text = s.textarea.lines().join("\n");
    assert!(text.starts_with("\n# my change# The plan"), "{text}");
    let out = s.handle(ctrl('s'));
    let sent = answers(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "plan-review");
    assert_eq!(sent[0].1, text.trim_end());
    assert_eq!(s.typing, None);
    assert_eq!(s.plan_draft, None);
}

#[test]
fn pasting_onto_the_review_opens_the_editor_with_the_pasted_plan() {
    let mut s = swarm_review_state();
    let pasted = "summary: mine\ntasks: []";
    s.handle(Input::Paste(pasted.into()));
    assert_eq!(s.typing, Some(Typing::EditPlan(0)));
    assert_eq!(s.textarea.lines().join("\n"), pasted);
    let out = s.handle(Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT)));
    assert_eq!(
        answers(&out),
        [("plan-review".to_string(), pasted.to_string())]
    );
}
