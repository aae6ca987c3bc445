//! OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp,
//! LM Studio, OpenRouter): request mapping and the streamed reply
//! (`stream: true` with `stream_options.include_usage`).

use std::fmt;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::params::{self, ModelParamsTable, RequestParams};
use super::wire::{self, Secret};
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, ReplyLimits, Role, StreamDelta,
};

mod stream;

pub use stream::read_reply;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_OLLAMA_HOST: &str = "http://127.0.0.1:11434";

/// One OpenAI-compatible endpoint.
pub struct OpenAiProvider {
    /// `openai` or `ollama`: the family name used in messages.
    family: String,
    base_url: String,
    key: Option<Secret>,
    default_model: String,
    client: reqwest::Client,
    limits: ReplyLimits,
    params: ModelParamsTable,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("family", &self.family)
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("default_model", &self.default_model)
            .finish()
    }
}

impl OpenAiProvider {
    /// `family` names the endpoint in messages (`openai`, `ollama`);
    /// `default_model` is used when a request leaves `model` empty.
    pub fn new(
        family: &str,
        base_url: &str,
        key: Option<Secret>,
        default_model: &str,
    ) -> Result<Self, LlmError> {
        let client = wire::http_client(wire::DEFAULT_READ_TIMEOUT)?;
        Ok(OpenAiProvider {
            family: family.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            default_model: default_model.to_string(),
            client,
            limits: ReplyLimits::default(),
            params: ModelParamsTable::new(),
        })
    }

    /// The same provider writing requests by the config's `models:` table.
    pub fn with_params(mut self, params: ModelParamsTable) -> Self {
        self.params = params;
        self
    }

    /// What a request to `model` carries here.
    fn request_params(&self, model: &str) -> RequestParams {
        let official = self.base_url.starts_with("https://api.openai.com");
        params::for_model(&self.params, official, model)
    }

    /// The same provider with other caps on reply size.
    pub fn with_limits(mut self, limits: ReplyLimits) -> Self {
        self.limits = limits;
        self
    }

    fn model<'a>(&'a self, req: &'a ChatRequest) -> &'a str {
        if req.model.is_empty() {
            &self.default_model
        } else {
            &req.model
        }
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
            .map_err(|e| wire::redact_error(e, self.key.as_ref()))
    }

    async fn stream(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<ChatResponse, LlmError> {
        let name = self.name();
        let model = self.model(req);
        let body = request_body(req, model, self.request_params(model));
        let mut http = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body);
        if let Some(key) = &self.key {
            http = http.bearer_auth(key.expose());
        }
        let events = wire::send_sse(
            &name,
            http,
            self.key.as_ref(),
            self.limits.max_event_bytes(),
        )
        .await?;
        let mut reply = read_reply(&name, self.model(req), events, &deltas, self.limits).await?;
        super::usage::fill_unreported(req, &mut reply);
        Ok(reply)
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> String {
        format!("{}@{}", self.family, self.base_url)
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(self.run(req, deltas))
    }
}

/// The JSON body for `/chat/completions`, with the token limit and
/// temperature written as `params` says the model takes them.
pub fn request_body(req: &ChatRequest, model: &str, params: RequestParams) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        messages.push(match m.role {
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant if m.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": m.content})
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        })
                    })
                    .collect();
                // `content: null` is what the API expects for a pure tool call.
                let content = if m.content.is_empty() {
                    Value::Null
                } else {
                    Value::String(m.content.clone())
                };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
            }),
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                })
            })
            .collect();
    }
    if let Some(t) = req.temperature
        && params.temperature
    {
        body["temperature"] = json!(t);
    }
    if let Some(m) = req.max_tokens {
        body[params.max_tokens_field.as_str()] = json!(m);
    }
    body
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, RequestMeta, ToolCall, ToolSpec};

    fn request() -> ChatRequest {
        ChatRequest {
            model: String::new(),
            system: Some("be brief".into()),
            messages: vec![
                Message::user("read it"),
                Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "read_file".into(),
                        arguments: r#"{"path":"a"}"#.into(),
                    }],
                    tool_call_id: None,
                    is_error: false,
                },
                Message {
                    role: Role::Tool,
                    content: "hello".into(),
                    tool_calls: vec![],
                    tool_call_id: Some("c1".into()),
                    is_error: false,
                },
            ],
            tools: vec![ToolSpec {
                name: "read_file".into(),
                description: "reads".into(),
                parameters: json!({"type": "object"}),
            }]
            .into(),
            temperature: None,
            max_tokens: Some(100),
            meta: RequestMeta::default(),
        }
    }

    #[test]
    fn maps_messages() {
        let plain = RequestParams {
            max_tokens_field: params::TokenLimitField::MaxTokens,
            temperature: true,
        };
        let mut req = request();
        req.temperature = Some(0.3);
        let body = request_body(&req, "m", plain);
        // Exactly as configured, not an f32 widened (0.30000001192092896).
        assert_eq!(body["temperature"].to_string(), "0.3");
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(msgs[2]["content"], Value::Null);
        assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "read_file");
        assert_eq!(msgs[3]["role"], "tool");
        assert_eq!(msgs[3]["tool_call_id"], "c1");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["tools"][0]["function"]["name"], "read_file");
        assert_eq!(body["max_tokens"], 100);
        let reasoning = RequestParams {
            max_tokens_field: params::TokenLimitField::MaxCompletionTokens,
            temperature: false,
        };
        let body = request_body(&req, "o3", reasoning);
        assert_eq!(body["max_completion_tokens"], 100);
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
    }

    #[test]
    fn debug_hides_the_key() {
        let p =
            OpenAiProvider::new("openai", "http://x/v1", Some(Secret::new("sk-zzz")), "m").unwrap();
        assert!(!format!("{p:?}").contains("sk-zzz"));
    }
}
