//! Steering a live run from another terminal, end to end: the real `lev`
//! binary executing a run, a second `lev` sending ops through its control
//! socket, and the loopback LLM server seeing what the agent asks.
//! Agents are kept busy by a shell command that waits for a file the test
//! creates, never by sleeping.

mod support;

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::lev::Lev;
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest};

const MSG: &str = "STEER-7: prefer tabs over spaces";

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// An agent step (mode coder, may run shell) followed by a shell step.
const YAML: &str = r#"
version: 1
kind: workflow
id: steer
name: Steer
steps:
  work:
    mode: coder
    prompt: Do the work.
  after:
    type: shell
    needs: [work]
    run: echo after
"#;

/// The gate command: runs until the test creates `go` in the workspace.
const GATE: &str = "while [ ! -f go ]; do sleep 0.05; done; echo gate open";

fn messages(req: &RecordedRequest) -> Vec<Value> {
    req.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

/// Turn 1 runs the gate; later turns answer (after `hold_ms` when the
/// request carries the user's message and `hold_ms` is set).
fn gated_server(hold_first_message: bool) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        let msgs = messages(req);
        let m = "test-model";
        let assistant_turns = msgs.iter().filter(|x| x["role"] == "assistant").count();
        if assistant_turns == 0 {
            let args = json!({ "command": GATE }).to_string();
            return OpenAiSse::new(m)
                .tool_call(0, "call_gate", "run_shell", &args, 2)
                .usage(10, 5)
                .finish("tool_calls")
                .reply();
        }
        let sse = OpenAiSse::new(m);
        // The first request that carries the message is held open, so the
        // test can kill lev while it is in flight.
        let sse = if hold_first_message && req.seq == 1 {
            sse.action(Action::Delay(60_000))
        } else {
            sse
        };
        sse.text("all done", 2).usage(10, 5).finish("stop").reply()
    })
}

fn spawn(lev: &Lev, args: &[&str]) -> Child {
    let path = lev.dir.path().join("wf.yaml");
    if !path.exists() {
        std::fs::write(&path, YAML).unwrap();
    }
    let ws = lev.workspace().display().to_string();
    let mut all = args.to_vec();
    all.extend(["--headless", "--allow-shell", "--workspace", &ws]);
    lev.spawn(&all)
}

fn wf(lev: &Lev) -> String {
    lev.dir.path().join("wf.yaml").display().to_string()
}

