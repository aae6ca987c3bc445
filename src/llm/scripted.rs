//! The `scripted` provider: replays a cassette of canned replies, for demos,
//! tests and headless replays with no network. Deterministic: the same
//! requests in the same order get the same replies.
//!
//! # Cassette format (YAML)
//!
//! ```yaml
//! pace: 1.0                  # optional: multiplies every delay_ms (0.1 is ten times faster)
//! replies:
//!   - step: architect        # optional: equals RequestMeta.step
//!     turn: 1                # optional: equals RequestMeta.turn
//!     mode: architect        # optional: equals RequestMeta.mode
//!     contains: "Design:"    # optional: substring of the last user or tool message
//!     text: "Here is the design."
//!     tool_calls:            # optional; `id` defaults to `call_<step>_<turn>_<n>`
//!       - { name: read_file, arguments: { path: README.md } }
//!     usage: { input_tokens: 120, output_tokens: 40 }  # optional
//!     stop_reason: end_turn  # optional; default `tool_use` with tool calls, else `end_turn`
//!     refusal: "I can't help with that."  # optional: the model declines
//!     delay_ms: 300          # optional: the text streams in pieces over this time
//!     repeat: true           # optional: may answer again (default: used once)
//!   - error: { kind: overloaded_error, message: "try later" }  # optional: fail instead
//! ```
//!
//! Matching: the first entry not yet used (or marked `repeat`) whose present
//! criteria all match. No match is `LlmError::Script` naming the step, turn
//! and an excerpt of the last message. Without `usage`, tokens are estimated
//! as characters / 4 (rounded up), input over system prompt and messages,
//! output over text and tool arguments.
//!
//! Text streams as deltas word by word (each piece keeps its trailing
//! whitespace); tool calls stream as one delta each.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::wire;
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, Role, StreamDelta, ToolCall,
};
use crate::protocol::Usage;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// Multiplies every reply's `delay_ms`: the same cassette streams at a
    /// readable pace in the workbench and quickly in a headless test.
    pub pace: Option<f64>,
    #[serde(default)]
    pub replies: Vec<ScriptedReply>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedReply {
    pub step: Option<String>,
    pub turn: Option<u32>,
    pub mode: Option<String>,
    pub contains: Option<String>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
    pub usage: Option<ScriptedUsage>,
    pub stop_reason: Option<String>,
    pub refusal: Option<String>,
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub repeat: bool,
    pub error: Option<ScriptedError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    pub id: Option<String>,
    pub name: String,
    /// Any YAML value; sent as its JSON text.
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A scripted failure, as `LlmError::Provider { kind, message }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedError {
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

impl Cassette {
    /// Parses cassette text; `origin` names it in errors (`file:line:col`).
    pub fn parse(text: &str, origin: &str) -> Result<Cassette, LlmError> {
        let cassette: Cassette = serde_saphyr::from_str(text)
            .map_err(|e| LlmError::Script(crate::config::yaml_error_text(origin, &e)))?;
        match cassette.pace {
            Some(p) if !(p.is_finite() && p >= 0.0) => Err(LlmError::Script(format!(
                "{origin}: `pace` must be a number of at least 0 (1 is as written), not {p}"
            ))),
            _ => Ok(cassette),
        }
    }

    pub fn load(path: &Path) -> Result<Cassette, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LlmError::Script(format!("cannot read cassette {}: {e}", path.display()))
        })?;
        Cassette::parse(&text, &path.display().to_string())
    }
}

pub struct ScriptedProvider {
    origin: String,
    pace: f64,
    replies: Vec<ScriptedReply>,
    used: Mutex<Vec<bool>>,
}

impl fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedProvider")
            .field("origin", &self.origin)
            .field("replies", &self.replies.len())
            .finish()
    }
}

impl ScriptedProvider {
    pub fn new(cassette: Cassette, origin: impl Into<String>) -> Self {
        let n = cassette.replies.len();
        ScriptedProvider {
            origin: origin.into(),
            // `parse` refuses a pace that is not a finite number >= 0.
            pace: cassette
                .pace
                .filter(|p| p.is_finite() && *p >= 0.0)
                .unwrap_or(1.0),
            replies: cassette.replies,
            used: Mutex::new(vec![false; n]),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        Ok(Self::new(Cassette::load(path)?, path.display().to_string()))
    }

    /// The path the cassette came from, if it was a file.
    pub fn origin(&self) -> PathBuf {
        PathBuf::from(&self.origin)
    }

    /// Picks and marks the reply for `req`.
    fn pick(&self, req: &ChatRequest) -> Result<ScriptedReply, LlmError> {
        let last = last_input(req);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let found = self.replies.iter().enumerate().find(|(i, r)| {
            (r.repeat || !used[*i])
                && r.step.as_ref().is_none_or(|s| *s == req.meta.step)
                && r.turn.is_none_or(|t| t == req.meta.turn)
                && r.mode.as_ref().is_none_or(|m| *m == req.meta.mode)
                && r.contains
                    .as_ref()
                    .is_none_or(|c| last.contains(c.as_str()))
        });
        match found {
            Some((i, r)) => {
                used[i] = true;
                Ok(r.clone())
            }
            None => Err(LlmError::Script(format!(
                "{}: no reply matches step `{}` turn {} (last message: \"{}\")",
                self.origin,
                req.meta.step,
                req.meta.turn,
                wire::excerpt(last, 80)
            ))),
        }
    }

    async fn run(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<ChatResponse, LlmError> {
        let reply = self.pick(req)?;
        if let Some(err) = &reply.error {
            return Err(LlmError::Provider {
                provider: self.name(),
                kind: err.kind.clone(),
                message: err.message.clone(),
            });
        }
        let pieces = word_pieces(&reply.text);
        let pause = reply
            .delay_ms
            .filter(|_| !pieces.is_empty())
            .map(|ms| Duration::from_millis(ms).mul_f64(self.pace) / pieces.len() as u32);
        for piece in &pieces {
            if let Some(p) = pause {
                tokio::time::sleep(p).await;
            }
            wire::emit(&deltas, StreamDelta::Text(piece.to_string()));
        }
        let step = if req.meta.step.is_empty() {
            "x"
        } else {
            &req.meta.step
        };
        let tool_calls: Vec<ToolCall> = reply
            .tool_calls
            .iter()
            .enumerate()
            .map(|(n, c)| ToolCall {
                id: c
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("call_{step}_{}_{}", req.meta.turn, n + 1)),
                name: c.name.clone(),
                arguments: c
                    .arguments
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into()),
            })
            .collect();
        for c in &tool_calls {
            wire::emit(
                &deltas,
                StreamDelta::ToolCall {
                    name: c.name.clone(),
                    arguments_part: c.arguments.clone(),
                },
            );
        }
        let usage = match reply.usage {
            Some(u) => Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                ..Usage::default()
            },
            None => estimate_usage(req, &reply.text, &tool_calls),
        };
        let stop_reason = reply.stop_reason.clone().unwrap_or_else(|| {
            if tool_calls.is_empty() {
                "end_turn".into()
            } else {
                "tool_use".into()
            }
        });
        Ok(ChatResponse {
            text: reply.text,
            tool_calls,
            usage,
            stop_reason: Some(stop_reason),
            refusal: reply.refusal.clone(),
            model: if req.model.is_empty() {
                "scripted".into()
            } else {
                req.model.clone()
            },
        })
    }
}

impl Provider for ScriptedProvider {
    fn name(&self) -> String {
        format!("scripted@{}", self.origin)
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(self.run(req, deltas))
    }
}

/// The last user or tool message: what the reply answers.
fn last_input(req: &ChatRequest) -> &str {
    req.messages
        .iter()
        .rev()
        .find(|m| matches!(m.role, Role::User | Role::Tool))
        .map(|m| m.content.as_str())
        .unwrap_or("")
}

/// Words with their trailing whitespace, so the pieces join to the text.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            pieces.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

fn estimate_usage(req: &ChatRequest, text: &str, calls: &[ToolCall]) -> Usage {
    let input: usize = req.system.as_ref().map_or(0, |s| s.chars().count())
        + req
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum::<usize>();
    let output = text.chars().count() + calls.iter().map(|c| c.arguments.len()).sum::<usize>();
    Usage {
        input_tokens: tokens(input),
        output_tokens: tokens(output),
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, RequestMeta};

    const CASSETTE: &str = r#"
replies:
  - step: architect
    turn: 1
    text: "Design: two modules."
    usage: { input_tokens: 120, output_tokens: 40 }
  - step: architect
    contains: "tool said"
    tool_calls:
      - { name: read_file, arguments: { path: README.md } }
  - text: "fallback"
    repeat: true
"#;

    fn req(step: &str, turn: u32, last: &str) -> ChatRequest {
        ChatRequest {
            model: String::new(),
            system: None,
            messages: vec![Message::user(last)],
            tools: vec![].into(),
            temperature: None,
            max_tokens: None,
            meta: RequestMeta {
                run: "r".into(),
                step: step.into(),
                mode: String::new(),
                turn,
            },
        }
    }

    #[test]
    fn pieces_join_back() {
        let t = "Hello  big\nworld ";
        let p = word_pieces(t);
        assert_eq!(p, vec!["Hello  ", "big\n", "world "]);
        assert_eq!(p.concat(), t);
        assert!(word_pieces("").is_empty());
    }

    #[tokio::test]
    async fn matches_in_order_and_streams_words() {
        let p = ScriptedProvider::new(Cassette::parse(CASSETTE, "c.yaml").unwrap(), "c.yaml");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let r = p.chat(&req("architect", 1, "go"), Some(tx)).await.unwrap();
        assert_eq!(r.text, "Design: two modules.");
        assert_eq!(r.usage.input_tokens, 120);
        let mut streamed = String::new();
        while let Ok(StreamDelta::Text(t)) = rx.try_recv() {
            streamed.push_str(&t);
        }
        assert_eq!(streamed, r.text);

        let r = p
            .chat(&req("architect", 2, "the tool said hi"), None)
            .await
            .unwrap();
        assert_eq!(r.tool_calls[0].arguments, r#"{"path":"README.md"}"#);
        assert_eq!(r.tool_calls[0].id, "call_architect_2_1");
        assert_eq!(r.stop_reason.as_deref(), Some("tool_use"));

        // Used entries are skipped; the repeatable fallback answers forever.
        for _ in 0..2 {
            let r = p.chat(&req("architect", 1, "go"), None).await.unwrap();
            assert_eq!(r.text, "fallback");
            assert_eq!(r.usage.output_tokens, 2);
        }
    }

    #[tokio::test]
    async fn no_match_names_step_turn_and_message() {
        let c = Cassette::parse("replies:\n  - step: a\n    text: x\n", "c.yaml").unwrap();
        let p = ScriptedProvider::new(c, "c.yaml");
        let err = p
            .chat(&req("b", 3, "please\ndo it"), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "scripted provider: c.yaml: no reply matches step `b` turn 3 (last message: \"please\\ndo it\")"
        );
    }

    #[test]
    fn parse_errors_have_line_and_column() {
        let err = Cassette::parse("replies:\n  - text: x\n    bogus: 1\n", "c.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("c.yaml:3:"), "{text}");
        assert!(text.contains("bogus"), "{text}");
        assert!(!text.contains("at line"), "{text}");
    }
}
