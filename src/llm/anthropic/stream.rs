//! The streamed reply of a Messages request: events folded into one
//! response (text, tool calls, blocks lev does not act on, usage as last
//! reported, stop reason and refusal), within the reply caps.

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
        if acc.feed(provider, &event.event, &event.data, deltas)? {
            return Ok(acc.finish());
        }
        acc.last_event = event.event;
    }
    // `message_delta` with a stop reason is the reply's last word; a body
    // that ends there lost only the closing `message_stop`.
    if acc.stop_reason.is_some() {
        return Ok(acc.finish());
    }
    let after = if acc.last_event.is_empty() {
        "before any event".to_string()
    } else {
        format!("after `{}`", wire::excerpt(&acc.last_event, 40))
    };
    Err(LlmError::Stream {
        provider: provider.to_string(),
        message: format!("the stream ended {after}, without a stop reason or `message_stop`"),
    })
}

enum Block {
    Text,
    Tool(ToolCall),
    /// A block lev does not act on: `thinking`, and the calls and results
    /// of tools the server runs itself (`server_tool_use`,
    /// `web_search_tool_result`, `mcp_tool_use`, `mcp_tool_result`, …).
    /// Its deltas are read and counted against the caps, not kept.
    Other,
}

/// Token counts as the stream reports them; each field is replaced by the
/// latest value seen (`message_delta` may correct `message_start`'s).
#[derive(Default)]
struct Counts {
    input: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    output: Option<u64>,
}

impl Counts {
    fn take(&mut self, usage: &Value) {
        let field = |k: &str| usage.get(k).and_then(Value::as_u64);
        for (slot, key) in [
            (&mut self.input, "input_tokens"),
            (&mut self.cache_creation, "cache_creation_input_tokens"),
            (&mut self.cache_read, "cache_read_input_tokens"),
            (&mut self.output, "output_tokens"),
        ] {
            if let Some(n) = field(key) {
                *slot = Some(n);
            }
        }
    }

    fn usage(&self) -> Usage {
        if self.input.is_none() && self.output.is_none() {
            return Usage::unreported();
        }
        // Cached prompt tokens are input too, just priced differently.
        let input = [self.input, self.cache_creation, self.cache_read]
            .iter()
            .map(|n| n.unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        Usage {
            input_tokens: input,
            output_tokens: self.output.unwrap_or(0),
            ..Usage::default()
        }
    }
}

struct Accumulator {
    text: String,
    blocks: BTreeMap<u64, Block>,
    counts: Counts,
    stop_reason: Option<String>,
    model: String,
    budget: Budget,
    /// The last event's name, for the message when the stream ends early.
    last_event: String,
    /// `stop_details.explanation`: why the provider stopped (a refusal's
    /// reason).
    stop_explanation: Option<String>,
}

impl Accumulator {
    fn new(model: &str, budget: Budget) -> Self {
        Accumulator {
            text: String::new(),
            blocks: BTreeMap::new(),
            counts: Counts::default(),
            stop_reason: None,
            model: model.to_string(),
            budget,
            last_event: String::new(),
            stop_explanation: None,
        }
    }