/// Polls the run's journal (through the running process's socket) until
/// `pred` holds for its events; returns the run id.
fn wait_events(
    lev: &Lev,
    run: Option<&str>,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id = match run {
            Some(r) => Some(r.to_string()),
            None => {
                let out = lev.run(&["runs", "--json"]);
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .and_then(|l| serde_json::from_str::<Value>(l).ok())
                    .and_then(|v| v["id"].as_str().map(str::to_string))
            }
        };
        if let Some(id) = id
            && pred(&lev.events(&id))
        {
            return id;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has(events: &[Value], ty: &str) -> bool {
    events.iter().any(|e| e["type"] == ty)
}

fn count(events: &[Value], ty: &str) -> usize {
    events.iter().filter(|e| e["type"] == ty).count()
}

fn gate_started(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["type"] == "tool_started" && e["name"] == "run_shell")
}

fn open_gate(lev: &Lev) {
    std::fs::write(lev.workspace().join("go"), "").unwrap();
}

#[test]
fn a_message_reaches_the_agents_next_request_and_survives_kill_and_resume() {
    let server = gated_server(true);
    let lev = Lev::new().with_openai(&server.base_url());
    let mut child = spawn(&lev, &["run", &wf(&lev)]);
    let run = wait_events(&lev, None, "the gate to start", gate_started);

    // Steps that are not running agents refuse, with a reason.
    let wrong = lev.run(&["message", &run, "after", "hi"]);
    assert_eq!(wrong.status.code(), Some(1), "{:?}", text(&wrong));
    assert!(text(&wrong).1.contains("not started"), "{:?}", text(&wrong));

    let sent = lev.run(&["message", &run, "work", MSG]);
    assert!(sent.status.success(), "{:?}", text(&sent));
    open_gate(&lev);

    // The next request carries the message as a user message.
    assert!(server.wait_for_requests(2, Duration::from_secs(30)));
    let second = &server.requests()[1];
    let last = messages(second).last().cloned().unwrap();
    assert_eq!(last["role"], "user", "{}", second.body);
    assert_eq!(last["content"], MSG, "{}", second.body);
    let events = lev.events(&run);
    let delivered: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "agent_messaged")
        .collect();
    assert_eq!(delivered.len(), 1, "{events:?}");
    assert_eq!(delivered[0]["turn"], 2);
    assert_eq!(delivered[0]["text"], MSG);

    // kill -9 while that request is in flight, then resume.
    child.kill().unwrap();
    child.wait().unwrap();
    let out = lev.run(&["resume", &run, "--headless", "--allow-shell"]);
    assert!(out.status.success(), "{:?}", text(&out));

    // Turn 1 was recorded, so it is not asked again; turn 2 is asked once
    // more, rebuilt exactly (message included), and nothing else.
    let reqs = server.requests();
    assert_eq!(
        reqs.len(),
        3,
        "{:?}",
        reqs.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(reqs[2].json, reqs[1].json);
    let events = lev.events(&run);
    assert_eq!(count(&events, "agent_messaged"), 1, "{events:?}");
    assert_eq!(lev.show(&run)["status"], "succeeded");
    // The transcript shows the delivery.
    assert!(
        lev.replay(&run)
            .contains(&format!("step work: message before turn 2: {MSG}"))
    );
}

#[test]
fn pause_holds_the_agent_until_unpaused() {
    let server = gated_server(false);
    let lev = Lev::new().with_openai(&server.base_url());
    let child = spawn(&lev, &["run", &wf(&lev)]);
    let run = wait_events(&lev, None, "the gate to start", gate_started);

    let paused = lev.run(&["pause", &run]);
    assert!(paused.status.success(), "{:?}", text(&paused));
    wait_events(&lev, Some(&run), "the pause", |e| has(e, "pause_requested"));
    // The running shell command is not held: it finishes while paused.
    open_gate(&lev);
    wait_events(&lev, Some(&run), "the gate to finish", |e| {
        has(e, "tool_finished")
    });
    // Held at the turn boundary: several round trips later, still one request.
    for _ in 0..5 {
        assert_eq!(count(&lev.events(&run), "llm_replied"), 1);
        assert_eq!(server.request_count(), 1);
    }
    assert_eq!(lev.show(&run)["status"], "running");

    let go = lev.run(&["unpause", &run]);
    assert!(go.status.success(), "{:?}", text(&go));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(server.request_count(), 2);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("run paused by the user"), "{stdout}");
    assert!(stdout.contains("run unpaused"), "{stdout}");
    assert_eq!(lev.show(&run)["status"], "succeeded");
}

