//! Adaptive whispers: what the user does with what FlowMind raises is
//! counted per category in the journal across runs (`lev whispers`), a
//! category mostly dismissed is raised less, and `--reset` forgets.

mod support;

use serde_json::Value;
use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn scores(lev: &Lev) -> Vec<Value> {
    let out = lev.run(&["whispers", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn score(lev: &Lev, category: &str) -> (u64, u64, u64) {
    scores(lev)
        .iter()
        .find(|s| s["category"] == category)
        .map(|s| {
            (
                s["accepted"].as_u64().unwrap(),
                s["edited"].as_u64().unwrap(),
                s["dismissed"].as_u64().unwrap(),
            )
        })
        .unwrap_or_default()
}

/// An agent that asks which name style to use; FlowMind's model answers
/// `snake_case`, `confidence` sure.
fn asking_agent(confidence: f64) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        if msgs[0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("An agent asked its user a question")
        {
            let proposal = serde_json::json!({"answer": "snake_case", "confidence": confidence,
                "category": "naming", "reason": "The code uses it."});
            return OpenAiSse::new("fm")
                .text(&proposal.to_string(), 1)
                .usage(100, 10)
                .finish("stop")
                .reply();
        }
        if msgs.iter().any(|m| m["role"] == "tool") {
            return OpenAiSse::new("test-model")
                .text("done", 1)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                "call_1",
                "ask_user",
                r#"{"question":"snake_case or camelCase?"}"#,
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

const ASKING: &str = r#"
version: 1
kind: workflow
id: naming
steps:
  name:
    mode: ask
    max_turns: 4
    prompt: Pick a name style.
"#;

#[test]
fn answers_accepted_or_dismissed_are_counted_across_runs_and_reset() {
    let lev = Lev::new();
    // Offered only (below the threshold): headless, the default answers it.
    let server = asking_agent(0.5);
    let lev = Lev {
        env: Lev::new().with_openai(&server.base_url()).env,
        ..lev
    };
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "flowmind: { mode: model, model: fm, cadence: 100, conductor: { categories: [naming], grace_ms: 200 } }\n",
    )
    .unwrap();
    let wf = lev.write_workflow(ASKING);
    for _ in 0..2 {
        let out = lev.run_headless(&wf, &[]);
        assert!(out.status.success());
    }
    // Each run is its own process: the counts are the journal's.
    assert_eq!(score(&lev, "answer:naming"), (0, 0, 2));
    // Sure enough: FlowMind answers, and its answer stands.
    drop(server);
    let server = asking_agent(0.95);
    let lev = Lev {
        env: Lev::new().with_openai(&server.base_url()).env,
        ..lev
    };
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    assert_eq!(
        of_type(&lev.events(&run), "question_answered")[0]["source"],
        "flowmind"
    );
    assert_eq!(score(&lev, "answer:naming"), (1, 0, 2));
    let shown = lev.run(&["whispers"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("answer:naming"), "{shown}");
    // Forgotten on request.
    let reset = lev.run(&["whispers", "--reset", "answer:naming"]);
    assert!(reset.status.success());
    assert_eq!(score(&lev, "answer:naming"), (0, 0, 0));
}

/// Reads `notes.txt` again and again and never listens.
fn stuck_agent() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let n = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .count();
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                r#"{"path":"notes.txt"}"#,
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

#[test]
fn a_stuck_agent_you_keep_ignoring_is_handed_to_you_less_often() {
    let server = stuck_agent();
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing\n").unwrap();
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: stuck\nsteps:\n  look:\n    mode: ask\n    max_turns: 10\n    prompt: Find it.\n",
    );
    let escalations = |stdout: &str| {
        let run = run_id_from(stdout).unwrap();
        of_type(&lev.events(&run), "flowmind_decided")
            .iter()
            .filter(|d| d["level"] == "escalate")
            .count()
    };
    // Five times handed to the user, five times left alone (the step ended
    // without a message, a pause or a cancel).
    for _ in 0..5 {
        let out = lev.run_headless(&wf, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(escalations(&stdout), 1, "{stdout}");
    }
    assert_eq!(score(&lev, "stuck:loop"), (0, 0, 5));
    // Now raised one time in four: the next run is held back; the agent is
    // still told (instructions are never held back).
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(escalations(&stdout), 0, "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    assert_eq!(
        of_type(&lev.events(&run), "flowmind_decided")[0]["level"],
        "instruct"
    );
    let shown = lev.run(&["whispers"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("raises 1 in 4"), "{shown}");
}
