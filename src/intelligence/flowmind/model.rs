//! Asking FlowMind's model for one JSON object (a progress ledger, an
//! answer to an agent's question): checked by the caller's parser, asked
//! again once with a correction when the reply is not one, and never a
//! request that could take the tokens spent past the allowance (a request
//! counts at its bytes — no tokenizer makes more tokens than bytes — plus
//! the reply's cap).

use crate::llm::{ChatRequest, Message, RequestMeta, Role};
use crate::protocol::Usage;
use crate::text::one_line;

use super::ledger::LedgerModel;

/// Tokens a reply may take.
pub const REPLY_TOKENS: u32 = 300;

/// The parsed object, what it cost and the model's name; or why there is
/// none, with what was spent trying.
pub type Answer<T> = Result<(T, Usage, String), (String, Usage)>;

/// One kind of question to the model.
pub struct Asking<'a> {
    pub run: &'a str,
    pub step: &'a str,
    /// The request's mode (cassettes and servers match on it).
    pub mode: &'a str,
    pub system: &'a str,
    /// Said when a reply does not parse.
    pub correction: &'a str,
    /// What is asked for, in errors (`ledger`, `answer`).
    pub what: &'a str,
}

/// The most a request can cost: its bytes and the reply's cap.
fn ceiling(req: &ChatRequest) -> u64 {
    let bytes: usize = req.system.as_deref().map_or(0, str::len)
        + req.messages.iter().map(|m| m.content.len()).sum::<usize>();
    bytes as u64 + u64::from(REPLY_TOKENS)
}

/// Room to reserve for asking `question` (twice, with the first reply).
pub fn reserve(asking_system: &str, question: &str) -> u64 {
    2 * (question.len() + asking_system.len()) as u64 + 3000
}

pub async fn ask_json<T>(
    model: &LedgerModel,
    asking: &Asking<'_>,
    question: String,
    allowance: u64,
    parse: impl Fn(&str) -> Option<T>,
) -> Answer<T> {
    let mut spent = Usage::default();
    let mut messages = vec![Message::user(question)];
    let mut last = String::new();
    for turn in 1..=2u32 {
        let req = ChatRequest {
            model: model.model.clone(),
            system: Some(asking.system.to_string()),
            messages: messages.clone(),
            tools: Default::default(),
            temperature: Some(0.0),
            max_tokens: Some(REPLY_TOKENS),
            meta: RequestMeta {
                run: asking.run.to_string(),
                step: asking.step.to_string(),
                mode: asking.mode.to_string(),
                turn,
            },
        };
        if spent.total_tokens() + ceiling(&req) > allowance {
            return Err((
                format!("its budget has no room for another request ({allowance} tokens left)"),
                spent,
            ));
        }
        let reply = match model.provider.chat(&req, None).await {
            Ok(r) => r,
            Err(e) => return Err((format!("its model failed: {e}"), spent)),
        };
        spent.add(&reply.usage);
        if let Some(parsed) = parse(&reply.text) {
            let name = if reply.model.is_empty() {
                model.model.clone()
            } else {
                reply.model
            };
            return Ok((parsed, spent, name));
        }
        last = one_line(&reply.text, 120);
        messages.push(Message {
            role: Role::Assistant,
            content: reply.text,
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        });
        messages.push(Message::user(asking.correction));
    }
    Err((
        format!("its model gave no {} twice (last: {last})", asking.what),
        spent,
    ))
}
