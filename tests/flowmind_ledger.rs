//! FlowMind's model on a live run against a loopback LLM server: its
//! progress ledgers find an agent stuck that the rules cannot see (each
//! call is new, none is an error), the agent is told what the ledger says
//! to tell it, the ledgers and the decision read back from the journal
//! with no provider, and the controller's own tokens stay within its
//! budget.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: wander
name: Wander
steps:
  look:
    mode: ask
    max_turns: 10
    prompt: Find the release date in the notes.
"#;

const INSTRUCTION: &str = "Stop opening notes one by one; answer with what you have.";

fn is_ledger(req: &RecordedRequest) -> bool {
    req.json.as_ref().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .contains("progress ledger")
}

/// An agent that opens another note every turn until FlowMind's message
/// reaches it, and a FlowMind model that finds it looping (its first
/// answer is prose when `prose_first`, then a ledger when asked again).
/// Ledger replies report `ledger_tokens` input tokens.
fn wandering(prose_first: bool, ledger_tokens: u64) -> (LlmServer, Arc<AtomicUsize>) {
    let ledgers = Arc::new(AtomicUsize::new(0));
    let counted = ledgers.clone();
    let prose_sent = AtomicBool::new(!prose_first);
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        if is_ledger(req) {
            counted.fetch_add(1, Ordering::SeqCst);
            if !prose_sent.swap(true, Ordering::SeqCst) {
                return OpenAiSse::new("fm-model")
                    .text("It looks like the agent is browsing.", 1)
                    .usage(ledger_tokens, 10)
                    .finish("stop")
                    .reply();
            }
            let ledger = serde_json::json!({
                "satisfied": false,
                "looping": true,
                "progressing": false,
                "next": "agent",
                "instruction": INSTRUCTION,
                "reason": "It opens a new note every turn without using what it read."
            });
            return OpenAiSse::new("fm-model")
                .text(&ledger.to_string(), 1)
                .usage(ledger_tokens, 30)
                .finish("stop")
                .reply();
        }
        let told = msgs.iter().any(|m| {
            m["role"] == "user" && m["content"].as_str().unwrap_or("").contains("FlowMind")
        });
        if told {
            return OpenAiSse::new("test-model")
                .text("The notes do not give a date.", 2)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                &format!(r#"{{"path":"notes{n}.txt"}}"#),
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    });
    (server, ledgers)
}

fn lev_with(server: &LlmServer, flowmind: &str) -> Lev {
    let lev = Lev::new().with_openai(&server.base_url());
    for n in 0..12 {
        std::fs::write(
            lev.workspace().join(format!("notes{n}.txt")),
            format!("note {n}: nothing about dates\n"),
        )
        .unwrap();
    }
    std::fs::write(lev.workspace().join("lev.yaml"), flowmind).unwrap();
    lev
}

#[test]
fn the_model_s_ledgers_find_a_stall_the_rules_cannot_see() {
    let (server, ledger_requests) = wandering(true, 200);
    let lev = lev_with(
        &server,
        "flowmind: { mode: model, model: fm-model, cadence: 1, stalls: 2 }\n",
    );
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);

    let ledgers = of_type(&events, "flowmind_ledger");
    assert!(ledgers.len() >= 2, "{stdout}");
    for l in &ledgers {
        assert_eq!(l["step"], "look");
        assert_eq!(l["ledger"]["looping"], true);
        assert_eq!(l["model"], "fm-model");
        assert_eq!(l["usage"]["input_tokens"].as_u64().unwrap() % 200, 0);
    }
    // The first answer was prose: asked again, both counted in its tokens.
    assert_eq!(ledgers[0]["usage"]["input_tokens"], 400, "{:?}", ledgers[0]);
    assert!(ledger_requests.load(Ordering::SeqCst) > ledgers.len());

    let decided = of_type(&events, "flowmind_decided");
    assert_eq!(decided.len(), 1, "{stdout}");
    assert_eq!(decided[0]["rule"], "ledger");
    assert_eq!(decided[0]["level"], "instruct");
    assert_eq!(decided[0]["text"], INSTRUCTION);
    // Decided after the second stalled ledger was journaled.
    assert!(decided[0]["_seq"].as_u64() > ledgers[1]["_seq"].as_u64());
    let messaged = of_type(&events, "agent_messaged");
    assert_eq!(
        messaged[0]["text"],
        format!("FlowMind (lev's controller): {INSTRUCTION}")
    );
    assert!(stdout.contains("FlowMind ledger, look turn"), "{stdout}");
    // The rules alone saw nothing: every call was new.
    assert!(
        of_type(&events, "flowmind_decided")
            .iter()
            .all(|d| d["rule"] != "loop")
    );

    // The ledgers and the decision read back from the journal with no
    // provider at all, and no model is asked again.
    let asked = server.request_count();
    drop(server);
    let mut show = lev.cmd(&["show", &run]);
    for k in [
        "LEV_PROVIDER",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "LEV_MODEL",
    ] {
        show.env_remove(k);
    }
    let shown = show.output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("FlowMind ledger, look turn"), "{shown}");
    assert!(shown.contains("FlowMind → look (ledger:"), "{shown}");
    assert!(asked > 0);
}

