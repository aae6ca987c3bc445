//! Anthropic Messages API (`POST /v1/messages`, streamed): request mapping
//! with tool results as `tool_result` blocks, and the event stream
//! (`message_start` … `message_stop`).

use std::fmt;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::params::{self, ModelParamsTable};
use super::wire::{self, Secret};
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, ReplyLimits, Role, StreamDelta,
};

mod stream;

pub use stream::read_reply;

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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, RequestMeta, ToolCall};

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
