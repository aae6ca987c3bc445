//! A recorded sample run (fixed times) and synthetic states, public so that
//! fold tests, view snapshots and the TUI benchmark build the same screens.

use std::collections::BTreeMap;

use crate::journal::RunMeta;
use crate::protocol::{
    AnswerSource, Attempt, ChoiceRecord, Delta, Event, Millis, Notice, Recorded, RunId, RunStatus,
    Seq, StepKey, StepOutline, ToolCallRecord, Usage,
};

use super::State;

/// Time of the sample run's first event (2025-11-24 16:00 UTC).
pub const T0: u64 = 1_764_000_000_000;

pub fn sample_run_id() -> RunId {
    RunId("01KAV0SAMPLE0RUN0000000000".to_string())
}

pub(super) fn at(ms: u64) -> Millis {
    Millis(T0 + ms)
}

pub(super) fn started(step: &str, attempt: u32, kind: &str, mode: Option<&str>, ms: u64) -> Event {
    Event::StepStarted {
        step: StepKey::new(step),
        attempt: Attempt(attempt),
        fingerprint: format!("fp-{step}-{attempt}"),
        kind: kind.to_string(),
        mode: mode.map(str::to_string),
        idempotent: true,
        hints: Vec::new(),
        at: at(ms),
    }
}

fn with_hints(mut e: Event, given: &[&str]) -> Event {
    if let Event::StepStarted { hints, .. } = &mut e {
        *hints = given.iter().map(|h| h.to_string()).collect();
    }
    e
}

/// The sample workflow's declared steps: the five that run, then `docs`
/// and `release`, which have not started yet.
fn sample_outline() -> Vec<StepOutline> {
    let step = |id: &str, kind: &str, needs: &[&str], mode: Option<&str>| StepOutline {
        id: id.into(),
        kind: kind.into(),
        needs: needs.iter().map(|n| n.to_string()).collect(),
        mode: mode.map(str::to_string),
    };
    vec![
        step("architect", "agent", &[], Some("architect")),
        step("coder", "agent", &["architect"], Some("coder")),
        step("tester", "agent", &["architect"], Some("tdd")),
        step("security", "agent", &["architect"], Some("security-review")),
        step("checks", "shell", &["coder"], None),
        step(
            "docs",
            "agent",
            &["coder", "tester", "security"],
            Some("docs-writer"),
        ),
        step("release", "approval", &["docs", "checks"], None),
    ]
}

pub(super) fn usage(input: u64, output: u64, cost: f64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cost_usd: cost,
        estimated: 0,
    }
}

/// The recorded events of a run caught mid-way: an up-front question
/// (answered), an architect that finished, four parallel steps (one shell
/// step failed once and retries), an approval and a question pending.
pub fn sample_events() -> Vec<Recorded> {
    let events = vec![
        Event::RunStarted {
            workflow_id: "implement-auth".into(),
            name: "Implement auth system".into(),
            source: "workflows/implement-auth.yaml".into(),
            definition_hash: "b3-sample".into(),
            inputs: BTreeMap::new(),
            seed: 7,
            workspace: None,
            steps: sample_outline(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: at(0),
        },
        Event::QuestionAsked {
            id: "token_store".into(),
            step: None,
            header: Some("Token store".into()),
            ask: "Where should refresh tokens be stored?".into(),
            options: vec![
                ChoiceRecord {
                    value: "db".into(),
                    label: "Server-side session table".into(),
                },
                ChoiceRecord {
                    value: "cookie".into(),
                    label: "httpOnly cookie (Recommended)".into(),
                },
            ],
            default: Some("cookie".into()),
            timeout_ms: None,
            from_agent: false,
            at: at(100),
        },
        Event::QuestionAnswered {
            id: "token_store".into(),
            answer: "cookie".into(),
            source: AnswerSource::User,
            at: at(4_000),
        },
        started("architect", 1, "agent", Some("architect"), 4_100),
        Event::LlmReplied {
            step: StepKey::new("architect"),
            attempt: Attempt(1),
            turn: 1,
            fingerprint: "req-1".into(),
            text: "Plan: JWT access tokens, refresh tokens in an httpOnly cookie.\n```rust\npub fn login(email: &str, password: &str) -> Result<Tokens>\n```\nFiles: src/auth.rs, tests/auth.rs".into(),
            tool_calls: vec![],
            usage: usage(1_800, 420, 0.0123),
            model: "gpt-test".into(),
            stop_reason: None,
            refusal: None,
            at: at(19_000),
        },
        Event::StepSucceeded {
            step: StepKey::new("architect"),
            attempt: Attempt(1),
            outputs: BTreeMap::new(),
            usage: usage(1_800, 420, 0.0123),
            at: at(19_500),
        },
        started("coder", 1, "agent", Some("coder"), 20_000),
        started("tester", 1, "agent", Some("tdd"), 20_050),
        with_hints(
            started("security", 1, "agent", Some("security-review"), 20_100),
            &[
                "Check /refresh for CSRF",
                "Flag secrets written to logs",
            ],
        ),
        started("checks", 1, "shell", None, 20_150),
        Event::LlmReplied {
            step: StepKey::new("coder"),
            attempt: Attempt(1),
            turn: 1,
            fingerprint: "req-2".into(),
            text: "Creating the auth module.\n+pub struct Tokens { access: String, refresh: String }\n-// TODO auth".into(),
            tool_calls: vec![ToolCallRecord {
                id: "call-1".into(),
                name: "write_file".into(),
                arguments: r#"{"path":"src/auth.rs"}"#.into(),
            }],
            usage: usage(2_400, 610, 0.0205),
            model: "gpt-test".into(),
            stop_reason: None,
            refusal: None,
            at: at(27_000),
        },
        Event::ToolFinished {
            step: StepKey::new("coder"),
            attempt: Attempt(1),
            turn: 1,
            position: 1,
            call_id: "call-1".into(),
            name: "write_file".into(),
            arguments: r#"{"path":"src/auth.rs"}"#.into(),
            output: "wrote 120 lines to src/auth.rs".into(),
            is_error: false,
            at: at(27_400),
        },
        Event::ShellFinished {
            step: StepKey::new("checks"),
            attempt: Attempt(1),
            exit_code: Some(101),
            timed_out: false,
            stdout_tail: "running 12 tests\ntest auth::login ... FAILED".into(),
            stderr_tail: "error: 1 test failed".into(),
            stdout_blob: None,
            stderr_blob: None,
            duration_ms: 4_200,
            at: at(24_400),
        },
        Event::StepFailed {
            step: StepKey::new("checks"),
            attempt: Attempt(1),
            error: "exit 101".into(),
            retry_in_ms: Some(5_000),
            usage: Usage::default(),
            at: at(24_500),
        },
        started("checks", 2, "shell", None, 29_500),
        Event::ApprovalRequested {
            step: StepKey::new("coder"),
            message: "run `cargo test --all` in the coder worktree".into(),
            timeout_ms: Some(600_000),
            at: at(28_000),
        },
        Event::QuestionAsked {
            id: "framework".into(),
            step: Some(StepKey::new("tester")),
            header: Some("Test style".into()),
            ask: "Property tests or example tests for token expiry?".into(),
            options: vec![
                ChoiceRecord {
                    value: "examples".into(),
                    label: "Example-based tests".into(),
                },
                ChoiceRecord {
                    value: "proptest".into(),
                    label: "Property tests (Recommended)".into(),
                },
            ],
            default: None,
            timeout_ms: None,
            from_agent: false,
            at: at(30_000),
        },
    ];
    let run = sample_run_id();
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

/// Live deltas after the recorded events: tokens streaming into two agents
/// and shell output of the retried check.
pub fn sample_deltas() -> Vec<Notice> {
    let run = sample_run_id();
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
            "security",
            "Threat model:\n1. Refresh token theft via XSS — mitigated by httpOnly.\n2. CSRF on /refresh — ",
        ),
        tok("security", "needs SameSite=strict"),
        tok(
            "tester",
            "Writing failing tests first.\n```rust\n#[test]\nfn expired_token_is_rejected() {",
        ),
        Notice::Delta(
            run.clone(),
            Delta::ShellOutput {
                step: StepKey::new("checks"),
                stderr: false,
                text: "running 12 tests\ntest auth::login ... ok\n".into(),
            },
        ),
    ]
}

