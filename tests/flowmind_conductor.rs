//! FlowMind's conductor on a live run against a loopback LLM server: an
//! agent's `ask_user` question goes to FlowMind's model first. Sure enough
//! and in a category the user allowed, FlowMind answers it after the grace
//! period; below the threshold the question reaches the user (headless:
//! its default) with FlowMind's answer offered; and the user's answer
//! within the grace period wins.

mod support;

use std::time::Duration;

use support::kill::{only_run, wait_for};
use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: naming
name: Naming
steps:
  name:
    mode: ask
    max_turns: 4
    prompt: Pick a name style for the new module and say which.
"#;

fn is_conductor(req: &RecordedRequest) -> bool {
    req.json.as_ref().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .contains("An agent asked its user a question")
}

/// An agent that asks which name style to use, then says what it got;
/// FlowMind's model answers `snake_case` with `confidence`.
fn asking_agent(confidence: f64) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        if is_conductor(req) {
            let proposal = serde_json::json!({
                "answer": "snake_case",
                "confidence": confidence,
                "category": "naming",
                "reason": "The code base names modules in snake_case."
            });
            return OpenAiSse::new("fm-model")
                .text(&proposal.to_string(), 1)
                .usage(500, 40)
                .finish("stop")
                .reply();
        }
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        if let Some(tool) = msgs.iter().find(|m| m["role"] == "tool") {
            let answer = tool["content"].as_str().unwrap_or("").to_string();
            return OpenAiSse::new("test-model")
                .text(&format!("Using: {answer}"), 1)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                "call_1",
                "ask_user",
                r#"{"question":"snake_case or camelCase for the module name?"}"#,
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

/// What the agent's tool results said (the answers it got).
fn tool_results(server: &LlmServer) -> Vec<String> {
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| !is_conductor(r))
        .unwrap();
    last.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect()
}

fn lev_with(server: &LlmServer, conductor: &str) -> Lev {
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "flowmind: {{ mode: model, model: fm-model, cadence: 100, conductor: {conductor} }}\n"
        ),
    )
    .unwrap();
    lev
}

#[test]
fn a_sure_answer_in_an_allowed_category_is_given_after_the_grace_period() {
    let server = asking_agent(0.93);
    let lev = lev_with(&server, "{ categories: [naming], grace_ms: 300 }");
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let proposed = of_type(&events, "answer_proposed");
    assert_eq!(proposed.len(), 1, "{stdout}");
    assert_eq!(proposed[0]["answer"], "snake_case");
    assert_eq!(proposed[0]["auto"], true);
    assert_eq!(proposed[0]["category"], "naming");
    let answered = of_type(&events, "question_answered");
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0]["source"], "flowmind");
    assert_eq!(answered[0]["answer"], "snake_case");
    // Proposed first, answered after the grace period.
    assert!(answered[0]["_seq"].as_u64() > proposed[0]["_seq"].as_u64());
    assert!(answered[0]["at"].as_u64().unwrap() >= proposed[0]["at"].as_u64().unwrap() + 300);
    // The agent got FlowMind's answer.
    assert_eq!(tool_results(&server), ["snake_case"]);
    // FlowMind's tokens are its own.
    let shown = lev.show(&run);
    assert_eq!(shown["flowmind_usage"]["input_tokens"], 500, "{shown}");
    assert!(stdout.contains("FlowMind answers"), "{stdout}");
    assert!(stdout.contains("(by FlowMind)"), "{stdout}");
}

#[test]
fn below_the_threshold_the_question_reaches_the_user_with_the_answer_offered() {
    let server = asking_agent(0.55);
    let lev = lev_with(&server, "{ categories: [naming], grace_ms: 300 }");
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let proposed = of_type(&events, "answer_proposed");
    assert_eq!(proposed.len(), 1, "{stdout}");
    assert_eq!(proposed[0]["auto"], false);
    assert!(stdout.contains("FlowMind proposes for"), "{stdout}");
    // Headless, the user's part is the question's default.
    let answered = of_type(&events, "question_answered");
    assert_eq!(answered[0]["source"], "default", "{answered:?}");
    // Its category not allowed: offered only, however sure.
    let server = asking_agent(0.99);
    let lev = lev_with(&server, "{ categories: [style], grace_ms: 300 }");
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "answer_proposed")[0]["auto"], false);
    assert_eq!(
        of_type(&events, "question_answered")[0]["source"],
        "default"
    );
}

#[test]
fn the_user_s_answer_within_the_grace_period_wins() {
    let server = asking_agent(0.93);
    let lev = lev_with(&server, "{ categories: [naming], grace_ms: 60000 }");
    let wf = lev.write_workflow(WORKFLOW);
    let child = lev.spawn_headless(&wf, &[]);
    wait_for("the run", Duration::from_secs(30), || {
        only_run(&lev).is_some()
    });
    let run = only_run(&lev).unwrap();
    let mut proposed = Vec::new();
    wait_for("FlowMind's answer", Duration::from_secs(30), || {
        proposed = of_type(&lev.events(&run), "answer_proposed");
        !proposed.is_empty()
    });
    let id = proposed[0]["id"].as_str().unwrap().to_string();
    let said = lev.run(&["answer", &run, &id, "camelCase"]);
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run);
    let answered = of_type(&events, "question_answered");
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["source"], "user");
    assert_eq!(answered[0]["answer"], "camelCase");
    assert_eq!(tool_results(&server), ["camelCase"]);
}

/// Killed while FlowMind's answer waits out its grace period, the run
/// resumes the grace from when the answer was journaled, and the answer
/// stands without asking the model again.
#[test]
fn a_run_killed_in_the_grace_period_resumes_it() {
    use support::kill::kill9;
    let server = asking_agent(0.93);
    let lev = lev_with(&server, "{ categories: [naming], grace_ms: 4000 }");
    let wf = lev.write_workflow(WORKFLOW);
    let mut child = lev.spawn_headless(&wf, &[]);
    wait_for("the run", Duration::from_secs(30), || {
        only_run(&lev).is_some()
    });
    let run = only_run(&lev).unwrap();
    wait_for("FlowMind's answer", Duration::from_secs(30), || {
        !of_type(&lev.events(&run), "answer_proposed").is_empty()
    });
    kill9(&mut child);
    let asked = server.requests().iter().filter(|r| is_conductor(r)).count();
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run);
    let answered = of_type(&events, "question_answered");
    assert_eq!(answered.len(), 1, "{stdout}");
    assert_eq!(answered[0]["source"], "flowmind", "{answered:?}");
    let proposed = of_type(&events, "answer_proposed");
    assert_eq!(proposed.len(), 1);
    assert!(answered[0]["at"].as_u64().unwrap() >= proposed[0]["at"].as_u64().unwrap() + 4000);
    assert_eq!(
        server.requests().iter().filter(|r| is_conductor(r)).count(),
        asked,
        "the model was asked again"
    );
    assert_eq!(tool_results(&server), ["snake_case"]);
}
