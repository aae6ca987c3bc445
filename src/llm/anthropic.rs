//! Anthropic Messages API (`POST /v1/messages`, streamed): request mapping
//! with tool results as `tool_result` blocks, and the event stream
//! (`message_start` … `message_stop`).

use std::collections::BTreeMap;
use std::fmt;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::limits::Budget;
use super::params::{self, ModelParamsTable};
use super::wire::{self, Secret};
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, ReplyLimits, Role, StreamDelta,
    ToolCall,
};
use crate::protocol::Usage;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
/// The API requires `max_tokens`; used when a request does not say.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

pub struct AnthropicProvider {
    base_url: String,
    key: Secret,
    default_model: String,
    client: reqwest::Client,
    limits: ReplyLimits,
    params: ModelParamsTable,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("base_url", &self.base_url)
            .field("key", &"[redacted]")
            .field("default_model", &self.default_model)
            .finish()
    }
}

impl AnthropicProvider {
    pub fn new(base_url: &str, key: Secret, default_model: &str) -> Result<Self, LlmError> {
        let client = wire::http_client(wire::DEFAULT_READ_TIMEOUT)?;
        Ok(AnthropicProvider {
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            default_model: default_model.to_string(),
            client,
            limits: ReplyLimits::default(),
            params: ModelParamsTable::new(),
        })
    }

    /// The same provider writing requests by the config's `models:` table
    /// (only `temperature` applies: the API always takes `max_tokens`).
    pub fn with_params(mut self, params: ModelParamsTable) -> Self {
        self.params = params;
        self
    }

    /// The same provider with other caps on reply size.
    pub fn with_limits(mut self, limits: ReplyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same provider failing a call when the server is silent for
    /// longer than `timeout` (default [`wire::DEFAULT_READ_TIMEOUT`]).
    pub fn with_read_timeout(mut self, timeout: std::time::Duration) -> Result<Self, LlmError> {
        self.client = wire::http_client(timeout)?;
        Ok(self)
    }

    async fn run(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<ChatResponse, LlmError> {
        self.stream(req, deltas)
            .await
            .map_err(|e| wire::redact_error(e, Some(&self.key)))
    }

    async fn stream(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<ChatResponse, LlmError> {
        let name = self.name();
        let model = if req.model.is_empty() {
            &self.default_model
        } else {
            &req.model
        };
        let http = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", API_VERSION)
            .json(&request_body(
                req,
                model,
                params::for_model(&self.params, false, model).temperature,
            ));
        let events =
            wire::send_sse(&name, http, Some(&self.key), self.limits.max_event_bytes()).await?;
        let mut reply = read_reply(&name, model, events, &deltas, self.limits).await?;
        super::usage::fill_unreported(req, &mut reply);
        Ok(reply)
    }
}

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

impl Provider for AnthropicProvider {
    fn name(&self) -> String {
        format!("anthropic@{}", self.base_url)
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(self.run(req, deltas))
    }
}

/// The JSON body for `/v1/messages`. Tool results travel as `tool_result`
/// blocks in a user turn, and consecutive turns of one role are merged
/// because the API requires roles to alternate. A temperature is sent only
/// when `temperature` says the model takes one.
pub fn request_body(req: &ChatRequest, model: &str, temperature: bool) -> Value {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::User => ("user", text_block(&m.content).into_iter().collect()),
            Role::Assistant => {
                let mut blocks: Vec<Value> = text_block(&m.content).into_iter().collect();
                for c in &m.tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": c.id,
                        "name": c.name,
                        "input": tool_input(&c.arguments),
                    }));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content,
                });
                if m.is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
        };
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut content)| {
            // The API rejects an empty content list.
            if content.is_empty() {
                content.push(json!({"type": "text", "text": "(empty)"}));
            }
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = &req.system {
        body["system"] = json!(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(t) = req.temperature
        && temperature
    {
        body["temperature"] = json!(t);
    }
    body
}

/// The API rejects empty text blocks, so empty text sends none.
fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// `tool_use.input` must be an object; arguments the model produced as
/// invalid JSON are kept verbatim under `_raw` rather than dropped, so the
/// model sees what it sent.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({"_raw": arguments}),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, RequestMeta};

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
            is_error: false,
        }
    }

    #[test]
    fn merges_tool_results_into_one_user_turn() {
        let mut a = msg(Role::Assistant, "");
        a.tool_calls = vec![
            ToolCall {
                id: "t1".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
            },
            ToolCall {
                id: "t2".into(),
                name: "g".into(),
                arguments: "not json".into(),
            },
        ];
        let mut r1 = msg(Role::Tool, "one");
        r1.tool_call_id = Some("t1".into());
        let mut r2 = msg(Role::Tool, "boom");
        r2.tool_call_id = Some("t2".into());
        r2.is_error = true;
        let req = ChatRequest {
            model: String::new(),
            system: Some("sys".into()),
            messages: vec![msg(Role::User, "hi"), a, r1, r2, msg(Role::User, "more")],
            tools: vec![].into(),
            temperature: None,
            max_tokens: None,
            meta: RequestMeta::default(),
        };
        let body = request_body(&req, "claude", true);
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3, "{body}");
        assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
        assert_eq!(msgs[1]["content"][0]["input"]["a"], 1);
        assert_eq!(msgs[1]["content"][1]["input"]["_raw"], "not json");
        assert_eq!(msgs[2]["role"], "user");
        let blocks = msgs[2]["content"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[1]["is_error"], true);
        assert_eq!(blocks[2]["text"], "more");
        assert_eq!(body["system"], "sys");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    }
}
