//! The streamed reply of a Chat Completions request: chunks folded into
//! one response (text, refusal, tool calls assembled from fragments, usage,
//! stop reason), within the reply caps.

use std::collections::BTreeMap;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::llm::limits::Budget;
use crate::llm::wire;
use crate::llm::{ChatResponse, LlmError, ReplyLimits, StreamDelta, ToolCall};
use crate::protocol::Usage;

/// Folds a reply's SSE events into a response, within `limits`; the first
/// error (or cap passed) ends the read, which drops the stream and with it
/// the connection.
pub async fn read_reply(
    provider: &str,
    model: &str,
    events: impl Stream<Item = Result<Event, LlmError>>,
    deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    limits: ReplyLimits,
) -> Result<ChatResponse, LlmError> {
    let mut events = Box::pin(events);
    let mut acc = Accumulator::new(model, Budget::new(provider, limits));
    while let Some(event) = events.next().await {
        let event = event?;
        if acc.feed(provider, &event.data, deltas)? {
            return Ok(acc.finish());
        }
    }
    // Some compatible servers end the body after the last choice's
    // `finish_reason` without `[DONE]`; the reply is whole then.
    if acc.stop_reason.is_some() {
        return Ok(acc.finish());
    }
    Err(LlmError::Stream {
        provider: provider.to_string(),
        message: format!(
            "the stream ended without a `finish_reason` or `data: [DONE]` after {} chunk{}",
            acc.chunks,
            if acc.chunks == 1 { "" } else { "s" }
        ),
    })
}

/// Folds stream chunks into a reply. Tool calls arrive as fragments keyed
/// by `index`: the first carries `id` and `name`, later ones more
/// `arguments` text (and, from some servers, an empty or repeated `id` and
/// `name`, which change nothing).
struct Accumulator {
    text: String,
    refusal: Option<String>,
    calls: BTreeMap<u64, ToolCall>,
    /// Where a server's `index` now leads, once it reused the index for
    /// another call.
    renumbered: BTreeMap<u64, u64>,
    usage: Option<Usage>,
    stop_reason: Option<String>,
    model: String,
    budget: Budget,
    /// JSON chunks read, for the message when the stream ends early.
    chunks: usize,
}

impl Accumulator {
    fn new(model: &str, budget: Budget) -> Self {
        Accumulator {
            text: String::new(),
            refusal: None,
            calls: BTreeMap::new(),
            renumbered: BTreeMap::new(),
            usage: None,
            stop_reason: None,
            model: model.to_string(),
            budget,
            chunks: 0,
        }
    }

    /// Takes one `data:` payload; true at `[DONE]`.
    fn feed(
        &mut self,
        provider: &str,
        data: &str,
        deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<bool, LlmError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk = wire::parse_chunk(provider, data)?;
        self.chunks += 1;
        if let Some(err) = chunk.get("error") {
            return Err(stream_error(provider, err));
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str)
            && !model.is_empty()
        {
            self.model = model.to_string();
        }
        // Groq reports usage under `x_groq` instead.
        let usage = chunk
            .get("usage")
            .or_else(|| chunk.get("x_groq").and_then(|x| x.get("usage")));
        if let Some(usage) = usage.filter(|u| u.is_object()) {
            self.usage = Some(usage_of(usage));
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        for (position, choice) in (0u64..).zip(choices.into_iter().flatten()) {
            // lev never asks for `n > 1`; mixing several answers into one
            // would be worse than refusing the stream. (A choice without an
            // `index` is numbered by its place in the list.)
            let i = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position);
            if i > 0 {
                return Err(LlmError::Unsupported {
                    provider: provider.to_string(),
                    message: format!(
                        "the stream holds several answers (choice {i}); lev reads one per request and never asks for `n > 1`, so the server or a proxy in front of it added them"
                    ),
                });
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str)
                && !reason.is_empty()
            {
                self.stop_reason = Some(reason.to_string());
            }
            // A whole (not streamed) reply has `message` where a chunk
            // has `delta`.
            let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
                continue;
            };
            // Reasoning models stream their thinking under one of these
            // names; lev does not keep it, but it counts against the cap.
            for key in ["reasoning_content", "reasoning"] {
                if let Some(r) = delta.get(key).and_then(Value::as_str) {
                    self.budget.reasoning(r.len())?;
                }
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                self.budget.text(text.len())?;
                self.text.push_str(text);
                wire::emit(deltas, StreamDelta::Text(text.to_string()));
            }
            if let Some(text) = delta.get("refusal").and_then(Value::as_str)
                && !text.is_empty()
            {
                self.budget.text(text.len())?;
                self.refusal.get_or_insert_with(String::new).push_str(text);
            }
            let calls = delta.get("tool_calls").and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                self.feed_call(provider, call, deltas)?;
            }
        }
        Ok(false)
    }

    fn feed_call(
        &mut self,
        provider: &str,
        call: &Value,
        deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<(), LlmError> {
        // An empty `id` or `name` is no id or name: Qwen repeats `"id": ""`
        // in every fragment after the first.
        let id = non_empty(call.get("id"));
        let function = call.get("function");
        let name = non_empty(function.and_then(|f| f.get("name")));
        let next = self
            .calls
            .last_key_value()
            .map_or(0, |(&k, _)| k.saturating_add(1));
        let index = match call.get("index").and_then(Value::as_u64) {
            Some(i) => {
                let key = self.renumbered.get(&i).copied().unwrap_or(i);
                match (self.calls.get(&key), id) {
                    // Some servers number every call 0: another id at an
                    // index that has one is another call.
                    (Some(c), Some(id)) if !c.id.is_empty() && c.id != id => {
                        self.renumbered.insert(i, next);
                        next
                    }
                    _ => key,
                }
            }
            // Some servers omit `index`: a fragment with a new `id` starts
            // a new call, one without continues the last.
            None => match (self.calls.last_key_value(), id) {
                (Some((&i, c)), Some(id)) if c.id.is_empty() || c.id == id => i,
                (Some((&i, _)), None) => i,
                (Some(_), Some(_)) | (None, _) => next,
            },
        };
        let entry = self.calls.entry(index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        if let Some(id) = id
            && entry.id != id
        {
            self.budget.call_meta(id.len())?;
            entry.id = id.to_string();
        }
        // A name is sent whole in one fragment; one sent again (some
        // servers repeat it in every fragment) is the same name.
        if let Some(name) = name
            && entry.name != name
        {
            self.budget.call_meta(name.len())?;
            entry.name.push_str(name);
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(part)) => {
                self.budget.argument(
                    &entry.name,
                    entry.arguments.len() + part.len(),
                    part.len(),
                )?;
                entry.arguments.push_str(part);
                wire::emit(
                    deltas,
                    StreamDelta::ToolCall {
                        name: entry.name.clone(),
                        arguments_part: part.clone(),
                    },
                );
            }
            // Ollama has sent whole argument objects instead of text.
            Some(obj @ Value::Object(_)) => {
                let part = obj.to_string();
                self.budget.argument(
                    &entry.name,
                    entry.arguments.len() + part.len(),
                    part.len(),
                )?;
                entry.arguments.push_str(&part);
                wire::emit(
                    deltas,
                    StreamDelta::ToolCall {
                        name: entry.name.clone(),
                        arguments_part: part,
                    },
                );
            }
            Some(Value::Null) | None => {}
            Some(other) => {
                return Err(LlmError::Malformed {
                    provider: provider.to_string(),
                    message: format!(
                        "tool call arguments are neither text nor an object: `{}`",
                        wire::excerpt(&other.to_string(), 80)
                    ),
                });
            }
        }
        Ok(())
    }

    fn finish(self) -> ChatResponse {
        let tool_calls = self
            .calls
            .into_values()
            .enumerate()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c
            })
            .collect();
        let refusal = match (self.refusal, self.stop_reason.as_deref()) {
            (Some(r), _) => Some(r),
            (None, Some("refusal")) => Some(String::new()),
            (None, _) => None,
        };
        ChatResponse {
            text: self.text,
            tool_calls,
            usage: self.usage.unwrap_or_else(Usage::unreported),
            stop_reason: self.stop_reason,
            refusal,
            model: self.model,
        }
    }
}

