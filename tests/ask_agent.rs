//! `ask_agent:` questions the system puts to an agent after its answer, in
//! the agent's own conversation: each is journaled (`agent_asked`) and shown,
//! the agent's replies are the step's `ask_agent` output, and they count
//! against the run's `max_questions`.

mod support;

use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let last = msgs.last().unwrap()["content"].as_str().unwrap_or_default();
        let text = if last.contains("Was every must-fix") {
            // It answers in its own conversation: its answer is right before.
            let before = &msgs[msgs.len() - 2];
            assert_eq!(before["role"], "assistant");
            assert_eq!(before["content"], "I fixed the token logging.");
            "yes"
        } else if last.contains("List the files") {
            "src/auth.rs"
        } else {
            "I fixed the token logging."
        };
        OpenAiSse::new("test-model")
            .text(text, 2)
            .usage(10, 5)
            .finish("stop")
            .reply()
    })
}

fn workflow(max_questions: u32) -> String {
    format!(
        r#"
version: 1
kind: workflow
id: fix
name: Fix
limits:
  max_questions: {max_questions}
steps:
  fix:
    mode: ask
    prompt: Fix the token logging.
    ask_agent:
      - Was every must-fix from the security review addressed? Answer yes or no.
      - List the files you changed.
outputs:
  addressed: ${{{{ steps.fix.outputs.ask_agent[0] }}}}
  text: ${{{{ steps.fix.outputs.text }}}}
"#
    )
}

#[test]
fn the_system_asks_the_agent_and_its_replies_are_outputs() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&workflow(6));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("step fix: lev asks the agent: Was every must-fix"),
        "{stdout}"
    );
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let asked: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "agent_asked")
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["turn"], 2);
    let done = events
        .iter()
        .find(|e| e["type"] == "step_succeeded")
        .unwrap();
    assert_eq!(done["outputs"]["text"], "I fixed the token logging.");
    assert_eq!(
        done["outputs"]["ask_agent"],
        serde_json::json!(["yes", "src/auth.rs"])
    );
    let show = lev.show(&run);
    assert_eq!(show["outputs"]["addressed"], "yes");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn the_systems_questions_count_against_max_questions() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&workflow(1));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let asked = events.iter().filter(|e| e["type"] == "agent_asked").count();
    assert_eq!(asked, 1);
    let guard = events
        .iter()
        .find(|e| e["type"] == "guard_tripped")
        .expect("the limit is said");
    assert_eq!(guard["guard"], "max_questions");
    let done = events
        .iter()
        .find(|e| e["type"] == "step_succeeded")
        .unwrap();
    assert_eq!(done["outputs"]["ask_agent"], serde_json::json!(["yes"]));
}

/// A run killed while the agent answers the second question resumes with
/// the first question's reply from the journal: the model is not asked the
/// prompt or the first question again.
#[test]
fn a_killed_run_does_not_ask_an_answered_question_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use support::kill::{kill9, only_run, wait_for};
    use support::llm_server::Action;

    let hang = Arc::new(AtomicBool::new(true));
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let (h, a) = (hang.clone(), asked.clone());
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let last = msgs.last().unwrap()["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        a.lock().unwrap().push(last.clone());
        let text = if last.contains("Was every must-fix") {
            "yes"
        } else if last.contains("List the files") {
            "src/auth.rs"
        } else {
            "I fixed the token logging."
        };
        let reply = OpenAiSse::new("test-model")
            .text(text, 2)
            .usage(10, 5)
            .finish("stop")
            .reply();
        if last.contains("List the files") && h.load(Ordering::SeqCst) {
            reply.insert(0, Action::Delay(60_000))
        } else {
            reply
        }
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&workflow(6));
    let mut child = lev.spawn_headless(&wf, &[]);
    let mut run = None;
    wait_for("the second question", Duration::from_secs(60), || {
        run = run.clone().or_else(|| only_run(&lev));
        run.as_ref().is_some_and(|r| {
            lev.events(r)
                .iter()
                .any(|e| e["type"] == "agent_asked" && e["turn"] == 3)
        })
    });
    kill9(&mut child);
    hang.store(false, Ordering::SeqCst);
    let run = run.unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let asked = asked.lock().unwrap().clone();
    let count = |what: &str| asked.iter().filter(|m| m.contains(what)).count();
    assert_eq!(count("Fix the token logging"), 1, "{asked:?}");
    assert_eq!(count("Was every must-fix"), 1, "{asked:?}");
    let done = lev
        .events(&run)
        .into_iter()
        .find(|e| e["type"] == "step_succeeded")
        .unwrap();
    assert_eq!(
        done["outputs"]["ask_agent"],
        serde_json::json!(["yes", "src/auth.rs"])
    );
}

#[test]
fn questions_under_whisper_are_asked_like_ask_agent_and_only_of_agents() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&workflow(6).replace(
        "    ask_agent:\n      - Was every must-fix from the security review addressed? Answer yes or no.\n      - List the files you changed.\n",
        "    ask_agent: Was every must-fix from the security review addressed? Answer yes or no.\n    whisper:\n      to_llm: [Mind the tests]\n      ask_agent: [List the files you changed.]\n",
    ));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let asked: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "agent_asked")
        .map(|e| e["question"].as_str().unwrap())
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1], "List the files you changed.");
    let outputs = events
        .iter()
        .find(|e| e["type"] == "step_succeeded")
        .unwrap()["outputs"]
        .clone();
    assert_eq!(outputs["ask_agent"][1], "src/auth.rs");

    let shell = lev.write_workflow(
        "version: 1\nkind: workflow\nid: s\nname: S\nsteps:\n  a:\n    type: shell\n    run: \"true\"\n    whisper:\n      ask_agent: [Done?]\n",
    );
    let out = lev.run(&["validate", shell.to_str().unwrap()]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("`whisper.ask_agent` is for agent steps, and this is a `shell` step"),
        "{said}"
    );
    assert!(said.contains(":10:7"), "{said}");
}
