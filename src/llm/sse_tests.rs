//! Property tests for the reply decoders of both providers: the same bytes
//! split into chunks anywhere (inside a line, a `\r\n`, a UTF-8 character)
//! decode to the same reply as when they arrive at once.

use proptest::prelude::*;
use serde_json::json;

use super::{ChatResponse, ReplyLimits, anthropic, openai, wire};

#[derive(Debug, Clone, Copy)]
enum Provider {
    OpenAi,
    Anthropic,
}

fn decode(provider: Provider, chunks: Vec<Vec<u8>>) -> Result<ChatResponse, String> {
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let limits = ReplyLimits::default();
    let events = wire::decode_sse("p", body, limits.max_event_bytes());
    let reply = match provider {
        Provider::OpenAi => {
            futures::executor::block_on(openai::read_reply("p", "m", events, &None, limits))
        }
        Provider::Anthropic => {
            futures::executor::block_on(anthropic::read_reply("p", "m", events, &None, limits))
        }
    };
    reply.map_err(|e| e.to_string())
}

/// One SSE event in the wire form, with `eol` as the line ending.
fn event(name: Option<&str>, data: &str, eol: &str, comment: bool) -> String {
    let mut out = String::new();
    if comment {
        out.push_str(": keep-alive");
        out.push_str(eol);
    }
    if let Some(n) = name {
        out.push_str(&format!("event: {n}{eol}"));
    }
    for line in data.split('\n') {
        out.push_str(&format!("data: {line}{eol}"));
    }
    out.push_str(eol);
    out
}

fn openai_stream(texts: &[String], args: &[String], eol: &str, comments: bool) -> String {
    let mut out = String::new();
    for t in texts {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": t}}]});
        out.push_str(&event(None, &chunk.to_string(), eol, comments));
    }
    for (i, a) in args.iter().enumerate() {
        let first = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]});
        if i == 0 {
            out.push_str(&event(None, &first.to_string(), eol, false));
        }
        let part = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": a}}]}}]});
        out.push_str(&event(None, &part.to_string(), eol, comments));
    }
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
    out.push_str(&event(None, &usage.to_string(), eol, false));
    out.push_str(&event(None, "[DONE]", eol, false));
    out
}

fn anthropic_stream(texts: &[String], args: &[String], eol: &str, comments: bool) -> String {
    let mut out = String::new();
    let ev = |out: &mut String, name: &str, v: serde_json::Value, c: bool| {
        out.push_str(&event(Some(name), &v.to_string(), eol, c));
    };
    ev(
        &mut out,
        "message_start",
        json!({"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        false,
    );
    ev(
        &mut out,
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        false,
    );
    for t in texts {
        ev(
            &mut out,
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
            comments,
        );
    }
    ev(
        &mut out,
        "content_block_start",
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}}),
        false,
    );
    for a in args {
        ev(
            &mut out,
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": a}}),
            comments,
        );
    }
    ev(
        &mut out,
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        false,
    );
    ev(
        &mut out,
        "message_stop",
        json!({"type": "message_stop"}),
        false,
    );
    out
}

/// `bytes` cut at the given positions (taken modulo the length).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return vec![];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c % bytes.len()).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out.push(bytes[prev..].to_vec());
    out
}

fn piece() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-z é€😀\"\\\\{}:\r\n]{0,12}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn any_split_decodes_like_the_whole_stream(
        anthropic in any::<bool>(),
        texts in prop::collection::vec(piece(), 0..6),
        args in prop::collection::vec(piece(), 0..4),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        comments in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        single_bytes in any::<bool>(),
    ) {
        let (provider, text) = if anthropic {
            (Provider::Anthropic, anthropic_stream(&texts, &args, eol, comments))
        } else {
            (Provider::OpenAi, openai_stream(&texts, &args, eol, comments))
        };
        let bytes = text.into_bytes();
        let whole = decode(provider, vec![bytes.clone()]);
        // The whole stream decodes, to what was sent.
        let reply = whole.clone().unwrap();
        prop_assert_eq!(&reply.text, &texts.concat());
        let chunks = if single_bytes {
            bytes.iter().map(|b| vec![*b]).collect()
        } else {
            split(&bytes, &cuts)
        };
        prop_assert_eq!(decode(provider, chunks), whole);
    }
}
