//! Context assembly: what an agent's request was made of is journaled per
//! turn (parts, tokens, what was cut to fit the budget), and what `lev show
//! --context` says equals what the provider received, part by part.

mod support;

use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

/// A mode with a small budget that reads the run's memory.
const TINY_MODE: &str = r#"version: 1
kind: mode
id: tiny
name: Tiny
role: You summarise files.
tools:
  allow: [read_file, memory_store]
context:
  include: ["memory://run/current"]
  token_budget: 2000
"#;

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: ctx
name: Context
steps:
  a:
    type: shell
    run: echo hello-from-a
  notes:
    mode: tiny
    prompt: Remember the team's style.
  sum:
    needs: [a, notes]
    mode: tiny
    prompt: "Summarise big.txt and small.txt. Upstream said: ${{ steps.a.outputs.stdout }}"
"#;

fn messages(req: &RecordedRequest) -> Vec<Value> {
    req.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

fn call(name: &str, args: Value) -> support::llm_server::Reply {
    OpenAiSse::new("test-model")
        .tool_call(0, "call_1", name, &args.to_string(), 1)
        .usage(10, 5)
        .finish("tool_calls")
        .reply()
}

fn text(t: &str) -> support::llm_server::Reply {
    OpenAiSse::new("test-model")
        .text(t, 1)
        .usage(10, 5)
        .finish("stop")
        .reply()
}

fn first_user(req: &RecordedRequest) -> String {
    messages(req).iter().find(|m| m["role"] == "user").unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The notes agent stores one note; the summariser reads two files.
fn server_reply(req: &RecordedRequest) -> support::llm_server::Reply {
    let first = first_user(req);
    let replies = messages(req)
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count();
    if first.starts_with("Remember") {
        return match replies {
            0 => call(
                "memory_store",
                json!({"key": "style", "text": "The team indents with tabs, never spaces.", "namespace": "run"}),
            ),
            _ => text("stored"),
        };
    }
    match replies {
        0 => call("read_file", json!({"path": "big.txt"})),
        1 => call("read_file", json!({"path": "small.txt"})),
        _ => text("Both files list numbers."),
    }
}

fn server() -> LlmServer {
    LlmServer::with(server_reply)
}

fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[test]
fn the_inspector_shows_the_parts_the_provider_received() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let ws = lev.workspace();
    std::fs::create_dir_all(ws.join(".lev/modes")).unwrap();
    std::fs::write(ws.join(".lev/modes/tiny.yaml"), TINY_MODE).unwrap();
    let big: String = (0..300)
        .map(|i| format!("line {i:04} of the big file, with some words\n"))
        .collect();
    std::fs::write(ws.join("big.txt"), &big).unwrap();
    std::fs::write(ws.join("small.txt"), "one\ntwo\n").unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    assert!(stdout.contains("step sum: turn 3 context:"), "{stdout}");
    assert!(stdout.contains("of a 2000-token budget"), "{stdout}");

    let shown = lev.run(&["show", &run, "--context", "sum", "--json"]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["turn"], 3);
    assert_eq!(shown["turns"], json!([1, 2, 3]));
    assert_eq!(shown["counter"], "estimate: 4 characters a token");
    let parts = shown["parts"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in [
        "role",
        "prompt",
        "${{ steps.a.outputs.stdout }}",
        "memory://run/current",
        "turn 1 reply",
        "call read_file (turn 1)",
        "turn 1 read_file",
        "turn 2 read_file",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let part = |name: &str| parts.iter().find(|p| p["name"] == name).unwrap();
    assert_eq!(
        part("${{ steps.a.outputs.stdout }}")["text"],
        "hello-from-a"
    );
    assert!(
        part("memory://run/current")["text"]
            .as_str()
            .unwrap()
            .contains("indents with tabs")
    );
    // The older read was cut to fit; the newest is whole.
    let older = part("turn 1 read_file");
    assert!(
        older["note"].as_str().unwrap().starts_with("cut from "),
        "{older}"
    );
    assert!(part("turn 2 read_file")["note"].is_null());

    // What the provider received at turn 3, part by part.
    let turn3 = server
        .requests()
        .into_iter()
        .rfind(|r| {
            messages(r)
                .iter()
                .filter(|m| m["role"] == "assistant")
                .count()
                == 2
        })
        .unwrap();
    let got = messages(&turn3);
    let joined = |kinds: &[&str], from: usize, to: usize| -> String {
        parts[from..to]
            .iter()
            .filter(|p| kinds.contains(&p["kind"].as_str().unwrap()))
            .map(|p| p["text"].as_str().unwrap())
            .collect()
    };
    let system_parts = parts.iter().take_while(|p| p["kind"] == "system").count();
    assert_eq!(got[0]["role"], "system");
    assert_eq!(got[0]["content"], joined(&["system"], 0, system_parts));
    let first_end = parts
        .iter()
        .position(|p| p["name"] == "turn 1 reply")
        .unwrap();
    assert_eq!(
        got[1]["content"],
        joined(
            &["prompt", "upstream", "memory", "message"],
            system_parts,
            first_end
        )
    );
    let cut_output = got.iter().find(|m| m["role"] == "tool").unwrap()["content"]
        .as_str()
        .unwrap();
    assert_eq!(cut_output, older["text"].as_str().unwrap());
    assert!(cut_output.contains("tokens cut to fit the context budget"));
    // Each part's count is its text's, and they add up to the total.
    let mut total = 0;
    for p in parts {
        let t = p["text"].as_str().unwrap();
        assert_eq!(p["tokens"].as_u64().unwrap(), estimate(t), "{}", p["name"]);
        total += p["tokens"].as_u64().unwrap();
    }
    assert_eq!(shown["total"].as_u64().unwrap(), total);

    // The text form names every part with its tokens.
    let text = lev.run(&["show", &run, "--context", "sum", "--turn", "1"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("step sum attempt 1 turn 1 (turns 1, 2, 3)"),
        "{text}"
    );
    assert!(text.contains("${{ steps.a.outputs.stdout }}"), "{text}");
    assert!(text.contains("hello-from-a"), "{text}");

    // Both agent steps' system prompt, at every turn, is one stored text.
    let export = lev.run(&["export", &run]);
    assert!(export.status.success());
    let with_role = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "blob")
        .filter(|l| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(l["b64"].as_str().unwrap())
                .unwrap();
            String::from_utf8_lossy(&bytes).contains("You summarise files.")
        })
        .count();
    assert_eq!(with_role, 1);
}

/// A run killed while an agent waits for its third reply resumes that
/// conversation with the memory notes it was sent before, even after the
/// note was deleted from the memory bank in between: notes are journaled
/// with the first request, not searched again.
#[test]
fn a_resumed_agent_is_sent_the_memory_notes_it_had_before() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use support::kill::{kill9, only_run, wait_for};
    use support::llm_server::Action;

    let hang = Arc::new(AtomicBool::new(true));
    let h = hang.clone();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let reply = server_reply(req);
        let msgs = messages(req);
        let replies = msgs.iter().filter(|m| m["role"] == "assistant").count();
        let first = first_user(req);
        if first.starts_with("Summarise") && replies == 2 && h.load(Ordering::SeqCst) {
            reply.insert(0, Action::Delay(60_000))
        } else {
            reply
        }
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let ws = lev.workspace();
    std::fs::create_dir_all(ws.join(".lev/modes")).unwrap();
    std::fs::write(ws.join(".lev/modes/tiny.yaml"), TINY_MODE).unwrap();
    std::fs::write(ws.join("big.txt"), "1\n2\n").unwrap();
    std::fs::write(ws.join("small.txt"), "one\ntwo\n").unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let mut child = lev.spawn_headless(&wf, &[]);
    let is_third = |r: &RecordedRequest| {
        first_user(r).starts_with("Summarise")
            && messages(r)
                .iter()
                .filter(|m| m["role"] == "assistant")
                .count()
                == 2
    };
    wait_for("the third request", Duration::from_secs(60), || {
        server.requests().iter().any(is_third)
    });
    kill9(&mut child);
    hang.store(false, Ordering::SeqCst);
    let run = only_run(&lev).unwrap();
    let before = server.requests().into_iter().find(is_third).unwrap();
    assert!(first_user(&before).contains("indents with tabs"));

    let namespace = format!("run:{run}");
    let rm = lev.run(&["memory", "rm", "style", "--namespace", &namespace]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let ls = lev.run(&["memory", "ls", "--namespace", &namespace]);
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("tabs"));

    let out = lev.run(&["resume", &run, "--headless"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let after = server.requests().into_iter().rfind(is_third).unwrap();
    assert_eq!(first_user(&after), first_user(&before));
    let shown = lev.run(&["show", &run, "--context", "sum", "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let memory = shown["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "memory://run/current")
        .unwrap();
    assert!(
        memory["text"]
            .as_str()
            .unwrap()
            .contains("indents with tabs")
    );
}
