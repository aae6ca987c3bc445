//! A recorded sample swarm (`lev workflow "..."`, four agent slots, fixed
//! times): the orchestrator's plan under review, then tasks on the slots
//! with one stolen task and one open breaker. Public so fold tests, view
//! snapshots and benchmarks build the same screens.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::protocol::{
    Attempt, ChoiceRecord, Delta, Event, Millis, Notice, Recorded, RunId, Seq, StepKey,
    StepOutline, Usage,
};
use crate::swarm::plan;

use super::State;
use super::sample::{at, started, usage};

pub fn swarm_run_id() -> RunId {
    RunId("01KAV0SAMPLE0SWARM00000000".to_string())
}

fn task(id: &str, title: &str, mode: &str, needs: &[&str], check: &str) -> Value {
    json!({"id": id, "title": title, "mode": mode, "needs": needs,
           "acceptance": [check], "files": []})
}

/// The orchestrator's plan: a design, then four tasks that need only it,
/// and a review after them.
pub fn swarm_plan() -> Value {
    json!({
        "summary": "Login with email and password, tested and documented",
        "tasks": [
            task("design", "Design the login API and session model", "architect", &[], "the API is written down"),
            task("api", "Implement POST /login and /logout", "coder", &["design"], "cargo test passes"),
            task("ui", "Build the login form", "coder", &["design"], "the form posts to /login"),
            task("tests", "Write tests for expired and revoked sessions", "tdd", &["design"], "the tests fail first"),
            task("docs", "Document the login flow", "docs-writer", &["design"], "README has a login section"),
            task("review", "Review the change for security problems", "reviewer", &["api", "ui", "tests", "docs"], "no open findings"),
        ]
    })
}

fn replied(step: &str, text: &str, u: Usage, ms: u64) -> Event {
    Event::LlmReplied {
        step: StepKey::new(step),
        attempt: Attempt(1),
        turn: 1,
        fingerprint: format!("req-{step}"),
        text: text.into(),
        tool_calls: Vec::new(),
        usage: u,
        model: "gpt-test".into(),
        stop_reason: None,
        refusal: None,
        at: at(ms),
    }
}

fn succeeded(step: &str, u: Usage, ms: u64) -> Event {
    Event::StepSucceeded {
        step: StepKey::new(step),
        attempt: Attempt(1),
        outputs: BTreeMap::new(),
        usage: u,
        at: at(ms),
    }
}

fn assigned(task: &str, mode: &str, slot: u32, stolen_from: Option<u32>, ms: u64) -> Event {
    Event::TaskAssigned {
        task: StepKey::new(task),
        mode: mode.into(),
        slot,
        stolen_from,
        at: at(ms),
    }
}

