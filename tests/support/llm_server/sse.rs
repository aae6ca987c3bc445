//! Builders for streamed replies in OpenAI's and Anthropic's wire formats,
//! and their error bodies.

use serde_json::{Value, json};

use super::{Action, Reply};

/// `text` cut into `n` pieces of about equal length (on char boundaries).
pub fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    if pieces.is_empty() {
        vec![String::new()]
    } else {
        pieces
    }
}

/// An OpenAI-style error body.
pub fn openai_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"message": message, "type": kind, "code": null}}),
    )
}

/// An Anthropic-style error body.
pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// Builds an OpenAI Chat Completions stream.
#[derive(Debug, Clone)]
pub struct OpenAiSse {
    model: String,
    actions: Vec<Action>,
}

impl OpenAiSse {
    pub fn new(model: &str) -> OpenAiSse {
        OpenAiSse {
            model: model.to_string(),
            actions: vec![],
        }
    }

    fn chunk(mut self, choices: Value, usage: Value) -> OpenAiSse {
        let data = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        });
        self.actions.push(Action::sse_data(data.to_string()));
        self
    }

    /// `text` as `n` content deltas.
    pub fn text(mut self, text: &str, n: usize) -> OpenAiSse {
        for piece in split_pieces(text, n) {
            self = self.chunk(
                json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]),
                Value::Null,
            );
        }
        self
    }

    /// Tool call number `index`: a first chunk with id and name, then its
    /// `arguments` in `n` pieces.
    pub fn tool_call(
        mut self,
        index: u32,
        id: &str,
        name: &str,
        arguments: &str,
        n: usize,
    ) -> OpenAiSse {
        self = self.chunk(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}, "finish_reason": null}]),
            Value::Null,
        );
        for piece in split_pieces(arguments, n) {
            self = self.chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, "finish_reason": null}]),
                Value::Null,
            );
        }
        self
    }

    pub fn finish(self, reason: &str) -> OpenAiSse {
        self.chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": reason}]),
            Value::Null,
        )
    }

    /// The usage chunk `include_usage` asks for (empty `choices`).
    pub fn usage(self, prompt: u64, completion: u64) -> OpenAiSse {
        self.chunk(
            json!([]),
            json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}),
        )
    }

    /// An error object inside the stream.
    pub fn error(mut self, kind: &str, message: &str) -> OpenAiSse {
        self.actions.push(Action::sse_data(
            json!({"error": {"message": message, "type": kind}}).to_string(),
        ));
        self
    }

    pub fn action(mut self, action: Action) -> OpenAiSse {
        self.actions.push(action);
        self
    }

    /// The stream with `data: [DONE]` at the end.
    pub fn reply(self) -> Reply {
        let mut actions = self.actions;
        actions.push(Action::sse_data("[DONE]"));
        Reply::sse(actions)
    }

    /// The stream without its terminator.
    pub fn reply_unterminated(self) -> Reply {
        Reply::sse(self.actions)
    }

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }
}

/// Builds an Anthropic Messages stream; starts with `message_start`.
#[derive(Debug, Clone)]
pub struct AnthropicSse {
    actions: Vec<Action>,
    next_block: u32,
}

impl AnthropicSse {
    pub fn new(model: &str, input_tokens: u64) -> AnthropicSse {
        let start = json!({
            "type": "message_start",
            "message": {
                "id": "msg_test", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        });
        AnthropicSse {
            actions: vec![Action::sse("message_start", start.to_string())],
            next_block: 0,
        }
    }

    fn event(mut self, name: &str, data: Value) -> AnthropicSse {
        self.actions.push(Action::sse(name, data.to_string()));
        self
    }

    /// A text block whose text arrives in `n` deltas.
    pub fn text(mut self, text: &str, n: usize) -> AnthropicSse {
        let index = self.next_block;
        self.next_block += 1;
        self = self.event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        );
        for piece in split_pieces(text, n) {
            self = self.event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        self.event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    }

    /// A tool_use block whose input JSON arrives in `n` pieces.
    pub fn tool_use(mut self, id: &str, name: &str, input_json: &str, n: usize) -> AnthropicSse {
        let index = self.next_block;
        self.next_block += 1;
        self = self.event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        );
        for piece in split_pieces(input_json, n) {
            self = self.event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        self.event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    }

    pub fn ping(self) -> AnthropicSse {
        self.event("ping", json!({"type": "ping"}))
    }

    /// `message_delta` with the stop reason and output tokens.
    pub fn stop(self, reason: &str, output_tokens: u64) -> AnthropicSse {
        self.event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        )
    }

    /// An `error` event, e.g. `overloaded_error`.
    pub fn error(self, kind: &str, message: &str) -> AnthropicSse {
        self.event(
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        )
    }

    pub fn action(mut self, action: Action) -> AnthropicSse {
        self.actions.push(action);
        self
    }

    /// The stream with `message_stop` at the end.
    pub fn reply(self) -> Reply {
        let s = self.event("message_stop", json!({"type": "message_stop"}));
        Reply::sse(s.actions)
    }

    pub fn reply_unterminated(self) -> Reply {
        Reply::sse(self.actions)
    }
}
