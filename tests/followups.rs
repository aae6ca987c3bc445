//! Follow-up callback chains: a succeeded step spawns new steps at run
//! time (its `followups:` items, and what its agent proposes with
//! `propose_followup`), each journaled with its parent, depth and chain,
//! each refused by a named guard when a limit says so; the steps that need
//! the parent wait for its follow-ups; a resumed run never spawns twice.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::kill::{kill9, only_run, wait_for};
use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn last_user(req: &RecordedRequest) -> String {
    let msgs = req.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    msgs.iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn text_reply(text: &str) -> support::llm_server::Reply {
    OpenAiSse::new("test-model")
        .text(text, 2)
        .usage(10, 5)
        .finish("stop")
        .reply()
}

/// The security review lists must-fix issues (one twice); each fix says so.
fn review_server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| review_server_reply(&last_user(req)))
}

const REVIEW: &str = r#"
version: 1
kind: workflow
id: review
name: Review
steps:
  security:
    mode: ask
    prompt: "Threat-model the plan. Return JSON {must_fix: [{title, location}]}"
    outputs:
      must_fix: { from: json.must_fix, default: [] }
    followups:
      for_each: ${{ steps.security.outputs.must_fix }}
      spawn: { mode: ask, prompt: "Fix security issue: ${{ item.title }} at ${{ item.location }}" }
      max: 3
  approve:
    needs: [security]
    type: shell
    run: echo approving
"#;

#[test]
fn a_steps_items_spawn_follow_ups_that_run_before_its_dependents() {
    let server = review_server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(REVIEW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);

    let spawned = of_type(&events, "followup_spawned");
    let keys: Vec<&str> = spawned
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    // The third item repeats the first (case and spacing aside): a
    // duplicate; `max: 3` stops the fifth.
    assert_eq!(keys, ["security.1", "security.2", "security.4"], "{stdout}");
    for e in &spawned {
        assert_eq!(e["parent"], "security");
        assert_eq!(e["root"], "security");
        assert_eq!(e["depth"], 1);
        assert_eq!(e["mode"], "ask");
        assert_eq!(e["by"], "workflow");
    }
    assert_eq!(
        spawned[1]["prompt"],
        "Fix security issue: no rate limit at src/login.rs"
    );
    assert_eq!(spawned[1]["title"], "no rate limit");

    let refused = of_type(&events, "followup_refused");
    let why: Vec<(&str, &str)> = refused
        .iter()
        .map(|e| (e["step"].as_str().unwrap(), e["guard"].as_str().unwrap()))
        .collect();
    assert_eq!(
        why,
        [("security.3", "duplicate"), ("security.5", "followups.max")]
    );
    assert_eq!(refused[1]["limit"], "3");
    assert_eq!(refused[1]["observed"], "5 candidates");

    // Each follow-up ran as an agent step with its own prompt…
    let prompts: Vec<String> = server.requests().iter().map(last_user).collect();
    assert!(prompts.contains(&"Fix security issue: weak hash at src/hash.rs".to_string()));
    let succeeded: Vec<String> = of_type(&events, "step_succeeded")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    // …and `approve`, which needs `security`, ran after all of them.
    assert_eq!(
        succeeded.last().map(String::as_str),
        Some("approve"),
        "{succeeded:?}"
    );
    for k in ["security.1", "security.2", "security.4"] {
        assert!(succeeded.iter().any(|s| s == k), "{k} in {succeeded:?}");
    }

    // The transcript, `lev show` and replay say what happened.
    assert!(
        stdout.contains("step security: ↳ follow-up security.2 (ask, depth 1): no rate limit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("follow-up security.5 not spawned: followups.max (3): 5 candidates"),
        "{stdout}"
    );
    let replay = lev.replay(&run);
    assert!(
        replay.contains("follow-up security.3 not spawned: duplicate"),
        "{replay}"
    );
}

/// Every agent proposes one follow-up that goes one level deeper, forever.
fn chaos_server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let body = req.json.as_ref().unwrap();
        let msgs = body["messages"].as_array().unwrap();
        if msgs.last().unwrap()["role"] == "tool" {
            return text_reply("proposed");
        }
        let prompt = last_user(req);
        let level = prompt.matches("deeper").count();
        let args = json!({
            "title": format!("level {}", level + 1),
            "mode": "ask",
            "prompt": format!("{prompt} deeper"),
            "why": "there is always more to do"
        });
        OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "propose_followup", &args.to_string(), 1)
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

