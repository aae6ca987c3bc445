//! The LLM providers against a real HTTP server on 127.0.0.1: both wire
//! formats, tool calls split over chunks, usage, terminators, error events,
//! retries (Retry-After, 5xx, dropped and malformed streams), the circuit
//! breaker, keys kept out of errors, and the scripted cassette provider.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lev::config::{BreakerSettings, Config, ProviderKind, ProviderSettings, RetrySettings};
use lev::llm::openai::OpenAiProvider;
use lev::llm::resilient::{Breaker, BreakerState, Resilient};
use lev::llm::select::{build_client, build_provider_with_env};
use lev::llm::{
    ChatRequest, LlmError, Message, Provider, RequestMeta, Role, SharedProvider, StreamDelta,
    ToolCall, ToolSpec,
};
use serde_json::json;
use support::llm_server::{
    Action, AnthropicSse, LlmServer, OpenAiSse, Reply, anthropic_error, openai_error,
};
use tokio::sync::mpsc;

const OPENAI_KEY: &str = "sk-test-OPENAI-0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-test-ANTHROPIC-0123456789";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn keys() -> impl Fn(&str) -> Option<String> {
    env(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
    ])
}

fn settings(kind: ProviderKind, base_url: String) -> ProviderSettings {
    ProviderSettings {
        base_url: Some(base_url),
        model: Some("test-model".into()),
        ..ProviderSettings::of_kind(kind)
    }
}

fn openai_client(server: &LlmServer) -> SharedProvider {
    build_client(
        &settings(ProviderKind::OpenAi, format!("{}/v1", server.base_url())),
        &keys(),
    )
    .unwrap()
}

fn anthropic_client(server: &LlmServer) -> SharedProvider {
    build_client(
        &settings(ProviderKind::Anthropic, server.base_url()),
        &keys(),
    )
    .unwrap()
}

fn fast_retry(max_attempts: u32) -> RetrySettings {
    RetrySettings {
        max_attempts,
        initial_delay_ms: 5,
        max_delay_ms: 5_000,
    }
}

fn resilient(inner: SharedProvider, max_attempts: u32) -> Resilient {
    let breaker = Arc::new(Breaker::new(
        inner.name(),
        BreakerSettings {
            consecutive_failures: 100,
            cooldown_ms: 1,
        },
    ));
    Resilient::new(inner, fast_retry(max_attempts), breaker)
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        system: Some("You are terse.".into()),
        messages: vec![
            Message::user("Read the README."),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"README.md"}"#.into(),
                }],
                tool_call_id: None,
                is_error: false,
            },
            Message {
                role: Role::Tool,
                content: "# lev".into(),
                tool_calls: vec![],
                tool_call_id: Some("call_0".into()),
                is_error: false,
            },
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }]
        .into(),
        temperature: None,
        max_tokens: Some(256),
        meta: RequestMeta {
            run: "run1".into(),
            step: "architect".into(),
            mode: "architect".into(),
            turn: 2,
        },
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<StreamDelta>) -> (String, String) {
    let (mut text, mut args) = (String::new(), String::new());
    while let Ok(d) = rx.try_recv() {
        match d {
            StreamDelta::Text(t) => text.push_str(&t),
            StreamDelta::ToolCall { arguments_part, .. } => args.push_str(&arguments_part),
            StreamDelta::Breaker(_) | StreamDelta::Retry(_) => {}
        }
    }
    (text, args)
}

#[tokio::test]
async fn openai_stream_with_text_split_tool_calls_and_usage() {
    let server = LlmServer::script(vec![
        OpenAiSse::new("gpt-test-2025")
            .text("Reading two files now.", 4)
            .tool_call(0, "call_a", "read_file", r#"{"path":"src/main.rs"}"#, 5)
            .tool_call(
                1,
                "call_b",
                "grep",
                r#"{"pattern":"fn main","path":"."}"#,
                7,
            )
            .finish("tool_calls")
            .usage(321, 54)
            .reply(),
    ]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reply = openai_client(&server)
        .chat(&request(), Some(tx))
        .await
        .unwrap();
    assert_eq!(reply.text, "Reading two files now.");
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[0].id, "call_a");
    assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"src/main.rs"}"#);
    assert_eq!(reply.tool_calls[1].name, "grep");
    assert_eq!(
        reply.tool_calls[1].arguments,
        r#"{"pattern":"fn main","path":"."}"#
    );
    assert_eq!(reply.usage.input_tokens, 321);
    assert_eq!(reply.usage.output_tokens, 54);
    assert_eq!(reply.stop_reason.as_deref(), Some("tool_calls"));
    assert_eq!(reply.model, "gpt-test-2025");
    let (text, args) = drain(&mut rx);
    assert_eq!(text, reply.text);
    assert_eq!(
        args,
        r#"{"path":"src/main.rs"}{"pattern":"fn main","path":"."}"#
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    let body = r.json.as_ref().unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][2]["tool_calls"][0]["id"], "call_0");
    assert_eq!(body["messages"][3]["role"], "tool");
    assert_eq!(body["messages"][3]["tool_call_id"], "call_0");
    assert_eq!(body["tools"][0]["function"]["name"], "read_file");
}

