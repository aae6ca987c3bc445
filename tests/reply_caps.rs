//! Caps on LLM reply size through the real `lev` binary and the loopback
//! server: a reply, a tool call's arguments or one server-sent event past
//! its cap fails the step with a message naming the setting, the stream is
//! abandoned (one request, not retried) and the journal stays small.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{Action, AnthropicSse, LlmServer, OpenAiSse, Reply};

/// Caps small enough that the test server's replies pass them many times.
const CONFIG: &str = "llm:\n  max_reply_bytes: 100000\n  max_tool_argument_bytes: 20000\n";

/// Bytes the server sends: far past the caps, so a lev that keeps it all
/// shows in the journal's size.
const HUGE: usize = 16 * 1024 * 1024;
const PIECE: usize = 8 * 1024;

fn with_anthropic(mut lev: Lev, base_url: &str) -> Lev {
    lev.env.push(("LEV_PROVIDER".into(), "anthropic".into()));
    lev.env.push(("ANTHROPIC_BASE_URL".into(), base_url.into()));
    lev.env.push((
        "ANTHROPIC_API_KEY".into(),
        "sk-ant-test-not-a-real-key".into(),
    ));
    lev.env.push(("LEV_MODEL".into(), "test-model".into()));
    lev
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Runs a one-agent workflow; returns the output and the step's error.
fn run_agent(lev: &Lev) -> (Output, String) {
    std::fs::write(lev.workspace().join("lev.yaml"), CONFIG).unwrap();
    let wf = lev.write_workflow("version: 1\nkind: workflow\nid: big\nname: Big\nsteps:\n  talk:\n    mode: architect\n    prompt: Say a lot.\n");
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = run_id_from(&stdout).unwrap_or_else(|| {
        panic!(
            "no run id: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let show = lev.show(&run);
    let step = show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "talk")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(step["status"], "failed", "{show}");
    (out, step["error"].as_str().unwrap_or_default().to_string())
}

fn check(lev: &Lev, server: &LlmServer, setting: &str, what: &str) {
    let (out, error) = run_agent(lev);
    assert!(!out.status.success());
    assert!(error.contains("reply too large"), "{error}");
    assert!(error.contains(setting), "{setting} not in {error}");
    assert!(error.contains(what), "{what} not in {error}");
    // Refused, not retried: the same request would get the same reply.
    assert_eq!(server.request_count(), 1);
    // The journal's fixed-size space reserve (`lev.redb.reserve`) is not
    // what the reply left behind.
    let reserve = std::fs::metadata(lev.data_dir().join("lev.redb.reserve")).map_or(0, |m| m.len());
    let size = dir_size(&lev.data_dir()) - reserve;
    assert!(
        size < 4 * 1024 * 1024,
        "data dir holds {size} bytes besides the reserve"
    );
}

fn openai_text_flood() -> Reply {
    let piece = "x".repeat(PIECE);
    let mut sse = OpenAiSse::new("test-model");
    for _ in 0..HUGE / PIECE {
        sse = sse.text(&piece, 1);
    }
    sse.usage(1, 1).finish("stop").reply()
}

#[test]
fn a_huge_openai_reply_fails_the_step_naming_the_cap() {
    let server = LlmServer::with(|_| openai_text_flood());
    let lev = Lev::new().with_openai(&server.base_url());
    check(
        &lev,
        &server,
        "llm.max_reply_bytes",
        "the reply text passed 100000 bytes",
    );
}

#[test]
fn huge_openai_tool_arguments_fail_the_step_naming_the_cap() {
    let server = LlmServer::with(|_| {
        let args = json!({"path": "a.txt", "content": "y".repeat(HUGE)}).to_string();
        OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "write_file", &args, HUGE / PIECE)
            .finish("tool_calls")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    check(
        &lev,
        &server,
        "llm.max_tool_argument_bytes",
        "the arguments of the tool call `write_file` passed 20000 bytes",
    );
}

#[test]
fn one_endless_server_sent_event_is_refused() {
    // One `data:` line that never ends: nothing for the JSON layer to see,
    // so only the event cap can stop it.
    let server = LlmServer::with(|_| {
        let mut actions = vec![Action::Raw(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec(),
        )];
        actions.extend((0..HUGE / PIECE).map(|_| Action::Raw(vec![b'z'; PIECE])));
        Reply::sse(actions)
    });
    let lev = Lev::new().with_openai(&server.base_url());
    check(
        &lev,
        &server,
        "llm.max_reply_bytes",
        "one server-sent event passed",
    );
}

#[test]
fn a_huge_anthropic_reply_and_tool_input_fail_the_step() {
    let server = LlmServer::with(|_| {
        AnthropicSse::new("test-model", 1)
            .text(&"x".repeat(HUGE), HUGE / PIECE)
            .stop("end_turn", 1)
            .reply()
    });
    let lev = with_anthropic(Lev::new(), &server.base_url());
    check(
        &lev,
        &server,
        "llm.max_reply_bytes",
        "the reply text passed 100000 bytes",
    );

    let server = LlmServer::with(|_| {
        let args = json!({"path": "a.txt", "content": "y".repeat(HUGE)}).to_string();
        AnthropicSse::new("test-model", 1)
            .tool_use("toolu_1", "write_file", &args, HUGE / PIECE)
            .stop("tool_use", 1)
            .reply()
    });
    let lev = with_anthropic(Lev::new(), &server.base_url());
    check(
        &lev,
        &server,
        "llm.max_tool_argument_bytes",
        "the arguments of the tool call `write_file` passed 20000 bytes",
    );
}

#[test]
fn replies_within_the_caps_still_work() {
    let server = LlmServer::with(|_| {
        OpenAiSse::new("test-model")
            .text(&"ok ".repeat(20_000), 50)
            .usage(1, 1)
            .finish("stop")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("lev.yaml"), CONFIG).unwrap();
    let wf = lev.write_workflow("version: 1\nkind: workflow\nid: ok\nname: Ok\nsteps:\n  talk:\n    mode: architect\n    prompt: Say a bit.\n");
    let out = lev.run_headless(&wf, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