const CHAOS: &str = r#"
version: 1
kind: workflow
id: chaos
name: Chaos
followups: { propose: true, auto: true }
limits:
  max_followups: 50
steps:
  chaos:
    mode: ask
    prompt: Go
"#;

#[test]
fn an_agent_that_always_proposes_stops_at_depth_ten() {
    let server = chaos_server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(CHAOS);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let spawned = of_type(&events, "followup_spawned");
    assert_eq!(spawned.len(), 10, "{stdout}");
    let deepest = &spawned[9];
    assert_eq!(deepest["depth"], 10);
    assert_eq!(deepest["root"], "chaos");
    assert_eq!(deepest["by"], "agent");
    assert_eq!(deepest["step"], format!("chaos{}", ".1".repeat(10)));
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["guard"], "max_callback_depth");
    assert_eq!(refused[0]["limit"], "10");
    assert_eq!(refused[0]["observed"], "11");
    assert_eq!(refused[0]["parent"], deepest["step"]);
    // Each spawned agent ran (1 + 10 agents, two requests each).
    assert_eq!(server.request_count(), 22);
}

#[test]
fn proposals_need_the_users_approval_unless_the_workflow_allows_them() {
    let server = chaos_server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&CHAOS.replace("auto: true", "auto: false"));
    // Headless without --yes: nobody approves, nothing is spawned.
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    assert!(of_type(&events, "followup_spawned").is_empty());
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["guard"], "approval");
    // An answer approves the first and refuses the second.
    let out = lev.run_headless(
        &wf,
        &[
            "--answer",
            "chaos.1.approve=yes",
            "--answer",
            "chaos.1.1.approve=no",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let spawned = of_type(&events, "followup_spawned");
    assert_eq!(spawned.len(), 1, "{stdout}");
    assert_eq!(spawned[0]["step"], "chaos.1");
    assert_eq!(spawned[0]["why"], "there is always more to do");
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused[0]["step"], "chaos.1.1");
    assert_eq!(refused[0]["observed"], "refused by the user");
}

/// How many follow-ups a chaos run spawned and the guards that refused.
fn spawned_and_refused(lev: &Lev, wf: &std::path::Path) -> (usize, Vec<String>) {
    let out = lev.run_headless(wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run_id_from(&stdout).unwrap());
    let guards = of_type(&events, "followup_refused")
        .iter()
        .map(|r| r["guard"].as_str().unwrap().to_string())
        .collect();
    (of_type(&events, "followup_spawned").len(), guards)
}