#[tokio::test]
async fn openai_error_event_in_stream_and_http_error_message() {
    let server = LlmServer::script(vec![
        OpenAiSse::new("m")
            .text("partial", 1)
            .error("server_error", "The model crashed")
            .reply(),
        openai_error(400, "invalid_request_error", "Unknown model `nope`"),
    ]);
    let client = openai_client(&server);
    let err = client.chat(&request(), None).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider { kind, message, .. } if kind == "server_error" && message == "The model crashed"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let err = client.chat(&request(), None).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Http { status: 400, message, .. } if message == "Unknown model `nope`"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_stream_cut_before_its_stop_reason_is_a_stream_error_naming_what_is_missing() {
    let server = LlmServer::script(vec![
        OpenAiSse::new("m")
            .text("cut short", 2)
            .reply_unterminated(),
        AnthropicSse::new("claude", 5)
            .text("cut short", 2)
            .reply_unterminated(),
        // Everything but the closing `message_stop`: the reply is whole.
        AnthropicSse::new("claude", 5)
            .text("all there", 2)
            .stop("end_turn", 3)
            .reply_unterminated(),
    ]);
    let err = openai_client(&server)
        .chat(&request(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Stream { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("without a `finish_reason` or `data: [DONE]` after 2 chunks"),
        "{err}"
    );
    let err = anthropic_client(&server)
        .chat(&request(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("ended after `content_block_stop`, without a stop reason or `message_stop`"),
        "{err}"
    );
    let reply = anthropic_client(&server)
        .chat(&request(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "all there");
    assert_eq!(reply.stop_reason.as_deref(), Some("end_turn"));
}

#[tokio::test]
async fn anthropic_stream_with_text_tool_use_ping_and_usage() {
    let server = LlmServer::script(vec![
        AnthropicSse::new("claude-test", 1500)
            .ping()
            .text("I will look.", 3)
            .tool_use("toolu_1", "read_file", r#"{"path":"Cargo.toml"}"#, 6)
            .tool_use("toolu_2", "list_dir", "", 1)
            .stop("tool_use", 88)
            .reply(),
    ]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reply = anthropic_client(&server)
        .chat(&request(), Some(tx))
        .await
        .unwrap();
    assert_eq!(reply.text, "I will look.");
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[0].id, "toolu_1");
    assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"Cargo.toml"}"#);
    assert_eq!(reply.tool_calls[1].arguments, "{}");
    assert_eq!(reply.usage.input_tokens, 1500);
    assert_eq!(reply.usage.output_tokens, 88);
    assert_eq!(reply.stop_reason.as_deref(), Some("tool_use"));
    assert_eq!(reply.model, "claude-test");
    assert_eq!(drain(&mut rx).0, "I will look.");

    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    let body = r.json.as_ref().unwrap();
    assert_eq!(body["system"], "You are terse.");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(body["messages"][2]["role"], "user");
    assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "call_0");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn anthropic_overloaded_error_event_is_retried() {
    let server = LlmServer::script(vec![
        AnthropicSse::new("claude", 10)
            .error("overloaded_error", "Overloaded")
            .reply_unterminated(),
        anthropic_error(529, "overloaded_error", "Overloaded"),
        AnthropicSse::new("claude", 10)
            .text("fine now", 2)
            .stop("end_turn", 2)
            .reply(),
    ]);
    let raw = anthropic_client(&server);
    let err = raw.chat(&request(), None).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider { kind, .. } if kind == "overloaded_error"),
        "{err:?}"
    );
    let reply = resilient(raw, 3).chat(&request(), None).await.unwrap();
    assert_eq!(reply.text, "fine now");
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_then_succeeds() {
    let server = LlmServer::script(vec![
        openai_error(429, "rate_limit_exceeded", "slow down").header("retry-after", "1"),
        OpenAiSse::new("m")
            .text("after the wait", 2)
            .usage(3, 3)
            .reply(),
    ]);
    let (tx, mut deltas) = mpsc::unbounded_channel();
    let provider = resilient(openai_client(&server), 3);
    let reply = provider.chat(&request(), Some(tx)).await.unwrap();
    assert_eq!(reply.text, "after the wait");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let notice = std::iter::from_fn(|| deltas.try_recv().ok())
        .find_map(|d| match d {
            StreamDelta::Retry(n) => Some(n),
            _ => None,
        })
        .expect("a retry notice");
    assert_eq!(notice.attempt, 1);
    assert_eq!(notice.delay, Duration::from_secs(1));
    assert!(
        matches!(
            notice.error,
            LlmError::RateLimited {
                status: 429,
                retry_after_ms: Some(1000),
                ..
            }
        ),
        "{:?}",
        notice.error
    );
    assert!(
        notice.error.to_string().contains("slow down"),
        "{}",
        notice.error
    );
    // A lower bound only: the second request cannot come before the wait.
    assert!(reqs[1].received_at - reqs[0].received_at >= Duration::from_secs(1));
}

#[tokio::test]
async fn server_error_then_success() {
    let server = LlmServer::script(vec![
        openai_error(500, "server_error", "boom"),
        OpenAiSse::new("m").text("ok", 1).reply(),
    ]);
    let reply = resilient(openai_client(&server), 3)
        .chat(&request(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "ok");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_retried() {
    let broken = OpenAiSse::new("m")
        .text("half of a", 3)
        .action(Action::DropConnection)
        .reply_unterminated();
    let server = LlmServer::script(vec![
        broken.clone(),
        broken,
        OpenAiSse::new("m").text("whole reply", 2).reply(),
    ]);
    let raw = openai_client(&server);
    let err = raw.chat(&request(), None).await.unwrap_err();
    assert!(matches!(err, LlmError::Stream { .. }), "{err:?}");
    // The cause is spelled out, not just "error decoding response body".
    assert!(err.to_string().contains("body: "), "{err}");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reply = resilient(raw, 3).chat(&request(), Some(tx)).await.unwrap();
    assert_eq!(reply.text, "whole reply");
    assert_eq!(server.request_count(), 3);
    // The failed attempt's pieces were streamed before the retry.
    assert_eq!(drain(&mut rx).0, "half of awhole reply");
}

#[tokio::test]
async fn malformed_chunk_is_a_clear_error_and_retried() {
    let bad = Reply::sse(vec![
        Action::sse_data(r#"{"choices":[{"delta":{"content":"ok "}}]}"#),
        Action::sse_data(r#"{"choices":[{"delta":{"content": oops}}]}"#),
        Action::sse_data("[DONE]"),
    ]);
    let server = LlmServer::script(vec![bad, OpenAiSse::new("m").text("good", 1).reply()]);
    let raw = openai_client(&server);
    let err = raw.chat(&request(), None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LlmError::Malformed { .. }), "{err:?}");
    assert!(text.contains("not valid JSON"), "{text}");
    assert!(
        text.contains(r#"`{"choices":[{"delta":{"content": oops}}]}`"#),
        "{text}"
    );
    let reply = resilient(raw, 2).chat(&request(), None).await.unwrap();
    assert_eq!(reply.text, "good");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn api_keys_never_appear_in_errors_or_debug() {
    let server = LlmServer::with(|req| {
        // Echo the key back, as some servers do in auth errors.
        let sent = req
            .header("authorization")
            .or(req.header("x-api-key"))
            .unwrap_or_default()
            .to_string();
        openai_error(
            401,
            "invalid_api_key",
            &format!("Incorrect API key provided: {sent}"),
        )
    });
    for client in [openai_client(&server), anthropic_client(&server)] {
        let err = client.chat(&request(), None).await.unwrap_err();
        for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
            assert!(!text.contains(OPENAI_KEY), "{text}");
            assert!(!text.contains(ANTHROPIC_KEY), "{text}");
            assert!(!text.contains("0123456789"), "{text}");
        }
        assert!(err.to_string().contains("HTTP 401"), "{err}");
    }
    // A connection failure names the endpoint, not the key.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = build_client(
        &settings(ProviderKind::OpenAi, format!("http://127.0.0.1:{port}/v1")),
        &keys(),
    )
    .unwrap();
    let err = dead.chat(&request(), None).await.unwrap_err();
    assert!(matches!(err, LlmError::Connect { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(OPENAI_KEY));
}

#[tokio::test]
async fn breaker_opens_after_failures_and_a_probe_closes_it() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let server = LlmServer::with(move |_| {
        if flag.load(Ordering::SeqCst) {
            OpenAiSse::new("m").text("back", 1).reply()
        } else {
            openai_error(503, "server_error", "down")
        }
    });
    let breaker = Arc::new(Breaker::new(
        "test",
        BreakerSettings {
            consecutive_failures: 2,
            cooldown_ms: 50,
        },
    ));
    let provider = Resilient::new(openai_client(&server), fast_retry(1), breaker.clone());
    for _ in 0..2 {
        let err = provider.chat(&request(), None).await.unwrap_err();
        assert!(matches!(err, LlmError::Http { status: 503, .. }), "{err:?}");
    }
    assert!(matches!(provider.state(), BreakerState::Open { .. }));
    let err = provider.chat(&request(), None).await.unwrap_err();
    assert!(
        matches!(err, LlmError::CircuitOpen { failures: 2, .. }),
        "{err:?}"
    );
    assert_eq!(server.request_count(), 2, "an open breaker fails fast");

    healthy.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while provider.state() != BreakerState::HalfOpen {
        assert!(Instant::now() < deadline, "breaker never went half-open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(provider.chat(&request(), None).await.unwrap().text, "back");
    assert_eq!(
        provider.state(),
        BreakerState::Closed {
            consecutive_failures: 0
        }
    );
}

#[tokio::test]
async fn configured_provider_uses_env_base_url_and_prices() {
    let server = LlmServer::script(vec![
        OpenAiSse::new("gpt-4o-mini-2024-07-18")
            .text("priced", 1)
            .usage(1_000_000, 2_000_000)
            .reply(),
    ]);
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("lev.yaml"),
        "prices:\n  gpt-4o-mini: { input_per_mtok: 0.15, output_per_mtok: 0.6 }\nretry: { initial_delay_ms: 1 }\n",
    )
    .unwrap();
    let base = format!("{}/v1", server.base_url());
    let environment = env(&[("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", &base)]);
    let cfg = Config::load_with_env(cwd.path(), None, &environment).unwrap();
    assert_eq!(cfg.provider.kind, ProviderKind::OpenAi);
    let provider = build_provider_with_env(&cfg, &environment).unwrap();
    let reply = provider.chat(&request(), None).await.unwrap();
    assert!(
        (reply.usage.cost_usd - 1.35).abs() < 1e-9,
        "{}",
        reply.usage.cost_usd
    );
    assert_eq!(
        server.requests()[0].json.as_ref().unwrap()["model"],
        "gpt-4o-mini"
    );

    let err = build_provider_with_env(&cfg, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
}

#[tokio::test]
async fn scripted_cassette_matches_by_step_turn_and_content() {
    let cassette: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/cassettes/demo.yaml",
    ]
    .iter()
    .collect();
    let cwd = tempfile::tempdir().unwrap();
    let environment = env(&[("LEV_CASSETTE", cassette.to_str().unwrap())]);
    let cfg = Config::load_with_env(cwd.path(), None, &environment).unwrap();
    assert_eq!(cfg.provider.kind, ProviderKind::Scripted);
    let provider = build_provider_with_env(&cfg, &environment).unwrap();

    let mut req = request();
    req.meta.turn = 1;
    req.messages.truncate(1);
    let first = provider.chat(&req, None).await.unwrap();
    assert_eq!(first.tool_calls[0].id, "call_readme");
    assert_eq!(first.tool_calls[0].arguments, r#"{"path":"README.md"}"#);
    assert_eq!(first.usage.input_tokens, 120);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let second = provider.chat(&request(), Some(tx)).await.unwrap();
    assert_eq!(second.text, "Design: a journal and an engine.");
    let mut pieces = vec![];
    while let Ok(StreamDelta::Text(t)) = rx.try_recv() {
        pieces.push(t);
    }
    assert_eq!(pieces.len(), 6, "{pieces:?}");
    assert_eq!(pieces.concat(), second.text);

    for _ in 0..2 {
        let again = provider.chat(&request(), None).await.unwrap();
        assert_eq!(again.text, "Nothing scripted for this; carrying on.");
    }
}

#[tokio::test]
async fn invalid_utf8_in_the_stream_is_malformed() {
    let server = LlmServer::script(vec![Reply::sse(vec![
        Action::Raw(b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\n".to_vec()),
        Action::sse_data("[DONE]"),
    ])]);
    let err = openai_client(&server)
        .chat(&request(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out_as_a_broken_stream() {
    let server = LlmServer::script(vec![
        OpenAiSse::new("m")
            .text("thinking", 1)
            .action(Action::Delay(5_000))
            .reply(),
        OpenAiSse::new("m").text("quick", 1).reply(),
    ]);
    let client = OpenAiProvider::new("openai", &format!("{}/v1", server.base_url()), None, "m")
        .unwrap()
        .with_read_timeout(Duration::from_millis(200))
        .unwrap();
    let client: SharedProvider = Arc::new(client);
    let err = client.chat(&request(), None).await.unwrap_err();
    assert!(matches!(err, LlmError::Stream { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        resilient(client, 2)
            .chat(&request(), None)
            .await
            .unwrap()
            .text,
        "quick"
    );
}

#[tokio::test]
async fn ollama_needs_no_key_and_anthropic_base_url_comes_from_env() {
    let server = LlmServer::with(|req| {
        if req.path == "/v1/messages" {
            AnthropicSse::new("claude", 1)
                .text("from anthropic", 1)
                .stop("end_turn", 1)
                .reply()
        } else {
            OpenAiSse::new("llama").text("from ollama", 1).reply()
        }
    });
    let cwd = tempfile::tempdir().unwrap();
    let host = server.base_url().replace("http://", "");
    let environment = env(&[("LEV_PROVIDER", "ollama"), ("OLLAMA_HOST", &host)]);
    let cfg = Config::load_with_env(cwd.path(), None, &environment).unwrap();
    let reply = build_provider_with_env(&cfg, &environment)
        .unwrap()
        .chat(&request(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "from ollama");
    let first = &server.requests()[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), None);
    assert_eq!(first.json.as_ref().unwrap()["model"], "llama3.2");

    let environment = env(&[
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("ANTHROPIC_BASE_URL", &server.base_url()),
        ("LEV_MODEL", "claude-x"),
    ]);
    let cfg = Config::load_with_env(cwd.path(), None, &environment).unwrap();
    assert_eq!(cfg.provider.kind, ProviderKind::Anthropic);
    let reply = build_provider_with_env(&cfg, &environment)
        .unwrap()
        .chat(&request(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "from anthropic");
    assert_eq!(
        server.requests()[1].json.as_ref().unwrap()["model"],
        "claude-x"
    );
}

/// The server runs on its own thread, so plain synchronous code (as in
/// tests that drive a `lev` child process) can talk to it.
#[test]
fn the_test_server_serves_synchronous_clients() {
    use std::io::{Read, Write};
    let server =
        LlmServer::with(|req| Reply::json(200, &json!({"echo": req.json.clone(), "seq": req.seq})));
    let addr = server.base_url().replace("http://", "");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"hello":"world"}"#;
    write!(
        stream,
        "POST /v1/anything HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains(r#"{"echo":{"hello":"world"},"seq":0}"#),
        "{response}"
    );
    assert!(response.ends_with("0\r\n\r\n"), "{response}");
    assert!(server.wait_for_requests(1, Duration::from_secs(10)));
    let recorded = &server.requests()[0];
    assert_eq!(recorded.path, "/v1/anything");
    assert_eq!(recorded.header("Content-Type"), Some("application/json"));
    assert_eq!(recorded.body, body);
}

#[tokio::test]
async fn a_server_that_answers_whole_instead_of_streaming_is_read() {
    let server = LlmServer::script(vec![
        Reply::json(
            200,
            &json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "m-2024",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Let me look.",
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "grep", "arguments": "{\"pattern\":\"x\"}"}}
                    ]}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
            }),
        ),
        Reply::json(
            200,
            &json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "b"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 20, "output_tokens": 9}
            }),
        ),
    ]);
    let reply = openai_client(&server).chat(&request(), None).await.unwrap();
    assert_eq!(reply.text, "Let me look.");
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[1].id, "call_b");
    assert_eq!(reply.tool_calls[1].arguments, r#"{"pattern":"x"}"#);
    assert_eq!(reply.stop_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (12, 7)
    );
    let reply = anthropic_client(&server)
        .chat(&request(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "Reading.");
    assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"b"}"#);
    assert_eq!(reply.stop_reason.as_deref(), Some("tool_use"));
    assert_eq!(reply.usage.input_tokens, 20);
}