#[test]
fn emergency_stop_ends_the_run_paused_and_resume_completes_it() {
    let server = gated_server(false);
    let lev = Lev::new().with_openai(&server.base_url());
    let child = spawn(&lev, &["run", &wf(&lev)]);
    let run = wait_events(&lev, None, "the gate to start", gate_started);

    let stop = lev.run(&["stop", &run]);
    assert!(stop.status.success(), "{:?}", text(&stop));
    let out = child.wait_with_output().unwrap();
    // Exit 3: paused, resumable.
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "paused");
    assert!(
        show["error"].as_str().unwrap().contains("emergency stop"),
        "{show}"
    );
    let events = lev.events(&run);
    assert!(has(&events, "emergency_stopped"), "{events:?}");
    // Stopped, not cancelled: nothing recorded the step as over.
    assert!(!has(&events, "step_cancelled"), "{events:?}");
    assert!(!has(&events, "step_failed"), "{events:?}");
    let paused = events.iter().find(|e| e["type"] == "run_paused").unwrap();
    assert_eq!(paused["reason"]["kind"], "emergency_stop");

    // The stopped shell command was interrupted: resume runs it again.
    open_gate(&lev);
    let out = lev.run(&[
        "resume",
        &run,
        "--headless",
        "--allow-shell",
        "--in-flight",
        "rerun",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    // Turn 1 was recorded before the stop: only turn 2 is new.
    assert_eq!(server.request_count(), 2);
}

#[test]
fn steering_a_run_no_process_executes_says_so() {
    let lev = Lev::new();
    let out = lev.run(&["pause", "01NOSUCHRUN"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("not being executed"),
        "{:?}",
        text(&out)
    );
    let out = lev.run(&["message", "01NOSUCHRUN", "s", "  "]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
}

#[test]
fn one_agent_pauses_alone_and_shell_steps_refuse_to() {
    let server = gated_server(false);
    let lev = Lev::new().with_openai(&server.base_url());
    let child = spawn(&lev, &["run", &wf(&lev)]);
    let run = wait_events(&lev, None, "the gate to start", gate_started);

    let wrong = lev.run(&["pause", &run, "--step", "after"]);
    assert_eq!(wrong.status.code(), Some(1), "{:?}", text(&wrong));
    let paused = lev.run(&["pause", &run, "--step", "work"]);
    assert!(paused.status.success(), "{:?}", text(&paused));
    wait_events(&lev, Some(&run), "the pause", |e| {
        e.iter()
            .any(|x| x["type"] == "pause_requested" && x["step"] == "work")
    });
    open_gate(&lev);
    wait_events(&lev, Some(&run), "the gate to finish", |e| {
        has(e, "tool_finished")
    });
    for _ in 0..5 {
        assert_eq!(count(&lev.events(&run), "llm_replied"), 1);
        assert_eq!(server.request_count(), 1);
    }
    let go = lev.run(&["unpause", &run, "--step", "work"]);
    assert!(go.status.success(), "{:?}", text(&go));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(server.request_count(), 2);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("step work: paused by the user"), "{stdout}");
    assert!(stdout.contains("step work: unpaused"), "{stdout}");
}

#[test]
fn a_recorded_turn_that_carried_a_message_replays_without_divergence() {
    // Turn 1 and turn 2 each run a gate; turn 3 answers.
    let server = LlmServer::with(|req: &RecordedRequest| {
        let turns = messages(req)
            .iter()
            .filter(|x| x["role"] == "assistant")
            .count();
        let sse = OpenAiSse::new("test-model");
        let gate = |file: &str| {
            json!({ "command": format!("while [ ! -f {file} ]; do sleep 0.05; done") }).to_string()
        };
        match turns {
            0 => sse.tool_call(0, "call_1", "run_shell", &gate("go"), 1),
            1 => sse.tool_call(0, "call_2", "run_shell", &gate("go2"), 1),
            _ => sse.text("all done", 1),
        }
        .usage(10, 5)
        .finish("stop")
        .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let mut child = spawn(&lev, &["run", &wf(&lev)]);
    let run = wait_events(&lev, None, "the first gate", gate_started);
    let sent = lev.run(&["message", &run, "work", MSG]);
    assert!(sent.status.success(), "{:?}", text(&sent));
    open_gate(&lev);
    wait_events(&lev, Some(&run), "the second gate", |e| {
        e.iter()
            .any(|x| x["type"] == "tool_started" && x["call_id"] == "call_2")
    });
    child.kill().unwrap();
    child.wait().unwrap();

    std::fs::write(lev.workspace().join("go2"), "").unwrap();
    let out = lev.run(&[
        "resume",
        &run,
        "--headless",
        "--allow-shell",
        "--in-flight",
        "rerun",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    // Turn 2's request (with the message) was rebuilt to the recorded
    // fingerprint, so its reply was reused: one new request, for turn 3.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let last = &reqs[2];
    assert!(last.body.contains(MSG), "{}", last.body);
    let events = lev.events(&run);
    assert!(!has(&events, "run_paused"), "{events:?}");
    assert_eq!(count(&events, "agent_messaged"), 1);
    assert_eq!(lev.show(&run)["status"], "succeeded");
}