#[test]
fn a_list_of_modes_in_the_workflow_or_the_config_pre_authorises_their_proposals() {
    let server = chaos_server();
    let lev = Lev::new().with_openai(&server.base_url());
    // The chaos agent proposes `ask` follow-ups; two at most per run.
    let chaos = CHAOS.replace("max_followups: 50", "max_followups: 2");
    // Pre-authorised for `ask`: spawned until the run's limit, no question.
    let wf = lev.write_workflow(&chaos.replace("auto: true", "auto: [ask]"));
    assert_eq!(
        spawned_and_refused(&lev, &wf),
        (2, vec!["max_followups".to_string()])
    );
    // For another mode only: the user must approve, and headless nobody does.
    let wf = lev.write_workflow(&chaos.replace("auto: true", "auto: [coder]"));
    assert_eq!(
        spawned_and_refused(&lev, &wf),
        (0, vec!["approval".to_string()])
    );
    // The user's config pre-authorises `ask` where the workflow does not.
    let config = lev.workspace().join("lev.yaml");
    std::fs::write(&config, "followups: { auto: [ask] }\n").unwrap();
    assert_eq!(
        spawned_and_refused(&lev, &wf),
        (2, vec!["max_followups".to_string()])
    );
    // An unknown mode in the workflow is an error at its place.
    let wf = lev.write_workflow(&chaos.replace("auto: true", "auto: [ask, codr]"));
    let out = lev
        .cmd(&["validate", wf.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("wf.yaml:6:") && stderr.contains("unknown mode `codr`"),
        "{stderr}"
    );
}

#[test]
fn a_resumed_run_spawns_no_follow_up_twice() {
    // The follow-ups hang until the test lets them answer.
    let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let open = gate.clone();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let user = last_user(req);
        while user.starts_with("Fix security issue")
            && !open.load(std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        review_server_reply(&user)
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(REVIEW);
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    wait_for("the follow-ups to start", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            of_type(&lev.events(r), "step_started")
                .iter()
                .filter(|e| e["step"].as_str().unwrap().starts_with("security."))
                .count()
                == 3
        })
    });
    kill9(&mut child);
    let run = run.unwrap();
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "followup_spawned").len(), 3);
    assert_eq!(of_type(&events, "followup_refused").len(), 2);
    // The review itself was not asked again.
    let reviews = server
        .requests()
        .iter()
        .filter(|r| last_user(r).contains("Threat-model"))
        .count();
    assert_eq!(reviews, 1);
    let done: Vec<String> = of_type(&events, "step_succeeded")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(done.last().map(String::as_str), Some("approve"), "{done:?}");
}

fn review_server_reply(user: &str) -> support::llm_server::Reply {
    if user.contains("Threat-model") {
        let review = json!({"must_fix": [
            {"title": "tokens logged", "location": "src/log.rs"},
            {"title": "no rate limit", "location": "src/login.rs"},
            {"title": "Tokens  logged", "location": "src/log.rs"},
            {"title": "weak hash", "location": "src/hash.rs"},
            {"title": "open redirect", "location": "src/redirect.rs"}
        ]});
        text_reply(&review.to_string())
    } else if let Some(rest) = user.strip_prefix("Fix security issue: ") {
        text_reply(&format!("fixed {rest}"))
    } else {
        text_reply("ok")
    }
}

/// A chaos agent whose answers after proposing wait for `gate` (only the
/// deeper levels wait: the first agent answers at once).
fn gated_chaos(gate: std::sync::Arc<std::sync::atomic::AtomicBool>) -> LlmServer {
    let chaos = chaos_server();
    let base = chaos.base_url();
    LlmServer::with(move |req: &RecordedRequest| {
        let _keep = &chaos;
        let body = req.json.as_ref().unwrap();
        let msgs = body["messages"].as_array().unwrap();
        let deeper = last_user(req).contains("deeper");
        if msgs.last().unwrap()["role"] == "tool" {
            while deeper && !gate.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return text_reply("proposed");
        }
        let _ = &base;
        let prompt = last_user(req);
        let args = json!({
            "title": format!("level {}", prompt.matches("deeper").count() + 1),
            "mode": "ask",
            "prompt": format!("{prompt} deeper"),
        });
        OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "propose_followup", &args.to_string(), 1)
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

#[test]
fn stop_callbacks_from_another_terminal_lets_the_running_step_finish_and_spawns_nothing_new() {
    let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = gated_chaos(gate.clone());
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(CHAOS);
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    // chaos.1 has proposed (its tool call is journaled) and waits to answer.
    wait_for("chaos.1 to propose", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            of_type(&lev.events(r), "tool_finished")
                .iter()
                .any(|e| e["step"] == "chaos.1")
        })
    });
    let run = run.unwrap();
    let out = lev.run(&["stop-callbacks", &run]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("callbacks stopped in run"), "{said}");
    wait_for("the marker", Duration::from_secs(30), || {
        !of_type(&lev.events(&run), "callbacks_stopped").is_empty()
    });
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let status = child.wait().unwrap();
    assert!(status.success());
    let events = lev.events(&run);
    let stopped = of_type(&events, "callbacks_stopped");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["by"], "user");
    // The running step finished; what it proposed was not spawned.
    assert!(
        of_type(&events, "step_succeeded")
            .iter()
            .any(|e| e["step"] == "chaos.1")
    );
    let spawned: Vec<Value> = of_type(&events, "followup_spawned");
    assert_eq!(spawned.len(), 1, "{spawned:?}");
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["step"], "chaos.1.1");
    assert_eq!(refused[0]["guard"], "callbacks_stopped");
}

