//! The kill torture: a real `lev` runs `tests/fixtures/torture.yaml`
//! (parallel agents with tool calls whose ids are reused every turn, reused
//! within one reply, or unique; agents running shell commands; idempotent
//! and non-idempotent shell steps) against the loopback LLM server and is
//! SIGKILLed at seeded random moments, then resumed, until it finishes.
//! After every kill:
//! - no command of the run is left running (they die with lev);
//! - `lev runs`, `show`, `replay`, `export` (JSONL and Markdown) work;
//! - no LLM reply that was journaled is asked for again.
//!
//! At the end of each run: it succeeded, its outputs equal an uninterrupted
//! run's, and each shell side effect happened once.
//!
//! `scripts/torture N` runs it with N kills and prints the figures; the
//! suite runs a few.

#![allow(clippy::print_stderr)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use support::kill::{
    commands_in, finish, journaled_replies, only_run, request_key, wait_no_commands,
};
use support::lev::{Lev, repo_file, run_id_from};
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest, Reply};

/// The TOKEN:s the request's tool results carry, in order: what the agent
/// was told its calls returned.
fn tokens_seen(req: &RecordedRequest) -> String {
    let messages = req.json.as_ref().unwrap()["messages"].as_array().unwrap();
    let mut tokens = Vec::new();
    for m in messages.iter().filter(|m| m["role"] == "tool") {
        let content = m["content"].as_str().unwrap_or("");
        for (i, _) in content.match_indices("TOKEN:") {
            let rest = &content[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
                .unwrap_or(rest.len());
            tokens.push(rest[..end].to_string());
        }
    }
    format!("saw {}", tokens.join(" "))
}

fn slow(sse: OpenAiSse) -> Reply {
    // Pauses inside the stream widen the window in which a kill lands mid-request.
    sse.action(Action::Delay(15))
        .usage(40, 10)
        .finish("stop")
        .reply()
}

fn call(sse: OpenAiSse, index: u32, id: &str, name: &str, args: &str) -> OpenAiSse {
    sse.tool_call(index, id, name, args, 2)
}

fn responder(req: &RecordedRequest) -> Reply {
    let Some((step, turn)) = request_key(req) else {
        return Reply::json(
            400,
            &serde_json::json!({"error": {"message": "no step marker", "type": "test"}}),
        );
    };
    let m = OpenAiSse::new("test-model");
    match (step.as_str(), turn) {
        ("plan", 1) => slow(call(m, 0, "call_1", "list_dir", r#"{"path":"."}"#)),
        ("plan", _) => slow(m.text(r#"{"plan":"build the widget"}"#, 3)),
        // `call_1` in every turn.
        ("reused", 1) => slow(call(
            m,
            0,
            "call_1",
            "write_file",
            r#"{"path":"r.txt","content":"TOKEN:r-file\n"}"#,
        )),
        ("reused", 2) => slow(call(
            m,
            0,
            "call_1",
            "run_shell",
            r#"{"command":"sleep 0.2; echo TOKEN:r-shell"}"#,
        )),
        ("reused", 3) => slow(call(m, 0, "call_1", "read_file", r#"{"path":"r.txt"}"#)),
        // `call_0` twice in one reply, then again in the next.
        ("same_turn", 1) => slow(call(
            call(m, 0, "call_0", "read_file", r#"{"path":"a.txt"}"#),
            1,
            "call_0",
            "read_file",
            r#"{"path":"b.txt"}"#,
        )),
        ("same_turn", 2) => slow(call(
            call(
                m,
                0,
                "call_0",
                "run_shell",
                r#"{"command":"sleep 0.1; echo TOKEN:s-shell"}"#,
            ),
            1,
            "call_1",
            "read_file",
            r#"{"path":"a.txt"}"#,
        )),
        // Ids no other call has.
        ("unique", 1) => slow(call(
            m,
            0,
            "u-1",
            "run_shell",
            r#"{"command":"sleep 0.1; echo TOKEN:u-shell"}"#,
        )),
        ("unique", 2) => slow(call(m, 0, "u-2", "read_file", r#"{"path":"b.txt"}"#)),
        ("reused", _) | ("same_turn", _) | ("unique", _) => slow(m.text(&tokens_seen(req), 3)),
        ("review", _) => slow(m.text("approved: all parts agree", 4)),
        _ => Reply::json(
            400,
            &serde_json::json!({"error": {"message": "unknown step", "type": "test"}}),
        ),
    }
}

fn sandbox(server: &LlmServer) -> Lev {
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("a.txt"), "TOKEN:a\n").unwrap();
    std::fs::write(lev.workspace().join("b.txt"), "TOKEN:b\n").unwrap();
    lev
}

fn run_args(lev: &Lev) -> Vec<String> {
    vec![
        "run".into(),
        repo_file("tests/fixtures/torture.yaml")
            .display()
            .to_string(),
        "--headless".into(),
        "--allow-shell".into(),
        "--workspace".into(),
        lev.workspace().display().to_string(),
    ]
}

fn resume_args(lev: &Lev, run: &str) -> Vec<String> {
    vec![
        "resume".into(),
        run.into(),
        "--headless".into(),
        "--allow-shell".into(),
        "--workspace".into(),
        lev.workspace().display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn ledger(lev: &Lev) -> Vec<String> {
    std::fs::read_to_string(lev.workspace().join("ledger.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every reading command works on the journal as the kill left it.
fn readers_work(lev: &Lev, run: &str, context: &str) {
    for args in [
        vec!["runs"],
        vec!["show", run],
        vec!["show", run, "--json"],
        vec!["replay", run, "--headless"],
        vec!["export", run],
        vec!["export", run, "--format", "md"],
    ] {
        let out = lev.run(&args);
        assert!(
            out.status.success(),
            "{context}: `lev {}` failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The in-flight decision a careful user makes for a paused run: the
/// non-idempotent shell step is done when its ledger line is there; an
/// agent's interrupted command (these are safe to repeat) is re-run.
fn decision(lev: &Lev, run: &str) -> &'static str {
    let events = lev.events(run);
    let Some(first) = events
        .iter()
        .find(|e| e["type"] == "step_started" && e["step"] == "ledger_once")
    else {
        return "rerun";
    };
    // A re-run keeps the interrupted attempt's key: the first attempt's.
    let key = format!("once {run}:{}:{}", first["_seq"], first["attempt"]);
    if ledger(lev).contains(&key) {
        "done"
    } else {
        "rerun"
    }
}

#[derive(Default)]
struct Figures {
    runs: u64,
    kills: u64,
    pauses: u64,
    processes: u64,
    /// How long the commands of a killed lev took to end, at most and in all.
    orphan_wait_max: Duration,
    orphan_wait_total: Duration,
    kills_with_commands: u64,
}

fn baseline(server: &LlmServer) -> (Value, Duration) {
    let lev = sandbox(server);
    let t0 = Instant::now();
    let p = finish(lev.spawn(&strs(&run_args(&lev))), None);
    let took = t0.elapsed();
    assert_eq!(p.code, Some(0), "baseline run failed:\n{}", p.stdout);
    let run = run_id_from(&p.stdout).unwrap();
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    let outputs = show["outputs"].clone();
    assert_eq!(outputs["reused"], "saw TOKEN:r-shell TOKEN:r-file");
    assert_eq!(
        outputs["same_turn"],
        "saw TOKEN:a TOKEN:b TOKEN:s-shell TOKEN:a"
    );
    assert_eq!(outputs["unique"], "saw TOKEN:u-shell TOKEN:b");
    (outputs, took)
}

fn torture(kills: u64, seed: u64) -> Figures {
    let server = LlmServer::with(responder);
    let (expected, took) = baseline(&server);
    let window_ms = (took.as_millis() as u64).max(200) * 11 / 10;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fig = Figures::default();
    while fig.kills < kills {
        fig.runs += 1;
        let lev = sandbox(&server);
        let mut run: Option<String> = None;
        let mut finished = false;
        for cycle in 0..24 {
            // Later cycles let the process finish, so every run ends.
            let kill_after = (cycle < 8 && fig.kills < kills && rng.random_bool(0.85))
                .then(|| Duration::from_millis(rng.random_range(0..window_ms)));
            let completed = match &run {
                Some(r) => journaled_replies(&lev.events(r)),
                None => BTreeSet::new(),
            };
            let requests_before = server.request_count();
            let mut args = match &run {
                None => run_args(&lev),
                Some(r) => resume_args(&lev, r),
            };
            if let Some(r) = &run
                && lev.show(r)["status"] == "paused"
            {
                fig.pauses += 1;
                args.push("--in-flight".into());
                args.push(decision(&lev, r).into());
            }
            let mut child = lev.spawn(&strs(&args));
            // Killed here rather than by `finish`, to see what ran at the kill.
            let mut running_at_kill = None;
            if let Some(after) = kill_after {
                let kill_at = Instant::now() + after;
                while Instant::now() < kill_at && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                if child.try_wait().unwrap().is_none() {
                    running_at_kill = Some(commands_in(&lev.workspace()));
                    child.kill().unwrap();
                    child.wait().unwrap();
                }
            }
            let killed_at = Instant::now();
            let p = finish(child, None);
            fig.processes += 1;
            if run.is_none() {
                run = only_run(&lev);
            }
            let context = format!("seed {seed}, run {}, cycle {cycle}", fig.runs);
            if p.code.is_none() {
                fig.kills += 1;
                if running_at_kill
                    .as_ref()
                    .is_some_and(|pids| !pids.is_empty())
                {
                    fig.kills_with_commands += 1;
                }
                let deadline = killed_at + Duration::from_secs(5);
                while !commands_in(&lev.workspace()).is_empty() {
                    assert!(
                        Instant::now() < deadline,
                        "{context}: commands outlived lev: {:?}",
                        commands_in(&lev.workspace())
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                let waited = killed_at.elapsed();
                if running_at_kill.is_some_and(|pids| !pids.is_empty()) {
                    fig.orphan_wait_max = fig.orphan_wait_max.max(waited);
                    fig.orphan_wait_total += waited;
                }
                if let Some(r) = &run {
                    readers_work(&lev, r, &context);
                }
            }
            for req in server.requests().iter().skip(requests_before) {
                if let Some(key) = request_key(req) {
                    assert!(
                        !completed.contains(&key),
                        "{context}: reply {key:?} was journaled but requested again"
                    );
                }
            }
            if p.code == Some(0) {
                finished = true;
                break;
            }
        }
        let context = format!("seed {seed}, run {}", fig.runs);
        assert!(finished, "{context}: the run did not finish");
        let run = run.unwrap();
        let show = lev.show(&run);
        assert_eq!(show["status"], "succeeded", "{context}");
        assert_eq!(
            show["outputs"], expected,
            "{context}: outputs differ from an uninterrupted run"
        );
        let lines = ledger(&lev);
        for kind in ["idem ", "once "] {
            assert_eq!(
                lines.iter().filter(|l| l.starts_with(kind)).count(),
                1,
                "{context}: {lines:?}"
            );
        }
        assert!(wait_no_commands(&run, Duration::from_secs(5)).is_ok());
    }
    fig
}

fn seed() -> u64 {
    std::env::var("LEV_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x70c7)
}

fn report(fig: &Figures, took: Duration) {
    let mean = if fig.kills_with_commands == 0 {
        Duration::ZERO
    } else {
        fig.orphan_wait_total / fig.kills_with_commands as u32
    };
    eprintln!(
        "torture: {} kills over {} runs ({} lev processes, {} in-flight pauses decided) in {:.0?}; \
         every run succeeded with the uninterrupted outputs; {} kills landed while commands ran, \
         which all ended within {:.0?} of the kill at most ({:.0?} mean)",
        fig.kills,
        fig.runs,
        fig.processes,
        fig.pauses,
        took,
        fig.kills_with_commands,
        fig.orphan_wait_max,
        mean
    );
}

#[test]
fn kill_torture_a_few_kills() {
    let t0 = Instant::now();
    let fig = torture(12, seed());
    report(&fig, t0.elapsed());
}

/// `scripts/torture N` runs this with `LEV_TORTURE_KILLS=N`.
#[test]
#[ignore = "long: scripts/torture N"]
fn kill_torture() {
    let kills = std::env::var("LEV_TORTURE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let t0 = Instant::now();
    let fig = torture(kills, seed());
    report(&fig, t0.elapsed());
}
