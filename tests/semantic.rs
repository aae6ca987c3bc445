//! `when_semantic`: a model judges a statement about what the needed steps
//! produced before the step runs; the verdict is journaled (and shown), a
//! step whose statement does not hold is skipped with the judge's reason,
//! a resumed run reuses the verdict without asking the model again, and
//! with no provider the user decides.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::kill::{kill9, only_run, wait_for};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: sem
name: Semantic
steps:
  review:
    type: shell
    run: 'echo "must-fix: tokens are logged in plain text"'
  fix:
    type: shell
    needs: [review]
    when_semantic: the review found at least one must-fix issue
    run: echo fixing
  after:
    type: shell
    needs: [fix]
    run: echo after
"#;

/// A judge that answers every request with `holds`, counting requests.
fn judge(holds: bool, seen: Arc<AtomicUsize>) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        seen.fetch_add(1, Ordering::SeqCst);
        let body = req.json.as_ref().unwrap();
        let user = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "user")
            .unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        // The judge sees the statement and what `review` printed.
        assert!(user.contains("must-fix: tokens are logged"), "{user}");
        assert!(user.contains("Statement: the review found"), "{user}");
        let verdict = json!({ "holds": holds, "confidence": 0.9, "reason": "one issue is listed" });
        OpenAiSse::new("judge-model")
            .text(&verdict.to_string(), 3)
            .usage(50, 10)
            .finish("stop")
            .reply()
    })
}

fn of_type(lev: &Lev, run: &str, kind: &str) -> Vec<serde_json::Value> {
    lev.events(run)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn a_statement_that_does_not_hold_skips_the_step_with_the_reason() {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = judge(false, seen.clone());
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let verdicts = of_type(&lev, &run, "semantic_verdict");
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0]["holds"], false);
    assert_eq!(verdicts[0]["judge"], "judge-model");
    // What the judge spent is journaled with its verdict and counted in
    // the run's totals and the step's row.
    assert_eq!(verdicts[0]["usage"]["input_tokens"], 50);
    assert_eq!(verdicts[0]["usage"]["output_tokens"], 10);
    let shown = lev.run(&["show", &run, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["usage"]["input_tokens"], 50, "{shown}");
    let skipped = of_type(&lev, &run, "step_skipped");
    assert_eq!(skipped[0]["step"], "fix");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not hold: one issue is listed"),
        "{skipped:?}"
    );
    assert!(
        of_type(&lev, &run, "step_started")
            .iter()
            .all(|e| e["step"] != "fix")
    );
    let line = "when_semantic \"the review found at least one must-fix issue\" does not hold (judged by judge-model, confidence 0.90)";
    assert!(stdout.contains(line), "{stdout}");
    // Replay needs no model.
    assert!(lev.replay(&run).contains(line));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn a_resumed_run_keeps_its_verdict_and_does_not_ask_again() {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = judge(true, seen.clone());
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&WORKFLOW.replace(
        "    run: echo fixing",
        "    idempotent: true\n    run: test -f go || sleep 60",
    ));
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    wait_for("fix's command to start", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            of_type(&lev, r, "process_started")
                .iter()
                .any(|e| e["step"] == "fix")
        })
    });
    kill9(&mut child);
    let run = run.unwrap();
    std::fs::write(lev.workspace().join("go"), "").unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the judge was asked again");
    assert_eq!(of_type(&lev, &run, "semantic_verdict").len(), 1);
    let done: Vec<String> = of_type(&lev, &run, "step_succeeded")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(done, ["review", "fix", "after"]);
}

#[test]
fn with_no_provider_the_user_decides() {
    let lev = Lev::new();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &["--answer", "fix.when_semantic=yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let verdicts = of_type(&lev, &run, "semantic_verdict");
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0]["judge"], "user");
    assert_eq!(verdicts[0]["holds"], true);
    assert!(
        of_type(&lev, &run, "step_succeeded")
            .iter()
            .any(|e| e["step"] == "fix")
    );
    // Unanswered, a headless run cannot decide: the step fails and says how.
    let lev = Lev::new();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("--answer"), "{stdout}");
}

/// A `judge:` in the config judges instead of the run's provider.
#[test]
fn the_configured_judge_judges() {
    let main_seen = Arc::new(AtomicUsize::new(0));
    let main = judge(true, main_seen.clone());
    let judge_seen = Arc::new(AtomicUsize::new(0));
    let other = judge(false, judge_seen.clone());
    let lev = Lev::new()
        .with_openai(&main.base_url())
        .with_env("JUDGE_KEY", "sk-judge-not-real");
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "providers:\n  strict:\n    kind: openai\n    base_url: {}/v1\n    model: strict-judge\n    api_key_env: JUDGE_KEY\njudge: {{ provider: strict }}\n",
            other.base_url()
        ),
    )
    .unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    assert_eq!(
        main_seen.load(Ordering::SeqCst),
        0,
        "the run's provider judged"
    );
    assert_eq!(judge_seen.load(Ordering::SeqCst), 1);
    let verdicts = of_type(&lev, &run, "semantic_verdict");
    assert_eq!(verdicts[0]["holds"], false);
    let requests = other.requests();
    assert_eq!(requests[0].json.as_ref().unwrap()["model"], "strict-judge");
}
