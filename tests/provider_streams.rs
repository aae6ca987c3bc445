//! Streams and error bodies shaped as real providers send them (captures
//! under `tests/fixtures/streams/`, where each came from is in its
//! `SOURCES.md`), replayed byte for byte from a loopback server to the real
//! `lev` binary: what the user sees, what is journaled and what lev sends
//! back must be right for every provider, not only for lev's own test
//! server.

mod support;

use std::process::Output;

use serde_json::Value;
use support::lev::{Lev, repo_file, run_id_from};
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest, Reply};

/// Quick retries, so a test of retrying does not wait seconds.
const FAST_RETRIES: &str = "retry: { max_attempts: 3, initial_delay_ms: 10, max_delay_ms: 50 }\n";

/// The bytes of a captured stream or error body.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = repo_file(&format!("tests/fixtures/streams/{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A 200 `text/event-stream` reply sending `body` as it was captured.
fn stream(body: Vec<u8>) -> Reply {
    Reply::sse(vec![Action::Raw(body)])
}

/// An error answer with a captured JSON body.
fn error_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply::new(status)
        .header("content-type", "application/json")
        .then(Action::Raw(body))
}

fn with_anthropic(mut lev: Lev, base_url: &str) -> Lev {
    lev.env.push(("LEV_PROVIDER".into(), "anthropic".into()));
    lev.env.push(("ANTHROPIC_BASE_URL".into(), base_url.into()));
    lev.env.push((
        "ANTHROPIC_API_KEY".into(),
        "sk-ant-test-not-a-real-key".into(),
    ));
    lev.env.push(("LEV_MODEL".into(), "claude-test".into()));
    lev
}

fn set_model(lev: &mut Lev, model: &str) {
    lev.env.retain(|(k, _)| k != "LEV_MODEL");
    lev.env.push(("LEV_MODEL".into(), model.into()));
}

/// What one agent step did: the headless output, the run, the step as
/// `lev show --json` has it, and the run's events.
struct Ran {
    out: Output,
    stdout: String,
    step: Value,
    events: Vec<Value>,
}

impl Ran {
    fn replies(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == "llm_replied")
            .collect()
    }
}

/// Runs a one-step workflow whose agent uses `mode`, with `config` as the
/// workspace's `lev.yaml`.
fn run_agent(lev: &Lev, mode: &str, config: &str) -> Ran {
    std::fs::write(lev.workspace().join("lev.yaml"), config).unwrap();
    let wf = lev.write_workflow(&format!(
        "version: 1\nkind: workflow\nid: talk\nname: Talk\nsteps:\n  talk:\n    mode: {mode}\n    prompt: Do the thing.\n"
    ));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
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
    let events = lev.events(&run);
    Ran {
        out,
        stdout,
        step,
        events,
    }
}

fn text_reply(text: &str) -> Reply {
    OpenAiSse::new("test-model")
        .text(text, 2)
        .finish("stop")
        .usage(10, 2)
        .reply()
}

fn body_of(r: &RecordedRequest) -> &Value {
    r.json.as_ref().expect("a JSON request body")
}

#[test]
fn qwen_empty_ids_in_later_fragments_keep_the_real_tool_call_id() {
    let server = LlmServer::script(vec![
        stream(fixture("qwen-tool-call-empty-id.sse")),
        text_reply("done"),
    ]);
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let messages = body_of(&reqs[1])["messages"].as_array().unwrap().clone();
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array().map(|c| c[0].clone()))
        .expect("the assistant's tool call is sent back");
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id != "call_0", "{call}");
    let result = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(result["tool_call_id"], id, "{result}");
    // The arguments arrived whole, and the journal holds the same id.
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args.is_object(), "{args}");
    assert_eq!(ran.replies()[0]["tool_calls"][0]["id"], id);
}

#[test]
fn an_openai_refusal_fails_the_step_with_the_models_words() {
    let server = LlmServer::with(|_| stream(fixture("openai-refusal.sse")));
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(!ran.out.status.success());
    assert_eq!(ran.step["status"], "failed", "{}", ran.step);
    let error = ran.step["error"].as_str().unwrap();
    assert!(
        error.starts_with("the model refused to answer: "),
        "{error}"
    );
    assert!(
        error.len() > "the model refused to answer: ".len() + 10,
        "{error}"
    );
    let reply = ran.replies()[0];
    assert!(
        reply["refusal"].as_str().is_some_and(|r| !r.is_empty()),
        "{reply}"
    );
    assert!(ran.stdout.contains("refused"), "{}", ran.stdout);
}

