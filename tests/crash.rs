//! Crash test: a real `lev` child process runs a workflow with parallel agent
//! and shell steps against the loopback LLM server; the test SIGKILLs it at
//! seeded random moments and resumes it until it finishes, then checks the
//! durability promises:
//! - the final outputs equal those of an uninterrupted run;
//! - no LLM request whose reply was journaled is ever sent again;
//! - each shell step's side effect (a ledger line) happened once;
//! - a non-idempotent step in flight at the kill paused the run instead of
//!   re-running;
//! - `lev replay` prints the live transcript (exactly, for the uninterrupted
//!   run; as an in-order superset of what the killed processes printed).

#![allow(clippy::print_stderr)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use support::kill::{
    finish, is_durable_part, journaled_replies, only_run, request_key, whole_lines,
};
use support::lev::{Lev, repo_file, run_id_from};
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest, Reply};

fn slow(sse: OpenAiSse) -> Reply {
    // Pauses inside the stream widen the window in which a kill lands mid-request.
    sse.action(Action::Delay(25))
        .usage(40, 10)
        .finish("stop")
        .reply()
}

fn responder(req: &RecordedRequest) -> Reply {
    let Some((step, turn)) = request_key(req) else {
        return Reply::json(
            400,
            &serde_json::json!({"error": {"message": "no step marker", "type": "test"}}),
        );
    };
    let m = "test-model";
    match (step.as_str(), turn) {
        ("plan", 1) => slow(OpenAiSse::new(m).text("Looking around.", 2).tool_call(
            0,
            "call_1",
            "list_dir",
            r#"{"path":"."}"#,
            3,
        )),
        ("plan", _) => slow(
            OpenAiSse::new(m)
                .action(Action::Delay(20))
                .text(r#"{"plan":"build the widget"}"#, 4),
        ),
        ("left", 1) => slow(OpenAiSse::new(m).tool_call(
            0,
            "call_1",
            "write_file",
            r#"{"path":"left.txt","content":"left side\n"}"#,
            4,
        )),
        ("left", _) => slow(OpenAiSse::new(m).text("left done", 3)),
        ("right", 1) => {
            slow(OpenAiSse::new(m).tool_call(0, "call_1", "read_file", r#"{"path":"left.txt"}"#, 2))
        }
        ("right", _) => slow(OpenAiSse::new(m).text("right done", 3)),
        ("review", _) => slow(OpenAiSse::new(m).text("approved: both sides agree", 5)),
        _ => Reply::json(
            400,
            &serde_json::json!({"error": {"message": "unknown step", "type": "test"}}),
        ),
    }
}

fn ledger(lev: &Lev) -> Vec<String> {
    std::fs::read_to_string(lev.workspace().join("ledger.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn run_args(lev: &Lev) -> Vec<String> {
    vec![
        "run".into(),
        repo_file("tests/fixtures/crash.yaml").display().to_string(),
        "--headless".into(),
        "--workspace".into(),
        lev.workspace().display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn baseline(server: &LlmServer) -> (Value, Duration) {
    let lev = Lev::new().with_openai(&server.base_url());
    let t0 = Instant::now();
    let p = finish(lev.spawn(&strs(&run_args(&lev))), None);
    let took = t0.elapsed();
    assert_eq!(p.code, Some(0), "baseline run failed:\n{}", p.stdout);
    let run = run_id_from(&p.stdout).unwrap();
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    // Uninterrupted: replay is the live transcript, line for line.
    assert_eq!(lev.replay(&run), p.stdout);
    assert_eq!(ledger(&lev).len(), 2, "{:?}", ledger(&lev));
    (show["outputs"].clone(), took)
}

fn crash_iterations(iterations: u64, seed: u64) {
    let server = LlmServer::with(responder);
    let (expected, took) = baseline(&server);
    let window_ms = (took.as_millis() as u64).max(200) * 11 / 10;
    let mut pauses_seen = 0;
    for i in 0..iterations {
        let seed = seed + i;
        let mut rng = StdRng::seed_from_u64(seed);
        let lev = Lev::new().with_openai(&server.base_url());
        let mut live_lines: Vec<String> = Vec::new();
        let mut run: Option<String> = None;
        let mut finished = false;
        for cycle in 0..16 {
            // Later cycles let the process finish, so every iteration ends.
            let kill_after = (cycle < 6 && rng.random_bool(0.8))
                .then(|| Duration::from_millis(rng.random_range(0..window_ms)));
            let completed = match &run {
                Some(r) => journaled_replies(&lev.events(r)),
                None => BTreeSet::new(),
            };
            let requests_before = server.request_count();
            let ledger_before = ledger(&lev);
            let mut args = match &run {
                None => run_args(&lev),
                Some(r) => vec![
                    "resume".into(),
                    r.clone(),
                    "--headless".into(),
                    "--workspace".into(),
                    lev.workspace().display().to_string(),
                ],
            };
            if let Some(r) = &run
                && lev.show(r)["status"] == "paused"
            {
                // A non-idempotent step was in flight: decide as a careful user
                // would, from whether its effect happened.
                pauses_seen += 1;
                let events = lev.events(r);
                // A re-run keeps the interrupted attempt's key, so the key is
                // the first attempt's (the only way to another is a re-run).
                let started = events
                    .iter()
                    .find(|e| e["type"] == "step_started" && e["step"] == "ledger_once")
                    .expect("the paused step is ledger_once");
                let key = format!(
                    "once {r}:{}:{}",
                    seq_of(&events, started),
                    started["attempt"]
                );
                let done = ledger_before.contains(&key);
                args.push("--in-flight".into());
                args.push(if done { "done" } else { "rerun" }.into());
            }
            let p = finish(lev.spawn(&strs(&args)), kill_after);
            live_lines.extend(whole_lines(&p.stdout));
            if run.is_none() {
                run = only_run(&lev);
            }
            // Nothing journaled before this process was asked again.
            for req in server.requests().iter().skip(requests_before) {
                if let Some(key) = request_key(req) {
                    assert!(
                        !completed.contains(&key),
                        "seed {seed}: reply {key:?} was journaled but requested again"
                    );
                }
            }
            match p.code {
                Some(0) => {
                    finished = true;
                    break;
                }
                Some(3) => {
                    // Paused: the in-flight step must not have run again.
                    assert_eq!(
                        ledger(&lev),
                        ledger_before,
                        "seed {seed}: a paused step ran again"
                    );
                }
                _ => {}
            }
        }
        assert!(
            finished,
            "seed {seed}: the run did not finish after 16 processes"
        );
        let run = run.unwrap();
        let show = lev.show(&run);
        assert_eq!(show["status"], "succeeded", "seed {seed}");
        assert_eq!(
            show["outputs"], expected,
            "seed {seed}: outputs differ from an uninterrupted run"
        );
        let lines = ledger(&lev);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("idem ")).count(),
            1,
            "seed {seed}: {lines:?}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("once ")).count(),
            1,
            "seed {seed}: {lines:?}"
        );
        let replay: Vec<String> = lev.replay(&run).lines().map(str::to_string).collect();
        assert!(
            is_durable_part(&live_lines, &replay),
            "seed {seed}: live lines are not an in-order part of the replay\nlive:\n{}\nreplay:\n{}",
            live_lines.join("\n"),
            replay.join("\n")
        );
    }
    eprintln!(
        "{iterations} crash iterations, {pauses_seen} paused on an in-flight non-idempotent step"
    );
}

/// Seq of an exported event.
fn seq_of(_events: &[Value], event: &Value) -> u64 {
    event["_seq"].as_u64().unwrap()
}

fn seed() -> u64 {
    std::env::var("LEV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1e5)
}

#[test]
fn kill9_at_random_moments_then_resume() {
    crash_iterations(20, seed());
}

#[test]
#[ignore = "long: 500 iterations"]
fn kill9_five_hundred_times() {
    crash_iterations(500, seed());
}
