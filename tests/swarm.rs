//! Swarms end to end: `lev workflow "objective"` with the real binary
//! against the loopback LLM server — the orchestrator's plan is checked and
//! re-asked within its bound, reviewed (`--yes` headless), and its tasks run
//! on parallel agent slots with work stealing; a killed swarm resumes
//! without re-running finished tasks.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest, Reply};
use support::swarm_plan::{brief, plan_of, say, task, who};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn swarm(lev: &Lev, objective: &str, extra: &[&str]) -> (Output, String) {
    let mut args = vec!["workflow", objective, "--headless"];
    args.extend_from_slice(extra);
    let out = lev.run(&args);
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    (out, run)
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn seq_of(events: &[Value], kind: &str, step: &str) -> u64 {
    events
        .iter()
        .find(|e| e["type"] == kind && e["step"] == step)
        .unwrap_or_else(|| panic!("no {kind} for {step}"))["_seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn objective_is_planned_reviewed_and_run_by_parallel_agents() {
    let plan = plan_of(vec![
        task("design", "architect", &[]),
        task("code", "coder", &["design"]),
        task("tests", "tdd", &["design"]),
        task("docs", "docs-writer", &["design"]),
        task("review", "reviewer", &["code", "tests", "docs"]),
    ]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        "design" => say("design: one module", 0),
        id @ ("code" | "tests" | "docs") => say(&format!("{id} report"), 400),
        "review" => say("review: all good", 0),
        _ => Reply::json(400, &json!({"error": {"message": "unknown request"}})),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = swarm(&lev, "build a greeting module", &["--yes", "--agents", "3"]);
    assert!(out.status.success(), "{}", text(&out));

    // One orchestrator request and one per task: nothing asked twice.
    let mut asked: Vec<String> = server.requests().iter().map(who).collect();
    asked.sort();
    assert_eq!(asked, ["code", "design", "docs", "plan", "review", "tests"]);

    let events = lev.events(&run);
    let proposed = events_of(&events, "plan_proposed");
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0]["problems"], json!([]));
    assert_eq!(events_of(&events, "plan_accepted").len(), 1);
    let assigned = events_of(&events, "task_assigned");
    assert_eq!(assigned.len(), 5, "{assigned:?}");
    let slots: std::collections::BTreeSet<u64> = assigned
        .iter()
        .map(|e| e["slot"].as_u64().unwrap())
        .collect();
    assert!(slots.len() >= 2, "one slot did everything: {assigned:?}");

    // Needs first; the three middle tasks ran at the same time.
    let design_done = seq_of(&events, "step_succeeded", "design");
    let first_middle_done = ["code", "tests", "docs"]
        .iter()
        .map(|s| seq_of(&events, "step_succeeded", s))
        .min()
        .unwrap();
    for s in ["code", "tests", "docs"] {
        let started = seq_of(&events, "step_started", s);
        assert!(started > design_done, "{s} started before design finished");
        assert!(
            started < first_middle_done,
            "{s} started only after another middle task finished: not parallel"
        );
        assert!(seq_of(&events, "step_started", "review") > seq_of(&events, "step_succeeded", s));
    }

    // The reviewer's brief carries what its upstream tasks reported.
    let review_req = server
        .requests()
        .into_iter()
        .find(|r| who(r) == "review")
        .unwrap();
    for report in ["code report", "tests report", "docs report"] {
        assert!(
            brief(&review_req).contains(report),
            "{report} not in the review brief"
        );
    }

    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    for id in ["design", "code", "tests", "docs", "review"] {
        assert_eq!(
            show["outputs"]["tasks"][id]["status"], "succeeded",
            "{show}"
        );
    }
    assert_eq!(show["outputs"]["tasks"]["code"]["result"], "code report");
}

#[test]
fn an_invalid_plan_is_rejected_and_re_asked_within_the_bound() {
    let bad = plan_of(vec![
        task("a", "wizard", &["b"]),
        task("b", "coder", &["a"]),
    ]);
    let good = plan_of(vec![task("a", "coder", &[]), task("b", "tdd", &["a"])]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" if brief(req).contains("Your plan was rejected") => say(&good, 0),
        "plan" => say(&bad, 0),
        id => say(&format!("{id} done"), 0),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = swarm(&lev, "make it so", &["--yes"]);
    assert!(out.status.success(), "{}", text(&out));

    let events = lev.events(&run);
    let proposed = events_of(&events, "plan_proposed");
    assert_eq!(proposed.len(), 2, "{proposed:?}");
    let problems = proposed[0]["problems"].to_string();
    assert!(
        problems.contains("wizard"),
        "unknown mode not named: {problems}"
    );
    assert!(problems.contains("cycle"), "cycle not named: {problems}");
    assert_eq!(proposed[1]["problems"], json!([]));

    // The second request told the orchestrator what was wrong.
    let plans: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .filter(|r| who(r) == "plan")
        .collect();
    assert_eq!(plans.len(), 2);
    assert!(brief(&plans[1]).contains("wizard"));
    assert_eq!(lev.show(&run)["status"], "succeeded");
}

#[test]
fn a_plan_that_stays_invalid_fails_after_the_bound() {
    let bad = plan_of(vec![task("a", "wizard", &[])]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&bad, 0),
        _ => Reply::json(400, &json!({"error": {"message": "no task may run"}})),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = swarm(&lev, "make it so", &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no valid plan in 3 attempts"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.request_count(),
        3,
        "the bound is 3 orchestrator answers"
    );
    assert!(events_of(&lev.events(&run), "task_assigned").is_empty());
}

#[test]
fn headless_without_yes_stops_at_the_review() {
    let plan = plan_of(vec![task("a", "coder", &[])]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        _ => Reply::json(400, &json!({"error": {"message": "must not run"}})),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, _) = swarm(&lev, "make it so", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(server.request_count(), 1);
}

#[test]
fn an_idle_slot_steals_queued_work_from_a_busy_one() {
    // Six independent tasks on two slots; one is slow. Each slot's queue
    // gets three; the fast slot finishes its own, then steals from the slow
    // slot's queue instead of idling.
    let ids = ["slow", "f1", "f2", "f3", "f4", "f5"];
    let plan = plan_of(ids.iter().map(|id| task(id, "coder", &[])).collect());
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        "slow" => say("slow done", 1500),
        id => say(&format!("{id} done"), 0),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = swarm(&lev, "many small things", &["--yes", "--agents", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = lev.events(&run);
    let assigned = events_of(&events, "task_assigned");
    let stolen: Vec<_> = assigned
        .iter()
        .filter(|e| !e["stolen_from"].is_null())
        .collect();
    assert!(!stolen.is_empty(), "no task was stolen: {assigned:?}");
    let slow_slot = assigned.iter().find(|e| e["task"] == "slow").unwrap()["slot"].clone();
    for e in &stolen {
        assert_eq!(
            e["stolen_from"], slow_slot,
            "stolen from the wrong queue: {e}"
        );
    }
    // Every fast task finished while the slow one was still running.
    let slow_done = seq_of(&events, "step_succeeded", "slow");
    for id in &ids[1..] {
        assert!(
            seq_of(&events, "step_succeeded", id) < slow_done,
            "{id} waited behind the slow task"
        );
    }
    assert!(lev.replay(&run).contains("stolen from slot"));
}

#[test]
fn a_killed_swarm_resumes_without_rerunning_finished_tasks() {
    let plan = plan_of(vec![
        task("first", "architect", &[]),
        task("quick", "coder", &["first"]),
        task("long", "coder", &["first"]),
        task("last", "reviewer", &["quick", "long"]),
    ]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        "long" => say("long done", 1500),
        id => say(&format!("{id} done"), 0),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let mut child = lev.spawn(&["workflow", "resume me", "--headless", "--yes"]);
    // Kill once the long task's request is in flight and quick has answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let asked: Vec<String> = server.requests().iter().map(who).collect();
        if asked.contains(&"long".to_string()) && asked.contains(&"quick".to_string()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never got to the long task: {asked:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).expect("run id");

    let out = lev.run(&["resume", &run, "--headless", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let asked: Vec<String> = server.requests().iter().map(who).collect();
    let count = |id: &str| asked.iter().filter(|a| *a == id).count();
    assert_eq!(count("plan"), 1, "{asked:?}");
    assert_eq!(count("first"), 1, "{asked:?}");
    assert_eq!(
        count("last"),
        1,
        "{asked:?}\nresume printed:\n{}",
        text(&out)
    );
    // `quick` may have been killed between its reply and its journal entry;
    // `long` was in flight: both may be asked again, at most once more.
    assert!(count("quick") <= 2 && count("long") == 2, "{asked:?}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["outputs"]["tasks"]["long"]["result"], "long done");
}

#[test]
fn a_failing_provider_opens_its_breaker_and_the_swarm_completes_through_the_fallback() {
    let primary = LlmServer::with(|_| {
        Reply::json(
            500,
            &json!({"error": {"message": "the primary is down", "type": "server_error"}}),
        )
    });
    let plan = plan_of(vec![
        task("a", "coder", &[]),
        task("b", "tdd", &[]),
        task("c", "reviewer", &["a", "b"]),
    ]);
    let backup = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        id => say(&format!("{id} done by the fallback"), 0),
    });
    let lev = Lev::new();
    let provider = |name: &str, server: &LlmServer, model: &str| {
        format!(
            "  {name}: {{ kind: openai, base_url: \"{}/v1\", model: {model}, api_key_env: LEV_TEST_KEY }}\n",
            server.base_url()
        )
    };
    let config = format!(
        "provider: main\nproviders:\n{}{}fallback: {{ provider: backup }}\n\
         retry: {{ max_attempts: 2, initial_delay_ms: 1, max_delay_ms: 2 }}\n\
         breaker: {{ consecutive_failures: 2, cooldown_ms: 600000 }}\n",
        provider("main", &primary, "main-model"),
        provider("backup", &backup, "fallback-model"),
    );
    std::fs::write(lev.workspace().join("lev.yaml"), config).unwrap();
    let mut lev = lev;
    lev.env.push(("LEV_TEST_KEY".into(), "sk-test-0123".into()));
    let (out, run) = swarm(&lev, "survive an outage", &["--yes", "--agents", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    // The primary's two failures opened its breaker; it got nothing after.
    assert_eq!(primary.request_count(), 2);
    let events = lev.events(&run);
    let opened = events_of(&events, "provider_breaker");
    assert!(
        opened.iter().any(|e| e["state"] == "open"),
        "no breaker opened: {opened:?}"
    );
    let replies = events_of(&events, "llm_replied");
    assert_eq!(replies.len(), 4, "plan + three tasks: {replies:?}");
    // Every reply came from the backup server (its replies name `test-model`).
    assert!(
        replies.iter().all(|e| e["model"] == "test-model"),
        "{replies:?}"
    );
    assert_eq!(backup.request_count(), 4);
    let show = lev.show(&run);
    assert_eq!(
        show["outputs"]["tasks"]["c"]["status"], "succeeded",
        "{show}"
    );
}

/// The design task's agent proposes a `tdd` follow-up; while `hang` is set
/// the follow-up's agent does not answer.
fn proposing_server(hang: std::sync::Arc<std::sync::atomic::AtomicBool>) -> LlmServer {
    let plan = plan_of(vec![
        task("design", "architect", &[]),
        task("code", "coder", &["design"]),
    ]);
    LlmServer::with(move |req| {
        let answered = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool");
        if brief(req).starts_with("Write tests for") {
            let hung = hang.load(std::sync::atomic::Ordering::SeqCst);
            return say("tests: three cases", if hung { 60_000 } else { 300 });
        }
        match who(req).as_str() {
            "plan" => say(&plan, 0),
            "design" if !answered => {
                let args = json!({
                    "title": "tests first",
                    "mode": "tdd",
                    "prompt": "Write tests for the greeting module.",
                    "why": "the design has edge cases"
                });
                OpenAiSse::new("test-model")
                    .tool_call(0, "call_1", "propose_followup", &args.to_string(), 1)
                    .usage(30, 10)
                    .finish("tool_calls")
                    .reply()
            }
            "design" => say("design: one module", 0),
            "code" => say("code report", 0),
            _ => Reply::json(400, &json!({"error": {"message": "unknown request"}})),
        }
    })
}

fn proposing_lev(server: &LlmServer) -> Lev {
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "followups: { propose: true, auto: true }\n",
    )
    .unwrap();
    lev
}

/// With the user's config offering `propose_followup` and pre-authorising
/// it, a task's agent proposes a follow-up: it is journaled, runs on a slot
/// as a task of its own, and the tasks that need its parent wait for it.
#[test]
fn a_follow_up_a_task_proposes_runs_on_a_slot_before_the_tasks_that_need_its_parent() {
    let server = proposing_server(Default::default());
    let lev = proposing_lev(&server);
    let (out, run) = swarm(&lev, "build a greeting module", &["--yes", "--agents", "2"]);
    assert!(out.status.success(), "{}", text(&out));

    let events = lev.events(&run);
    let spawned = events_of(&events, "followup_spawned");
    assert_eq!(spawned.len(), 1, "{}", text(&out));
    assert_eq!(spawned[0]["step"], "design.1");
    assert_eq!(spawned[0]["parent"], "design");
    assert_eq!(spawned[0]["mode"], "tdd");
    assert!(
        events_of(&events, "task_assigned")
            .iter()
            .any(|e| e["task"] == "design.1")
    );
    assert!(
        seq_of(&events, "step_started", "code") > seq_of(&events, "step_succeeded", "design.1"),
        "code started before design's follow-up settled"
    );
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    let followup = &show["outputs"]["followups"]["design.1"];
    assert_eq!(followup["status"], "succeeded", "{show}");
    assert_eq!(followup["result"], "tests: three cases");
}

/// Killed while the follow-up runs, the swarm resumes it from the journal:
/// the design task is not asked again and nothing is spawned twice.
#[test]
fn a_swarm_killed_during_a_follow_up_resumes_it_without_spawning_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use support::kill::{kill9, only_run, wait_for};

    let hang = Arc::new(AtomicBool::new(true));
    let server = proposing_server(hang.clone());
    let lev = proposing_lev(&server);
    let mut child = lev
        .cmd(&[
            "workflow",
            "build a greeting module",
            "--headless",
            "--yes",
            "--agents",
            "2",
        ])
        .spawn()
        .unwrap();
    wait_for("the follow-up's request", Duration::from_secs(60), || {
        server
            .requests()
            .iter()
            .any(|r| brief(r).starts_with("Write tests for"))
    });
    kill9(&mut child);
    hang.store(false, Ordering::SeqCst);
    let run = only_run(&lev).unwrap();
    let out = lev.run(&["resume", &run, "--headless", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = lev.events(&run);
    assert_eq!(events_of(&events, "followup_spawned").len(), 1);
    let design_asked = server
        .requests()
        .iter()
        .filter(|r| who(r) == "design")
        .count();
    assert_eq!(design_asked, 2, "the design task was asked again");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(
        show["outputs"]["followups"]["design.1"]["status"],
        "succeeded"
    );
    assert_eq!(show["outputs"]["tasks"]["code"]["status"], "succeeded");
}