#[test]
fn an_anthropic_refusal_fails_the_step_too() {
    let server = LlmServer::with(|_| stream(fixture("anthropic-refusal.sse")));
    let lev = with_anthropic(Lev::new(), &server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert_eq!(ran.step["status"], "failed", "{}", ran.step);
    let error = ran.step["error"].as_str().unwrap();
    assert!(error.starts_with("the model refused to answer"), "{error}");
    assert_eq!(ran.replies()[0]["stop_reason"], "refusal");
}

/// A `write_file` call complete in its JSON but in a reply the token limit
/// cut: none of the reply's calls may run.
fn cut_write(path: &str) -> Reply {
    OpenAiSse::new("test-model")
        .tool_call(
            0,
            "call_cut",
            "write_file",
            &format!(r#"{{"path":"{path}","content":"half a fi"}}"#),
            3,
        )
        .finish("length")
        .usage(50, 16)
        .reply()
}

#[test]
fn a_tool_call_cut_off_by_the_token_limit_runs_nothing_and_the_model_is_told() {
    let server = LlmServer::script(vec![cut_write("cut.txt"), text_reply("I stopped.")]);
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "coder", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    assert!(!lev.workspace().join("cut.txt").exists());
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let last = body_of(&reqs[1])["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["role"], "user");
    let told = last["content"].as_str().unwrap();
    assert!(
        told.contains("cut off at the output token limit (stop reason `length`)")
            && told.contains("write_file"),
        "{told}"
    );
    assert!(
        !ran.events.iter().any(|e| e["type"] == "tool_finished"),
        "a tool ran"
    );
    assert_eq!(ran.replies()[0]["stop_reason"], "length");
    assert!(
        ran.stdout.contains("stop: length") && ran.stdout.contains("cut off"),
        "{}",
        ran.stdout
    );
}

#[test]
fn cut_off_twice_in_a_row_fails_the_step_with_the_reason() {
    let server = LlmServer::with(|_| cut_write("cut.txt"));
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "coder", "");
    assert_eq!(ran.step["status"], "failed", "{}", ran.step);
    let error = ran.step["error"].as_str().unwrap();
    assert!(
        error.contains("cut off at the output token limit") && error.contains("max_output_tokens"),
        "{error}"
    );
    assert!(!lev.workspace().join("cut.txt").exists());
}

#[test]
fn anthropic_input_tokens_come_from_the_last_report() {
    let server = LlmServer::with(|_| stream(fixture("anthropic-message-delta-input-tokens.sse")));
    let lev = with_anthropic(Lev::new(), &server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    let usage = &ran.replies()[0]["usage"];
    assert_eq!(usage["input_tokens"], 61, "{usage}");
    assert!(usage.get("estimated").is_none(), "{usage}");
}

#[test]
fn anthropic_server_tool_and_mcp_blocks_do_not_fail_the_reply() {
    for name in ["anthropic-mcp-tool-use.sse", "anthropic-web-search.sse"] {
        let server = LlmServer::with(move |_| stream(fixture(name)));
        let lev = with_anthropic(Lev::new(), &server.base_url());
        let ran = run_agent(&lev, "ask", "");
        assert!(ran.out.status.success(), "{name}: {}", ran.stdout);
        assert_eq!(server.request_count(), 1, "{name}: retried");
        let text = ran.replies()[0]["text"].as_str().unwrap().to_string();
        assert!(!text.is_empty(), "{name}");
    }
}

/// The capture with its last event's closing blank line cut off.
fn without_last_blank_line(mut body: Vec<u8>) -> Vec<u8> {
    while body.last() == Some(&b'\n') {
        body.pop();
    }
    body
}

#[test]
fn a_last_event_without_its_blank_line_is_read() {
    let server = LlmServer::script(vec![
        stream(without_last_blank_line(fixture("anthropic-text.sse"))),
        stream(without_last_blank_line(fixture("openai-text.sse"))),
    ]);
    let lev = with_anthropic(Lev::new(), &server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    assert_eq!(
        server.request_count(),
        1,
        "the whole reply was called broken"
    );
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn an_exhausted_quota_is_shown_in_the_providers_words_and_not_retried() {
    let server =
        LlmServer::with(|_| error_reply(429, fixture("openai-429-insufficient-quota.error.json")));
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", FAST_RETRIES);
    assert_eq!(ran.step["status"], "failed", "{}", ran.step);
    let error = ran.step["error"].as_str().unwrap();
    assert!(
        error.contains("quota exhausted (HTTP 429): You exceeded your current quota"),
        "{error}"
    );
    assert_eq!(server.request_count(), 1, "a quota error was retried");
}

#[test]
fn an_overload_is_retried_and_each_retry_shows_as_it_happens() {
    let server = LlmServer::script(vec![
        error_reply(529, fixture("anthropic-529-overloaded.error.json")),
        stream(fixture("anthropic-text.sse")),
    ]);
    let lev = with_anthropic(Lev::new(), &server.base_url());
    let ran = run_agent(&lev, "ask", FAST_RETRIES);
    assert!(ran.out.status.success(), "{}", ran.stdout);
    assert_eq!(server.request_count(), 2);
    let line = ran
        .stdout
        .lines()
        .find(|l| l.contains("request 1 of 3"))
        .unwrap_or_else(|| panic!("no retry line: {}", ran.stdout));
    assert!(line.contains("overloaded (HTTP 529): Overloaded"), "{line}");
    let retry = ran
        .events
        .iter()
        .find(|e| e["type"] == "llm_retrying")
        .expect("the retry is journaled");
    assert_eq!(retry["failed"], 1);
    assert_eq!(retry["tries"], 3);
}

/// The capture cut after its first text deltas, ending in the error event
/// Anthropic sends when it is overloaded mid-reply.
fn anthropic_error_mid_reply() -> Vec<u8> {
    let text = String::from_utf8(fixture("anthropic-text.sse")).unwrap();
    let mut events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    events.truncate(5);
    assert!(events.last().unwrap().contains("text_delta"));
    let mut body = events.join("\n\n");
    body.push_str("\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
    body.into_bytes()
}

#[test]
fn a_reply_that_fails_midway_is_retried_and_its_partial_text_is_not_journaled() {
    let server = LlmServer::script(vec![
        stream(anthropic_error_mid_reply()),
        stream(fixture("anthropic-message-delta-input-tokens.sse")),
    ]);
    let lev = with_anthropic(Lev::new(), &server.base_url());
    let ran = run_agent(&lev, "ask", FAST_RETRIES);
    assert!(ran.out.status.success(), "{}", ran.stdout);
    assert_eq!(server.request_count(), 2);
    let replies = ran.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["text"], "pong");
    let retry = ran
        .events
        .iter()
        .find(|e| e["type"] == "llm_retrying")
        .expect("the retry is journaled");
    assert!(
        retry["error"].as_str().unwrap().contains("Overloaded"),
        "{retry}"
    );
    // Nothing the failed request streamed ("Hello! I") reached the journal.
    let all = serde_json::to_string(&ran.events).unwrap();
    assert!(!all.contains("Hello! I"), "{all}");
}

#[test]
fn reasoning_models_get_max_completion_tokens_and_no_temperature() {
    let server = LlmServer::with(|_| text_reply("ok"));
    let mut lev = Lev::new().with_openai(&server.base_url());
    // `ask` says temperature 0.3 and max_output_tokens 6000.
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    set_model(&mut lev, "o3-mini");
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    // A model the built-in rules do not know, told by the config.
    set_model(&mut lev, "my-reasoner-v2");
    let ran = run_agent(
        &lev,
        "ask",
        "models:\n  my-reasoner: { max_tokens_field: max_completion_tokens, temperature: false }\n",
    );
    assert!(ran.out.status.success(), "{}", ran.stdout);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    // Exactly as configured, not an f32 widened to 0.30000001192092896.
    assert!(
        reqs[0].body.contains(r#""temperature":0.3,"#)
            || reqs[0].body.contains(r#""temperature":0.3}"#),
        "{}",
        reqs[0].body
    );
    assert_eq!(body_of(&reqs[0])["max_tokens"], 6000);
    for r in &reqs[1..] {
        let body = body_of(r);
        assert_eq!(body["max_completion_tokens"], 6000, "{body}");
        assert!(
            body.get("max_tokens").is_none() && body.get("temperature").is_none(),
            "{body}"
        );
    }
}

#[test]
fn a_stream_with_several_choices_is_refused_not_mixed() {
    let server = LlmServer::with(|_| stream(fixture("openai-two-choices.sse")));
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", FAST_RETRIES);
    assert_eq!(ran.step["status"], "failed", "{}", ran.step);
    let error = ran.step["error"].as_str().unwrap();
    assert!(error.contains("several answers"), "{error}");
    assert_eq!(server.request_count(), 1, "retried");
}

#[test]
fn a_reply_without_usage_is_estimated_and_marked_not_free() {
    let server = LlmServer::with(|_| {
        OpenAiSse::new("test-model")
            .text("An answer of some length, long enough to count.", 3)
            .finish("stop")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    let usage = &ran.replies()[0]["usage"];
    assert_eq!(usage["estimated"], 1, "{usage}");
    assert!(usage["input_tokens"].as_u64().unwrap() > 100, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 5, "{usage}");
    assert!(ran.stdout.contains("(~"), "{}", ran.stdout);
}

#[test]
fn reasoning_tokens_reported_apart_are_counted() {
    let server = LlmServer::with(|_| stream(fixture("xai-reasoning-usage.sse")));
    let lev = Lev::new().with_openai(&server.base_url());
    let ran = run_agent(&lev, "ask", "");
    assert!(ran.out.status.success(), "{}", ran.stdout);
    let usage = &ran.replies()[0]["usage"];
    let total = usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap();
    assert_eq!(total, XAI_TOTAL_TOKENS, "{usage}");
}

/// `usage.total_tokens` in the xAI capture, which counts its reasoning.
const XAI_TOTAL_TOKENS: u64 = 303;

mod split_anywhere {
    //! Every captured stream decodes to the same reply (or the same
    //! error) however the body is cut into chunks: inside a line, a
    //! `\r\n`, a UTF-8 character.

    use lev::llm::{ChatResponse, ReplyLimits, anthropic, openai, wire};
    use proptest::prelude::*;

    use super::support::lev::repo_file;

    fn decode(name: &str, chunks: Vec<Vec<u8>>) -> Result<ChatResponse, String> {
        let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        let limits = ReplyLimits::default();
        let events = wire::decode_sse("p", body, limits.max_event_bytes());
        let reply = if name.starts_with("anthropic") {
            futures::executor::block_on(anthropic::read_reply("p", "m", events, &None, limits))
        } else {
            futures::executor::block_on(openai::read_reply("p", "m", events, &None, limits))
        };
        reply.map_err(|e| e.to_string())
    }

    fn captures() -> Vec<(String, Vec<u8>)> {
        let dir = repo_file("tests/fixtures/streams");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sse"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        out.sort();
        assert!(out.len() >= 10, "captures missing from {}", dir.display());
        out
    }

    fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in cuts {
            chunks.push(bytes[from..c].to_vec());
            from = c;
        }
        chunks.push(bytes[from..].to_vec());
        chunks
    }

    #[test]
    fn every_capture_reads_whole() {
        for (name, bytes) in captures() {
            let reply = decode(&name, vec![bytes]);
            // The captures of failures say so in their names.
            let should_fail = name.contains("error") || name.contains("two-choices");
            assert_eq!(reply.is_err(), should_fail, "{name}: {reply:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_capture_reads_the_same_split_anywhere(
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            crlf in any::<bool>(),
        ) {
            for (name, bytes) in captures() {
                let bytes = if crlf {
                    String::from_utf8(bytes).unwrap().replace('\n', "\r\n").into_bytes()
                } else {
                    bytes
                };
                let whole = decode(&name, vec![bytes.clone()]);
                let pieces = decode(&name, split(&bytes, &cuts));
                prop_assert_eq!(whole, pieces, "{}", name);
            }
        }
    }
}

/// What a client must read from each capture: text (its start), tool calls
/// (id, name, arguments), stop reason, refusal, and token counts.
#[test]
fn each_capture_reads_as_its_provider_meant() {
    use lev::llm::{ChatResponse, ReplyLimits, anthropic, openai, wire};
    let read = |name: &str| -> ChatResponse {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(fixture(name))]);
        let limits = ReplyLimits::default();
        let events = wire::decode_sse("p", body, limits.max_event_bytes());
        let reply = if name.starts_with("anthropic") {
            futures::executor::block_on(anthropic::read_reply("p", "m", events, &None, limits))
        } else {
            futures::executor::block_on(openai::read_reply("p", "m", events, &None, limits))
        };
        reply.unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    type Call<'a> = (&'a str, &'a str, &'a str);
    /// File, start of the text, tool calls, stop reason, refusal, tokens in and out.
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [Call<'a>],
        &'a str,
        Option<&'a str>,
        (u64, u64),
    );
    let cases: [Case; 14] = [
        (
            "qwen-tool-call-empty-id.sse",
            "",
            &[(
                "call_eee11723464a4b9eb8cee71d",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            "tool_calls",
            None,
            (295, 22),
        ),
        (
            "openai-refusal.sse",
            "",
            &[],
            "stop",
            Some("I'm sorry, but I can't assist with that request."),
            (17, 12),
        ),
        (
            "openai-text.sse",
            "I'm unable to provide real-time updates",
            &[],
            "stop",
            None,
            (14, 47),
        ),
        (
            "xai-reasoning-usage.sse",
            "Hello",
            &[],
            "stop",
            None,
            (12, 291),
        ),
        (
            "groq-tool-call.sse",
            "",
            &[("tk85n1k4m", "weather", "{}")],
            "tool_calls",
            None,
            (210, 15),
        ),
        (
            "mistral-tool-call.sse",
            "",
            &[("gSIMJiOkT", "weather", r#"{"location": "San Francisco"}"#)],
            "tool_calls",
            None,
            (124, 22),
        ),
        (
            "deepseek-tool-call.sse",
            "",
            &[(
                "call_00_ioIn7yN9p1ZOMNpDLwd4MgAF",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            "tool_calls",
            None,
            (339, 83),
        ),
        (
            "deepseek-reasoning.sse",
            "The word \"strawberry\" contains three",
            &[],
            "stop",
            None,
            (18, 219),
        ),
        (
            "azure-text.sse",
            "Capital of Denmark.",
            &[],
            "stop",
            None,
            (15, 78),
        ),
        (
            "anthropic-text.sse",
            "Hello! I'm doing well",
            &[],
            "end_turn",
            None,
            (12, 30),
        ),
        (
            "anthropic-message-delta-input-tokens.sse",
            "pong",
            &[],
            "end_turn",
            None,
            (61, 2),
        ),
        (
            "anthropic-mcp-tool-use.sse",
            "The echo tool responded back with: **hello world**",
            &[],
            "end_turn",
            None,
            (1250, 83),
        ),
        (
            "anthropic-refusal.sse",
            "",
            &[],
            "refusal",
            Some(
                "This request triggered restrictions on violative cyber content and was blocked under Anthropic's Usage Policy.",
            ),
            (18, 5),
        ),
        (
            "anthropic-prepopulated-content.sse",
            "",
            &[(
                "toolu_followup",
                "lookup_customer",
                r#"{"id":"customer_123"}"#,
            )],
            "tool_use",
            None,
            (0, 0),
        ),
    ];
    for (name, text, calls, stop, refusal, (input, output)) in cases {
        let r = read(name);
        assert!(r.text.starts_with(text), "{name}: {:?}", r.text);
        let got: Vec<Call> = r
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(got, calls, "{name}");
        assert_eq!(r.stop_reason.as_deref(), Some(stop), "{name}");
        assert_eq!(r.refusal.as_deref(), refusal, "{name}");
        assert_eq!(
            (r.usage.input_tokens, r.usage.output_tokens),
            (input, output),
            "{name}"
        );
        assert_eq!(r.usage.estimated, 0, "{name}");
    }
    // Server tools ran on the provider's side: read, not called here.
    let r = read("anthropic-web-search.sse");
    assert!(r.tool_calls.is_empty() && r.text.starts_with("Based on my search results"));
}