    /// Takes one SSE event; true at `message_stop`. The `type` inside the
    /// data wins over the SSE event name (they agree on the real API).
    fn feed(
        &mut self,
        provider: &str,
        event_name: &str,
        data: &str,
        deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<bool, LlmError> {
        if data.trim().is_empty() {
            return Ok(event_name == "message_stop");
        }
        let v = wire::parse_chunk(provider, data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(event_name)
            .to_string();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            // A whole (not streamed) reply is the message itself.
            "message_start" | "message" => {
                let msg = if kind == "message" {
                    Some(&v)
                } else {
                    v.get("message")
                };
                if let Some(model) = msg.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    self.model = model.to_string();
                }
                if let Some(u) = msg.and_then(|m| m.get("usage")) {
                    self.counts.take(u);
                }
                // Some servers send blocks (and the stop reason) whole in
                // `message_start`; later blocks are numbered after them.
                let content = msg.and_then(|m| m.get("content")).and_then(Value::as_array);
                for (i, block) in (0u64..).zip(content.into_iter().flatten()) {
                    self.start_block(i, block, deltas)?;
                }
                if let Some(r) = msg
                    .and_then(|m| m.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_string());
                }
            }
            "content_block_start" => {
                let block = v.get("content_block").cloned().unwrap_or(Value::Null);
                self.start_block(index, &block, deltas)?;
            }
            "content_block_delta" => {
                let delta = v.get("delta").cloned().unwrap_or(Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = str_of(&delta, "text");
                        self.push_text(&t, deltas)?;
                    }
                    // Not kept, but read: counted against the cap.
                    Some("thinking_delta") => {
                        self.budget.reasoning(str_of(&delta, "thinking").len())?;
                    }
                    Some("input_json_delta") => {
                        let part = str_of(&delta, "partial_json");
                        match self.blocks.get_mut(&index) {
                            Some(Block::Tool(call)) => {
                                self.budget.argument(
                                    &call.name,
                                    call.arguments.len() + part.len(),
                                    part.len(),
                                )?;
                                call.arguments.push_str(&part);
                                wire::emit(
                                    deltas,
                                    StreamDelta::ToolCall {
                                        name: call.name.clone(),
                                        arguments_part: part,
                                    },
                                );
                            }
                            // The input of a tool the server runs
                            // (`server_tool_use`, `mcp_tool_use`): read,
                            // not acted on.
                            _ => self.budget.reasoning(part.len())?,
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_string());
                }
                // A refusal may come with the provider's explanation.
                if let Some(why) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_details"))
                    .and_then(|d| d.get("explanation"))
                    .and_then(Value::as_str)
                {
                    self.budget.text(why.len())?;
                    self.stop_explanation = Some(why.to_string());
                }
                if let Some(u) = v.get("usage") {
                    self.counts.take(u);
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let err = v.get("error").cloned().unwrap_or(Value::Null);
                return Err(LlmError::Provider {
                    provider: provider.to_string(),
                    kind: err
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_string(),
                    message: wire::excerpt(
                        err.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown error"),
                        300,
                    ),
                });
            }
            // `ping`, `content_block_stop` and future event kinds carry
            // nothing we need.
            _ => {}
        }
        Ok(false)
    }

    /// A content block begins (or arrives whole): text is kept, a
    /// `tool_use` becomes a call (its `input` already there when the block
    /// came whole), anything else is read and not acted on.
    fn start_block(
        &mut self,
        index: u64,
        block: &Value,
        deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<(), LlmError> {
        let b = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    self.push_text(t, deltas)?;
                }
                Block::Text
            }
            Some("tool_use") => {
                let (id, name) = (str_of(block, "id"), str_of(block, "name"));
                self.budget.call_meta(id.len() + name.len())?;
                // Streamed calls start with `"input": {}` and send the
                // input as deltas.
                let arguments = match block.get("input") {
                    Some(input @ Value::Object(o)) if !o.is_empty() => input.to_string(),
                    _ => String::new(),
                };
                self.budget
                    .argument(&name, arguments.len(), arguments.len())?;
                Block::Tool(ToolCall {
                    id,
                    name,
                    arguments,
                })
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, b);
        Ok(())
    }

    fn push_text(
        &mut self,
        t: &str,
        deltas: &Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<(), LlmError> {
        if !t.is_empty() {
            self.budget.text(t.len())?;
            self.text.push_str(t);
            wire::emit(deltas, StreamDelta::Text(t.to_string()));
        }
        Ok(())
    }

    fn finish(self) -> ChatResponse {
        let tool_calls = self
            .blocks
            .into_values()
            .filter_map(|b| match b {
                Block::Tool(mut c) => {
                    // A tool without arguments streams no input_json_delta.
                    if c.arguments.trim().is_empty() {
                        c.arguments = "{}".into();
                    }
                    Some(c)
                }
                _ => None,
            })
            .collect();
        // Claude says it declined by its stop reason; the text it wrote
        // (if any) is its explanation.
        let refusal =
            (self.stop_reason.as_deref() == Some("refusal")).then(|| match self.stop_explanation {
                Some(why) if self.text.trim().is_empty() => why,
                Some(why) => format!("{} ({why})", self.text.trim()),
                None => self.text.clone(),
            });
        ChatResponse {
            text: self.text,
            tool_calls,
            usage: self.counts.usage(),
            stop_reason: self.stop_reason,
            refusal,
            model: self.model,
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
