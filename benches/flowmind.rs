//! FlowMind's overhead per agent turn with the deterministic rules only:
//! the controller folds every event of a run, so what it costs per turn is
//! folding a turn's events (its context, its reply, its tool's start and
//! end). 64 agents × 200 turns, each agent reading a few files in turn and
//! now and then the same file again and again (so the rules fire). The
//! baseline, same run: passing the same events through a channel, what
//! every participant pays to receive them.
//!
//! `cargo bench --bench flowmind`.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use lev::intelligence::flowmind::ledger::Ledgers;
use lev::intelligence::flowmind::rules::{Rules, Thresholds};
use lev::protocol::{Attempt, Event, Millis, StepKey, ToolCallRecord, Usage};

const AGENTS: usize = 64;
const TURNS: usize = 200;
const RUNS: usize = 30;

fn turn_events(agent: usize, turn: usize) -> Vec<Event> {
    let step = StepKey::new(format!("agent{agent}"));
    // Mostly different files; every 50th turn starts a run of 4 reads of
    // the same one.
    let file = if turn % 50 < 4 { 0 } else { turn % 7 };
    let arguments = format!("{{\"path\":\"src/module_{file}.rs\"}}");
    vec![
        Event::LlmReplied {
            step: step.clone(),
            attempt: Attempt(1),
            turn: turn as u32,
            fingerprint: "f".into(),
            text: "Reading the module to see how it handles errors.".into(),
            tool_calls: vec![ToolCallRecord {
                id: format!("call_{turn}"),
                name: "read_file".into(),
                arguments: arguments.clone(),
            }],
            usage: Usage::default(),
            model: "m".into(),
            stop_reason: Some("tool_calls".into()),
            refusal: None,
            at: Millis(0),
        },
        Event::ToolFinished {
            step,
            attempt: Attempt(1),
            turn: turn as u32,
            position: 1,
            call_id: format!("call_{turn}"),
            name: "read_file".into(),
            arguments,
            output: "fn handle() -> Result<(), Error> { todo() }\n".repeat(40),
            is_error: false,
            at: Millis(0),
        },
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let started = (0..AGENTS).map(|a| Event::StepStarted {
        step: StepKey::new(format!("agent{a}")),
        attempt: Attempt(1),
        fingerprint: "f".into(),
        kind: "agent".into(),
        mode: Some("coder".into()),
        idempotent: true,
        hints: Vec::new(),
        at: Millis(0),
    });
    let events: Vec<Event> = started
        .chain((0..TURNS).flat_map(|t| (0..AGENTS).flat_map(move |a| turn_events(a, t))))
        .collect();
    let turns = (AGENTS * TURNS) as f64;
    let baseline = median(
        (0..RUNS)
            .map(|_| {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let t = Instant::now();
                for e in &events {
                    let _ = tx.send(e.clone());
                }
                while let Ok(e) = rx.try_recv() {
                    std::hint::black_box(e);
                }
                t.elapsed()
            })
            .collect(),
    );
    let mut decisions = 0;
    let rules_t = median(
        (0..RUNS)
            .map(|_| {
                let mut rules = Rules::new(Thresholds::default());
                decisions = 0;
                let t = Instant::now();
                for e in &events {
                    if let Some(d) = rules.fold(e) {
                        decisions += 1;
                        std::hint::black_box(d);
                    }
                }
                t.elapsed()
            })
            .collect(),
    );
    // With a model (`mode: model`): the ledger side of the fold, and how
    // many ledgers come due at the default cadence.
    let cadence = lev::config::FlowmindSettings::default().cadence;
    let mut due = 0;
    let ledger_t = median(
        (0..RUNS)
            .map(|_| {
                let mut ledgers = Ledgers::default();
                due = 0;
                let t = Instant::now();
                for e in &events {
                    if let Some(d) = ledgers.fold(e, cadence) {
                        due += 1;
                        std::hint::black_box(d);
                    }
                }
                t.elapsed()
            })
            .collect(),
    );
    let per_turn = |d: Duration| d.as_secs_f64() * 1e6 / turns;
    println!(
        "FlowMind rules: {AGENTS} agents × {TURNS} turns ({} events), median of {RUNS}",
        events.len()
    );
    println!(
        "  baseline (the events through a channel): {:>8.3} µs per agent turn",
        per_turn(baseline)
    );
    println!(
        "  rules fold:                              {:>8.3} µs per agent turn  {:.2}× baseline  ({decisions} decisions)",
        per_turn(rules_t),
        rules_t.as_secs_f64() / baseline.as_secs_f64().max(1e-12)
    );
    println!(
        "  ledger fold (mode: model):               {:>8.3} µs per agent turn  {:.2}× baseline",
        per_turn(ledger_t),
        ledger_t.as_secs_f64() / baseline.as_secs_f64().max(1e-12)
    );
    println!(
        "  model calls per 100 agent turns at the default cadence ({cadence}): {:.1} ledgers (a reply that is not one is asked again once: at most twice that); the fallback asks none",
        due as f64 * 100.0 / turns
    );
}
