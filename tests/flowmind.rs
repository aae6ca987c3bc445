//! FlowMind's deterministic rules on a live run: an agent that calls the
//! same tool with the same arguments again and again is told so (a message
//! in its conversation, journaled as FlowMind's decision first), and when
//! it goes on, the user is told; a resumed run decides nothing twice.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: stuck
name: Stuck
steps:
  look:
    mode: ask
    max_turns: 12
    prompt: Find the answer in notes.txt.
"#;

/// Reads `notes.txt` again and again; when `listens`, it stops once
/// FlowMind's message is in its conversation — after a minute while `hang`
/// is set.
fn stuck_agent(listens: bool, hang: Option<Arc<AtomicBool>>) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let told = msgs.iter().any(|m| {
            m["role"] == "user" && m["content"].as_str().unwrap_or("").contains("FlowMind")
        });
        if listens && told {
            let reply = OpenAiSse::new("test-model")
                .text("The notes do not say; I stop here.", 2)
                .usage(10, 5)
                .finish("stop")
                .reply();
            return match &hang {
                Some(h) if h.load(Ordering::SeqCst) => {
                    reply.insert(0, support::llm_server::Action::Delay(60_000))
                }
                _ => reply,
            };
        }
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
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
fn a_looping_agent_is_told_and_stops() {
    let server = stuck_agent(true, None);
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing here\n").unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let decided = of_type(&events, "flowmind_decided");
    assert_eq!(decided.len(), 1, "{stdout}");
    assert_eq!(decided[0]["level"], "instruct");
    assert_eq!(decided[0]["rule"], "loop");
    assert_eq!(decided[0]["step"], "look");
    // Journaled before the message that carries it reached the agent.
    let messaged = of_type(&events, "agent_messaged");
    assert_eq!(messaged.len(), 1);
    assert!(messaged[0]["_seq"].as_u64() > decided[0]["_seq"].as_u64());
    assert!(
        messaged[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("FlowMind (lev's controller): You have called `read_file`"),
        "{messaged:?}"
    );
    assert!(stdout.contains("FlowMind → look (loop:"), "{stdout}");
    // Three reads, then the request that carries the message (one more
    // read may come first: FlowMind decides beside the agent, not in its
    // way), then nothing: the agent answered.
    let requests = server.request_count();
    assert!((4..=5).contains(&requests), "{requests} requests");
}

#[test]
fn an_agent_that_goes_on_is_handed_to_the_user() {
    let server = stuck_agent(false, None);
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing here\n").unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let levels: Vec<String> = of_type(&events, "flowmind_decided")
        .iter()
        .map(|e| e["level"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(levels, ["instruct", "escalate"], "{stdout}");
    assert!(stdout.contains("! FlowMind: look looks stuck"), "{stdout}");
    // `lev show` lists FlowMind's decisions with the run's other notices.
    let shown = lev.run(&["show", &run]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("FlowMind → look (loop:"), "{shown}");
    assert!(shown.contains("FlowMind: look looks stuck"), "{shown}");
}

#[test]
fn mode_off_in_the_config_turns_the_controller_off() {
    let server = stuck_agent(true, None);
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing here\n").unwrap();
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "flowmind: { mode: off }\n",
    )
    .unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    assert!(of_type(&lev.events(&run), "flowmind_decided").is_empty());
    // Nobody told it: it read until its turns ran out.
    assert_eq!(server.request_count(), 12);
}

/// Killed after FlowMind's instruction was journaled, the run resumes
/// without the controller instructing again for the same stall.
#[test]
fn a_resumed_run_does_not_decide_twice() {
    use std::time::Duration;
    use support::kill::{kill9, only_run, wait_for};
    let hang = Arc::new(AtomicBool::new(true));
    let server = stuck_agent(true, Some(hang.clone()));
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing here\n").unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let mut child = lev.spawn_headless(&wf, &[]);
    wait_for("the instructed request", Duration::from_secs(60), || {
        server.requests().iter().any(|r| {
            r.json.as_ref().unwrap()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["content"].as_str().unwrap_or("").contains("FlowMind"))
        })
    });
    kill9(&mut child);
    hang.store(false, Ordering::SeqCst);
    let run = only_run(&lev).unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let decided = of_type(&lev.events(&run), "flowmind_decided");
    assert_eq!(
        decided.len(),
        1,
        "decided again after the resume: {decided:?}"
    );
}

/// An instruction journaled but not delivered (a crash between the two) is
/// what a resumed agent gets first; a delivered one is not sent again.
#[test]
fn an_instruction_a_crash_kept_from_its_agent_waits_for_it() {
    use lev::protocol::{Attempt, Event, FlowmindLevel, Millis, Recorded, RunId, Seq, StepKey};
    use lev::workflow::history::History;
    let run = RunId::new();
    let at = |seq: u64, event: Event| Recorded {
        run: run.clone(),
        seq: Seq(seq),
        event,
    };
    let step = StepKey::new("look");
    let decided = at(
        1,
        Event::FlowmindDecided {
            step: step.clone(),
            rule: "loop".into(),
            observed: "`read_file` called with the same arguments 3 times in a row".into(),
            level: FlowmindLevel::Instruct,
            text: "Stop repeating it.".into(),
            at: Millis(0),
        },
    );
    let history = History::from_events([&decided]);
    let waiting = &history.flowmind_undelivered[&step];
    assert_eq!(
        waiting,
        &["FlowMind (lev's controller): Stop repeating it.".to_string()]
    );
    let delivered = at(
        2,
        Event::AgentMessaged {
            step: step.clone(),
            attempt: Attempt(1),
            turn: 4,
            text: waiting[0].clone(),
            at: Millis(0),
        },
    );
    let history = History::from_events([&decided, &delivered]);
    assert!(history.flowmind_undelivered[&step].is_empty());
}

/// An agent whose model stops answering mid-run (no token for longer than
/// `silence_ms`) is handed to the user once, while the run goes on.
#[test]
fn an_agent_whose_model_hangs_is_handed_to_the_user() {
    use std::time::Duration;
    use support::kill::{kill9, only_run, wait_for};
    let server = LlmServer::with(|_req: &RecordedRequest| {
        OpenAiSse::new("test-model")
            .text("Still thinking", 1)
            .usage(10, 5)
            .finish("stop")
            .reply()
            .insert(0, support::llm_server::Action::Delay(60_000))
    });
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "flowmind: { silence_ms: 1500 }\n",
    )
    .unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let mut child = lev.spawn_headless(&wf, &[]);
    wait_for("the run", Duration::from_secs(30), || {
        only_run(&lev).is_some()
    });
    let run = only_run(&lev).unwrap();
    let mut decided = Vec::new();
    wait_for(
        "FlowMind's word on the silence",
        Duration::from_secs(30),
        || {
            decided = of_type(&lev.events(&run), "flowmind_decided");
            !decided.is_empty()
        },
    );
    // Once per silence: a few more seconds of it add nothing.
    std::thread::sleep(Duration::from_millis(2500));
    let decided = of_type(&lev.events(&run), "flowmind_decided");
    kill9(&mut child);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["rule"], "silence");
    assert_eq!(decided[0]["level"], "escalate");
    assert_eq!(decided[0]["step"], "look");
    assert!(
        decided[0]["observed"]
            .as_str()
            .unwrap()
            .starts_with("no token, tool call or reply for "),
        "{decided:?}"
    );
}