#[test]
fn the_controller_never_spends_past_its_budget_and_then_its_rules_go_on() {
    // Each ledger costs 3,000 input tokens; a budget of 7,000 has room for
    // one request at its most (the question twice, and the replies), not
    // for a second after the first was spent.
    let (server, ledger_requests) = wandering(false, 3000);
    let lev = lev_with(
        &server,
        "flowmind: { mode: model, model: fm-model, cadence: 1, budget: 7000 }\n",
    );
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let ledgers = of_type(&events, "flowmind_ledger");
    let spent: u64 = ledgers
        .iter()
        .map(|l| {
            l["usage"]["input_tokens"].as_u64().unwrap()
                + l["usage"]["output_tokens"].as_u64().unwrap()
        })
        .sum();
    assert!(spent <= 7000, "spent {spent}");
    assert_eq!(ledgers.len(), 1, "{stdout}");
    assert_eq!(ledger_requests.load(Ordering::SeqCst), 1);
    let fell = of_type(&events, "flowmind_fell_back");
    assert_eq!(fell.len(), 1, "{stdout}");
    assert!(
        fell[0]["why"]
            .as_str()
            .unwrap()
            .contains("budget of 7000 tokens"),
        "{fell:?}"
    );
    assert!(stdout.contains("FlowMind's model stopped"), "{stdout}");
    // `lev show` counts the controller's tokens apart from the agents'.
    let shown = lev.run(&["show", &run]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("FlowMind: 3030 tokens of its own"),
        "{shown}"
    );
}

/// A workflow's own `flowmind:` is FlowMind's setting for its runs: it
/// turns the model on while the config says rules only, and off while the
/// config says model.
#[test]
fn a_workflow_s_flowmind_block_wins_over_the_config() {
    let (server, _) = wandering(false, 100);
    let lev = lev_with(&server, "flowmind: { model: fm-model }\n");
    let wf = lev.write_workflow(&format!(
        "{WORKFLOW}flowmind:\n  mode: model\n  cadence: 1\n  stalls: 2\n"
    ));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    assert!(of_type(&events, "flowmind_ledger").len() >= 2, "{stdout}");
    assert_eq!(of_type(&events, "flowmind_decided")[0]["rule"], "ledger");

    let lev = lev_with(
        &server,
        "flowmind: { mode: model, model: fm-model, cadence: 1 }\n",
    );
    let wf = lev.write_workflow(&format!("{WORKFLOW}flowmind: {{ mode: off }}\n"));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    assert!(of_type(&events, "flowmind_ledger").is_empty(), "{stdout}");
    assert!(of_type(&events, "flowmind_decided").is_empty(), "{stdout}");
}

