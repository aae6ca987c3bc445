//! Any LLM behind one trait: OpenAI-compatible Chat Completions, Anthropic
//! Messages (both SSE streaming with tool calls and usage), and a `scripted`
//! cassette provider. Retries with backoff honouring `Retry-After`, and a
//! circuit breaker per endpoint. API keys never reach logs or errors.
//!
//! Must not depend on `journal`, `workflow` or any participant.
//!
//! Submodules: `openai` and `anthropic` (the HTTP clients), `wire` (shared
//! HTTP/SSE plumbing and the key wrapper), `resilient` (retries),
//! `breaker` (the circuit breaker per endpoint), `scripted` (cassettes),
//! `select` (building the configured provider, pricing), `limits` (caps
//! on reply size), `params` (what a model's requests may carry), `usage` (estimates where a provider reports no token
//! counts), `profiles`
//! (providers by name for modes, and the fallback provider).

pub mod anthropic;
pub mod breaker;
pub mod context;
pub mod limits;
pub mod openai;
pub mod params;
pub mod prices;
pub mod profiles;
pub mod resilient;
pub mod scripted;
pub mod select;
pub mod tokens;
pub mod usage;
pub mod wire;

#[cfg(test)]
mod sse_tests;

pub use breaker::{BreakerChange, BreakerPhase, BreakerState, Breakers};
pub use limits::ReplyLimits;
pub use params::{ModelParams, ModelParamsTable};
pub use profiles::{Fallback, Profiles, Resolved};
pub use select::{build_provider, build_provider_with_env};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    /// A tool result answering `tool_call_id`.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// Raw JSON text of the arguments, as the model produced it.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// For assistant messages that called tools.
    pub tool_calls: Vec<ToolCall>,
    /// For tool results.
    pub tool_call_id: Option<String>,
    pub is_error: bool,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: text.into(),
            tool_calls: vec![],
            tool_call_id: None,
            is_error: false,
        }
    }
}

/// A tool offered to the model, with a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// Where a request comes from; not sent to the provider (the scripted
/// provider matches on it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestMeta {
    pub run: String,
    pub step: String,
    pub mode: String,
    pub turn: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Shared: the same for every request of a step (and of a mode).
    pub tools: std::sync::Arc<Vec<ToolSpec>>,
    /// As configured (a mode's `model.temperature`), sent exactly, or left
    /// out for a model that takes none (see `params`).
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub meta: RequestMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: crate::protocol::Usage,
    /// Why the reply ended, as the provider said it (`stop`, `length`,
    /// `tool_calls`, `end_turn`, `max_tokens`, `refusal`, …); see
    /// [`crate::protocol::cut_short`].
    pub stop_reason: Option<String>,
    /// The model declined to answer: its stated reason (OpenAI's
    /// `refusal` text, or Anthropic's `refusal` stop reason).
    pub refusal: Option<String>,
    pub model: String,
}