/// Token counts from a `usage` object. `completion_tokens` counts the
/// reasoning tokens at OpenAI but not at every compatible server (xAI
/// reports them apart, in `completion_tokens_details`, and in
/// `total_tokens`), so output is whatever `total_tokens` holds beyond the
/// prompt when that is more.
fn usage_of(usage: &Value) -> Usage {
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let input = count(usage.get("prompt_tokens"));
    let completion = count(usage.get("completion_tokens"));
    let beyond_prompt = count(usage.get("total_tokens")).saturating_sub(input);
    Usage {
        input_tokens: input,
        output_tokens: completion.max(beyond_prompt),
        ..Usage::default()
    }
}

/// A string field that is present and not empty.
fn non_empty(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An `{"error": {...}}` object inside the stream.
fn stream_error(provider: &str, err: &Value) -> LlmError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .or(err.as_str())
        .unwrap_or("unknown error");
    let kind = err
        .get("type")
        .or(err.get("code"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "error".into());
    LlmError::Provider {
        provider: provider.to_string(),
        kind,
        message: wire::excerpt(message, 300),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_split_tool_calls_by_index() {
        let mut acc = Accumulator::new("m", Budget::new("p", ReplyLimits::default()));
        let chunks = [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{\"x\""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        ];
        for c in chunks {
            assert!(!acc.feed("p", c, &None).unwrap());
        }
        assert!(acc.feed("p", "[DONE]", &None).unwrap());
        let r = acc.finish();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, "{}");
        assert_eq!(r.tool_calls[1].arguments, r#"{"x":1}"#);
        assert_eq!(r.stop_reason.as_deref(), Some("tool_calls"));
        assert_eq!(r.usage.input_tokens, 7);
    }

    #[test]
    fn empty_ids_change_nothing_and_a_reused_index_with_a_new_id_is_a_new_call() {
        let mut acc = Accumulator::new("m", Budget::new("p", ReplyLimits::default()));
        let chunks = [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_q","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","type":"function","function":{"name":"","arguments":"{\"a\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","type":"function","function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_r","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_s","type":"function","function":{"name":"h","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
        ];
        for c in chunks {
            acc.feed("p", c, &None).unwrap();
        }
        let r = acc.finish();
        let got: Vec<(&str, &str, &str)> = r
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("call_q", "f", r#"{"a":1}"#),
                ("call_r", "g", "{}"),
                ("call_s", "h", "{}")
            ]
        );
    }

    #[test]
    fn calls_without_index_split_on_new_ids() {
        let mut acc = Accumulator::new("m", Budget::new("p", ReplyLimits::default()));
        let chunks = [
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":{"x":1}}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"}"}}]}}]}"#,
        ];
        for c in chunks {
            acc.feed("p", c, &None).unwrap();
        }
        let r = acc.finish();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(r.tool_calls[1].arguments, "{}");
    }
}
