//! Recorded tool results are found by their place in the run (step,
//! attempt, turn, position in the turn), never by the provider's call id:
//! folding a journal whose provider reused ids keeps every result apart,
//! for journals that record places and for older ones that do not.

use lev::protocol::{Attempt, Event, Millis, Recorded, RunId, Seq, StepKey, ToolCallRecord, Usage};
use lev::workflow::history::{History, ToolPlace};

fn recorded(events: Vec<Event>) -> Vec<Recorded> {
    (1u64..)
        .zip(events)
        .map(|(seq, event)| Recorded {
            run: RunId("r".into()),
            seq: Seq(seq),
            event,
        })
        .collect()
}

fn reply(turn: u32, ids: &[&str]) -> Event {
    Event::LlmReplied {
        step: StepKey::new("work"),
        attempt: Attempt(1),
        turn,
        fingerprint: format!("f{turn}"),
        text: String::new(),
        tool_calls: ids
            .iter()
            .map(|id| ToolCallRecord {
                id: id.to_string(),
                name: "run_shell".into(),
                arguments: "{}".into(),
            })
            .collect(),
        usage: Usage::default(),
        model: "m".into(),
        stop_reason: None,
        refusal: None,
        at: Millis(turn as u64),
    }
}

fn finished(turn: u32, position: u32, id: &str, output: &str) -> Event {
    Event::ToolFinished {
        step: StepKey::new("work"),
        attempt: Attempt(1),
        turn,
        position,
        call_id: id.into(),
        name: "run_shell".into(),
        arguments: "{}".into(),
        output: output.into(),
        is_error: false,
        at: Millis(0),
    }
}

fn started(turn: u32, position: u32, id: &str) -> Event {
    Event::ToolStarted {
        step: StepKey::new("work"),
        attempt: Attempt(1),
        turn,
        position,
        call_id: id.into(),
        name: "run_shell".into(),
        fingerprint: "x".into(),
        at: Millis(0),
    }
}

fn place(turn: u32, position: u32) -> ToolPlace {
    ToolPlace {
        step: StepKey::new("work"),
        attempt: Attempt(1),
        turn,
        position,
    }
}

fn output(h: &History, turn: u32, position: u32) -> Option<String> {
    h.tools
        .get(&place(turn, position))
        .map(|t| t.output.clone())
}

#[test]
fn one_id_every_turn_and_twice_in_a_turn_keeps_every_result_apart() {
    let h = History::from_events(&recorded(vec![
        reply(1, &["call_1"]),
        finished(1, 1, "call_1", "one"),
        reply(2, &["call_1", "call_1"]),
        finished(2, 1, "call_1", "two-a"),
        finished(2, 2, "call_1", "two-b"),
        reply(3, &["call_1"]),
        started(3, 1, "call_1"),
    ]));
    assert_eq!(output(&h, 1, 1).as_deref(), Some("one"));
    assert_eq!(output(&h, 2, 1).as_deref(), Some("two-a"));
    assert_eq!(output(&h, 2, 2).as_deref(), Some("two-b"));
    // Turn 3's call is in flight: it has no result, whatever turn 1 had.
    assert_eq!(output(&h, 3, 1), None);
    assert!(h.tools_started.contains(&place(3, 1)));
}

#[test]
fn journals_without_places_are_placed_by_the_reply_they_follow() {
    // Written before places were recorded: turn and position are 0.
    let h = History::from_events(&recorded(vec![
        reply(1, &["call_1"]),
        finished(0, 0, "call_1", "one"),
        reply(2, &["call_0", "call_0"]),
        finished(0, 0, "call_0", "two-a"),
        started(0, 0, "call_0"),
        finished(0, 0, "call_0", "two-b"),
        reply(3, &["call_1"]),
        started(0, 0, "call_1"),
    ]));
    assert_eq!(output(&h, 1, 1).as_deref(), Some("one"));
    assert_eq!(output(&h, 2, 1).as_deref(), Some("two-a"));
    assert_eq!(output(&h, 2, 2).as_deref(), Some("two-b"));
    assert!(h.tools_started.contains(&place(2, 2)));
    assert!(h.tools_started.contains(&place(3, 1)));
    assert_eq!(output(&h, 3, 1), None);
}