/// A piece of a reply as it streams in (shown live, never journaled), or
/// news about the call itself that the caller may journal.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamDelta {
    Text(String),
    ToolCall {
        name: String,
        arguments_part: String,
    },
    /// An endpoint's circuit breaker changed phase during this call.
    Breaker(BreakerChange),
    /// A request failed and is sent again after `delay`.
    Retry(resilient::RetryNotice),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The endpoint answered 429: too many requests for now.
    #[error("{provider}: rate limited (HTTP {status}): {message}{}", retry_after_text(*.retry_after_ms))]
    RateLimited {
        provider: String,
        status: u16,
        /// The provider's own words (or `(empty body)`).
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The endpoint is overloaded (Anthropic's 529, an `overloaded_error`).
    #[error("{provider}: overloaded (HTTP {status}): {message}{}", retry_after_text(*.retry_after_ms))]
    Overloaded {
        provider: String,
        status: u16,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The account is out of quota or credit: asking again will not help.
    #[error("{provider}: quota exhausted (HTTP {status}): {message}")]
    Quota {
        provider: String,
        status: u16,
        message: String,
    },
    /// A reply lev cannot use as one answer (several choices at once).
    #[error("{provider}: unsupported reply: {message}")]
    Unsupported { provider: String, message: String },
    #[error("{provider}: HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
        retry_after_ms: Option<u64>,
    },
    #[error("{provider}: connection failed: {message}")]
    Connect { provider: String, message: String },
    #[error("{provider}: stream broke before the reply was complete: {message}")]
    Stream { provider: String, message: String },
    #[error("{provider}: malformed reply: {message}")]
    Malformed { provider: String, message: String },
    /// An error event inside an otherwise fine stream.
    #[error("{provider}: provider error: {message}")]
    Provider {
        provider: String,
        kind: String,
        message: String,
    },
    #[error(
        "{provider}: circuit open after {failures} consecutive failures; retry in {retry_in_ms} ms"
    )]
    CircuitOpen {
        provider: String,
        failures: u32,
        retry_in_ms: u64,
        /// Requests this call had sent (all failed) before the breaker
        /// refused the next one; 0 when it was refused before sending any,
        /// so the endpoint was not tried at all.
        sent: u32,
    },
    /// A reply past one of the [`ReplyLimits`]; the stream was abandoned.
    #[error(
        "{provider}: reply too large: {what} passed {limit} bytes, the limit set by `{setting}` in the config"
    )]
    TooLarge {
        provider: String,
        what: String,
        limit: usize,
        setting: String,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("scripted provider: {0}")]
    Script(String),
}

fn retry_after_text(ms: Option<u64>) -> String {
    ms.map(|m| format!(", retry after {m} ms"))
        .unwrap_or_default()
}

impl LlmError {
    /// Worth another try (429, 5xx, overloaded, dropped stream, malformed
    /// chunk). Permanent errors are not: an exhausted quota, a bad key
    /// (401/403), an invalid request (other 4xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Connect { .. }
            | LlmError::Stream { .. }
            | LlmError::Malformed { .. } => true,
            LlmError::Http { status, .. } => *status >= 500 || *status == 408,
            LlmError::Provider { kind, .. } => {
                !wire::is_quota_kind(kind)
                    && (kind.contains("overloaded")
                        || kind.contains("rate")
                        || kind.contains("server")
                        || kind.contains("timeout"))
            }
            _ => false,
        }
    }

    /// How long until the breaker lets a request through, when this call
    /// was refused by an open breaker before it sent anything. Such a call
    /// tried nothing, so a caller with time to spare waits instead of
    /// counting it as a failure. `Duration::ZERO`: the cooldown is over but
    /// another call's half-open probe is still out.
    pub fn refused_before_sending(&self) -> Option<Duration> {
        match self {
            LlmError::CircuitOpen {
                retry_in_ms,
                sent: 0,
                ..
            } => Some(Duration::from_millis(*retry_in_ms)),
            _ => None,
        }
    }
}

pub type ChatFuture<'a> = Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>>;

/// One LLM endpoint.
pub trait Provider: Send + Sync {
    /// Short name for messages and breaker keys (`openai@http://host/v1`).
    fn name(&self) -> String;
    /// Sends one request; streams deltas to `deltas` when given. No clone
    /// of `deltas` outlives the returned future, so a listener knows the
    /// call's news is complete when its channel closes.
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a>;
    /// Whether replies from `model` are priced (their `cost_usd` is what
    /// they cost, 0 only when free). Only the pricing wrapper knows; a bare
    /// client says yes, so nothing is reported for it.
    fn knows_price(&self, _model: &str) -> bool {
        true
    }
}

pub use crate::config::{Price, PriceTable};

pub type SharedProvider = Arc<dyn Provider>;

/// Shows only the endpoint name, which never holds a key.
impl std::fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provider({})", self.name())
    }
}