#[test]
fn callbacks_stopped_in_a_stopped_run_stay_stopped_when_it_resumes() {
    let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = gated_chaos(gate.clone());
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(CHAOS);
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    wait_for("chaos.1 to propose", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            of_type(&lev.events(r), "tool_finished")
                .iter()
                .any(|e| e["step"] == "chaos.1")
        })
    });
    kill9(&mut child);
    let run = run.unwrap();
    // No process runs it now: the marker goes to the journal.
    let out = lev.run(&["stop-callbacks", &run]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("follow-up chaos.1.1 not spawned: callbacks_stopped"),
        "{stdout}"
    );
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "followup_spawned").len(), 1);
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["guard"], "callbacks_stopped");
}

#[test]
fn a_chain_time_box_counts_from_its_journaled_start_across_a_kill_and_resume() {
    // The follow-up never answers (until the test ends).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let over = done.clone();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let body = req.json.as_ref().unwrap();
        let msgs = body["messages"].as_array().unwrap();
        if last_user(req).contains("Take your time") {
            let until = std::time::Instant::now() + Duration::from_secs(90);
            while !over.load(std::sync::atomic::Ordering::SeqCst)
                && std::time::Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            return text_reply("too late");
        }
        if msgs.last().unwrap()["role"] == "tool" {
            return text_reply("proposed");
        }
        let args = json!({"title": "slow", "mode": "ask", "prompt": "Take your time"});
        OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "propose_followup", &args.to_string(), 1)
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&CHAOS.replace("max_followups: 50", "chain_timebox: 4s"));
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    wait_for("the follow-up to start", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            of_type(&lev.events(r), "step_started")
                .iter()
                .any(|e| e["step"] == "chaos.1")
        })
    });
    let run = run.unwrap();
    // Killed a second or more into the box; resumed at once.
    std::thread::sleep(Duration::from_millis(1200));
    kill9(&mut child);
    let out = lev.run(&["resume", &run, "--headless"]);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run);
    let started = of_type(&events, "followup_spawned")[0]["chain_started"]
        .as_u64()
        .unwrap();
    let resumed = of_type(&events, "run_resumed")[0]["at"].as_u64().unwrap();
    let guard = of_type(&events, "guard_tripped")
        .into_iter()
        .find(|e| e["guard"] == "chain_timebox")
        .unwrap_or_else(|| panic!("no chain_timebox guard: {stdout}"));
    assert_eq!(guard["step"], "chaos.1");
    assert_eq!(guard["limit"], "4s");
    let fired = guard["at"].as_u64().unwrap();
    // Four seconds from the chain's journaled start — not from the resume,
    // which came more than a second later.
    assert!(
        fired + 50 >= started + 4000,
        "fired {} ms after the start",
        fired - started
    );
    assert!(
        fired < resumed + 4000,
        "the box restarted on resume: fired {} ms after it",
        fired - resumed
    );
    assert!(
        of_type(&events, "step_cancelled")
            .iter()
            .any(|e| e["step"] == "chaos.1")
    );
}