#[test]
fn a_bad_flowmind_block_is_an_error_with_its_place() {
    let lev = Lev::new();
    let wf = lev.write_workflow(&format!(
        "{WORKFLOW}flowmind:\n  mode: sometimes\n  conductor: {{ categories: [naming, vibes], confidence: 2 }}\n  cadense: 3\n"
    ));
    let out = lev.run(&["validate", &wf.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(stderr.contains("wf.yaml:12:9"), "{stderr}");
    assert!(stderr.contains("flowmind.mode"), "{stderr}");
    assert!(
        stderr.contains("flowmind.conductor.categories[1]"),
        "{stderr}"
    );
    assert!(stderr.contains("flowmind.conductor.confidence"), "{stderr}");
    assert!(stderr.contains("cadense"), "{stderr}");
}

/// A ledger that finds the agent progressing but cannot see what it needs
/// puts its question into the agent's conversation, once: journaled first
/// (`flowmind_decided`, level `ask`, counted against `max_questions`), then
/// delivered before its next request; the agent's next words answer it.
#[test]
fn the_model_s_question_reaches_the_agent_once_and_is_answered() {
    let question = "Which note did you expect the date in?";
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        if is_ledger(req) {
            let ledger = serde_json::json!({
                "satisfied": false, "looping": false, "progressing": true,
                "next": "agent", "instruction": "", "question": question,
                "reason": "It reads the notes in order."
            });
            return OpenAiSse::new("fm-model")
                .text(&ledger.to_string(), 1)
                .usage(100, 30)
                .finish("stop")
                .reply();
        }
        let asked = msgs
            .iter()
            .any(|m| m["role"] == "user" && m["content"].as_str().unwrap_or("").contains(question));
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
        if asked {
            return OpenAiSse::new("test-model")
                .text("I expected it in notes3.txt; it is not there.", 2)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                &format!(r#"{{"path":"notes{n}.txt"}}"#),
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    });
    let lev = lev_with(
        &server,
        "flowmind: { mode: model, model: fm-model, cadence: 1, stalls: 2 }\n",
    );
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let decided = of_type(&events, "flowmind_decided");
    assert_eq!(decided.len(), 1, "asked more than once: {decided:?}");
    assert_eq!(decided[0]["level"], "ask");
    assert_eq!(decided[0]["text"], question);
    let messaged = of_type(&events, "agent_messaged");
    assert_eq!(messaged.len(), 1, "{messaged:?}");
    assert!(
        messaged[0]["text"].as_str().unwrap().ends_with(question),
        "{messaged:?}"
    );
    assert!(messaged[0]["_seq"].as_u64() > decided[0]["_seq"].as_u64());
    assert!(
        stdout.contains(&format!("FlowMind asks look: {question}")),
        "{stdout}"
    );
    let ended = of_type(&events, "step_succeeded");
    assert_eq!(
        ended[0]["outputs"]["text"],
        "I expected it in notes3.txt; it is not there."
    );
}

/// A ledger that sees work outside the agent's task proposes it as a
/// follow-up, once per step: journaled (`flowmind_proposed`), decided with
/// the agent's own proposals when the step succeeds — under the workflow's
/// limits and approvals (`followups.auto` here) — and run as a step.
#[test]
fn the_model_s_follow_up_is_decided_and_run_like_an_agent_s() {
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        if is_ledger(req) {
            let ledger = serde_json::json!({
                "satisfied": false, "looping": false, "progressing": true,
                "next": "agent", "instruction": "", "question": "",
                "followup": {"title": "Add the release date to notes0.txt", "mode": "ask",
                             "why": "No note has it, and the next agent will look again."},
                "reason": "It reads the notes in order."
            });
            return OpenAiSse::new("fm-model")
                .text(&ledger.to_string(), 1)
                .usage(100, 30)
                .finish("stop")
                .reply();
        }
        let brief = msgs
            .iter()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        if brief.contains("Why this is needed") {
            return OpenAiSse::new("test-model")
                .text("The date is not known; noted that.", 2)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
        if n >= 3 {
            // FlowMind's proposal must reach the step while it runs: the
            // final answer takes its time.
            return OpenAiSse::new("test-model")
                .text("No note gives a date.", 2)
                .usage(10, 5)
                .finish("stop")
                .reply()
                .insert(0, support::llm_server::Action::Delay(1500));
        }
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                &format!(r#"{{"path":"notes{n}.txt"}}"#),
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    });
    let lev = lev_with(
        &server,
        "flowmind: { mode: model, model: fm-model, cadence: 1, stalls: 2 }\n",
    );
    let wf = lev.write_workflow(&WORKFLOW.replace(
        "name: Wander\n",
        "name: Wander\nfollowups: { propose: true, auto: true }\n",
    ));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let proposed = of_type(&events, "flowmind_proposed");
    assert_eq!(proposed.len(), 1, "proposed more than once: {proposed:?}");
    assert_eq!(proposed[0]["step"], "look");
    let spawned = of_type(&events, "followup_spawned");
    assert_eq!(spawned.len(), 1, "{stdout}");
    assert_eq!(spawned[0]["by"], "flowmind");
    assert_eq!(spawned[0]["parent"], "look");
    assert_eq!(spawned[0]["title"], "Add the release date to notes0.txt");
    let child = spawned[0]["step"].as_str().unwrap().to_string();
    assert!(
        of_type(&events, "step_succeeded")
            .iter()
            .any(|e| e["step"] == child.as_str()),
        "{stdout}"
    );
    assert!(
        stdout.contains("FlowMind proposes a follow-up of look: Add the release date"),
        "{stdout}"
    );
}