/// A provider that keeps failing (HTTP 503) is the fallback rules' too: the
/// agent is handed to the user once, with what failed, while lev retries —
/// and the run still finishes when a retry goes through.
#[test]
fn an_agent_whose_provider_keeps_failing_is_handed_to_the_user_once() {
    use support::llm_server::Reply;
    let overloaded = || {
        Reply::new(503)
            .header("content-type", "application/json")
            .then(support::llm_server::Action::Raw(
                br#"{"error":{"message":"the server is overloaded","type":"server_error"}}"#
                    .to_vec(),
            ))
    };
    let server = LlmServer::script(vec![
        overloaded(),
        overloaded(),
        overloaded(),
        overloaded(),
        OpenAiSse::new("test-model")
            .text("Found it.", 2)
            .usage(10, 5)
            .finish("stop")
            .reply(),
    ]);
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "retry: { max_attempts: 6, initial_delay_ms: 50, max_delay_ms: 200 }\n",
    )
    .unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let decided = of_type(&lev.events(&run), "flowmind_decided");
    assert_eq!(decided.len(), 1, "{stdout}");
    assert_eq!(decided[0]["rule"], "retries");
    assert_eq!(decided[0]["level"], "escalate");
    let observed = decided[0]["observed"].as_str().unwrap();
    assert!(
        observed.contains("failed 3 times in a row") && observed.contains("overloaded"),
        "{observed}"
    );
    assert!(
        stdout.contains("! FlowMind: look looks stuck (retries:"),
        "{stdout}"
    );
    assert_eq!(server.request_count(), 5);
}
