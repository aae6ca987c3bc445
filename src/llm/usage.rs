//! Token counts for replies whose provider reported none. Many
//! OpenAI-compatible servers send no `usage` (older vLLM and llama.cpp
//! builds, proxies that drop `stream_options`); a reply counted as zero
//! tokens would pass every budget for free. Such a reply's counts are
//! estimated from the text instead, and marked (`Usage::estimated`) so
//! views show them as estimates.

use super::{ChatRequest, ChatResponse, ToolCall};
use crate::protocol::Usage;

/// Characters per token, the usual rule of thumb for English and code.
const CHARS_PER_TOKEN: usize = 4;

fn tokens(chars: usize) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN) as u64
}

/// Estimated counts for `req` answered by `text` and `calls`: everything
/// the request sends (system prompt, messages, earlier tool calls, the
/// tools offered) is input, the reply is output. Not marked as an
/// estimate; see [`fill_unreported`].
pub fn estimate(req: &ChatRequest, text: &str, calls: &[ToolCall]) -> Usage {
    let calls_chars = |calls: &[ToolCall]| -> usize {
        calls
            .iter()
            .map(|c| c.name.chars().count() + c.arguments.chars().count())
            .sum()
    };
    let messages: usize = req
        .messages
        .iter()
        .map(|m| m.content.chars().count() + calls_chars(&m.tool_calls))
        .sum();
    let tools: usize = req
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.chars().count() + t.parameters.to_string().len())
        .sum();
    let system = req.system.as_ref().map_or(0, |s| s.chars().count());
    Usage {
        input_tokens: tokens(system + messages + tools),
        output_tokens: tokens(text.chars().count() + calls_chars(calls)),
        ..Usage::default()
    }
}

/// When `reply`'s provider reported no counts ([`Usage::unreported`]),
/// replaces them with an estimate, marked as one.
pub fn fill_unreported(req: &ChatRequest, reply: &mut ChatResponse) {
    if reply.usage.estimated == 0 {
        return;
    }
    let text = match &reply.refusal {
        Some(r) => format!("{}{r}", reply.text),
        None => reply.text.clone(),
    };
    reply.usage = Usage {
        estimated: 1,
        ..estimate(req, &text, &reply.tool_calls)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, RequestMeta};

    #[test]
    fn unreported_counts_are_estimated_and_marked() {
        let req = ChatRequest {
            model: "m".into(),
            system: Some("s".repeat(40)),
            messages: vec![Message::user("u".repeat(40))],
            tools: vec![].into(),
            temperature: None,
            max_tokens: None,
            meta: RequestMeta::default(),
        };
        let mut reply = ChatResponse {
            text: "t".repeat(8),
            tool_calls: vec![],
            usage: Usage::unreported(),
            stop_reason: Some("stop".into()),
            refusal: None,
            model: "m".into(),
        };
        fill_unreported(&req, &mut reply);
        assert_eq!(reply.usage.input_tokens, 20);
        assert_eq!(reply.usage.output_tokens, 2);
        assert_eq!(reply.usage.estimated, 1);
        // Reported counts, even zero ones, are kept as they are.
        let mut reported = reply.clone();
        reported.usage = Usage::default();
        fill_unreported(&req, &mut reported);
        assert_eq!(reported.usage, Usage::default());
    }
}