#[test]
fn three_failed_follow_ups_in_a_row_stop_callbacks_for_the_run() {
    let server = LlmServer::with(|req: &RecordedRequest| {
        let user = last_user(req);
        if user.starts_with("Fix") {
            // The fixers' provider refuses the request: each follow-up fails.
            return support::llm_server::Reply::json(
                400,
                &json!({"error": {"message": "bad request", "type": "invalid_request_error"}}),
            );
        }
        text_reply(
            &json!({"must_fix": [{"title": "a"}, {"title": "b"}, {"title": "c"}]}).to_string(),
        )
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        r#"
version: 1
kind: workflow
id: breaker
name: Breaker
steps:
  first:
    mode: ask
    prompt: "Review one. Return JSON {must_fix: [{title}]}"
    outputs:
      must_fix: { from: json.must_fix, default: [] }
    followups:
      for_each: ${{ steps.first.outputs.must_fix }}
      spawn: { mode: ask, prompt: "Fix ${{ item.title }} in one" }
  second:
    needs: [first]
    mode: ask
    prompt: "Review two. Return JSON {must_fix: [{title}]}"
    outputs:
      must_fix: { from: json.must_fix, default: [] }
    followups:
      for_each: ${{ steps.second.outputs.must_fix }}
      spawn: { mode: ask, prompt: "Fix ${{ item.title }} in two" }
"#,
    );
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Failed follow-ups do not fail the run.
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let failed = of_type(&events, "step_failed");
    assert_eq!(failed.len(), 3, "{stdout}");
    let guard = of_type(&events, "guard_tripped")
        .into_iter()
        .find(|e| e["guard"] == "chain_breaker")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        guard["observed"]
            .as_str()
            .unwrap()
            .starts_with("3 in a row")
    );
    let stopped = of_type(&events, "callbacks_stopped");
    assert_eq!(stopped[0]["by"], "chain_breaker");
    // `second`'s follow-ups are refused: callbacks are off.
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["step"], "second.1");
    assert_eq!(refused[0]["guard"], "callbacks_stopped");
    assert!(
        stdout.contains("callbacks stopped by chain_breaker"),
        "{stdout}"
    );
}