/// The sample run folded live (events then deltas).
pub fn sample_state() -> State {
    let mut s = State::new();
    for r in sample_events() {
        s.apply(&Notice::Event(r));
    }
    for d in sample_deltas() {
        s.apply(&d);
    }
    s
}

/// Runs for the browser: newest first after `set_runs`.
pub fn sample_runs() -> Vec<RunMeta> {
    let meta = |id: &str, name: &str, status: RunStatus, created: u64| RunMeta {
        id: RunId(id.to_string()),
        workflow_id: "implement-auth".into(),
        name: name.to_string(),
        source: "workflows/implement-auth.yaml".into(),
        definition_blob: "b3".into(),
        status,
        created_ms: T0 + created,
        updated_ms: T0 + created + 60_000,
        last_seq: 40,
        parent: None,
        step_run: false,
    };
    vec![
        meta(
            "01KAV0A0000000000000000001",
            "Implement auth system",
            RunStatus::Succeeded,
            0,
        ),
        meta(
            "01KAV0A0000000000000000002",
            "Security review",
            RunStatus::Failed,
            3_600_000,
        ),
        meta(
            "01KAV0A0000000000000000003",
            "Implement auth system",
            RunStatus::Paused,
            7_200_000,
        ),
        meta(
            "01KAV0A0000000000000000004",
            "Demo",
            RunStatus::Running,
            9_000_000,
        ),
    ]
}

/// A state with `panes` running agent panes of `lines` lines each (benchmarks).
pub fn bench_state(panes: usize, lines: usize) -> State {
    let mut s = State::new();
    let run = sample_run_id();
    let mut seq = 0u64;
    let mut push = |s: &mut State, event: Event| {
        seq += 1;
        s.apply(&Notice::Event(Recorded {
            run: run.clone(),
            seq: Seq(seq),
            event,
        }));
    };
    push(
        &mut s,
        Event::RunStarted {
            workflow_id: "bench".into(),
            name: "bench".into(),
            source: "bench.yaml".into(),
            definition_hash: "b3".into(),
            inputs: BTreeMap::new(),
            seed: 1,
            workspace: None,
            steps: Vec::new(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: at(0),
        },
    );
    for p in 0..panes {
        push(
            &mut s,
            started(&format!("agent-{p}"), 1, "agent", Some("coder"), 10),
        );
    }
    for p in 0..panes {
        let mut text = String::new();
        for l in 0..lines {
            text.push_str(&format!(
                "agent {p} line {l}: some streamed words of output\n"
            ));
        }
        s.apply(&Notice::Delta(
            run.clone(),
            Delta::Token {
                step: StepKey::new(format!("agent-{p}")),
                text,
            },
        ));
    }
    s
}