fn recorded(events: Vec<Event>) -> Vec<Recorded> {
    let run = swarm_run_id();
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

/// Up to the plan review: the orchestrator planned, the plan passed the
/// checks and waits for the user.
fn review_events() -> Vec<Event> {
    let plan_value = swarm_plan();
    let edit_text = plan::parse(&plan_value)
        .map(|p| plan::to_edit_text(&p))
        .unwrap_or_default();
    vec![
        Event::RunStarted {
            workflow_id: "swarm".into(),
            name: "Add login".into(),
            source: "objective".into(),
            definition_hash: "b3-swarm".into(),
            inputs: BTreeMap::new(),
            seed: 7,
            workspace: None,
            steps: vec![StepOutline {
                id: "plan".into(),
                kind: "agent".into(),
                needs: Vec::new(),
                mode: Some("orchestrator".into()),
            }],
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: at(0),
        },
        started("plan", 1, "agent", Some("orchestrator"), 100),
        replied(
            "plan",
            "Six tasks: a design first, four in parallel, a review last.",
            usage(2_000, 600, 0.0150),
            4_000,
        ),
        succeeded("plan", usage(2_000, 600, 0.0150), 4_100),
        Event::PlanProposed {
            attempt: 1,
            plan: plan_value,
            problems: Vec::new(),
            at: at(4_200),
        },
        Event::QuestionAsked {
            id: "plan-review".into(),
            step: Some(StepKey::new("plan")),
            header: Some("Review the plan (6 tasks)".into()),
            ask: format!(
                "{edit_text}\n\nAccept it, regenerate it, or answer with the edited plan (the text above, changed)."
            ),
            options: vec![
                ChoiceRecord {
                    value: "accept".into(),
                    label: "Accept and run".into(),
                },
                ChoiceRecord {
                    value: "regenerate".into(),
                    label: "Regenerate".into(),
                },
            ],
            default: None,
            timeout_ms: None,
            from_agent: false,
            at: at(4_300),
        },
    ]
}

/// The swarm's plan waiting for review.
pub fn swarm_review_events() -> Vec<Recorded> {
    recorded(review_events())
}

/// The swarm mid-way: `design` ran on slot 0, which now runs `api`; slot 2
/// runs `tests`; `docs` failed on slot 3, whose breaker opened, and its
/// retry went to slot 1 (stolen from slot 3's queue) after slot 1 finished
/// `ui`.
pub fn swarm_events() -> Vec<Recorded> {
    let mut events = review_events();
    events.extend([
        Event::QuestionAnswered {
            id: "plan-review".into(),
            answer: "accept".into(),
            source: crate::protocol::AnswerSource::User,
            at: at(9_000),
        },
        Event::PlanAccepted {
            objective: "Add login".into(),
            plan: swarm_plan(),
            edited: false,
            at: at(9_100),
        },
        assigned("design", "architect", 0, None, 9_200),
        started("design", 1, "agent", Some("architect"), 9_200),
        replied(
            "design",
            "Sessions in a table, a signed cookie holds the id.",
            usage(1_500, 400, 0.0110),
            15_000,
        ),
        succeeded("design", usage(1_500, 400, 0.0110), 15_100),
        assigned("api", "coder", 0, None, 15_200),
        started("api", 1, "agent", Some("coder"), 15_200),
        assigned("ui", "coder", 1, None, 15_210),
        started("ui", 1, "agent", Some("coder"), 15_210),
        assigned("tests", "tdd", 2, None, 15_220),
        started("tests", 1, "agent", Some("tdd"), 15_220),
        assigned("docs", "docs-writer", 3, None, 15_230),
        started("docs", 1, "agent", Some("docs-writer"), 15_230),
        Event::StepFailed {
            step: StepKey::new("docs"),
            attempt: Attempt(1),
            error: "provider: 503 overloaded".into(),
            retry_in_ms: Some(3_000),
            usage: usage(300, 0, 0.0010),
            at: at(18_000),
        },
        Event::SlotBreaker {
            slot: 3,
            state: "open".into(),
            until: Some(at(78_000)),
            reason: "1 consecutive failure(s); 1 queued task(s) moved to other slots".into(),
            at: at(18_050),
        },
        replied(
            "ui",
            "The form posts email and password to /login.",
            usage(1_100, 350, 0.0080),
            21_000,
        ),
        succeeded("ui", usage(1_100, 350, 0.0080), 21_100),
        assigned("docs", "docs-writer", 1, Some(3), 21_200),
        started("docs", 2, "agent", Some("docs-writer"), 21_200),
    ]);
    recorded(events)
}

/// Tokens streaming into the three running tasks.
pub fn swarm_deltas() -> Vec<Notice> {
    let run = swarm_run_id();
    let tok = |step: &str, text: &str| {
        Notice::Delta(
            run.clone(),
            Delta::Token {
                step: StepKey::new(step),
                text: text.to_string(),
            },
        )
    };
    vec![
        tok(
            "api",
            "Adding the handlers.\n+async fn login(Json(form): Json<Login>) -> Response {\n",
        ),
        tok(
            "tests",
            "Writing failing tests first:\n1. expired session → 401\n",
        ),
        tok("docs", "## Logging in\nPOST /login with"),
    ]
}

/// A state folded from `events` and then `deltas`, ticked to `now` (ms
/// after the sample's start) past every prompt's grace period.
fn folded(events: Vec<Recorded>, deltas: Vec<Notice>, now: u64) -> State {
    let mut s = State::new();
    for r in events {
        s.apply(&Notice::Event(r));
    }
    for d in deltas {
        s.apply(&d);
    }
    s.handle(super::Input::Resize(120, 36));
    s.handle(super::Input::Tick(Millis(at(now).0)));
    s.handle(super::Input::Tick(Millis(at(now).0 + super::GRACE_MS)));
    s
}

/// The swarm's plan on screen for review, past the grace period.
pub fn swarm_review_state() -> State {
    folded(swarm_review_events(), Vec::new(), 6_000)
}

/// The swarm mid-way with tokens streaming (no prompt waits).
pub fn swarm_state() -> State {
    folded(swarm_events(), swarm_deltas(), 30_000)
}