#[test]
fn the_shipped_implement_auth_workflow_runs_its_follow_ups() {
    let lev = Lev::new();
    let ws = lev.workspace();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&ws)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    ]);
    let wf = support::lev::repo_file("workflows/implement-auth.yaml");
    let ws_arg = ws.display().to_string();
    let out = lev.run(&[
        "run",
        wf.to_str().unwrap(),
        "--headless",
        "--yes",
        "--workspace",
        &ws_arg,
        "--input",
        "check_command=true",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("implement-auth.cassette.yaml"), "{stderr}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let spawned: Vec<String> = of_type(&events, "followup_spawned")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(spawned, ["security.1", "security.3"], "{stdout}");
    let refused = of_type(&events, "followup_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["step"], "security.2");
    assert_eq!(refused[0]["guard"], "when_semantic");
    assert!(
        refused[0]["observed"]
            .as_str()
            .unwrap()
            .contains("already hashes passwords with argon2id")
    );
    // The verdicts are journaled under the follow-ups' keys.
    assert_eq!(of_type(&events, "semantic_verdict").len(), 3);
    // The fixes were written, and the approval came after them.
    assert!(ws.join("SECURITY-refresh-reuse.md").is_file());
    assert!(ws.join("SECURITY-login-rate-limit.md").is_file());
    let order: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "step_succeeded")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    let at = |k: &str| order.iter().position(|s| s == k).unwrap();
    assert!(at("security.1") < at("approve") && at("security.3") < at("approve"));
    // `lev show` lists the follow-ups and the refusal.
    let show = lev.run(&["show", &run]);
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(show.contains("↳ follow-up of security, depth 1"), "{show}");
    assert!(show.contains("not spawned: when_semantic"), "{show}");
}

/// A follow-up that failed (a run that still succeeded) can be retried:
/// it runs again as it was spawned, with a time box of its own, and
/// nothing else runs again.
#[test]
fn a_failed_follow_up_is_retried_on_its_own() {
    let status = |show: &Value, step: &str| {
        show["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .map(|s| s["status"].clone())
            .unwrap_or_default()
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let broken = Arc::new(AtomicBool::new(true));
    let b = broken.clone();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let user = last_user(req);
        if user.starts_with("Fix") && b.load(Ordering::SeqCst) {
            return support::llm_server::Reply::json(
                400,
                &json!({"error": {"message": "bad request", "type": "invalid_request_error"}}),
            );
        }
        if user.starts_with("Fix") {
            return text_reply("fixed it");
        }
        text_reply(&json!({"must_fix": [{"title": "a"}]}).to_string())
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        r#"
version: 1
kind: workflow
id: once
name: Once
limits: { chain_timebox: 2s }
steps:
  review:
    mode: ask
    prompt: "Review. Return JSON {must_fix: [{title}]}"
    outputs:
      must_fix: { from: json.must_fix, default: [] }
    followups:
      for_each: ${{ steps.review.outputs.must_fix }}
      spawn: { mode: ask, prompt: "Fix ${{ item.title }}" }
"#,
    );
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    assert_eq!(status(&lev.show(&run), "review.1"), "failed");
    let reviews_asked = || {
        server
            .requests()
            .iter()
            .filter(|r| last_user(r).starts_with("Review"))
            .count()
    };
    assert_eq!(reviews_asked(), 1);

    // Past the chain's time box: the retry gets a box of its own.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    broken.store(false, Ordering::SeqCst);
    let retry = lev.run(&["retry", &run, "review.1", "--headless"]);
    let retried = String::from_utf8_lossy(&retry.stdout).into_owned();
    assert!(
        retry.status.success(),
        "{retried}{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let show = lev.show(&run);
    assert_eq!(status(&show, "review.1"), "succeeded", "{show}");
    assert_eq!(reviews_asked(), 1, "the parent ran again");
    assert_eq!(of_type(&lev.events(&run), "followup_spawned").len(), 1);

    // A follow-up that succeeded is not retried, like any step.
    let again = lev.run(&["retry", &run, "review.1", "--headless"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("succeeded"));
}

/// `lev retry` of a failed follow-up while its run still runs goes to the
/// running process, which runs the follow-up again in place.
#[test]
fn a_failed_follow_up_is_retried_in_the_live_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use support::kill::{only_run, wait_for};
    let broken = Arc::new(AtomicBool::new(true));
    let b = broken.clone();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let user = last_user(req);
        match (user.starts_with("Fix"), b.load(Ordering::SeqCst)) {
            (true, true) => support::llm_server::Reply::json(
                400,
                &json!({"error": {"message": "bad request", "type": "invalid_request_error"}}),
            ),
            (true, false) => text_reply("fixed it"),
            _ => text_reply(&json!({"must_fix": [{"title": "a"}]}).to_string()),
        }
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let go = lev.dir.path().join("go");
    let wf = lev.write_workflow(&format!(
        r#"
version: 1
kind: workflow
id: live
name: Live
steps:
  review:
    mode: ask
    prompt: "Review. Return JSON {{must_fix: [{{title}}]}}"
    outputs:
      must_fix: {{ from: json.must_fix, default: [] }}
    followups:
      for_each: ${{{{ steps.review.outputs.must_fix }}}}
      spawn: {{ mode: ask, prompt: "Fix ${{{{ item.title }}}}" }}
  wait:
    type: shell
    run: "while [ ! -f '{}' ]; do sleep 0.05; done"
"#,
        go.display()
    ));
    let child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    let status_of = |run: &str, kind: &str| {
        lev.events(run)
            .iter()
            .filter(|e| e["step"] == "review.1" && e["type"] == kind)
            .count()
    };
    wait_for("the follow-up to fail", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref()
            .is_some_and(|r| status_of(r, "step_failed") == 1)
    });
    let run = run.unwrap();
    broken.store(false, Ordering::SeqCst);
    let retry = lev.run(&["retry", &run, "review.1"]);
    assert!(
        retry.status.success(),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    wait_for("the follow-up to succeed", Duration::from_secs(60), || {
        status_of(&run, "step_succeeded") == 1
    });
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(of_type(&lev.events(&run), "followup_spawned").len(), 1);
}
