//! OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp,
//! LM Studio, OpenRouter): request mapping and the streamed reply
//! (`stream: true` with `stream_options.include_usage`).

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use tokio::sync::mpsc;

use super::params::{self, ModelParamsTable, RequestParams};
use super::wire::{self, Secret};
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Message, Provider, ReplyLimits, Role,
    StreamDelta, ToolCall, ToolSpec,
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
/// temperature written as `params` says the model takes them. It borrows
/// the request: a step's tool schemas and system prompt are serialized
/// from where they are, not copied into a JSON tree first for every turn.
pub fn request_body<'a>(req: &'a ChatRequest, model: &'a str, params: RequestParams) -> Body<'a> {
    Body {
        model,
        system: req.system.as_deref(),
        messages: &req.messages,
        tools: &req.tools,
        temperature: req.temperature.filter(|_| params.temperature),
        max_tokens: req
            .max_tokens
            .map(|m| (params.max_tokens_field.as_str(), m)),
    }
}

/// A `/chat/completions` request, serialized as the API takes it.
pub struct Body<'a> {
    model: &'a str,
    system: Option<&'a str>,
    messages: &'a [Message],
    tools: &'a [ToolSpec],
    temperature: Option<f64>,
    /// The field the model takes its token limit in, and the limit.
    max_tokens: Option<(&'static str, u32)>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry(
            "messages",
            &Messages {
                system: self.system,
                messages: self.messages,
            },
        )?;
        map.serialize_entry("stream", &true)?;
        map.serialize_entry(
            "stream_options",
            &StreamOptions {
                include_usage: true,
            },
        )?;
        if !self.tools.is_empty() {
            map.serialize_entry("tools", &Tools(self.tools))?;
        }
        if let Some(t) = self.temperature {
            map.serialize_entry("temperature", &t)?;
        }
        if let Some((field, limit)) = self.max_tokens {
            map.serialize_entry(field, &limit)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The system prompt as the first message, then the conversation.
struct Messages<'a> {
    system: Option<&'a str>,
    messages: &'a [Message],
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let system = self.system.map(|content| WireMessage::System { content });
        let rest = self.messages.iter().map(WireMessage::of);
        s.collect_seq(system.into_iter().chain(rest))
    }
}

/// One message as the API takes it.
#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` is what the API expects for a pure tool call.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Calls<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

/// Tools as functions: `{"type": "function", "function": {…}}` each.
struct Tools<'a>(&'a [ToolSpec]);

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|t| Typed {
            id: None,
            kind: "function",
            function: Function {
                name: &t.name,
                description: Some(&t.description),
                parameters: Some(&t.parameters),
                arguments: None,
            },
        }))
    }
}

/// An assistant message's tool calls, as the API takes them back.
struct Calls<'a>(&'a [ToolCall]);

impl Serialize for Calls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|c| Typed {
            id: Some(&c.id),
            kind: "function",
            function: Function {
                name: &c.name,
                description: None,
                parameters: None,
                arguments: Some(&c.arguments),
            },
        }))
    }
}

/// A tool or a tool call: `{"type": "function", "function": …}`.
#[derive(Serialize)]
struct Typed<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
}

impl<'a> WireMessage<'a> {
    fn of(m: &'a Message) -> WireMessage<'a> {
        match m.role {
            Role::User => WireMessage::User {
                content: &m.content,
            },
            Role::Assistant if m.tool_calls.is_empty() => WireMessage::Assistant {
                content: Some(&m.content),
                tool_calls: None,
            },
            Role::Assistant => WireMessage::Assistant {
                content: Some(m.content.as_str()).filter(|c| !c.is_empty()),
                tool_calls: Some(Calls(&m.tool_calls)),
            },
            Role::Tool => WireMessage::Tool {
                tool_call_id: m.tool_call_id.as_deref().unwrap_or_default(),
                content: &m.content,
            },
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::RequestMeta;
    use serde_json::json;

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
        let body = serde_json::to_value(request_body(&req, "m", plain)).unwrap();
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
        let body = serde_json::to_value(request_body(&req, "o3", reasoning)).unwrap();
        assert_eq!(body["max_completion_tokens"], 100);
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
    }

    /// The whole body, every kind of message: what the API is sent.
    #[test]
    fn the_body_is_the_request_as_the_api_takes_it() {
        let params = RequestParams {
            max_tokens_field: params::TokenLimitField::MaxTokens,
            temperature: true,
        };
        let mut req = request();
        req.messages[0].content = "say \"hi\"\n\tin 日本語".into();
        req.messages[1].content = "calling".into();
        req.messages.push(Message {
            role: Role::Assistant,
            content: "done".into(),
            tool_calls: vec![],
            tool_call_id: None,
            is_error: false,
        });
        let body = serde_json::to_value(request_body(&req, "m", params)).unwrap();
        let expected = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "say \"hi\"\n\tin 日本語"},
                {"role": "assistant", "content": "calling", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "hello"},
                {"role": "assistant", "content": "done"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [
                {"type": "function", "function": {"name": "read_file", "description": "reads", "parameters": {"type": "object"}}}
            ],
            "max_tokens": 100,
        });
        assert_eq!(body, expected);
        req.tools = Vec::new().into();
        let body = serde_json::to_value(request_body(&req, "m", params)).unwrap();
        assert!(body.get("tools").is_none(), "no tools: no `tools` field");
    }

    #[test]
    fn debug_hides_the_key() {
        let p =
            OpenAiProvider::new("openai", "http://x/v1", Some(Secret::new("sk-zzz")), "m").unwrap();
        assert!(!format!("{p:?}").contains("sk-zzz"));
    }
}
