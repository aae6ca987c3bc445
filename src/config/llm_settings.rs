//! Settings for LLM calls, read from the config: prices per model, caps on
//! one reply's size (`llm:`), and what requests to a model may carry
//! (`models:`). The `llm` module acts on them; they live here so that the
//! config depends on nothing above it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-model prices in USD per million tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

pub type PriceTable = BTreeMap<String, Price>;

/// Default for `llm.max_reply_bytes`.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;
/// Default for `llm.max_tool_argument_bytes`.
pub const DEFAULT_MAX_TOOL_ARGUMENT_BYTES: usize = 1024 * 1024;

/// The config settings, as named in messages.
pub const REPLY_SETTING: &str = "llm.max_reply_bytes";
pub const ARGUMENT_SETTING: &str = "llm.max_tool_argument_bytes";

/// What one reply may hold (`llm:` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Bytes of reply text, and separately of reasoning text; the text plus
    /// every tool call (name, id, arguments) also count against it together.
    pub max_reply_bytes: usize,
    /// Bytes of one tool call's arguments.
    pub max_tool_argument_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            max_tool_argument_bytes: DEFAULT_MAX_TOOL_ARGUMENT_BYTES,
        }
    }
}

impl ReplyLimits {
    /// Bytes one server-sent event may take on the wire. An event carries at
    /// most one piece of text or arguments, which JSON escaping can make up
    /// to six times longer (`\u0000`); anything bigger cannot be a reply
    /// within the caps, and is refused before it is buffered further.
    pub fn max_event_bytes(&self) -> usize {
        self.max_reply_bytes
            .max(self.max_tool_argument_bytes)
            .saturating_mul(6)
            .saturating_add(64 * 1024)
    }
}

/// The field an OpenAI-compatible request puts its output token limit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    MaxTokens,
    MaxCompletionTokens,
}

impl TokenLimitField {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenLimitField::MaxTokens => "max_tokens",
            TokenLimitField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// One `models:` entry; what it leaves out follows the built-in rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// Where the output token limit goes (OpenAI-compatible endpoints; the
    /// Anthropic API always takes `max_tokens`).
    pub max_tokens_field: Option<TokenLimitField>,
    /// Whether the model takes a `temperature`; `false` leaves a mode's
    /// temperature out of the request.
    pub temperature: Option<bool>,
}

/// `models:` from the config, by model name or prefix.
pub type ModelParamsTable = BTreeMap<String, ModelParams>;
